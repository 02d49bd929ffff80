"""Segment's Tracking API (`/v1/batch`, `/v1/track`...) through the real ingest handler, SQS and Secrets
Manager on moto: what a Segment library gets back, and what reaches the queue."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import boto3
import pytest

from segment_bridge.queue_format import read_body
from segment_bridge.tenants import new_bridge_key
from segment_bridge_tools.lambda_events import LocalLambdaContext, api_gateway_event
from tests.conftest import TENANT, WRITE_KEY, emitted_metrics, put_tenant, receive_all, reset_caches, tenant_secret

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def key(aws: dict[str, str]) -> str:
    """The demo tenant with one bridge key (as `tenants key add` makes it); the key's text."""
    text, stored = new_bridge_key(TENANT, "2026-12-02T00:00:00Z")
    put_tenant(TENANT, tenant_secret(bridge_keys=[stored.model_dump()]))
    reset_caches()
    return text


def basic(username: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:".encode()).decode()}


def call(
    route: str, body: Any, *, headers: dict[str, str] | None = None, raw: bytes | None = None
) -> tuple[int, dict[str, Any], dict[str, str]]:
    import ingest_handler

    data = raw if raw is not None else json.dumps(body).encode()
    event = api_gateway_event("POST", f"/v1/{route}", data, {**JSON, **(headers or {})})
    response = ingest_handler.lambda_handler(event, LocalLambdaContext())
    flat = {name: values[-1] for name, values in (response.get("multiValueHeaders") or {}).items()}
    return response["statusCode"], json.loads(response["body"]), flat


def queued(queue_url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for m in receive_all(queue_url):
        batch = read_body(m["Body"])
        assert (batch.tenant, batch.source) == (TENANT, "tracking")
        messages.extend(batch.messages)
    return messages


def track(i: int, **extra: Any) -> dict[str, Any]:
    return {"type": "track", "userId": f"u{i}", "event": "Order Completed", "messageId": f"lib-{i}", **extra}


def test_a_library_batch_with_the_key_in_the_body_is_queued_as_sent(key: str, aws: dict[str, str]) -> None:
    body = {
        "batch": [track(i, properties={"total": i}) for i in range(3)],
        "context": {"library": {"name": "analytics-python", "version": "2.4.0"}},
        "writeKey": key,
        "sentAt": "2026-12-02T00:00:00.000Z",
    }
    status, answer, headers = call("batch", body)
    assert (status, answer) == (200, {"success": True})
    assert headers["X-Bridge-Accepted"] == "3" and headers["X-Bridge-Refused"] == "0"
    messages = queued(aws["queue_url"])
    assert [m["messageId"] for m in messages] == ["lib-0", "lib-1", "lib-2"]  # the library's ids kept
    for m in messages:
        assert m["context"]["library"]["name"] == "analytics-python"
        assert m["context"]["integration"] == {"name": "acme-tool", "version": "1.0.0"}
        assert "writeKey" not in m and "sentAt" not in m and "timestamp" in m
    raw = json.dumps(messages)
    assert key not in raw and key.partition(".")[2] not in raw and WRITE_KEY not in raw


@pytest.mark.parametrize(
    ("route", "body", "kind"),
    [
        ("track", {"userId": "u", "event": "Order Completed"}, "track"),
        ("identify", {"userId": "u", "traits": {"email": "a@example.com"}}, "identify"),
        ("page", {"userId": "u", "name": "Home"}, "page"),
        ("screen", {"userId": "u", "name": "Home"}, "screen"),
        ("group", {"userId": "u", "groupId": "g1"}, "group"),
        ("alias", {"userId": "u", "previousId": "anon-1"}, "alias"),
    ],
)
def test_each_single_call_with_basic_auth_and_gzip(
    key: str, aws: dict[str, str], route: str, body: dict[str, Any], kind: str
) -> None:
    raw = gzip.compress(json.dumps(body).encode())
    status, answer, _ = call(route, None, raw=raw, headers={**basic(key), "Content-Encoding": "gzip"})
    assert (status, answer) == (200, {"success": True})
    (message,) = queued(aws["queue_url"])
    assert message["type"] == kind and message["userId"] == "u"


def test_import_is_batch(key: str, aws: dict[str, str]) -> None:
    assert call("import", {"batch": [track(1)]}, headers=basic(key))[0] == 200
    assert [m["messageId"] for m in queued(aws["queue_url"])] == ["lib-1"]


def test_unknown_tenant_wrong_key_and_malformed_key_are_one_401(key: str, aws: dict[str, str]) -> None:
    tenant, _, secret = key.partition(".")
    wrong = f"{tenant}.{secret[:-2]}{'AA' if not secret.endswith('AA') else 'BB'}"
    answers = [
        call("track", {"userId": "u", "event": "E"}, headers=basic(credential))[:2]
        for credential in (wrong, f"nobody.{secret}", "not-a-key", WRITE_KEY)
    ]
    answers.append(call("track", {"userId": "u", "event": "E"})[:2])  # no key at all
    answers.append(call("batch", {"batch": [], "writeKey": wrong})[:2])
    assert len({json.dumps(a) for a in answers}) == 1
    status, body = answers[0]
    assert status == 401 and body["code"] == "unauthorized"  # Segment's shape: the libraries print `code: message`
    assert "bridge key" in body["message"] and secret not in body["message"]
    assert queued(aws["queue_url"]) == []


def test_a_key_names_its_tenant_a_secret_of_another_tenant_is_refused(key: str, aws: dict[str, str]) -> None:
    other_key, other = new_bridge_key("beta", "t")
    put_tenant("beta", tenant_secret(bridge_keys=[other.model_dump()]))
    reset_caches()
    assert call("track", {"userId": "u", "event": "E"}, headers=basic(other_key))[0] == 200
    borrowed = f"{TENANT}.{other_key.partition('.')[2]}"  # beta's secret under acme's name
    assert call("track", {"userId": "u", "event": "E"}, headers=basic(borrowed))[0] == 401
    assert {read_body(m["Body"]).tenant for m in receive_all(aws["queue_url"])} == {"beta"}


def test_a_tenant_without_bridge_keys_is_refused(aws: dict[str, str]) -> None:
    text, _ = new_bridge_key(TENANT, "t")  # never stored
    assert call("track", {"userId": "u", "event": "E"}, headers=basic(text))[0] == 401


def test_refused_messages_are_counted_in_headers_metrics_and_logs(
    key: str, aws: dict[str, str], capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    body = {"batch": [track(0), {"type": "track", "event": "No User"}, track(2)]}
    status, answer, headers = call("batch", body, headers=basic(key))
    assert status == 200 and answer["success"] is True
    assert [r["index"] for r in answer["rejected"]] == [1]
    assert (headers["X-Bridge-Accepted"], headers["X-Bridge-Refused"]) == ("2", "1")
    out = capsys.readouterr().out
    metrics = emitted_metrics(out)
    assert metrics["MessagesAccepted"] == 2 and metrics["MessagesRejected"] == 1
    (record,) = [r for r in caplog.records if r.getMessage() == "tracking api messages refused"]
    assert "userId is required" in json.dumps(record.__dict__["refused"])


def test_nothing_accepted_is_a_400_the_library_reports(key: str, aws: dict[str, str]) -> None:
    status, answer, headers = call("track", {"event": "No User"}, headers=basic(key))
    assert status == 400 and answer["success"] is False
    assert answer["message"].startswith("no message was accepted: [0] userId is required")
    assert headers["X-Bridge-Refused"] == "1"
    assert queued(aws["queue_url"]) == []


@pytest.mark.parametrize(
    ("headers", "raw", "status", "words"),
    [
        ({"Content-Type": "text/plain"}, b"{}", 415, "application/json"),
        ({"Content-Encoding": "deflate"}, b"{}", 415, "gzip or absent"),
        ({"Content-Encoding": "gzip"}, b"not gzip", 400, "not valid gzip"),
        ({}, b"{nope", 400, "not valid JSON"),
        ({}, b'{"batch": 1}', 400, '"batch" must be an array'),
        ({}, b" " * (512 * 1024 + 1), 400, "500 KB"),
    ],
)
def test_bad_bodies_get_a_clear_message(key: str, headers: dict[str, str], raw: bytes, status: int, words: str) -> None:
    got, body, _ = call("batch", None, raw=raw, headers={**basic(key), **headers})
    assert got == status and words in body["message"]


def test_a_key_in_the_body_is_only_read_once_the_body_is_good(aws: dict[str, str]) -> None:
    # Without Basic auth the key is in the body, so a body that cannot be read is a 400 before any key.
    assert call("batch", None, raw=b"{nope")[0] == 400


def test_queue_failure_is_503_so_the_library_retries(key: str, aws: dict[str, str]) -> None:
    boto3.client("sqs").delete_queue(QueueUrl=aws["queue_url"])
    status, body, _ = call("track", {"userId": "u", "event": "Order Completed"}, headers=basic(key))
    assert status == 503 and "retry" in body["message"]


def test_conformance_runs_as_for_every_source(key: str, aws: dict[str, str]) -> None:
    status, _, _ = call("track", {"userId": "u", "event": "order completed"}, headers=basic(key))
    assert status == 200
    (message,) = queued(aws["queue_url"])
    assert message["event"] == "Order Completed"  # the Spec name, fixed under the default policy
