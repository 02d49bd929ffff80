"""End to end over HTTP: webhook -> API stand-in -> ingest -> SQS (moto server) -> poller -> forward -> sink."""

from __future__ import annotations

import json
import time

import pytest
import requests

from segment_bridge.ingest.signatures import sign_timestamped
from segment_bridge_tools.local_stack import LocalStack

pytestmark = pytest.mark.e2e


def signed_post(stack: LocalStack, body: dict, source: str = "spec") -> requests.Response:
    raw = json.dumps(body).encode()
    return requests.post(
        stack.webhook_url(source),
        data=raw,
        timeout=10,
        headers={"Content-Type": "application/json", "X-Signature": sign_timestamped(stack.config.signing_secret, raw)},
    )


def wait_for(stack: LocalStack, message_ids: set[str], timeout: float = 20) -> dict[str, dict]:
    assert stack.sink is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = {m["messageId"]: m for m in stack.sink.messages() if m["messageId"] in message_ids}
        if len(seen) == len(message_ids):
            return seen
        time.sleep(0.1)
    raise AssertionError(f"only {len(seen)} of {len(message_ids)} messages reached the sink")


def test_a_webhook_arrives_at_the_sink_as_a_valid_batch(stack: LocalStack) -> None:
    events = [
        {
            "type": "track",
            "userId": f"user-{i}",
            "event": "Order Completed",
            "timestamp": "2026-11-20T09:31:12Z",
            "properties": {"order_id": f"o{i}", "total": 10.5},
        }
        for i in range(25)
    ]
    response = signed_post(stack, {"batch": events})
    assert response.status_code == 202, response.text
    ids = set(response.json()["messageIds"])
    seen = wait_for(stack, ids)
    message = next(iter(seen.values()))
    assert message["context"]["integration"]["name"] == "segment-bridge"
    assert message["timestamp"] == "2026-11-20T09:31:12.000Z"
    requests_with_ours = [r for r in stack.sink.snapshot() if ids & {m["messageId"] for m in r.messages}]  # type: ignore[union-attr]
    assert all(r.status == 200 and r.write_key == stack.config.write_key for r in requests_with_ours)
    assert len(requests_with_ours) == 1  # one webhook -> one Segment request


def test_a_retried_webhook_is_deduplicated_by_message_id(stack: LocalStack) -> None:
    body = {"type": "identify", "userId": "user-dup", "traits": {"plan": "pro"}}
    first, second = signed_post(stack, body), signed_post(stack, body)
    assert first.json()["messageIds"] == second.json()["messageIds"]


def test_errors_over_http_are_json(stack: LocalStack) -> None:
    raw = b'{"type":"track"}'
    unsigned = requests.post(
        stack.webhook_url("spec"), data=raw, headers={"Content-Type": "application/json"}, timeout=10
    )
    assert unsigned.status_code == 401 and unsigned.headers["Content-Type"] == "application/json"
    assert unsigned.json()["message"]
    unknown = requests.post(
        stack.webhook_url("nope"), data=raw, headers={"Content-Type": "application/json"}, timeout=10
    )
    assert unknown.status_code == 404 and unknown.json()["message"]


def test_the_make_run_demo_sends_samples_through(stack: LocalStack) -> None:
    from segment_bridge_tools import demo

    samples = demo.sample_bodies()
    assert any(source == "spec" for source, _, _ in samples)
    source, body, headers = next(s for s in samples if s[0] == "spec")
    signed = demo.signed_request(stack, source, body, headers)
    assert signed is not None
    response = requests.post(stack.webhook_url(source), data=signed[1], headers=signed[0], timeout=10)
    assert response.status_code == 202
    wait_for(stack, set(response.json()["messageIds"]))
    assert stack.wait_until_drained(timeout=10)
