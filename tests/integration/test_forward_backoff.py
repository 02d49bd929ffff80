"""Backoff across receives, through the real handler: records received from (moto's) SQS, Segment
down, the forwarder sets each failed record's visibility before it answers, and says so in metrics."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from segment_bridge.forward.breaker import FAILURES_TO_OPEN
from segment_bridge_tools.lambda_events import LocalLambdaContext, sqs_event
from segment_bridge_tools.sink import Answer, ReceivedRequest, SegmentSink
from tests.conftest import TENANT, emitted_metrics, queued_body, reset_caches


class Switch:
    """Segment's state for the test: down (503) until switched up."""

    def __init__(self) -> None:
        self.down = True

    def __call__(self, request: ReceivedRequest) -> Answer | None:
        return (503, {}, {"code": "unavailable", "message": "down"}) if self.down else None


@pytest.fixture
def segment(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SegmentSink, Switch]]:
    switch = Switch()
    sink = SegmentSink(responder=switch).start()
    monkeypatch.setenv("SEGMENT_URL_US", sink.batch_url)
    monkeypatch.setenv("SEGMENT_URL_EU", sink.batch_url)
    monkeypatch.setenv("SEGMENT_TIMEOUT_SECONDS", "1")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "SegmentBridge")
    monkeypatch.setenv("REDELIVERY_BASE_SECONDS", "3")  # 3 s doubling, on 3 s slots
    reset_caches()
    yield sink, switch
    sink.stop()


def enqueue(queue_url: str, count: int) -> None:
    sqs = boto3.client("sqs")
    for n in range(count):
        messages = [{"type": "track", "userId": "u", "event": "E", "messageId": f"m{n}-{i}"} for i in range(3)]
        sqs.send_message(QueueUrl=queue_url, MessageBody=queued_body(TENANT, messages))


def receive(queue_url: str, visibility: int = 0) -> list[dict[str, Any]]:
    """What is visible now (the conftest queue's own visibility timeout is 0: nothing stays hidden)."""
    sqs = boto3.client("sqs")
    return sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=10,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
        VisibilityTimeout=visibility,
    ).get("Messages", [])


def invoke(messages: list[dict[str, Any]]) -> dict[str, Any]:
    import forward_handler

    return forward_handler.lambda_handler(sqs_event(messages), LocalLambdaContext(timeout_seconds=30))


def test_failed_records_wait_their_backoff_and_the_invocation_does_not_error(
    segment: tuple[SegmentSink, Switch], aws: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    sink, switch = segment
    enqueue(aws["queue_url"], 2)
    messages = receive(aws["queue_url"])
    assert len(messages) == 2
    response = invoke(messages)  # every record failed, yet no BatchNotDelivered: they have their backoff
    assert {f["itemIdentifier"] for f in response["batchItemFailures"]} == {m["MessageId"] for m in messages}
    # The queue's own visibility timeout is 0 s (conftest): without the backoff they would be back at once.
    assert receive(aws["queue_url"]) == []
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=aws["queue_url"], AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "2"
    out = capsys.readouterr().out
    metrics = emitted_metrics(out)
    assert metrics["RecordsPostponed"] == 2 and metrics["RecordsFailed"] == 2
    assert 0 <= metrics["OldestMessageAgeSeconds"] < 60
    regional = [json.loads(line) for line in out.splitlines() if '"SegmentBreakerOpen"' in line]
    assert regional and regional[0]["region"] == "us" and regional[0]["service"] == "segment-bridge"
    assert regional[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["region", "service"]]
    assert regional[0]["SegmentBreakerOpen"] == [0.0]  # 5 attempts, fewer than FAILURES_TO_OPEN
    assert len(sink.snapshot()) == 5
    # Back after its backoff (3 s, up to one slot later), with its receive count; Segment is up again.
    deadline, back = time.monotonic() + 12, []
    while len(back) < 2:
        assert time.monotonic() < deadline, "the records never came back"
        back += receive(aws["queue_url"], visibility=30)  # hidden once received, as the event source does
        time.sleep(0.2)
    assert {m["Attributes"]["ApproximateReceiveCount"] for m in back} == {"2"}
    switch.down = False
    assert invoke(back)["batchItemFailures"] == []
    assert {m["messageId"] for m in sink.messages()} == {f"m{n}-{i}" for n in range(2) for i in range(3)}


def test_the_breaker_opens_and_then_the_records_cost_no_request(
    segment: tuple[SegmentSink, Switch], aws: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    sink, _ = segment
    enqueue(aws["queue_url"], 4)
    messages = receive(aws["queue_url"])
    assert len(messages) == 4
    invoke(messages[:1])
    invoke(messages[1:2])  # 2 x 5 attempts: FAILURES_TO_OPEN transient answers in a row
    assert len(sink.snapshot()) == FAILURES_TO_OPEN
    capsys.readouterr()
    for message in messages[2:]:
        started = time.monotonic()
        invoke([message])
        assert time.monotonic() - started < 1.0  # failed fast: no request, no retry waits
    assert len(sink.snapshot()) == FAILURES_TO_OPEN
    out = capsys.readouterr().out
    assert '"SegmentBreakerOpen":[1.0]' in out
    assert emitted_metrics(out)["SegmentBatchesHeldBack"] >= 1


def test_when_the_backoff_cannot_be_applied_the_invocation_fails_as_before(
    segment: tuple[SegmentSink, Switch], aws: dict[str, str]
) -> None:
    import forward_handler

    stale = {
        "MessageId": "m1",
        "ReceiptHandle": "not-a-receipt-handle",
        "Body": queued_body(TENANT, [{"type": "track", "userId": "u", "event": "E", "messageId": "x"}]),
        "Attributes": {"ApproximateReceiveCount": "1"},
    }
    with pytest.raises(forward_handler.BatchNotDelivered, match="all 1 records failed"):
        invoke([stale])
