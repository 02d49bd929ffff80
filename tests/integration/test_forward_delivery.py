"""The forward handler under faults: retries, 400 isolation into the DLQ, the deadline, and its metrics."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from segment_bridge.queue_format import read_body
from segment_bridge_tools.faults import REJECT_MARKER, FaultPlan
from segment_bridge_tools.lambda_events import LocalLambdaContext, sqs_event
from segment_bridge_tools.sink import SegmentSink
from tests.conftest import TENANT, emitted_metrics, queued_body, receive_all, reset_caches


@pytest.fixture
def plan() -> FaultPlan:
    return FaultPlan()


@pytest.fixture
def sink(aws: dict[str, str], plan: FaultPlan, monkeypatch: pytest.MonkeyPatch) -> Iterator[SegmentSink]:
    running = SegmentSink(responder=plan).start()
    monkeypatch.setenv("SEGMENT_URL_US", running.batch_url)
    monkeypatch.setenv("SEGMENT_TIMEOUT_SECONDS", "2")
    reset_caches()
    yield running
    running.stop()


def record(record_id: str, count: int = 6, bad: tuple[int, ...] = ()) -> dict[str, Any]:
    messages = [
        {
            "type": "track",
            "userId": "u",
            "event": "E",
            "messageId": f"{record_id}-{i}",
            "properties": {REJECT_MARKER: True} if i in bad else {},
        }
        for i in range(count)
    ]
    return {
        "MessageId": record_id,
        "ReceiptHandle": record_id,
        "Attributes": {"ApproximateReceiveCount": "1"},
        "Body": queued_body(TENANT, messages),
    }


def invoke(*records: dict[str, Any], timeout: float = 20) -> dict[str, Any]:
    import forward_handler

    return forward_handler.lambda_handler(sqs_event(list(records)), LocalLambdaContext(timeout_seconds=timeout))


def test_a_bad_message_is_isolated_into_the_dlq_and_the_rest_delivered(
    sink: SegmentSink, aws: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    response = invoke(record("r1", bad=(4,)), record("r2"))
    assert response["batchItemFailures"] == []
    delivered = {m["messageId"] for m in sink.messages()}
    assert delivered == {f"r1-{i}" for i in range(6) if i != 4} | {f"r2-{i}" for i in range(6)}
    [dead] = receive_all(aws["dlq_url"])
    attributes = {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}
    assert [m["messageId"] for m in read_body(dead["Body"]).messages] == ["r1-4"]
    assert attributes["status"] == "400" and attributes["tenant"] == TENANT and "400" in attributes["reason"]
    metrics = emitted_metrics(capsys.readouterr().out)
    assert metrics["MessagesDequeued"] == 12 and metrics["MessagesForwarded"] == 11
    assert metrics["MessagesDeadLettered"] == 1 and metrics["SegmentStatus400"] >= 1
    assert metrics["SegmentIsolationRequests"] >= 2


def test_transient_faults_are_retried_within_the_invocation(
    sink: SegmentSink, plan: FaultPlan, capsys: pytest.CaptureFixture[str]
) -> None:
    answers = iter([(503, {}, {"message": "busy"}), (429, {"Retry-After": "0.2"}, {"message": "slow down"})])
    plan_call = plan.__call__

    def first_two_fail(request):  # type: ignore[no-untyped-def]
        return next(answers, None) or plan_call(request)

    sink.responder = first_two_fail
    assert invoke(record("r1"))["batchItemFailures"] == []
    assert [r.status for r in sink.snapshot()] == [503, 429, 200]
    metrics = emitted_metrics(capsys.readouterr().out)
    assert metrics["SegmentRetries"] == 2 and metrics["SegmentStatus503"] == 1 and metrics["SegmentStatus429"] == 1


def test_the_handler_stops_sending_before_the_lambda_timeout(sink: SegmentSink, plan: FaultPlan) -> None:
    plan.stall, plan.stall_seconds = 1.0, 5.0  # Segment never answers in time
    started = time.monotonic()
    from forward_handler import BatchNotDelivered

    with pytest.raises(BatchNotDelivered, match="all 1 records failed"):  # the whole batch is retried
        invoke(record("r1"), timeout=6.5)  # 3.5 s to send, then 3 s kept to report
    assert time.monotonic() - started < 5.0  # returned inside the margin, well before the 6.5 s timeout
    assert len(sink.snapshot()) in (1, 2)  # 2 s, then (if the jittered wait fits) what was left; never a third
