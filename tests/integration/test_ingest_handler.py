"""The ingest Lambda through its real handler, with SQS and Secrets Manager on moto."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from segment_bridge.ingest.signatures import sign_timestamped
from segment_bridge.queue_format import QueuedBatch, read_body
from segment_bridge_tools.lambda_events import LocalLambdaContext, api_gateway_event
from tests.conftest import SIGNING_SECRET, TENANT, WRITE_KEY, put_tenant, receive_all, tenant_secret

JSON = {"Content-Type": "application/json"}


def post(
    body: bytes | str,
    *,
    source: str = "spec",
    tenant: str = TENANT,
    headers: dict[str, str] | None = None,
    sign: bool = True,
    secret: str = SIGNING_SECRET,
    timestamp: int | None = None,
    method: str = "POST",
) -> tuple[int, dict[str, Any]]:
    import ingest_handler

    raw = body.encode() if isinstance(body, str) else body
    all_headers = dict(JSON if headers is None else headers)
    if sign:
        all_headers["X-Signature"] = sign_timestamped(secret, raw, timestamp)
    event = api_gateway_event(method, f"/v1/webhooks/{source}/{tenant}", raw, all_headers)
    response = ingest_handler.lambda_handler(event, LocalLambdaContext())
    return response["statusCode"], (json.loads(response["body"]) if response.get("body") else {})


def track(i: int = 0, **extra: Any) -> dict[str, Any]:
    return {"type": "track", "userId": f"user-{i}", "event": "Order Completed", "properties": {"total": i}, **extra}


def queued(queue_url: str) -> list[QueuedBatch]:
    return [read_body(m["Body"]) for m in receive_all(queue_url)]


def test_single_message_is_accepted_and_enqueued_without_the_write_key(aws: dict[str, str]) -> None:
    status, body = post(json.dumps(track(1, messageId="m-1")))
    assert status == 202
    assert body == {"accepted": 1, "messageIds": ["m-1"], "rejected": []}
    messages = receive_all(aws["queue_url"])
    assert len(messages) == 1
    assert WRITE_KEY not in messages[0]["Body"] and SIGNING_SECRET not in messages[0]["Body"]
    batch = read_body(messages[0]["Body"])
    assert batch.tenant == TENANT and batch.source == "spec"
    assert batch.messages[0]["context"]["integration"] == {"name": "acme-tool", "version": "1.0.0"}
    assert messages[0]["MessageAttributes"]["tenant"]["StringValue"] == TENANT


def test_partial_acceptance_reports_each_rejected_index(aws: dict[str, str]) -> None:
    batch = [track(0), {"type": "track", "userId": "u"}, track(2), {"type": "identify"}, "not an object"]
    status, body = post(json.dumps({"batch": batch}))
    assert status == 202
    assert body["accepted"] == 2 and len(body["messageIds"]) == 2
    assert [r["index"] for r in body["rejected"]] == [1, 3, 4]
    assert "event" in body["rejected"][0]["message"]
    assert "userId is required" in body["rejected"][1]["message"]
    assert sum(len(b.messages) for b in queued(aws["queue_url"])) == 2


def test_nothing_accepted_is_422_with_reasons_and_nothing_enqueued(aws: dict[str, str]) -> None:
    status, body = post(json.dumps({"batch": [{"type": "track", "userId": "u"}]}))
    assert status == 422
    assert body["message"] and body["rejected"][0]["index"] == 0
    assert receive_all(aws["queue_url"]) == []


def test_retried_webhook_reproduces_the_same_message_ids(aws: dict[str, str]) -> None:
    payload = json.dumps({"batch": [track(i) for i in range(5)]})
    _, first = post(payload)
    _, second = post(payload)
    assert first["messageIds"] == second["messageIds"]
    assert len(set(first["messageIds"])) == 5


def test_a_thousand_event_webhook_costs_one_sqs_call(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    import ingest_handler

    calls: list[int] = []
    ingestor = ingest_handler.get_ingestor()
    original = ingestor.queue.send_bodies
    monkeypatch.setattr(ingestor.queue, "send_bodies", lambda b, a: calls.append(original(b, a)) or calls[-1])
    events = [track(i, properties={"total": i, "note": "x" * 400}) for i in range(1000)]
    status, body = post(json.dumps({"batch": events}))
    assert status == 202 and body["accepted"] == 1000
    assert calls == [1]
    assert sum(len(b.messages) for b in queued(aws["queue_url"])) == 1000


@pytest.mark.parametrize(
    ("kwargs", "status", "fragment"),
    [
        ({"source": "nope"}, 404, "unknown source"),
        ({"tenant": "bad.tenant"}, 400, "tenant id"),
        ({"headers": {"Content-Type": "text/plain"}}, 415, "application/json"),
        ({"headers": {}}, 415, "Content-Type"),
        ({"tenant": "ghost"}, 401, "signature"),
        ({"secret": "wrong"}, 401, "signature"),
        ({"sign": False}, 401, "signature"),
        ({"timestamp": int(time.time()) - 301}, 401, "window"),
    ],
)
def test_request_errors_have_status_and_json_message(
    aws: dict[str, str], kwargs: dict, status: int, fragment: str
) -> None:
    got, body = post(json.dumps(track()), **kwargs)
    assert got == status
    assert fragment in body["message"]
    assert receive_all(aws["queue_url"]) == []


def test_unknown_tenant_and_bad_signature_are_indistinguishable(aws: dict[str, str]) -> None:
    assert post(json.dumps(track()), tenant="ghost") == post(json.dumps(track()), secret="wrong")


@pytest.mark.parametrize("body", [b"{not json", b"[1,2]", b'"text"', b'{"batch": {}}', b"\xff\xfe"])
def test_malformed_json_is_400(aws: dict[str, str], body: bytes) -> None:
    status, payload = post(body)
    assert status == 400 and payload["message"]


def test_oversized_body_is_413(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_BODY_BYTES", "1024")
    from tests.conftest import reset_caches

    reset_caches()
    status, body = post(json.dumps({"batch": [track(i) for i in range(50)]}))
    assert status == 413 and "1024" in body["message"]


def test_unknown_route_is_json_404(aws: dict[str, str]) -> None:
    import ingest_handler

    response = ingest_handler.lambda_handler(
        api_gateway_event("GET", "/v1/nothing", b"", {}, path_parameters={}), LocalLambdaContext()
    )
    assert response["statusCode"] == 404 and json.loads(response["body"])["message"]


def test_queue_failure_is_503_so_the_tool_retries(aws: dict[str, str]) -> None:
    boto3.client("sqs").delete_queue(QueueUrl=aws["queue_url"])
    status, body = post(json.dumps(track()))
    assert status == 503 and "retry" in body["message"]


def test_tenant_with_invalid_secret_is_503_not_401(aws: dict[str, str]) -> None:
    put_tenant(TENANT, {"region": "mars"})
    status, body = post(json.dumps(track()))
    assert status == 503 and "misconfigured" in body["message"]


def test_tenant_not_set_up_for_the_source_is_401(aws: dict[str, str]) -> None:
    put_tenant(TENANT, tenant_secret(sources={}))
    assert post(json.dumps(track()))[0] == 401


def test_anonymous_policy_admits_anonymous_ids(aws: dict[str, str]) -> None:
    put_tenant(TENANT, tenant_secret(identity={"missing_user_id": "anonymous"}))
    status, body = post(json.dumps({"type": "page", "anonymousId": "anon-1", "name": "Home"}))
    assert status == 202 and body["accepted"] == 1
