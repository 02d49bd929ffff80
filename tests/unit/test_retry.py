"""Retry policy: full-jitter backoff, Retry-After as a floor, and the Lambda deadline as the hard stop."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segment_bridge.retry import OUT_OF_TIME, Deadline, RetryPolicy, send_with_retries
from segment_bridge.segment_client import SendOutcome, parse_retry_after


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def scripted(*outcomes: SendOutcome, clock: FakeClock | None = None, took: float = 0.0):  # type: ignore[no-untyped-def]
    """An attempt function answering `outcomes` in turn and recording each timeout it was given."""
    answers = list(outcomes)
    timeouts: list[float] = []

    def attempt(timeout: float) -> SendOutcome:
        timeouts.append(timeout)
        if clock is not None:
            clock.now += min(took, timeout)
        return answers.pop(0)

    attempt.timeouts = timeouts  # type: ignore[attr-defined]
    return attempt


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


@pytest.mark.parametrize(("headers", "expected"), [
    ({"Retry-After": "2"}, 2.0),
    ({"X-RateLimit-Reset": "1.5"}, 1.5),
    ({"Retry-After": "soon", "X-RateLimit-Reset": "4"}, 4.0),
    ({"Retry-After": "100000"}, 300.0),  # capped
    ({}, None),
])
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers) == expected


def test_transient_failures_are_retried_until_success() -> None:
    clock = FakeClock()
    attempt = scripted(SendOutcome(500), SendOutcome(None, "timeout"), SendOutcome(429, retry_after=1.0), SendOutcome(200))
    outcome = send_with_retries(attempt, RetryPolicy(), Deadline.after(60, clock), rng=random.Random(0), sleep=clock.sleep)
    assert outcome.ok
    assert len(attempt.timeouts) == 4 and len(clock.sleeps) == 3
    assert clock.sleeps[2] >= 1.0  # Retry-After honoured


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413])
def test_final_answers_are_not_retried(status: int) -> None:
    attempt = scripted(SendOutcome(status, "no"))
    outcome = send_with_retries(attempt, RetryPolicy(), Deadline.after(60), rng=random.Random(0), sleep=lambda s: None)
    assert outcome.status == status and len(attempt.timeouts) == 1


def test_attempts_are_capped() -> None:
    attempt = scripted(*[SendOutcome(503)] * 10)
    outcome = send_with_retries(attempt, RetryPolicy(max_attempts=3), Deadline.after(600), rng=random.Random(0),
                                sleep=lambda s: None)
    assert outcome.status == 503 and len(attempt.timeouts) == 3


def test_each_attempt_gets_only_the_time_that_is_left() -> None:
    clock = FakeClock()
    attempt = scripted(*[SendOutcome(None, "timeout")] * 10, clock=clock, took=10.0)
    policy = RetryPolicy(request_timeout=10.0, base=0.1, cap=0.1, max_attempts=10)
    outcome = send_with_retries(attempt, policy, Deadline.after(25, clock), rng=random.Random(0), sleep=clock.sleep)
    assert outcome.error == "timeout; out of time for retries"
    assert attempt.timeouts[:2] == [10.0, 10.0]
    assert 1.0 <= attempt.timeouts[-1] < 5.0  # shrunk to the remaining budget
    assert clock.now <= 1025.0


def test_no_attempt_when_time_is_already_out() -> None:
    clock = FakeClock()
    attempt = scripted(SendOutcome(200))
    outcome = send_with_retries(attempt, RetryPolicy(), Deadline.after(0.5, clock), rng=random.Random(0), sleep=clock.sleep)
    assert outcome is OUT_OF_TIME and attempt.timeouts == []


def test_a_retry_after_beyond_the_deadline_gives_up_at_once() -> None:
    clock = FakeClock()
    attempt = scripted(SendOutcome(429, retry_after=30.0), SendOutcome(200))
    outcome = send_with_retries(attempt, RetryPolicy(), Deadline.after(10, clock), rng=random.Random(0), sleep=clock.sleep)
    assert outcome.status == 429 and clock.sleeps == []  # left for SQS to redeliver, no pointless wait
    assert outcome.retryable and "out of time" in (outcome.error or "")


def test_the_limiter_is_asked_before_every_attempt() -> None:
    calls: list[str] = []
    attempt = scripted(SendOutcome(500), SendOutcome(200))
    send_with_retries(attempt, RetryPolicy(), Deadline.after(60), rng=random.Random(0), sleep=lambda s: None,
                      before_attempt=lambda: calls.append("acquire"))
    assert calls == ["acquire", "acquire"]


def test_deadline_from_a_lambda_context_keeps_the_margin() -> None:
    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 60_000

    deadline = Deadline.from_lambda_context(Context(), margin=3.0)
    assert 56.9 < deadline.remaining() <= 57.0
