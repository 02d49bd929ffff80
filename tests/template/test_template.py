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
    result = subprocess.run([sys.executable, "-c", "from cfnlint.runner import main; main()", str(TEMPLATE)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def sam_cli() -> str:
    sam = os.environ.get("SAM_CLI") or shutil.which("sam")
    if not sam or not Path(sam).exists():
        pytest.skip("SAM CLI not installed (make test installs it into .venv-sam)")
    return sam


def test_sam_validate_lint_is_clean() -> None:
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1"}
    result = subprocess.run([sam_cli(), "validate", "--lint", "--template", str(TEMPLATE)],
                            capture_output=True, text=True, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


@pytest.mark.slow
def test_sam_build_packages_the_layer_and_functions(tmp_path: Path) -> None:
    python313 = os.environ.get("SAM_PYTHON313")
    if not python313 or not (Path(python313) / "bin" / "python3.13").exists():
        pytest.skip("python3.13 not found (sam build needs the runtime's Python on PATH)")
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "PATH": f"{python313}/bin:{os.environ['PATH']}"}
    result = subprocess.run([sam_cli(), "build", "--template", str(TEMPLATE), "--build-dir", str(tmp_path / "build")],
                            capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    layer = tmp_path / "build" / "SharedLayer" / "python"
    assert (layer / "segment_bridge" / "ingest.py").exists()
    assert (layer / "aws_lambda_powertools").is_dir() and (layer / "pydantic").is_dir()
    assert (tmp_path / "build" / "IngestFunction" / "ingest_handler.py").exists()


def test_no_statement_uses_a_wildcard_resource(template: dict[str, Any]) -> None:
    for role, statement in statements(template):
        assert statement.get("Resource") not in ("*", ["*"]), f"{role}/{statement.get('Sid')} uses Resource *"


def test_roles_are_explicit_so_sam_attaches_no_broad_managed_policies(template: dict[str, Any]) -> None:
    for name, function in resources(template, "AWS::Serverless::Function").items():
        props = function["Properties"]
        assert "Role" in props, f"{name} must use an explicit least-privilege role"
        assert "Policies" not in props
        assert not any(e["Type"] == "SQS" for e in (props.get("Events") or {}).values()), \
            "SAM SQS events attach AWSLambdaSQSQueueExecutionRole (Resource *)"
    for role in resources(template, "AWS::IAM::Role").values():
        assert not role["Properties"].get("ManagedPolicyArns")


def test_secret_access_is_limited_to_the_tenant_prefix(template: dict[str, Any]) -> None:
    secret_statements = [s for _, s in statements(template) if any("secretsmanager" in a for a in _actions(s))]
    assert secret_statements
    for statement in secret_statements:
        assert _actions(statement) == ["secretsmanager:GetSecretValue"]
        assert "${SecretsPrefix}/tenants/*" in str(statement["Resource"])


def test_queue_permissions_name_the_one_queue(template: dict[str, Any]) -> None:
    for role, statement in statements(template):
        if any(a.startswith("sqs:") for a in _actions(statement)):
            assert str(statement["Resource"]) in (str({"Fn::GetAtt": ["EventQueue", "Arn"]}),
                                                  str({"Fn::GetAtt": ["DeadLetterQueue", "Arn"]})), role
    ingest = [s for r, s in statements(template) if r == "IngestRole" and any(a.startswith("sqs:") for a in _actions(s))]
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
    assert all(q["Properties"].get("SqsManagedSseEnabled") or q["Properties"].get("KmsMasterKeyId") for q in queues.values())
    assert queues["EventQueue"]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}


def test_max_receive_count_reaches_both_the_queue_and_the_forwarder(template: dict[str, Any]) -> None:
    queue = template["Resources"]["EventQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"]
    env = template["Resources"]["ForwardFunction"]["Properties"]["Environment"]["Variables"]["MAX_RECEIVE_COUNT"]
    assert queue == env == {"Ref": "MaxReceiveCount"}


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
