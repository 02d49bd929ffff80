"""Retry policy: full-jitter backoff, Retry-After as a floor, and the Lambda deadline as the hard stop
(the attempts run in `TenantDelivery`, so these tests send one batch through it)."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segment_bridge.forward.batching import Batch, pack_batches
from segment_bridge.forward.client import PreparedRequest, SendOutcome, Target, parse_retry_after
from segment_bridge.forward.delivery import MessageOutcome, TenantDelivery, Verdict
from segment_bridge.forward.retry import OUT_OF_TIME, Deadline, RetryPolicy


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Scripted:
    """A Segment stand-in answering `outcomes` in turn, recording each timeout it was given."""

    def __init__(self, *outcomes: SendOutcome, clock: FakeClock | None = None, took: float = 0.0) -> None:
        self.answers = list(outcomes)
        self.timeouts: list[float] = []
        self.clock = clock
        self.took = took

    def prepare(self, target: Target, batch: Batch[Any], sent_at: str) -> PreparedRequest:
        return PreparedRequest("https://segment.invalid/v1/batch", {}, batch.body(sent_at), target.write_key)

    def send(self, request: PreparedRequest, timeout: float | None = None) -> SendOutcome:
        assert timeout is not None
        self.timeouts.append(timeout)
        if self.clock is not None:
            self.clock.now += min(self.took, timeout)
        return self.answers.pop(0)


class Limiter:
    def __init__(self) -> None:
        self.calls = 0

    def acquire(self) -> float:
        self.calls += 1
        return 0.0


def send_one(
    segment: Scripted,
    policy: RetryPolicy,
    deadline: Deadline,
    sleep: Callable[[float], None] = lambda s: None,
    limiter: Limiter | None = None,
) -> MessageOutcome:
    """One single-message batch through `TenantDelivery`, which runs the attempts; its outcome."""
    delivery = TenantDelivery(
        segment,
        Target("us", "wk"),
        policy=policy,
        deadline=deadline,
        limiter=limiter or Limiter(),
        sent_at=lambda: "2026-11-23T00:00:00.000Z",
        rng=random.Random(0),
        sleep=sleep,
    )
    return delivery.deliver(pack_batches([(0, '{"type":"track"}', 16)]))[0]


@given(st.integers(min_value=1, max_value=40), st.integers(min_value=0, max_value=2**32))
def test_backoff_is_full_jitter_under_the_cap(retry: int, seed: int) -> None:
    policy = RetryPolicy(base=0.5, cap=8.0)
    wait = policy.backoff(retry, random.Random(seed))
    assert 0.0 <= wait <= min(8.0, 0.5 * 2 ** (retry - 1))


def test_backoff_spreads_over_the_whole_interval() -> None:
    rng = random.Random(1)
    waits = [RetryPolicy(base=1.0, cap=8.0).backoff(4, rng) for _ in range(2000)]
    assert max(waits) <= 8.0 and max(waits) > 7.5 and min(waits) < 0.5  # uniform in [0, 8], not clustered
    assert 3.5 < sum(waits) / len(waits) < 4.5


def test_retry_after_is_a_floor() -> None:
    policy = RetryPolicy(base=0.5)
    rng = random.Random(2)
    waits = [policy.wait_before(1, SendOutcome(429, retry_after=3.0), rng) for _ in range(200)]
    assert all(3.0 <= w <= 3.5 for w in waits)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "2"}, 2.0),
        ({"X-RateLimit-Reset": "1.5"}, 1.5),
        ({"Retry-After": "soon", "X-RateLimit-Reset": "4"}, 4.0),
        ({"Retry-After": "100000"}, 300.0),  # capped
        ({}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers) == expected


def test_transient_failures_are_retried_until_success() -> None:
    clock = FakeClock()
    attempt = Scripted(
        SendOutcome(500), SendOutcome(None, "timeout"), SendOutcome(429, retry_after=1.0), SendOutcome(200)
    )
    outcome = send_one(attempt, RetryPolicy(), Deadline.after(60, clock), sleep=clock.sleep)
    assert outcome.verdict is Verdict.DELIVERED
    assert len(attempt.timeouts) == 4 and len(clock.sleeps) == 3
    assert clock.sleeps[2] >= 1.0  # Retry-After honoured


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413])
def test_final_answers_are_not_retried(status: int) -> None:
    attempt = Scripted(SendOutcome(status, "no"))
    outcome = send_one(attempt, RetryPolicy(), Deadline.after(60))
    assert outcome.status == status and len(attempt.timeouts) == 1


def test_attempts_are_capped() -> None:
    attempt = Scripted(*[SendOutcome(503)] * 10)
    outcome = send_one(attempt, RetryPolicy(max_attempts=3), Deadline.after(600))
    assert outcome.status == 503 and len(attempt.timeouts) == 3


def test_each_attempt_gets_only_the_time_that_is_left() -> None:
    clock = FakeClock()
    attempt = Scripted(*[SendOutcome(None, "timeout")] * 10, clock=clock, took=10.0)
    policy = RetryPolicy(request_timeout=10.0, base=0.1, cap=0.1, max_attempts=10)
    outcome = send_one(attempt, policy, Deadline.after(25, clock), sleep=clock.sleep)
    assert outcome.verdict is Verdict.FAILED and "(timeout; out of time for retries)" in outcome.reason
    assert attempt.timeouts[:2] == [10.0, 10.0]
    assert 1.0 <= attempt.timeouts[-1] < 5.0  # shrunk to the remaining budget
    assert clock.now <= 1025.0


def test_no_attempt_when_time_is_already_out() -> None:
    clock = FakeClock()
    attempt = Scripted(SendOutcome(200))
    outcome = send_one(attempt, RetryPolicy(), Deadline.after(0.5, clock), sleep=clock.sleep)
    assert outcome.verdict is Verdict.FAILED and OUT_OF_TIME.error in outcome.reason and attempt.timeouts == []


def test_a_retry_after_beyond_the_deadline_gives_up_at_once() -> None:
    clock = FakeClock()
    attempt = Scripted(SendOutcome(429, retry_after=30.0), SendOutcome(200))
    outcome = send_one(attempt, RetryPolicy(), Deadline.after(10, clock), sleep=clock.sleep)
    assert outcome.status == 429 and clock.sleeps == []  # left for SQS to redeliver, no pointless wait
    assert outcome.verdict is Verdict.FAILED and "out of time" in outcome.reason


def test_the_limiter_is_asked_before_every_attempt() -> None:
    limiter = Limiter()
    send_one(Scripted(SendOutcome(500), SendOutcome(200)), RetryPolicy(), Deadline.after(60), limiter=limiter)
    assert limiter.calls == 2


def test_deadline_from_a_lambda_context_keeps_the_margin() -> None:
    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 60_000

    deadline = Deadline.from_lambda_context(Context(), margin=3.0)
    assert 56.9 < deadline.remaining() <= 57.0
