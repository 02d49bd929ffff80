"""The loop closed through both real handlers: Segment's identify in, a SendGrid event out with that userId."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from segment_bridge.queue_format import read_body
from segment_bridge_tools.lambda_events import LocalLambdaContext, api_gateway_event
from segment_bridge_tools.signing import demo_source_settings, sign
from tests.conftest import (
    DESTINATION_API_KEY,
    SIGNING_SECRET,
    TENANT,
    load_fixture,
    put_tenant,
    receive_all,
    tenant_secret,
)

SENDGRID_EVENTS = load_fixture("webhooks/sendgrid-all-events.json")  # 11 events for example@test.com
SENDGRID_FORWARDED = 7  # the other 4 have no Spec counterpart and are skipped by default


def configure(policy: str = "reject", destination: bool = True) -> None:
    sources = {"spec": {"signing_secret": SIGNING_SECRET}, "sendgrid": demo_source_settings()["sendgrid"]}
    extra = {"destination": {"api_key": DESTINATION_API_KEY}} if destination else {}
    put_tenant(TENANT, tenant_secret(sources=sources, identity={"missing_user_id": policy}, **extra))


def segment_calls(*messages: dict[str, Any]) -> dict[str, Any]:
    import destination_handler

    headers = {
        "Content-Type": "application/json",
        "Authorization": "Basic " + base64.b64encode(f"{DESTINATION_API_KEY}:".encode()).decode(),
    }
    event = api_gateway_event("POST", f"/v1/segment/{TENANT}", json.dumps({"batch": list(messages)}).encode(), headers)
    response = destination_handler.lambda_handler(event, LocalLambdaContext(timeout_seconds=4))
    assert response["statusCode"] == 200, response["body"]
    return json.loads(response["body"])


def sendgrid_webhook(body: bytes = SENDGRID_EVENTS) -> tuple[int, dict[str, Any]]:
    import ingest_handler

    path = f"/v1/webhooks/sendgrid/{TENANT}"
    headers, signed = sign("sendgrid", body, demo_source_settings()["sendgrid"], f"https://localhost{path}")
    response = ingest_handler.lambda_handler(api_gateway_event("POST", path, signed, headers), LocalLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def forwarded(queue_url: str) -> list[dict[str, Any]]:
    return [m for raw in receive_all(queue_url) for m in read_body(raw["Body"]).messages]


IDENTIFY = {
    "type": "identify",
    "userId": "user-1001",
    "messageId": "seg-1",
    "timestamp": "2026-11-20T09:00:00Z",
    "traits": {"email": "Example@Test.com"},
}
GROUP = {
    "type": "group",
    "userId": "user-1001",
    "groupId": "account-42",
    "messageId": "seg-2",
    "timestamp": "2026-11-20T09:00:01Z",
}


def test_sendgrid_events_come_back_with_the_customers_user_and_group(identity_table: str, aws: dict[str, str]) -> None:
    configure()
    assert segment_calls(IDENTIFY, GROUP)["applied"] == 2
    status, body = sendgrid_webhook()
    assert status == 202, body
    assert body["resolvedUserIds"] == SENDGRID_FORWARDED and "unresolvedUserIds" not in body
    messages = forwarded(aws["queue_url"])
    assert len(messages) == SENDGRID_FORWARDED
    assert {m["userId"] for m in messages} == {"user-1001"}
    assert {m["context"]["groupId"] for m in messages} == {"account-42"}


def test_a_miss_falls_back_to_the_tenants_policy(identity_table: str, aws: dict[str, str]) -> None:
    configure("reject")
    status, body = sendgrid_webhook()
    assert status == 422 and len(body["rejected"]) == SENDGRID_FORWARDED
    assert body["unresolvedUserIds"] == SENDGRID_FORWARDED
    configure("anonymous")
    from tests.conftest import reset_caches

    reset_caches()
    status, body = sendgrid_webhook()
    assert status == 202 and body["unresolvedUserIds"] == SENDGRID_FORWARDED and "resolvedUserIds" not in body
    assert all("userId" not in m and m["anonymousId"] for m in forwarded(aws["queue_url"]))


def test_a_deleted_user_no_longer_resolves(identity_table: str, aws: dict[str, str]) -> None:
    configure("anonymous")
    segment_calls(IDENTIFY)
    segment_calls({"type": "delete", "userId": "user-1001", "messageId": "seg-3", "timestamp": "2026-11-21T00:00:00Z"})
    status, body = sendgrid_webhook()
    assert status == 202 and body.get("resolvedUserIds") is None
    assert not any("userId" in m for m in forwarded(aws["queue_url"]))


def test_a_spec_message_with_only_an_anonymous_id_resolves_through_it(identity_table: str, aws: dict[str, str]) -> None:
    import ingest_handler

    from segment_bridge.ingest.signatures import sign_timestamped

    configure()
    segment_calls({"type": "page", "userId": "user-7", "anonymousId": "anon-7", "messageId": "p-1"})
    raw = json.dumps({"type": "track", "anonymousId": "anon-7", "event": "Report Exported"}).encode()
    headers = {"Content-Type": "application/json", "X-Signature": sign_timestamped(SIGNING_SECRET, raw)}
    response = ingest_handler.lambda_handler(
        api_gateway_event("POST", f"/v1/webhooks/spec/{TENANT}", raw, headers), LocalLambdaContext()
    )
    assert response["statusCode"] == 202 and json.loads(response["body"])["resolvedUserIds"] == 1
    assert forwarded(aws["queue_url"])[0]["userId"] == "user-7"


def test_tenants_without_the_loop_make_no_lookup(
    identity_table: str, aws: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import ingest_handler

    configure("anonymous", destination=False)
    monkeypatch.setattr(
        ingest_handler.get_ingestor().identity.store,
        "lookup",  # type: ignore[union-attr]
        lambda keys: pytest.fail("looked up a tenant without the identity loop"),
    )
    assert sendgrid_webhook()[0] == 202


def test_an_unavailable_identity_table_is_a_503_so_the_tool_retries(
    identity_table: str, aws: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import ingest_handler
    from botocore.exceptions import EndpointConnectionError

    configure("anonymous")
    store = ingest_handler.get_ingestor().identity.store  # type: ignore[union-attr]

    def unreachable(**kwargs: Any) -> Any:
        raise EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")

    monkeypatch.setattr(store.client, "batch_get_item", unreachable)
    status, body = sendgrid_webhook()
    assert status == 503 and "identity table" in body["message"]
    assert forwarded(aws["queue_url"]) == []
