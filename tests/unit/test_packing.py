"""Packing: SQS bodies for the queue and /v1/batch bodies for Segment, both within their limits."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from segment_bridge.forward.batching import pack_batches
from segment_bridge.limits import BATCH_TARGET_BYTES, MAX_BATCH_MESSAGES, MAX_BATCH_REQUEST_BYTES, SQS_MAX_BATCH_BYTES
from segment_bridge.queue_format import group_for_send, pack_queue_bodies, read_body


def message(i: int, pad: int = 0) -> tuple[str, int]:
    encoded = json.dumps(
        {"type": "track", "userId": f"u{i}", "event": "E", "messageId": f"m{i}", "properties": {"pad": "é" * pad}},
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return encoded, len(encoded.encode())


def test_queue_bodies_round_trip_and_respect_the_size_cap() -> None:
    messages = [message(i, pad=700) for i in range(1000)]
    bodies = pack_queue_bodies("acme", "spec", messages, max_bytes=256 * 1024)
    assert all(len(b.encode()) <= 256 * 1024 for b in bodies)
    decoded = [read_body(b) for b in bodies]
    assert [m["messageId"] for d in decoded for m in d.messages] == [f"m{i}" for i in range(1000)]
    assert {d.tenant for d in decoded} == {"acme"}


def test_a_thousand_event_webhook_costs_one_send_call() -> None:
    # ~600 B per normalized SendGrid-sized event -> a few 256 KiB bodies -> one SendMessageBatch call.
    bodies = pack_queue_bodies("acme", "sendgrid", [message(i, pad=250) for i in range(1000)])
    calls = group_for_send(bodies)
    assert len(calls) == 1
    assert all(len(c.bodies) <= 10 and sum(len(b.encode()) for b in c.bodies) <= SQS_MAX_BATCH_BYTES for c in calls)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=30_000), min_size=1, max_size=200))
def test_send_groups_respect_sqs_limits(pads: list[int]) -> None:
    bodies = pack_queue_bodies("t", "s", [message(i, pad=p // 2) for i, p in enumerate(pads)])
    calls = group_for_send(bodies)
    assert sum(len(c.bodies) for c in calls) == len(bodies)
    for call in calls:
        assert 1 <= len(call.bodies) <= 10
        assert sum(len(b.encode()) for b in call.bodies) <= SQS_MAX_BATCH_BYTES


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=16_000), min_size=1, max_size=400))
def test_segment_batches_respect_limits_and_keep_order(pads: list[int]) -> None:
    items = [(i % 7, *message(i, pad=p)) for i, p in enumerate(pads)]
    batches = pack_batches(items)
    assert [json.loads(item)["messageId"] for b in batches for item in b.items] == [f"m{i}" for i in range(len(pads))]
    for batch in batches:
        body = batch.body("2026-11-23T00:00:00.000Z")
        assert len(body) == batch.size <= BATCH_TARGET_BYTES < MAX_BATCH_REQUEST_BYTES
        assert len(batch.items) <= MAX_BATCH_MESSAGES
        assert json.loads(body)["sentAt"] == "2026-11-23T00:00:00.000Z"


def test_batches_fill_towards_the_limits() -> None:
    small = [(0, *message(i)) for i in range(6000)]
    batches = pack_batches(small)
    assert [len(b.items) for b in batches] == [2500, 2500, 1000]  # capped by count
    big = [(0, *message(i, pad=500)) for i in range(3000)]  # ~1 KB each
    filled = pack_batches(big)
    assert all(b.size > 0.95 * BATCH_TARGET_BYTES for b in filled[:-1])  # capped by bytes, nearly full
