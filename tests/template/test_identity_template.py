"""The identity loop's part of the template: the table, the destination function and their least-privilege IAM."""

from __future__ import annotations

from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from segment_bridge.limits import SEGMENT_DESTINATION_TIMEOUT_SECONDS
from tests.template.test_template import TEMPLATE, _actions, statements

TABLE_ARN = {"Fn::GetAtt": ["IdentityTable", "Arn"]}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return cfn_yaml.load(str(TEMPLATE))


def dynamodb_statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return [s for r, s in statements(template) if r == role and any(a.startswith("dynamodb:") for a in _actions(s))]


def test_the_table_is_encrypted_expiring_and_backed_up_briefly(template: dict[str, Any]) -> None:
    props = template["Resources"]["IdentityTable"]["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["PointInTimeRecoverySpecification"]["RecoveryPeriodInDays"] == {"Ref": "IdentityBackupDays"}


def test_ingest_may_only_batch_read_the_table(template: dict[str, Any]) -> None:
    identity, replay = dynamodb_statements(template, "IngestRole")
    assert _actions(identity) == ["dynamodb:BatchGetItem"] and identity["Resource"] == TABLE_ARN
    # ...and claim single-use signature tokens in its own table, nothing more.
    assert _actions(replay) == ["dynamodb:PutItem"] and replay["Resource"] == {"Fn::GetAtt": ["ReplayTable", "Arn"]}


def test_the_destination_may_write_the_table_and_nothing_else_of_ours(template: dict[str, Any]) -> None:
    [statement] = dynamodb_statements(template, "DestinationRole")
    assert statement["Resource"] == TABLE_ARN
    assert set(_actions(statement)) == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
    }
    assert not [
        s for r, s in statements(template) if r == "DestinationRole" and any(a.startswith("sqs:") for a in _actions(s))
    ]


def test_the_destination_answers_inside_segments_timeout_on_its_route(template: dict[str, Any]) -> None:
    function = template["Resources"]["DestinationFunction"]["Properties"]
    assert function["Timeout"] < SEGMENT_DESTINATION_TIMEOUT_SECONDS
    assert function["Role"] == {"Fn::GetAtt": ["DestinationRole", "Arn"]}
    route = function["Events"]["SegmentCall"]["Properties"]
    assert (route["Path"], route["Method"], route["RestApiId"]) == (
        "/v1/segment/{tenant}",
        "POST",
        {"Ref": "WebhookApi"},
    )
    assert function["Environment"]["Variables"]["IDENTITY_TABLE_NAME"] == {"Ref": "IdentityTable"}
    assert "SegmentDestinationUrl" in template["Outputs"]
