"""The forwarder's decisions per record: settle, dead-letter, isolate tenants, keep messageIds, fill batches."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from segment_bridge.config import Settings
from segment_bridge.errors import TenantConfigError
from segment_bridge.forward.batching import Batch
from segment_bridge.forward.client import PreparedRequest, SendOutcome, Target
from segment_bridge.forward.forwarder import TENANT_IN_FLIGHT, Forwarder, QueuedRecord
from segment_bridge.forward.ratelimit import RateLimiter
from segment_bridge.forward.retry import Deadline
from segment_bridge.limits import BATCH_TARGET_BYTES
from segment_bridge.queue_format import read_body
from segment_bridge.tenants import StaticTenants, TenantConfig, UnknownTenant
from tests.conftest import queued_body

Behaviour = Callable[[list[dict[str, Any]], float], SendOutcome]


def accept(batch: list[dict[str, Any]], timeout: float) -> SendOutcome:
    return SendOutcome(200)


def reject_marked(batch: list[dict[str, Any]], timeout: float) -> SendOutcome:
    return (
        SendOutcome(400, "bad message") if any(m.get("properties", {}).get("bad") for m in batch) else SendOutcome(200)
    )


class FakeClient:
    """SegmentClient stand-in: behaviour per writeKey, and a log of (time, key, messageIds, status)."""

    def __init__(self, behaviours: dict[str, Behaviour] | None = None) -> None:
        self.behaviours = behaviours or {}
        self.log: list[tuple[float, str, list[str], int | None]] = []
        self._lock = threading.Lock()

    def prepare(self, target: Target, batch: Batch[Any], sent_at: str) -> PreparedRequest:
        return PreparedRequest(target.region, {}, batch.body(sent_at), target.write_key)

    def send(self, request: PreparedRequest, timeout: float | None = None) -> SendOutcome:
        batch = json.loads(request.body)["batch"]
        outcome = self.behaviours.get(request.write_key, accept)(batch, timeout or 10.0)
        with self._lock:
            self.log.append((time.monotonic(), request.write_key, [m["messageId"] for m in batch], outcome.status))
        return outcome

    def delivered(self, key: str | None = None) -> list[str]:
        return [i for _, k, ids, status in self.log if status == 200 and key in (None, k) for i in ids]


class ListDLQ:
    def __init__(self) -> None:
        self.items: list[tuple[str, str, dict[str, str]]] = []

    def dead_letter(self, body: str, reason: str, attributes: dict[str, str]) -> None:
        self.items.append((body, reason, attributes))

    def message_ids(self) -> list[str]:
        return [m["messageId"] for body, _, _ in self.items for m in read_body(body).messages]


class BrokenTenants(StaticTenants):
    def __init__(self, tenants: dict[str, TenantConfig], broken: dict[str, Exception]) -> None:
        super().__init__(tenants)
        self.broken = broken

    def get(self, tenant: str) -> TenantConfig:
        if tenant in self.broken:
            raise self.broken[tenant]
        return super().get(tenant)


def record(
    record_id: str, tenant: str, count: int = 3, receive_count: int = 1, bad: tuple[int, ...] = (), pad: int = 0
) -> QueuedRecord:
    messages = [
        {
            "type": "track",
            "userId": "u",
            "event": "E",
            "messageId": f"{record_id}-{i}",
            "properties": {"bad": True} if i in bad else {"pad": "x" * pad},
        }
        for i in range(count)
    ]
    return QueuedRecord(record_id, queued_body(tenant, messages), receive_count)


def forwarder(
    client: FakeClient,
    dlq: ListDLQ,
    tenants: list[str] = ("acme", "beta"),
    broken: dict[str, Exception] | None = None,
    timeout: float = 10.0,
) -> Forwarder:
    settings = Settings(MAX_RECEIVE_COUNT=3, SEGMENT_TIMEOUT_SECONDS=timeout)
    directory = BrokenTenants({t: TenantConfig(write_key=f"key-{t}") for t in tenants}, broken or {})
    return Forwarder(
        settings,
        directory,
        client,
        dlq,
        limiter=RateLimiter(1e9),
        rng=random.Random(0),  # type: ignore[arg-type]
        sleep=lambda s: None,
    )


def test_a_rejected_message_is_dead_lettered_and_the_rest_delivered() -> None:
    client, dlq = FakeClient({"key-acme": reject_marked}), ListDLQ()
    report = forwarder(client, dlq).forward([record("r1", "acme", count=40, bad=(7, 30)), record("r2", "acme")])
    assert report.failed == {}
    assert set(report.dead_lettered) == {"r1"}
    assert sorted(client.delivered()) == sorted(
        [f"r1-{i}" for i in range(40) if i not in (7, 30)] + ["r2-0", "r2-1", "r2-2"]
    )
    [(body, reason, attributes)] = dlq.items
    assert [m["messageId"] for m in read_body(body).messages] == ["r1-7", "r1-30"]
    assert "400" in reason and attributes["status"] == "400" and attributes["tenant"] == "acme"
    assert attributes["message_count"] == "2" and attributes["source_record_id"] == "r1"
    assert report.messages_dead_lettered == 2 and report.messages_forwarded == 41


def test_the_dead_letter_body_is_a_queue_message_with_the_same_message_ids() -> None:
    client, dlq = FakeClient({"key-acme": reject_marked}), ListDLQ()
    original = record("r1", "acme", count=5, bad=(2,))
    forwarder(client, dlq).forward([original])
    [(body, _, _)] = dlq.items
    redriven = read_body(body)
    source = read_body(original.body)
    assert (redriven.tenant, redriven.source) == ("acme", "spec")
    assert redriven.messages == [source.messages[2]]  # unchanged, messageId included


def test_transient_failures_are_left_to_sqs_until_the_last_receive() -> None:
    client = FakeClient({"key-acme": lambda batch, timeout: SendOutcome(503, "down")})
    dlq = ListDLQ()
    first = forwarder(client, dlq).forward([record("r1", "acme")])
    assert set(first.failed) == {"r1"} and "503" in first.failed["r1"] and dlq.items == []
    last = forwarder(client, dlq).forward([record("r1", "acme", receive_count=3)])
    assert last.failed == {} and set(last.dead_lettered) == {"r1"}
    [(body, reason, attributes)] = dlq.items
    assert len(read_body(body).messages) == 3 and "503" in reason and attributes["receive_count"] == "3"


def test_rejected_messages_wait_for_their_records_other_failures() -> None:
    """A record with a 400 message and a transient failure is retried whole; its 400 goes to the DLQ once."""
    calls = {"n": 0}

    def flaky_then_reject(batch: list[dict[str, Any]], timeout: float) -> SendOutcome:
        calls["n"] += 1
        if calls["n"] > 1 and any(m["messageId"] == "r1-3" for m in batch):
            return SendOutcome(503, "down")
        return reject_marked(batch, timeout)

    client, dlq = FakeClient({"key-acme": flaky_then_reject}), ListDLQ()
    report = forwarder(client, dlq).forward([record("r1", "acme", count=4, bad=(0,))])
    assert set(report.failed) == {"r1"} and dlq.items == []
    report = forwarder(FakeClient({"key-acme": reject_marked}), dlq).forward(
        [record("r1", "acme", count=4, bad=(0,), receive_count=2)]
    )
    assert report.failed == {} and dlq.message_ids() == ["r1-0"]


def test_an_unreadable_record_goes_to_the_dlq_as_it_came() -> None:
    dlq = ListDLQ()
    report = forwarder(FakeClient(), dlq).forward([QueuedRecord("junk", "{nope"), record("r1", "acme")])
    assert report.failed == {} and dlq.items[0][0] == "{nope" and "unreadable" in dlq.items[0][1]


def test_message_ids_survive_every_retry_path() -> None:
    """SQS redelivery and DLQ redrive re-send the same bodies, so Segment sees the same messageIds."""
    down = FakeClient({"key-acme": lambda batch, timeout: SendOutcome(500)})
    dlq = ListDLQ()
    original = record("r1", "acme", count=6)
    for receive in (1, 2, 3):  # redelivered by SQS, then dead-lettered on the last receive
        forwarder(down, dlq).forward([QueuedRecord(original.record_id, original.body, receive)])
    [(body, _, _)] = dlq.items
    up = FakeClient()
    forwarder(up, ListDLQ()).forward([QueuedRecord("redriven", body)])  # `dlq redrive` sends the body back
    sent_while_down = {i for _, _, ids, _ in down.log for i in ids}
    assert set(up.delivered()) == sent_while_down == {f"r1-{i}" for i in range(6)}


def test_a_broken_tenant_does_not_hold_up_the_others() -> None:
    client, dlq = FakeClient(), ListDLQ()
    fw = forwarder(
        client,
        dlq,
        tenants=["acme", "beta"],
        broken={"gone": UnknownTenant("gone"), "bad": TenantConfigError("tenant 'bad' secret is invalid")},
    )
    report = fw.forward([record("g1", "gone"), record("a1", "acme"), record("b1", "bad"), record("c1", "beta")])
    assert set(report.failed) == {"g1", "b1"} and "invalid" in report.failed["b1"]
    assert sorted(client.delivered()) == ["a1-0", "a1-1", "a1-2", "c1-0", "c1-1", "c1-2"]


def test_a_slow_tenant_does_not_delay_the_others() -> None:
    def stall(batch: list[dict[str, Any]], timeout: float) -> SendOutcome:
        time.sleep(timeout)
        return SendOutcome(None, "timeout")

    client, dlq = FakeClient({"key-slow": stall, "key-storm": lambda b, t: SendOutcome(400, "no")}), ListDLQ()
    fw = forwarder(client, dlq, tenants=["slow", "storm", "acme", "beta"], timeout=0.4)
    started = time.monotonic()
    report = fw.forward(
        [record("s1", "slow"), record("x1", "storm", count=20), record("a1", "acme"), record("b1", "beta")],
        Deadline.after(2.0),
    )
    elapsed = time.monotonic() - started
    first_good = min(t for t, key, _, status in client.log if key in ("key-acme", "key-beta")) - started
    assert first_good < 0.3  # not queued behind the slow tenant's timeouts
    assert set(client.delivered()) == {"a1-0", "a1-1", "a1-2", "b1-0", "b1-1", "b1-2"}
    assert set(report.failed) == {"s1"} and elapsed < 2.5
    assert "x1" in report.dead_lettered  # all 20 isolated and rejected within its budget


def test_a_tenants_batches_go_out_two_at_a_time() -> None:
    """A big tenant keeps TENANT_IN_FLIGHT requests on the wire, not one after another."""
    in_flight, peak, lock = [0], [0], threading.Lock()

    def slow(batch: list[dict[str, Any]], timeout: float) -> SendOutcome:
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.05)
        with lock:
            in_flight[0] -= 1
        return SendOutcome(200)

    client = FakeClient({"key-acme": slow})
    records = [record(f"r{r}", "acme", count=500, pad=2000) for r in range(4)]  # ~2 MB: 5 requests
    report = forwarder(client, ListDLQ()).forward(records)
    assert report.failed == {} and report.messages_forwarded == 2000 and report.delivery.requests >= 5
    assert TENANT_IN_FLIGHT > 1 and peak[0] == TENANT_IN_FLIGHT
    assert sorted(client.delivered()) == sorted(f"r{r}-{i}" for r in range(4) for i in range(500))


def test_a_broken_key_costs_one_request_per_lane_whatever_the_backlog() -> None:
    client = FakeClient({"key-acme": lambda batch, timeout: SendOutcome(401, "bad key")})
    records = [record(f"r{r}", "acme", count=500, pad=2000) for r in range(4)]
    report = forwarder(client, ListDLQ()).forward(records)
    assert len(client.log) == TENANT_IN_FLIGHT  # the rest is not sent: an earlier request failed
    assert set(report.failed) == {f"r{r}" for r in range(4)}


def test_a_crash_in_one_tenant_fails_only_its_records() -> None:
    def crash(batch: list[dict[str, Any]], timeout: float) -> SendOutcome:
        raise RuntimeError("bug")

    client = FakeClient({"key-beta": crash})
    report = forwarder(client, ListDLQ()).forward([record("a1", "acme"), record("b1", "beta")])
    assert report.failed == {"b1": "internal error: RuntimeError"}
    assert client.delivered() == ["a1-0", "a1-1", "a1-2"]


def test_nothing_is_sent_once_the_deadline_has_passed() -> None:
    client = FakeClient()
    report = forwarder(client, ListDLQ()).forward([record("a1", "acme")], Deadline.after(0.0))
    assert client.log == [] and "out of time" in report.failed["a1"]


@pytest.mark.parametrize(("pad", "max_requests_per_1000"), [(0, 1), (300, 1), (2000, 5)])
def test_a_backlog_fills_requests(pad: int, max_requests_per_1000: int) -> None:
    """10,000 queued messages cost as few requests as the 475 KB / 2,500-message limits allow."""
    client = FakeClient()
    records = [record(f"r{r}", "acme", count=500, pad=pad) for r in range(20)]
    report = forwarder(client, ListDLQ()).forward(records)
    assert report.messages_forwarded == 10_000
    per_1000 = report.delivery.requests / 10
    assert per_1000 <= max_requests_per_1000
    lines = [line for r in records for line in r.body.split("\n")[1:]]
    # Greedy packing leaves less than one message of room unused per request.
    usable = BATCH_TARGET_BYTES - max(len(line) for line in lines)
    assert report.delivery.requests <= sum(len(line) + 1 for line in lines) // usable + 1 + (
        10_000 // 2500 if pad == 0 else 0
    )
