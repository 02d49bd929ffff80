"""The SAM template: lint-clean, builds, least-privilege IAM, and consistent with the code's settings."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from segment_bridge.config import Settings

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return cfn_yaml.load(str(TEMPLATE))


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def statements(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, role in resources(template, "AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            found.extend((name, s) for s in policy["PolicyDocument"]["Statement"])
    return found


def test_cfn_lint_is_clean() -> None:
    # The venv's cfn-lint, whatever else is on PATH.
    result = subprocess.run(
        [sys.executable, "-c", "from cfnlint.runner import main; main()", str(TEMPLATE)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def sam_cli() -> str:
    sam = os.environ.get("SAM_CLI") or shutil.which("sam")
    if not sam or not Path(sam).exists():
        pytest.skip("SAM CLI not installed (make test installs it into .venv-sam)")
    return sam


def test_sam_validate_lint_is_clean() -> None:
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1"}
    result = subprocess.run(
        [sam_cli(), "validate", "--lint", "--template", str(TEMPLATE)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


@pytest.mark.slow
def test_sam_build_packages_the_layer_and_functions(tmp_path: Path) -> None:
    python313 = os.environ.get("SAM_PYTHON313")
    if not python313 or not (Path(python313) / "bin" / "python3.13").exists():
        pytest.skip("python3.13 not found (sam build needs the runtime's Python on PATH)")
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "PATH": f"{python313}/bin:{os.environ['PATH']}"}
    result = subprocess.run(
        [sam_cli(), "build", "--template", str(TEMPLATE), "--build-dir", str(tmp_path / "build")],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    layer = tmp_path / "build" / "SharedLayer" / "python"
    assert (layer / "segment_bridge" / "ingest" / "pipeline.py").exists()
    assert (layer / "aws_lambda_powertools").is_dir() and (layer / "pydantic").is_dir()
    assert (tmp_path / "build" / "IngestFunction" / "ingest_handler.py").exists()
    assert (layer / "segment_bridge" / "spec" / "data").is_dir()  # package data travels with the code
    # The binary dependencies are the functions' arm64 / CPython 3.13 builds.
    assert list(layer.glob("pydantic_core/_pydantic_core.cpython-313-aarch64-linux-gnu.so"))
    # Every module ships compiled for python3.13 (a read-only layer cannot cache bytecode), as
    # unchecked-hash pycs (used without comparing timestamps), and none compiled by another Python.
    sources = [p for p in layer.rglob("*.py") if "bin" not in p.relative_to(layer).parts[:1]]
    compiled = {p.parent.parent / p.name.split(".")[0] for p in layer.rglob("__pycache__/*.cpython-313.pyc")}
    assert {p.with_suffix("") for p in sources} <= compiled
    assert not [p for p in layer.rglob("__pycache__/*.pyc") if ".cpython-313." not in p.name]
    flags = (layer / "segment_bridge" / "ingest" / "__pycache__" / "pipeline.cpython-313.pyc").read_bytes()[4:8]
    assert int.from_bytes(flags, "little") == 0b01  # hash-based, source not checked


def test_no_statement_uses_a_wildcard_resource(template: dict[str, Any]) -> None:
    for role, statement in statements(template):
        assert statement.get("Resource") not in ("*", ["*"]), f"{role}/{statement.get('Sid')} uses Resource *"


def test_roles_are_explicit_so_sam_attaches_no_broad_managed_policies(template: dict[str, Any]) -> None:
    for name, function in resources(template, "AWS::Serverless::Function").items():
        props = function["Properties"]
        assert "Role" in props, f"{name} must use an explicit least-privilege role"
        assert "Policies" not in props
        assert not any(e["Type"] == "SQS" for e in (props.get("Events") or {}).values()), (
            "SAM SQS events attach AWSLambdaSQSQueueExecutionRole (Resource *)"
        )
    for role in resources(template, "AWS::IAM::Role").values():
        assert not role["Properties"].get("ManagedPolicyArns")


def test_secret_access_is_limited_to_the_tenant_prefix(template: dict[str, Any]) -> None:
    secret_statements = [
        (role, s) for role, s in statements(template) if any("secretsmanager" in a for a in _actions(s))
    ]
    assert secret_statements
    for role, statement in secret_statements:
        # Only the admin function writes tenants; the pipelines read them.
        if role != "AdminRole":
            assert _actions(statement) == ["secretsmanager:GetSecretValue"]
        assert "${SecretsPrefix}/tenants/*" in str(statement["Resource"])


def test_the_admin_role_manages_tenant_secrets_and_nothing_else(template: dict[str, Any]) -> None:
    [statement] = [s for role, s in statements(template) if role == "AdminRole" and s["Sid"] == "ManageTenantSecrets"]
    assert sorted(_actions(statement)) == [
        "secretsmanager:CreateSecret",
        "secretsmanager:DeleteSecret",
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:RestoreSecret",
    ]
    assert statement["Resource"] == SECRETS_UNDER_PREFIX


def test_the_admin_api_is_its_own_iam_authorized_api(template: dict[str, Any]) -> None:
    admin = template["Resources"]["AdminApi"]["Properties"]
    assert admin["Auth"] == {"DefaultAuthorizer": "AWS_IAM", "InvokeRole": "NONE"}
    [settings] = admin["MethodSettings"]
    assert settings["ResourcePath"] == "/*" and settings["HttpMethod"] == "*"
    assert settings["ThrottlingRateLimit"] and settings["ThrottlingBurstLimit"]
    assert settings["DataTraceEnabled"] is False  # bodies carry writeKeys and private keys
    assert admin["AccessLogSetting"]["DestinationArn"] == _arn("AdminAccessLogGroup")
    # The public webhook API has no IAM authorizer (tools and Segment cannot sign), and no admin route.
    assert "Auth" not in template["Resources"]["WebhookApi"]["Properties"]
    for name, function in resources(template, "AWS::Serverless::Function").items():
        for event in (function["Properties"].get("Events") or {}).values():
            if event["Type"] != "Api":
                continue
            is_admin = event["Properties"]["Path"].startswith("/v1/tenants/")
            assert is_admin == (name == "AdminFunction"), name
            api = {"Ref": "AdminApi"} if is_admin else {"Ref": "WebhookApi"}
            assert event["Properties"]["RestApiId"] == api, name
            assert "Auth" not in event["Properties"], f"{name}: no per-route override of the API's authorizer"


def test_queue_permissions_name_the_one_queue(template: dict[str, Any]) -> None:
    for role, statement in statements(template):
        if any(a.startswith("sqs:") for a in _actions(statement)):
            assert str(statement["Resource"]) in (
                str({"Fn::GetAtt": ["EventQueue", "Arn"]}),
                str({"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}),
            ), role
    ingest = [
        s for r, s in statements(template) if r == "IngestRole" and any(a.startswith("sqs:") for a in _actions(s))
    ]
    assert [_actions(s) for s in ingest] == [["sqs:SendMessage"]]


def test_forwarder_event_source_reports_partial_failures_with_capped_concurrency(template: dict[str, Any]) -> None:
    [mapping] = resources(template, "AWS::Lambda::EventSourceMapping").values()
    props = mapping["Properties"]
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "ForwardMaximumConcurrency"}
    assert props["BatchSize"] == {"Ref": "ForwardBatchSize"}
    assert props["MaximumBatchingWindowInSeconds"] == {"Ref": "ForwardBatchingWindowSeconds"}


def test_visibility_timeout_covers_six_forwarder_timeouts_plus_window(template: dict[str, Any]) -> None:
    timeout = template["Resources"]["ForwardFunction"]["Properties"]["Timeout"]
    window_max = template["Parameters"]["ForwardBatchingWindowSeconds"]["MaxValue"]
    visibility = template["Resources"]["EventQueue"]["Properties"]["VisibilityTimeout"]
    assert visibility >= 6 * timeout + window_max


def test_queues_are_encrypted_and_dead_lettered(template: dict[str, Any]) -> None:
    queues = resources(template, "AWS::SQS::Queue")
    assert all(
        q["Properties"].get("SqsManagedSseEnabled") or q["Properties"].get("KmsMasterKeyId") for q in queues.values()
    )
    assert queues["EventQueue"]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["DeadLetterQueue", "Arn"]
    }


def test_max_receive_count_reaches_both_the_queue_and_the_forwarder(template: dict[str, Any]) -> None:
    queue = template["Resources"]["EventQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"]
    env = template["Resources"]["ForwardFunction"]["Properties"]["Environment"]["Variables"]["MAX_RECEIVE_COUNT"]
    assert queue == env == Settings().max_receive_count  # a fixed backstop: tests/template/test_outage_template.py


def test_every_environment_variable_is_a_known_setting(template: dict[str, Any]) -> None:
    known = {field.alias for field in Settings.model_fields.values()}
    powertools = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}
    variables = dict(template["Globals"]["Function"]["Environment"]["Variables"])
    for function in resources(template, "AWS::Serverless::Function").values():
        variables.update(function["Properties"].get("Environment", {}).get("Variables", {}))
    unknown = set(variables) - known - powertools
    assert not unknown, f"template sets variables the code never reads: {unknown}"


def test_api_is_throttled_logged_and_keeps_raw_bodies(template: dict[str, Any]) -> None:
    api = template["Resources"]["WebhookApi"]["Properties"]
    settings = api["MethodSettings"][0]
    assert settings["ThrottlingRateLimit"] and settings["ThrottlingBurstLimit"]
    assert settings["DataTraceEnabled"] is False
    assert api["AccessLogSetting"]["DestinationArn"]
    assert api["BinaryMediaTypes"] == ["*~1*"]


def test_outputs_give_the_webhook_url_and_queues(template: dict[str, Any]) -> None:
    assert {"WebhookBaseUrl", "QueueUrl", "DeadLetterQueueUrl"} <= set(template["Outputs"])


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement.get("Action", [])
    return [action] if isinstance(action, str) else list(action)


# -- hardening (issue 7): least privilege, exactly; limits; encryption; checkov ------------------------
SECRETS_UNDER_PREFIX = {
    "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${SecretsPrefix}/tenants/*"
}


def _arn(resource: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [resource, "Arn"]}


def _logs(group: str) -> dict[str, Any]:
    return {"Fn::Sub": f"${{{group}.Arn}}:*"}


#: Every role's whole policy: (actions, resource). Reviewed against the code's AWS calls; a change
#: here is a change of privileges and should be reviewed as one.
LEAST_PRIVILEGE: dict[str, set[tuple[frozenset[str], str]]] = {
    "IngestRole": {
        (frozenset({"logs:CreateLogStream", "logs:PutLogEvents"}), str(_logs("IngestLogGroup"))),
        (frozenset({"sqs:SendMessage"}), str(_arn("EventQueue"))),  # SendMessageBatch is authorized as SendMessage
        (frozenset({"dynamodb:BatchGetItem"}), str(_arn("IdentityTable"))),  # userId lookups
        (frozenset({"dynamodb:PutItem"}), str(_arn("ReplayTable"))),  # Mailgun token claims (conditional put)
        (frozenset({"secretsmanager:GetSecretValue"}), str(SECRETS_UNDER_PREFIX)),
    },
    "ForwardRole": {
        (frozenset({"logs:CreateLogStream", "logs:PutLogEvents"}), str(_logs("ForwardLogGroup"))),
        # The SQS event source mapping's own needs (Lambda docs: execution role permissions).
        (frozenset({"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}), str(_arn("EventQueue"))),
        # A failed record's backoff (ChangeMessageVisibilityBatch is authorized as ChangeMessageVisibility).
        (frozenset({"sqs:ChangeMessageVisibility"}), str(_arn("EventQueue"))),
        (frozenset({"sqs:SendMessage"}), str(_arn("DeadLetterQueue"))),  # dead-letter with a reason
        (frozenset({"secretsmanager:GetSecretValue"}), str(SECRETS_UNDER_PREFIX)),
    },
    "AdminRole": {
        (frozenset({"logs:CreateLogStream", "logs:PutLogEvents"}), str(_logs("AdminLogGroup"))),
        (
            frozenset(
                {
                    "secretsmanager:CreateSecret",
                    "secretsmanager:PutSecretValue",
                    "secretsmanager:RestoreSecret",
                    "secretsmanager:DescribeSecret",
                    "secretsmanager:GetSecretValue",
                    "secretsmanager:DeleteSecret",
                }
            ),
            str(SECRETS_UNDER_PREFIX),
        ),
    },
    "DestinationRole": {
        (frozenset({"logs:CreateLogStream", "logs:PutLogEvents"}), str(_logs("DestinationLogGroup"))),
        (
            frozenset({"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}),
            str(_arn("IdentityTable")),
        ),
        (frozenset({"secretsmanager:GetSecretValue"}), str(SECRETS_UNDER_PREFIX)),
    },
}


def test_every_role_has_exactly_the_reviewed_least_privilege_policy(template: dict[str, Any]) -> None:
    actual: dict[str, set[tuple[frozenset[str], str]]] = {}
    for role, statement in statements(template):
        assert statement["Effect"] == "Allow" and "NotAction" not in statement and "NotResource" not in statement
        assert not any("*" in action for action in _actions(statement)), f"{role}: wildcard action {statement}"
        resource = statement["Resource"]
        assert not isinstance(resource, list), f"{role}/{statement.get('Sid')}: one resource per statement"
        actual.setdefault(role, set()).add((frozenset(_actions(statement)), str(resource)))
    assert actual == LEAST_PRIVILEGE


def test_roles_can_only_be_assumed_by_lambda(template: dict[str, Any]) -> None:
    for name, role in resources(template, "AWS::IAM::Role").items():
        [trust] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert trust == {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }, name


def test_each_function_uses_its_own_role(template: dict[str, Any]) -> None:
    roles = {
        name: function["Properties"]["Role"]
        for name, function in resources(template, "AWS::Serverless::Function").items()
    }
    assert roles == {
        "IngestFunction": _arn("IngestRole"),
        "ForwardFunction": _arn("ForwardRole"),
        "DestinationFunction": _arn("DestinationRole"),
        "AdminFunction": _arn("AdminRole"),
    }


def test_payload_limits_stay_inside_what_lambda_and_api_gateway_allow(template: dict[str, Any]) -> None:
    """API Gateway's hard limit is 10 MB and Lambda's synchronous payload 6 MB; bodies arrive base64
    (BinaryMediaTypes */*), which grows them by 4/3, so MaxBodyBytes must stay under 4.5 MB."""
    parameter = template["Parameters"]["MaxBodyBytes"]
    assert parameter["MaxValue"] * 4 / 3 < 6 * 1000 * 1000
    assert Settings().max_body_bytes == parameter["Default"] <= parameter["MaxValue"]
    assert template["Resources"]["IngestFunction"]["Properties"]["Environment"]["Variables"]["MAX_BODY_BYTES"] == {
        "Ref": "MaxBodyBytes"
    }


def test_every_api_method_is_throttled_and_access_logged(template: dict[str, Any]) -> None:
    api = template["Resources"]["WebhookApi"]["Properties"]
    [settings] = api["MethodSettings"]
    assert settings["ResourcePath"] == "/*" and settings["HttpMethod"] == "*"  # every route, the destination's too
    assert settings["ThrottlingRateLimit"] == {"Ref": "ApiThrottleRateLimit"}
    assert settings["ThrottlingBurstLimit"] == {"Ref": "ApiThrottleBurstLimit"}
    assert api["AccessLogSetting"]["DestinationArn"] == _arn("ApiAccessLogGroup")
    log_format = api["AccessLogSetting"]["Format"]
    assert "$context.requestId" in log_format and "$context.status" in log_format
    assert "header" not in log_format.lower() and "authorization" not in log_format.lower()  # no credentials in logs
    for name, function in resources(template, "AWS::Serverless::Function").items():
        for event in (function["Properties"].get("Events") or {}).values():
            if event["Type"] == "Api":
                # No implicit, unthrottled API: the webhook API, or the admin API (checked above).
                expected = "AdminApi" if name == "AdminFunction" else "WebhookApi"
                assert event["Properties"]["RestApiId"] == {"Ref": expected}


def test_data_at_rest_is_encrypted(template: dict[str, Any]) -> None:
    for name, queue in resources(template, "AWS::SQS::Queue").items():
        assert queue["Properties"].get("SqsManagedSseEnabled") is True or queue["Properties"].get("KmsMasterKeyId"), (
            name
        )
    for name, table in resources(template, "AWS::DynamoDB::Table").items():
        assert table["Properties"]["SSESpecification"]["SSEEnabled"] is True, name
    # Tenant secrets are created by `segment-bridge tenants put`, not by the template: Secrets Manager
    # always encrypts them (with the account's aws/secretsmanager key unless one is given); the
    # functions need no kms:Decrypt for that key, which is why no role grants any KMS action.
    assert not any(a.startswith("kms:") for _, s in statements(template) for a in _actions(s))
    for name, group in resources(template, "AWS::Logs::LogGroup").items():
        assert group["Properties"].get("RetentionInDays"), f"{name} keeps logs forever"


#: checkov findings we accept, and why (docs/security.md, "Template scanners", says the same).
CHECKOV_ACCEPTED = {
    "CKV_AWS_27": "SQS queues use SSE-SQS (SqsManagedSseEnabled); checkov only recognizes KMS keys",
    "CKV_AWS_115": "concurrency is bounded by API Gateway throttling and the event source's MaximumConcurrency; "
    "reserved concurrency would fail deploys in accounts with a low concurrency quota",
    "CKV_AWS_116": "no asynchronous invocations: API Gateway calls synchronously, SQS failures go to the queue's DLQ",
    "CKV_AWS_117": "no private resources to reach; a VPC would add NAT cost for the calls to Segment",
    "CKV_AWS_119": "DynamoDB tables are encrypted with the AWS managed key; a customer key is an operator's choice",
    "CKV_AWS_120": "webhook POSTs must never be cached",
    "CKV_AWS_158": "log groups use CloudWatch Logs' default encryption; logs are tested to carry no secrets",
    "CKV_AWS_173": "environment variables hold names and URLs only; secrets live in Secrets Manager",
    "CKV_AWS_28": "the replay table holds single-use tokens for minutes; nothing to restore",
    "CKV_AWS_73": "X-Ray tracing is optional observability, not a security control; off to save cost",
}


def checkov_cli() -> str:
    checkov = os.environ.get("CHECKOV_CLI") or str(ROOT / ".venv-checkov" / "bin" / "checkov")
    if not Path(checkov).exists():
        pytest.skip("checkov not installed (make test installs it into .venv-checkov)")
    return checkov


def test_checkov_finds_nothing_beyond_the_accepted_findings() -> None:
    import json

    result = subprocess.run(
        [checkov_cli(), "-f", str(TEMPLATE), "--framework", "cloudformation", "--quiet", "-o", "json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    failed = {check["check_id"] for check in report.get("results", {}).get("failed_checks", [])}
    assert failed - set(CHECKOV_ACCEPTED) == set(), [
        (c["check_id"], c["check_name"], c["resource"])
        for c in report["results"]["failed_checks"]
        if c["check_id"] not in CHECKOV_ACCEPTED
    ]
    stale = set(CHECKOV_ACCEPTED) - failed
    assert not stale, f"no longer reported, remove from CHECKOV_ACCEPTED and docs/security.md: {stale}"


def _api_routes(template: dict[str, Any], function: str) -> set[tuple[str, str]]:
    events = template["Resources"][function]["Properties"].get("Events") or {}
    return {(e["Properties"]["Method"].upper(), e["Properties"]["Path"]) for e in events.values() if e["Type"] == "Api"}


def test_every_route_a_handler_serves_is_declared_for_its_function(template: dict[str, Any]) -> None:
    """API Gateway answers 403 to a route the template leaves out: each handler's routes are all declared
    (Powertools' `<name>` is the template's `{name}`), and the template declares none the handler lacks."""
    import re

    import admin_handler
    import destination_handler
    import ingest_handler

    for function, module in (
        ("IngestFunction", ingest_handler),
        ("DestinationFunction", destination_handler),
        ("AdminFunction", admin_handler),
    ):
        served = set()
        for key in module.app._route_keys:  # "POST/v1/webhooks/<source>/<tenant>"
            method, _, path = key.partition("/")
            served.add((method, "/" + re.sub(r"<(\w+)>", r"{\1}", path)))
        assert _api_routes(template, function) == served, function


def test_segment_api_routes_and_host_output(template: dict[str, Any]) -> None:
    from segment_bridge.ingest import tracking_api

    routes = _api_routes(template, "IngestFunction")
    assert {("POST", f"/v1/{call}") for call in tracking_api.ROUTES} <= routes
    assert "SegmentApiHost" in template["Outputs"]
    admin = _api_routes(template, "AdminFunction")
    assert {
        ("POST", "/v1/tenants/{tenant}/bridge-keys"),
        ("DELETE", "/v1/tenants/{tenant}/bridge-keys/{key_id}"),
    } <= admin
