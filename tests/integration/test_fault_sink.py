"""The fault-injecting sink over real HTTP: each fault reaches our client the way production's would."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from segment_bridge.forward.batching import Batch, pack_batches
from segment_bridge.forward.client import SegmentClient, SendOutcome, Target
from segment_bridge_tools.faults import REJECT_MARKER, FaultPlan
from segment_bridge_tools.sink import ReceivedRequest, SegmentSink


@pytest.fixture
def plan() -> FaultPlan:
    return FaultPlan()


@pytest.fixture
def sink(plan: FaultPlan) -> Iterator[SegmentSink]:
    running = SegmentSink(responder=plan).start()
    yield running
    running.stop()


def body(*messages: dict) -> Batch[int]:
    encoded = [json.dumps(m) for m in messages]
    return pack_batches([(i, text, len(text)) for i, text in enumerate(encoded)])[0]


def track(message_id: str, **properties: object) -> dict:
    return {"type": "track", "userId": "u", "event": "E", "messageId": message_id, "properties": properties}


def post(sink: SegmentSink, batch: Batch[int], timeout: float = 2.0) -> SendOutcome:
    client = SegmentClient({"us": sink.batch_url})
    return client.send(client.prepare(Target("us", "wk-0123456789"), batch, "2026-11-23T00:00:00.000Z"), timeout)


@pytest.mark.parametrize(("field", "status"), [("error_500", 500), ("error_503", 503), ("rate_limited", 429)])
def test_error_answers(plan: FaultPlan, sink: SegmentSink, field: str, status: int) -> None:
    setattr(plan, field, 1.0)
    plan.retry_after_seconds = 1.5
    outcome = post(sink, body(track("m1")))
    assert outcome.status == status and outcome.retryable
    if status == 429:
        assert outcome.retry_after == 1.5
    assert sink.messages() == []


def test_a_dropped_connection_is_a_connection_error(plan: FaultPlan, sink: SegmentSink) -> None:
    plan.drop = 1.0
    outcome = post(sink, body(track("m1")))
    assert outcome.status is None and outcome.error.startswith("connection error")  # type: ignore[union-attr]
    [request] = sink.snapshot()
    assert request.fault == "drop" and sink.messages() == []


def test_a_stall_times_out_but_segment_may_have_kept_the_batch(plan: FaultPlan, sink: SegmentSink) -> None:
    plan.stall, plan.stall_seconds = 1.0, 0.6
    outcome = post(sink, body(track("m1")), timeout=0.2)
    assert outcome.status is None and outcome.error == "timeout"
    [request] = sink.snapshot()
    assert request.fault == "stall" and [m["messageId"] for m in sink.messages()] == ["m1"]


def test_chosen_messages_get_a_400(plan: FaultPlan, sink: SegmentSink) -> None:
    plan.reject_message_ids = frozenset({"m3"})
    assert post(sink, body(track("m1"), track("m2", **{REJECT_MARKER: True}))).status == 400
    assert post(sink, body(track("m3"))).status == 400
    assert post(sink, body(track("m4"))).status == 200
    assert [m["messageId"] for m in sink.messages()] == ["m4"]
    assert plan.injected == {"400": 2}


def test_proportions_follow_the_seeded_plan() -> None:
    plan = FaultPlan(error_500=0.2, rate_limited=0.1, drop=0.1, seed=42)
    request = ReceivedRequest(0.0, "/v1/batch", "k", 0, 0, 0, messages=[track("m")])
    replies = [plan(request) for _ in range(2000)]
    assert 0.55 < replies.count(None) / 2000 < 0.65
    assert 0.17 < plan.injected["500"] / 2000 < 0.23 and 0.07 < plan.injected["drop"] / 2000 < 0.13
    again = FaultPlan(error_500=0.2, rate_limited=0.1, drop=0.1, seed=42)
    assert [again(request) for _ in range(2000)] == replies


def test_faults_can_be_switched_off_but_bad_messages_stay_bad() -> None:
    plan = FaultPlan(error_500=1.0, enabled=False)
    assert plan(ReceivedRequest(0.0, "/v1/batch", "k", 0, 0, 0, messages=[track("m")])) is None
    assert plan(ReceivedRequest(0.0, "/v1/batch", "k", 0, 0, 0, messages=[track("m", **{REJECT_MARKER: 1})]))[0] == 400  # type: ignore[index]


def test_peak_rate_is_measured_over_a_sliding_window(sink: SegmentSink) -> None:
    for at in (3.0, 0.0, 0.1, 0.95, 1.0, 1.05, 1.5):
        sink.requests.append(ReceivedRequest(at, "/v1/batch", "k", 0, 0, 0))
    assert sink.max_requests_in_window(1.0) == 4  # [0.1, 1.1); [0.0, 1.0) holds only 3, the window is half-open
