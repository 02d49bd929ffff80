"""The forward Lambda through its real handler: moto for SQS/Secrets Manager, a real HTTP Segment sink."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from segment_bridge.queue_format import read_body
from segment_bridge_tools.lambda_events import LocalLambdaContext, sqs_event
from segment_bridge_tools.sink import SegmentSink
from tests.conftest import TENANT, WRITE_KEY, put_tenant, queued_body, receive_all, reset_caches, tenant_secret


@pytest.fixture
def sink(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[SegmentSink]:
    us, eu = SegmentSink().start(), SegmentSink().start()
    monkeypatch.setenv("SEGMENT_URL_US", us.batch_url)
    monkeypatch.setenv("SEGMENT_URL_EU", eu.batch_url)
    monkeypatch.setenv("MAX_RECEIVE_COUNT", "3")
    monkeypatch.setenv("SEGMENT_TIMEOUT_SECONDS", "2")
    reset_caches()
    us.eu = eu  # type: ignore[attr-defined]
    yield us
    us.stop()
    eu.stop()


def record(record_id: str, tenant: str, count: int = 2, receive_count: int = 1, start: int = 0) -> dict[str, Any]:
    messages = [
        {
            "type": "track",
            "userId": f"u{i}",
            "event": "Order Completed",
            "messageId": f"{tenant}-{record_id}-{i}",
            "properties": {"total": i},
            "context": {"integration": {"name": "acme-tool", "version": "1.0.0"}},
        }
        for i in range(start, start + count)
    ]
    body = queued_body(tenant, messages)
    return {
        "MessageId": record_id,
        "ReceiptHandle": record_id,
        "Body": body,
        "Attributes": {"ApproximateReceiveCount": str(receive_count)},
    }


def invoke(*records: dict[str, Any]) -> dict[str, Any]:
    import forward_handler

    return forward_handler.lambda_handler(sqs_event(list(records)), LocalLambdaContext(timeout_seconds=20))


def failures(response: dict[str, Any]) -> set[str]:
    return {f["itemIdentifier"] for f in response["batchItemFailures"]}


def test_records_are_packed_into_one_request_per_tenant(sink: SegmentSink) -> None:
    response = invoke(record("r1", TENANT), record("r2", TENANT, start=2))
    assert failures(response) == set()
    [request] = sink.snapshot()
    assert request.status == 200 and request.message_count == 4
    assert request.write_key == WRITE_KEY
    assert request.sent_at and request.sent_at.endswith("Z")
    assert [m["messageId"] for m in request.messages] == [f"acme-r{r}-{i}" for r, i in ((1, 0), (1, 1), (2, 2), (2, 3))]


def test_each_tenant_goes_to_its_region_with_its_own_key(sink: SegmentSink) -> None:
    put_tenant("euco", tenant_secret(write_key="eu-write-key-123456", region="eu"))
    assert failures(invoke(record("r1", TENANT), record("r2", "euco"))) == set()
    assert [r.write_key for r in sink.snapshot()] == [WRITE_KEY]
    assert [r.write_key for r in sink.eu.snapshot()] == ["eu-write-key-123456"]  # type: ignore[attr-defined]


def test_requests_are_gzipped_with_basic_auth(sink: SegmentSink, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, str]] = []
    original = sink.judge

    def spy(path: str, headers: dict[str, str], raw: bytes):  # type: ignore[no-untyped-def]
        seen.append(headers)
        return original(path, headers, raw)

    monkeypatch.setattr(sink, "judge", spy)
    invoke(record("r1", TENANT))
    headers = {k.lower(): v for k, v in seen[0].items()}
    assert headers["content-encoding"] == "gzip"
    assert headers["authorization"] == "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()


def test_only_the_failed_tenants_records_are_reported(sink: SegmentSink) -> None:
    put_tenant("broken", {"write_key": "k", "region": "nowhere"})  # invalid secret
    response = invoke(record("ok-1", TENANT), record("bad-1", "broken"), record("ok-2", TENANT, start=5))
    assert failures(response) == {"bad-1"}
    assert sum(r.message_count for r in sink.snapshot()) == 4


def test_a_batch_with_nothing_delivered_fails_the_invocation(sink: SegmentSink) -> None:
    """Every record failed and none could be given its backoff (these receipt handles are not SQS's):
    the invocation raises, so SQS retries the batch and the event source mapping backs off (what
    Powertools' BatchProcessor does), with the reasons and no secret. With real receipt handles the
    records are postponed instead (test_forward_backoff.py)."""
    import forward_handler

    put_tenant("broken", {"write_key": "k-secret-broken", "region": "nowhere"})
    with pytest.raises(forward_handler.BatchNotDelivered, match="all 2 records failed") as raised:
        invoke(record("bad-1", "broken"), record("bad-2", "ghost"))
    assert "ghost" in str(raised.value) and "k-secret-broken" not in str(raised.value)
    assert sink.snapshot() == []


def test_a_version_1_record_from_an_earlier_deployment_is_delivered(sink: SegmentSink) -> None:
    message = {
        "type": "track",
        "userId": "u1",
        "event": "Order Completed",
        "messageId": "old-1",
        "properties": {"total": 1},
        "context": {"integration": {"name": "acme-tool", "version": "1.0.0"}},
    }
    old = {
        "MessageId": "v1",
        "ReceiptHandle": "v1",
        "Attributes": {"ApproximateReceiveCount": "1"},
        "Body": json.dumps({"v": 1, "tenant": TENANT, "source": "spec", "messages": [message]}),
    }
    assert failures(invoke(old, record("r1", TENANT))) == set()
    [request] = sink.snapshot()
    assert request.messages[0] == message and request.message_count == 3


def test_unknown_tenant_fails_then_dead_letters_on_the_last_receive(sink: SegmentSink, aws: dict[str, str]) -> None:
    assert failures(invoke(record("r1", "ghost"), record("r2", TENANT))) == {"r1"}
    assert receive_all(aws["dlq_url"]) == []
    assert failures(invoke(record("r1", "ghost", receive_count=3))) == set()
    [dead] = receive_all(aws["dlq_url"])
    assert read_body(dead["Body"]).tenant == "ghost"
    assert "ghost" in dead["MessageAttributes"]["reason"]["StringValue"]
    assert dead["MessageAttributes"]["tenant"]["StringValue"] == "ghost"


def test_unreadable_record_goes_straight_to_the_dlq(sink: SegmentSink, aws: dict[str, str]) -> None:
    bad = {"MessageId": "junk", "ReceiptHandle": "junk", "Body": "{not json"}
    assert failures(invoke(bad, record("r1", TENANT))) == set()
    [dead] = receive_all(aws["dlq_url"])
    assert dead["Body"] == "{not json"
    assert "unreadable" in dead["MessageAttributes"]["reason"]["StringValue"]


def test_secrets_never_reach_the_dlq(sink: SegmentSink, aws: dict[str, str]) -> None:
    invoke(record("r1", "ghost", receive_count=3))
    for message in receive_all(aws["dlq_url"]):
        assert WRITE_KEY not in json.dumps(message)
