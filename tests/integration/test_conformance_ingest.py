"""Each conformance policy end to end: the real ingest handler, moto SQS and Secrets Manager."""

from __future__ import annotations

import json
from typing import Any

import pytest

from segment_bridge.ingest.signatures import sign_timestamped
from segment_bridge.queue_format import read_body
from segment_bridge_tools.lambda_events import LocalLambdaContext, api_gateway_event
from tests.conftest import SIGNING_SECRET, TENANT, emitted_metrics, put_tenant, receive_all, tenant_secret

PURCHASE = {"type": "track", "userId": "u1", "event": "Purchase", "properties": {"orderId": "o-1", "total": "27.50"}}
CUSTOM = {"type": "track", "userId": "u1", "event": "report_exported", "properties": {"reportType": "pdf"}}
CLEAN = {"type": "track", "userId": "u1", "event": "Order Completed", "properties": {"order_id": "o-2", "total": 3}}


def post(*messages: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    import ingest_handler

    body = json.dumps({"batch": list(messages)}).encode()
    headers = {"Content-Type": "application/json", "X-Signature": sign_timestamped(SIGNING_SECRET, body)}
    event = api_gateway_event("POST", f"/v1/webhooks/spec/{TENANT}", body, headers)
    response = ingest_handler.lambda_handler(event, LocalLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def policy(**conformance: Any) -> None:
    put_tenant(TENANT, tenant_secret(conformance=conformance))


def forwarded(queue_url: str) -> list[dict[str, Any]]:
    return [m for raw in receive_all(queue_url) for m in read_body(raw["Body"]).messages]


def metrics(capsys: pytest.CaptureFixture[str]) -> dict[str, float]:
    return emitted_metrics(capsys.readouterr().out)


def test_default_policy_fixes_spec_near_misses_and_records_the_original(aws: dict[str, str]) -> None:
    status, body = post(PURCHASE)
    assert status == 202 and body["accepted"] == 1 and body["rejected"] == []
    assert [(c["index"], c["code"], c["action"]) for c in body["conformance"]] == [
        (0, "spec.event_name", "fixed"),
        (0, "spec.property_name", "fixed"),
        (0, "spec.property_type", "fixed"),
    ]
    assert body["conformance"][0]["fix"].startswith('rename the event to "Order Completed" (if "Purchase" is custom')
    (message,) = forwarded(aws["queue_url"])
    assert message["event"] == "Order Completed"
    assert message["properties"] == {"order_id": "o-1", "total": 27.5}
    assert message["context"]["conformance"] == {
        "original_event": "Purchase",
        "original_keys": {"properties.order_id": "orderId"},
        "original_values": {"properties.total": "27.50"},
    }
    assert message["context"]["integration"] == {"name": "acme-tool", "version": "1.0.0"}


def test_default_policy_counts_fixes_in_metrics(aws: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    post(PURCHASE, CUSTOM, CLEAN)
    counted = metrics(capsys)
    assert (counted["ConformanceFixed"], counted["ConformanceWarned"], counted["ConformanceRejected"]) == (3, 2, 0)
    assert counted["MessagesAccepted"] == 3


def test_default_policy_warns_on_style_and_forwards_unchanged(aws: dict[str, str]) -> None:
    status, body = post(CUSTOM)
    assert status == 202 and body["accepted"] == 1
    assert [(c["code"], c["severity"], c["action"]) for c in body["conformance"]] == [
        ("style.event_name", "warning", "warned"),
        ("style.property_name", "warning", "warned"),
    ]
    (message,) = forwarded(aws["queue_url"])
    assert message["event"] == "report_exported" and message["properties"] == {"reportType": "pdf"}
    assert "conformance" not in message["context"]


def test_warn_policy_forwards_spec_near_misses_unchanged(
    aws: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    policy(spec="warn")
    status, body = post(PURCHASE)
    assert status == 202 and {c["action"] for c in body["conformance"]} == {"warned"}
    (message,) = forwarded(aws["queue_url"])
    assert message["event"] == "Purchase" and message["properties"] == PURCHASE["properties"]
    assert metrics(capsys)["ConformanceWarned"] == 3


def test_reject_policy_refuses_the_event_with_the_reason_and_the_fix(
    aws: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    policy(spec="reject")
    status, body = post(PURCHASE, CLEAN)
    assert status == 202 and body["accepted"] == 1
    (rejected,) = body["rejected"]
    assert rejected["index"] == 0 and rejected["message"].startswith("breaks Segment's Spec: ")
    assert 'rename the event to "Order Completed"' in rejected["message"]
    assert {(c["index"], c["action"]) for c in body["conformance"]} == {(0, "rejected")}
    assert [m["event"] for m in forwarded(aws["queue_url"])] == ["Order Completed"]
    assert metrics(capsys)["ConformanceRejected"] == 3


def test_reject_policy_with_nothing_left_is_422_and_still_explains(
    aws: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    policy(spec="reject")
    status, body = post(PURCHASE)
    assert status == 422
    assert body["rejected"][0]["index"] == 0 and len(body["conformance"]) == 3
    assert forwarded(aws["queue_url"]) == []
    assert metrics(capsys)["ConformanceRejected"] == 3


def test_fix_policy_refuses_what_it_cannot_repair(aws: dict[str, str]) -> None:
    status, body = post({**CLEAN, "properties": {"total": "27,50 EUR"}})
    assert status == 422
    assert "properties.total is a string; the Spec type is a number" in body["rejected"][0]["message"]


def test_per_source_override_applies_to_that_source_only(aws: dict[str, str]) -> None:
    policy(style="warn", sources={"spec": {"style": "fix"}})
    status, body = post(CUSTOM)
    assert status == 202 and {c["action"] for c in body["conformance"]} == {"fixed"}
    (message,) = forwarded(aws["queue_url"])
    assert message["event"] == "Report Exported" and message["properties"] == {"report_type": "pdf"}
    assert message["context"]["conformance"]["original_event"] == "report_exported"


def test_a_write_key_in_the_body_is_reported_and_never_forwarded(aws: dict[str, str]) -> None:
    status, body = post({**CLEAN, "writeKey": "wk_leaked_in_body"})
    assert status == 202 and [(c["code"], c["action"]) for c in body["conformance"]] == [("partner.write_key", "fixed")]
    (message,) = forwarded(aws["queue_url"])
    assert "writeKey" not in message and "wk_leaked_in_body" not in json.dumps(message)


def test_conforming_events_add_nothing_to_the_response(aws: dict[str, str]) -> None:
    status, body = post(CLEAN)
    assert status == 202 and "conformance" not in body


ITEM_ADDED = {"type": "track", "userId": "u1", "event": "Item Added", "properties": {"id": "i-1", "qty": 2}}


def test_without_an_allowlist_a_near_miss_is_renamed_with_its_fields(aws: dict[str, str]) -> None:
    status, body = post(ITEM_ADDED)
    assert (
        status == 202 and [c["code"] for c in body["conformance"]] == ["spec.event_name"] + ["spec.property_name"] * 2
    )
    (fixed,) = forwarded(aws["queue_url"])
    assert fixed["event"] == "Product Added" and fixed["properties"] == {"product_id": "i-1", "quantity": 2}


def test_an_allowlisted_name_goes_through_as_the_custom_event_it_is(aws: dict[str, str]) -> None:
    policy(allow={"events": ["Item Added"]})
    status, body = post(ITEM_ADDED)
    assert status == 202 and body["accepted"] == 1 and "conformance" not in body
    (kept,) = forwarded(aws["queue_url"])
    assert kept["event"] == "Item Added" and kept["properties"] == ITEM_ADDED["properties"]


ORDER = {"type": "track", "userId": "u1", "event": "Order Completed", "properties": {"transaction_id": "t-1"}}


def test_another_sources_allowlist_does_not_apply(aws: dict[str, str]) -> None:
    policy(allow={"events": ["Item Added"]}, sources={"stripe": {"allow": {"properties": ["transaction_id"]}}})
    status, body = post(ORDER, ITEM_ADDED)
    assert status == 202 and [(c["index"], c["code"]) for c in body["conformance"]] == [(0, "spec.property_name")]


def test_a_source_allowlist_adds_to_the_tenants(aws: dict[str, str]) -> None:
    policy(allow={"events": ["Item Added"]}, sources={"spec": {"allow": {"properties": ["transaction_id"]}}})
    status, body = post(ORDER, ITEM_ADDED)
    assert status == 202 and body["accepted"] == 2 and "conformance" not in body
    assert [m["properties"] for m in forwarded(aws["queue_url"])] == [ORDER["properties"], ITEM_ADDED["properties"]]


def test_a_malformed_allowlist_makes_the_tenant_document_invalid(aws: dict[str, str]) -> None:
    policy(allow={"events": [""]})
    status, body = post(ITEM_ADDED)
    assert status == 503 and "message" in body  # the existing answer to an invalid tenant document
