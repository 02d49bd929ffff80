"""One tenant's delivery: 400 isolation by bisection, its budget, and stopping a broken tenant early."""

from __future__ import annotations

import json
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from segment_bridge.forward.batching import Batch, pack_batches
from segment_bridge.forward.client import PreparedRequest, SendOutcome, Target
from segment_bridge.forward.delivery import ISOLATION_REQUEST_BUDGET, TenantDelivery, Verdict
from segment_bridge.forward.ratelimit import RateLimiter
from segment_bridge.forward.retry import Deadline, RetryPolicy


class FakeSegment:
    """Answers 400 to any batch holding a bad messageId, `fail` for the first calls if given, else 200."""

    def __init__(self, bad: set[str] = frozenset(), first: list[SendOutcome] | None = None) -> None:  # type: ignore[assignment]
        self.bad = set(bad)
        self.first = list(first or [])
        self.requests: list[list[str]] = []
        self.delivered: list[str] = []

    def prepare(self, target: Target, batch: Batch[Any], sent_at: str) -> PreparedRequest:
        return PreparedRequest("https://segment.invalid/v1/batch", {}, batch.body(sent_at), target.write_key)

    def send(self, request: PreparedRequest, timeout: float | None = None) -> SendOutcome:
        ids = [m["messageId"] for m in json.loads(request.body)["batch"]]
        self.requests.append(ids)
        if self.first:
            return self.first.pop(0)
        if self.bad & set(ids):
            return SendOutcome(400, "invalid")
        self.delivered.extend(ids)
        return SendOutcome(200)


def entries(count: int, size: int = 1) -> list[tuple[int, str, int]]:
    out = []
    for i in range(count):
        encoded = json.dumps({"type": "track", "messageId": f"m{i}", "pad": "x" * size})
        out.append((i, encoded, len(encoded)))
    return out


def delivery(
    segment: FakeSegment, attempts: int = 3, isolation_budget: int = ISOLATION_REQUEST_BUDGET
) -> TenantDelivery:
    return TenantDelivery(
        segment,
        Target("us", "wk"),
        policy=RetryPolicy(max_attempts=attempts),
        deadline=Deadline.after(600),
        limiter=RateLimiter(1e9),
        sent_at=lambda: "2026-11-23T00:00:00.000Z",
        rng=random.Random(0),
        sleep=lambda s: None,
        isolation_budget=isolation_budget,
    )


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=1, max_value=300).flatmap(
        lambda n: st.tuples(st.just(n), st.sets(st.integers(min_value=0, max_value=n - 1), max_size=min(n, 6)))
    )
)
def test_bisection_isolates_exactly_the_bad_messages(case: tuple[int, set[int]]) -> None:
    count, bad_indexes = case
    segment = FakeSegment(bad={f"m{i}" for i in bad_indexes})
    outcomes = delivery(segment, isolation_budget=10_000).deliver(pack_batches(entries(count), max_messages=64))
    assert {i for i, o in outcomes.items() if o.verdict is Verdict.REJECTED} == bad_indexes
    assert all(outcomes[i].verdict is Verdict.DELIVERED for i in range(count) if i not in bad_indexes)
    assert sorted(segment.delivered, key=lambda m: int(m[1:])) == [
        f"m{i}" for i in range(count) if i not in bad_indexes
    ]
    assert all(outcomes[i].status == 400 and "400" in outcomes[i].reason for i in bad_indexes)


def test_one_bad_message_in_a_full_batch_costs_about_two_log2_n_requests() -> None:
    segment = FakeSegment(bad={"m1234"})
    tenant = delivery(segment)
    outcomes = tenant.deliver(pack_batches(entries(2500)))
    assert [i for i, o in outcomes.items() if o.verdict is Verdict.REJECTED] == [1234]
    assert len(segment.requests) <= 1 + 2 * 12
    assert tenant.stats.isolation_requests == len(segment.requests) - 1


def test_a_400_storm_stops_at_the_isolation_budget_and_is_left_to_sqs() -> None:
    segment = FakeSegment(bad={f"m{i}" for i in range(500)})  # every message is refused
    outcomes = delivery(segment).deliver(pack_batches(entries(500)))
    assert len(segment.requests) == 1 + ISOLATION_REQUEST_BUDGET
    verdicts = {o.verdict for o in outcomes.values()}
    assert verdicts == {Verdict.REJECTED, Verdict.FAILED}
    failed = [o for o in outcomes.values() if o.verdict is Verdict.FAILED]
    assert all("not isolated" in o.reason for o in failed)


def test_a_tenant_stops_after_a_request_fails_for_good() -> None:
    segment = FakeSegment(first=[SendOutcome(503)] * 3)  # the first request exhausts its 3 attempts
    outcomes = delivery(segment).deliver(pack_batches(entries(30), max_messages=10))
    assert len(segment.requests) == 3  # the later two batches are not even sent
    assert all(o.verdict is Verdict.FAILED for o in outcomes.values())
    assert "earlier request failed" in outcomes[29].reason and "503" in outcomes[29].reason


def test_retries_count_in_stats_and_statuses() -> None:
    segment = FakeSegment(
        first=[SendOutcome(None, "timeout"), SendOutcome(None, "connection error: X"), SendOutcome(429)]
    )
    tenant = delivery(segment, attempts=5)
    outcomes = tenant.deliver(pack_batches(entries(5)))
    assert all(o.verdict is Verdict.DELIVERED for o in outcomes.values())
    assert tenant.stats.requests == 4 and tenant.stats.retries == 3
    assert tenant.stats.statuses == {"Timeout": 1, "ConnectionError": 1, "429": 1, "200": 1}


def test_the_body_is_ready_before_the_limiter_releases_it() -> None:
    """gzip time varies with the body; doing it before the token keeps the sends evenly paced."""
    steps: list[str] = []

    class Limiter:
        def acquire(self) -> float:
            steps.append("acquire")
            return 0.0

    class Segment:
        def prepare(self, target: Target, batch: Batch[Any], sent_at: str) -> PreparedRequest:
            steps.append("prepare")
            return PreparedRequest(
                "https://segment.invalid/v1/batch", {}, b"gz:" + batch.body(sent_at), target.write_key
            )

        def send(self, request: PreparedRequest, timeout: float | None = None) -> SendOutcome:
            steps.append(f"send {request.body[:3]!r}")
            return SendOutcome(500) if len(steps) < 4 else SendOutcome(200)

    tenant = TenantDelivery(
        Segment(),
        Target("us", "wk"),
        policy=RetryPolicy(),
        deadline=Deadline.after(60),
        limiter=Limiter(),
        sent_at=lambda: "2026-11-23T00:00:00.000Z",
        rng=random.Random(0),
        sleep=lambda s: None,
    )
    tenant.deliver(pack_batches(entries(3)))
    assert steps == ["prepare", "acquire", "send b'gz:'"] * 2
