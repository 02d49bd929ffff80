"""The per-region circuit breaker: what opens it, what does not, its probes, and what the forwarder
does with it (fail fast, probe with one message, keep the other region, back records off)."""

from __future__ import annotations

import random
import threading
from typing import Any

from segment_bridge.config import Settings
from segment_bridge.forward.breaker import (
    FAILURES_TO_OPEN,
    PROBE_INTERVAL_SECONDS,
    CircuitBreaker,
    Permit,
    outage_requests_per_hour,
)
from segment_bridge.forward.client import SendOutcome
from segment_bridge.forward.forwarder import Forwarder, QueuedRecord
from segment_bridge.forward.policy import Cause, Verdict
from segment_bridge.forward.ratelimit import RateLimiter
from segment_bridge.forward.retry import Deadline
from segment_bridge.tenants import StaticTenants, TenantConfig
from tests.unit.test_forwarding import FakeClient, ListDLQ, record


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


DOWN = SendOutcome(503, "down")


def test_it_opens_after_consecutive_transient_answers_only() -> None:
    breaker = CircuitBreaker("us", Clock())
    for _ in range(FAILURES_TO_OPEN - 1):
        breaker.record(DOWN)
    breaker.record(SendOutcome(400, "bad message"))  # Segment judged content: it is up, the count restarts
    for _ in range(FAILURES_TO_OPEN - 1):
        breaker.record(SendOutcome(None, "timeout"))
    assert not breaker.is_open and breaker.permit() is Permit.SEND
    breaker.record(SendOutcome(429, retry_after=1.0))
    assert breaker.is_open


def test_a_tenants_refused_key_neither_opens_nor_closes_it() -> None:
    breaker = CircuitBreaker("us", Clock())
    for status in (401, 403, 404) * 20:
        breaker.record(SendOutcome(status, "refused"))
    assert not breaker.is_open and breaker.state().failures == 0
    for _ in range(FAILURES_TO_OPEN - 1):
        breaker.record(DOWN)
        breaker.record(SendOutcome(401, "refused"))  # interleaved refusals do not hide the outage
    breaker.record(DOWN)
    assert breaker.is_open
    breaker.record(SendOutcome(403, "refused"))
    assert breaker.is_open


def test_while_open_one_probe_per_interval_and_a_success_closes_it() -> None:
    clock = Clock()
    breaker = CircuitBreaker("eu", clock)
    for _ in range(FAILURES_TO_OPEN):
        breaker.record(DOWN)
    assert [breaker.permit() for _ in range(3)] == [Permit.WAIT] * 3
    clock.now += PROBE_INTERVAL_SECONDS
    assert [breaker.permit() for _ in range(3)] == [Permit.PROBE, Permit.WAIT, Permit.WAIT]
    breaker.record(DOWN)  # the probe failed: wait a whole interval again
    clock.now += PROBE_INTERVAL_SECONDS / 2
    assert breaker.permit() is Permit.WAIT
    clock.now += PROBE_INTERVAL_SECONDS / 2
    assert breaker.permit() is Permit.PROBE
    breaker.record(SendOutcome(200))
    assert not breaker.is_open and breaker.permit() is Permit.SEND


def test_concurrent_callers_get_exactly_one_probe() -> None:
    clock = Clock()
    breaker = CircuitBreaker("us", clock)
    for _ in range(FAILURES_TO_OPEN):
        breaker.record(DOWN)
    clock.now += PROBE_INTERVAL_SECONDS
    permits: list[Permit] = []
    lock, start = threading.Lock(), threading.Barrier(16)

    def ask() -> None:
        start.wait()
        permit = breaker.permit()
        with lock:
            permits.append(permit)

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert permits.count(Permit.PROBE) == 1 and permits.count(Permit.WAIT) == 15


def test_the_outage_bound() -> None:
    assert outage_requests_per_hour(instances=2, regions=2) == 240  # 2 instances x 2 regions x 60/h


# -- the forwarder with its breakers ------------------------------------------------------------
class Postponed:
    """`ports.Redelivery` that accepts every change and remembers it."""

    def __init__(self) -> None:
        self.delays: dict[str, int] = {}

    def postpone(self, delays: Any) -> set[str]:
        self.delays.update(delays)
        return set()


def two_regions(client: FakeClient, clock: Clock, redelivery: Postponed | None = None, **env: Any) -> Forwarder:
    tenants = StaticTenants(
        {
            "acme": TenantConfig(write_key="key-acme", region="us"),
            "beta": TenantConfig(write_key="key-beta", region="us"),
            "gamma": TenantConfig(write_key="key-gamma", region="eu"),
        }
    )
    return Forwarder(
        Settings(SEGMENT_TIMEOUT_SECONDS=1, **env),
        tenants,
        client,
        ListDLQ(),
        limiter=RateLimiter(1e9),
        rng=random.Random(1),
        sleep=lambda s: None,
        redelivery=redelivery,
        now=clock,
    )


def eu_down(batch: list[dict[str, Any]], timeout: float) -> SendOutcome:
    return DOWN


def batch_of(tenant: str, n: int, receive_count: int = 1, sent_at: float | None = None) -> QueuedRecord:
    plain = record(f"{tenant}{n}", tenant, count=5, receive_count=receive_count)
    return QueuedRecord(plain.record_id, plain.body, receive_count, f"handle-{plain.record_id}", sent_at)


def test_an_eu_outage_opens_only_eus_breaker_and_then_costs_no_requests() -> None:
    clock, client, later = Clock(), FakeClient({"key-gamma": eu_down}), Postponed()
    fw = two_regions(client, clock, later)
    first = fw.forward([batch_of("acme", 1), batch_of("gamma", 1), batch_of("gamma", 2), batch_of("beta", 1)])
    assert set(first.failed) == {"gamma1", "gamma2"}
    assert {s.region: s.open for s in first.breakers} == {"eu": False, "us": False}  # 5 attempts so far
    second = fw.forward([batch_of("gamma", 1, receive_count=2), batch_of("gamma", 3)])
    assert {s.region: s.open for s in second.breakers}["eu"] is True  # 10 transient answers in a row
    eu_requests = len([entry for entry in client.log if entry[1] == "key-gamma"])
    # Open: the next invocations fail eu's records at once, without a request, and deliver us's.
    for round_ in range(3):
        clock.now += 5
        report = fw.forward([batch_of("gamma", 10 + round_), batch_of("acme", 10 + round_)])
        assert set(report.failed) == {f"gamma{10 + round_}"} and report.delivery.held_back >= 1
        assert "unreachable (circuit open" in report.failed[f"gamma{10 + round_}"]
    assert len([entry for entry in client.log if entry[1] == "key-gamma"]) == eu_requests
    assert {f"acme{10 + r}-{i}" for r in range(3) for i in range(5)} <= set(client.delivered("key-acme"))
    # Every failed record got its backoff from its receive count (30 s, 60 s, ... on 30 s slots).
    assert later.delays["handle-gamma1"] >= 48 and all(24 <= later.delays[f"handle-gamma{n}"] <= 60 for n in (2, 3))


def test_a_probe_sends_one_message_once_and_its_success_resumes_full_batches() -> None:
    clock, state = Clock(), {"up": False}

    def until_up(batch: list[dict[str, Any]], timeout: float) -> SendOutcome:
        return SendOutcome(200) if state["up"] else DOWN

    client = FakeClient({"key-gamma": until_up})
    fw = two_regions(client, clock)
    while not fw.breakers["eu"].is_open:
        fw.forward([batch_of("gamma", 1)])
    clock.now += PROBE_INTERVAL_SECONDS
    before = len(client.log)
    probe_failed = fw.forward([batch_of("gamma", 2)])
    assert [len(ids) for _, _, ids, _ in client.log[before:]] == [1]  # one message, one attempt
    assert probe_failed.delivery.probes == 1 and fw.breakers["eu"].is_open
    state["up"] = True
    clock.now += PROBE_INTERVAL_SECONDS
    before = len(client.log)
    recovered = fw.forward([batch_of("gamma", 3), batch_of("gamma", 4)])
    sizes = [len(ids) for _, _, ids, _ in client.log[before:]]
    assert sizes[0] == 1 and sum(sizes) == 10 and len(sizes) <= 3  # the probe, then full batches
    assert recovered.failed == {} and not fw.breakers["eu"].is_open


def test_a_tenant_whose_key_is_refused_does_not_open_the_region() -> None:
    clock = Clock()
    client = FakeClient({"key-acme": lambda batch, timeout: SendOutcome(401, "bad key")})
    fw = two_regions(client, clock)
    for n in range(30):
        report = fw.forward([batch_of("acme", n), batch_of("beta", n)])
        assert set(report.failed) == {f"acme{n}"}
    assert not fw.breakers["us"].is_open
    assert len(client.delivered("key-beta")) == 30 * 5  # the region's other tenant is delivered throughout


def test_an_expired_record_gets_a_real_attempt_through_an_open_breaker_before_the_dlq() -> None:
    clock = Clock()
    client = FakeClient({"key-gamma": eu_down})
    fw = two_regions(client, clock, MAX_DELIVERY_AGE_HOURS=1)
    while not fw.breakers["eu"].is_open:
        fw.forward([batch_of("gamma", 1)])
    before = len(client.log)
    young = fw.forward([batch_of("gamma", 2, sent_at=clock.now - 1800)])
    assert len(client.log) == before and set(young.failed) == {"gamma2"}  # held back, not given up
    old = fw.forward([batch_of("gamma", 3, receive_count=9, sent_at=clock.now - 3601)])
    assert len(client.log) == before + 1  # one real attempt, no retries
    assert old.failed == {} and old.records_expired == 1 and old.oldest_age_seconds >= 3601
    [(_, reason, attributes)] = fw.dead_letters.items  # type: ignore[attr-defined]
    assert reason.startswith("Segment answered 503: down") and "given up after 1.0 h" in reason
    assert attributes["status"] == "503" and attributes["tenant"] == "gamma"
    # And if Segment is back, the last chance delivers it.
    client.behaviours["key-gamma"] = lambda batch, timeout: SendOutcome(200)
    saved = fw.forward([batch_of("gamma", 4, sent_at=clock.now - 7200)])
    assert saved.failed == {} and saved.messages_forwarded == 5 and saved.records_expired == 0


def test_failures_carry_their_cause() -> None:
    clock = Clock()
    client = FakeClient({"key-acme": lambda b, t: SendOutcome(403, "forbidden"), "key-gamma": eu_down})
    fw = two_regions(client, clock)
    outcomes = fw._deliver_tenants(  # the per-message outcomes settle decides on
        fw.forward([]),
        {
            "acme": [_parsed(batch_of("acme", 1))],
            "gamma": [_parsed(batch_of("gamma", 1))],
        },
        Deadline.after(30),
    )
    assert {o.cause for o in outcomes["acme1"]} == {Cause.TENANT}
    assert {o.cause for o in outcomes["gamma1"]} == {Cause.TRANSIENT}
    assert all(o.verdict is Verdict.FAILED for o in outcomes["acme1"] + outcomes["gamma1"])


def _parsed(queued: QueuedRecord) -> Any:
    from segment_bridge.forward.forwarder import _Parsed
    from segment_bridge.queue_format import split_body

    return _Parsed(queued, split_body(queued.body))
