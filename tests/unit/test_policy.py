"""The delivery policy: how failures are classified, the backoff across receives and its backstop
arithmetic, and when a record is given up (by cause and age, never by count)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segment_bridge.config import Settings
from segment_bridge.forward.breaker import PROBE_INTERVAL_SECONDS
from segment_bridge.forward.client import SendOutcome
from segment_bridge.forward.policy import (
    BACKSTOP_SLACK,
    REDELIVERY_BASE_SECONDS,
    REDELIVERY_CAP_SECONDS,
    Action,
    Cause,
    MessageOutcome,
    RedeliverySchedule,
    Verdict,
    classify,
    settle,
)
from segment_bridge.limits import SQS_MAX_RECEIVE_COUNT, SQS_MAX_RETENTION_SECONDS, SQS_MAX_VISIBILITY_SECONDS


@pytest.mark.parametrize(
    ("outcome", "cause"),
    [
        (SendOutcome(200), None),
        (SendOutcome(None, "timeout"), Cause.TRANSIENT),
        (SendOutcome(None, "connection error: ConnectionError"), Cause.TRANSIENT),
        (SendOutcome(500), Cause.TRANSIENT),
        (SendOutcome(503), Cause.TRANSIENT),
        (SendOutcome(429, retry_after=1.0), Cause.TRANSIENT),
        (SendOutcome(408), Cause.TRANSIENT),
        (SendOutcome(400), Cause.MESSAGE),
        (SendOutcome(413), Cause.MESSAGE),
        (SendOutcome(401), Cause.TENANT),
        (SendOutcome(403), Cause.TENANT),
        (SendOutcome(404), Cause.TENANT),
    ],
)
def test_every_answer_has_one_cause(outcome: SendOutcome, cause: Cause | None) -> None:
    assert classify(outcome) is cause
    assert outcome.retryable is (cause is Cause.TRANSIENT)  # the client's view is the same table


def test_settings_defaults_are_the_policys_constants() -> None:
    defaults = Settings()
    assert defaults.redelivery_base_seconds == REDELIVERY_BASE_SECONDS
    assert defaults.redelivery_cap_seconds == REDELIVERY_CAP_SECONDS
    assert defaults.max_receive_count == SQS_MAX_RECEIVE_COUNT
    assert defaults.max_delivery_age_hours == 168
    assert defaults.breaker_probe_seconds == PROBE_INTERVAL_SECONDS


def test_the_default_schedule_doubles_from_30_s_to_a_15_min_cap() -> None:
    schedule = RedeliverySchedule.for_settings(Settings())
    assert [schedule.nominal(n) for n in range(1, 9)] == [30, 60, 120, 240, 480, 900, 900, 900]
    assert schedule.nominal(10_000) == 900  # no overflow however often a record came back


@settings(max_examples=200, deadline=None)
@given(
    receive_count=st.integers(min_value=1, max_value=2000),
    now=st.floats(min_value=1.7e9, max_value=2.0e9, allow_nan=False),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_a_delay_is_jittered_never_shorter_than_80_percent_and_ends_on_a_slot(
    receive_count: int, now: float, seed: int
) -> None:
    schedule = RedeliverySchedule()
    delay = schedule.delay(receive_count, now, random.Random(seed))
    nominal = schedule.nominal(receive_count)
    assert schedule.shortest_wait(receive_count) <= delay <= nominal + schedule.base + 1
    assert (now + delay) % schedule.base < 1  # visible from a 30 s slot on (whole seconds: within 1 s of it)


def test_jitter_spreads_records_that_failed_together() -> None:
    schedule, rng = RedeliverySchedule(), random.Random(3)
    delays = {schedule.delay(8, 1_800_000_000.0, rng) for _ in range(200)}
    assert len(delays) >= 5  # spread over the slots of 720-900 s, not one instant
    assert min(delays) >= 720 and max(delays) <= 930


@settings(max_examples=100, deadline=None)
@given(hours=st.floats(min_value=0.1, max_value=335))
def test_the_backstop_never_fires_first_for_any_allowed_age_limit(hours: float) -> None:
    """The template's MaxDeliveryAgeHours range with its fixed 1,000-receive backstop: the schedule
    gives a record up by age (with its reason) with BACKSTOP_SLACK receives to spare."""
    schedule = RedeliverySchedule.for_settings(Settings(MAX_DELIVERY_AGE_HOURS=hours))
    assert schedule.receives_to_expire(hours * 3600) + BACKSTOP_SLACK <= SQS_MAX_RECEIVE_COUNT
    assert REDELIVERY_CAP_SECONDS <= schedule.cap <= SQS_MAX_VISIBILITY_SECONDS
    # The last receive, a cap (and a slot) after the limit, is still inside the queue's retention.
    assert hours * 3600 + schedule.cap + schedule.base < SQS_MAX_RETENTION_SECONDS


@settings(max_examples=40, deadline=None)
@given(hours=st.sampled_from([1.0, 24.0, 168.0, 335.0]), seed=st.integers(min_value=0, max_value=2**16))
def test_receives_to_expire_bounds_what_real_draws_produce(hours: float, seed: int) -> None:
    schedule, rng = RedeliverySchedule.for_settings(Settings(MAX_DELIVERY_AGE_HOURS=hours)), random.Random(seed)
    now, start, receives = 1_800_000_000.0, 1_800_000_000.0, 1
    while now - start < hours * 3600:
        now += schedule.delay(receives, now, rng)
        receives += 1
    assert receives <= schedule.receives_to_expire(hours * 3600)


def test_the_cap_stretches_only_past_what_the_backstop_covers() -> None:
    assert RedeliverySchedule.for_settings(Settings(MAX_DELIVERY_AGE_HOURS=168)).cap == 900
    long = RedeliverySchedule.for_settings(Settings(MAX_DELIVERY_AGE_HOURS=335))
    assert 900 < long.cap < 1800  # about 28 min
    tiny_backstop = RedeliverySchedule.for_settings(Settings(MAX_RECEIVE_COUNT=4))
    assert tiny_backstop.cap == 900  # no cap could fit: the tests' small backstop fires first


def failed(cause: Cause, reason: str = "Segment answered 503") -> MessageOutcome:
    return MessageOutcome(Verdict.FAILED, reason, 503 if cause is Cause.TRANSIENT else 400, cause)


DELIVERED = MessageOutcome(Verdict.DELIVERED)
REJECTED = MessageOutcome(Verdict.REJECTED, "Segment answered 400: too big", 400)


def decide(outcomes: list[MessageOutcome], receive_count: int = 1, expired: bool = False) -> Action:
    return settle(outcomes, receive_count=receive_count, max_receive_count=1000, age_hours=1.0, expired=expired).action


def test_a_record_is_given_up_by_cause_and_age_not_by_count() -> None:
    assert decide([DELIVERED, DELIVERED]) is Action.DONE
    assert decide([DELIVERED, REJECTED]) is Action.DEAD_LETTER  # a 400 alone: never deliverable
    assert decide([DELIVERED, failed(Cause.TRANSIENT)], receive_count=900) is Action.RETRY  # no count limit
    assert decide([failed(Cause.TENANT)], receive_count=500) is Action.RETRY  # an operator may fix the key
    assert decide([REJECTED, failed(Cause.TRANSIENT)]) is Action.RETRY  # the rejected one waits for the record
    assert decide([failed(Cause.TRANSIENT)], expired=True) is Action.DEAD_LETTER
    # A 400 whose isolation ran out of split requests: its messages may be fine, so not by count either
    # (after a week-long outage every record has hundreds of receives).
    assert decide([failed(Cause.MESSAGE)], receive_count=700) is Action.RETRY
    assert decide([failed(Cause.MESSAGE)], expired=True) is Action.DEAD_LETTER


def test_a_given_up_message_says_why() -> None:
    expired = settle(
        [failed(Cause.TRANSIENT)], receive_count=700, max_receive_count=1000, age_hours=168.2, expired=True
    )
    assert (
        expired.outcomes[0].reason == "Segment answered 503; given up after 168.2 h in the queue (MaxDeliveryAgeHours)"
    )
    backstop = settle([failed(Cause.TRANSIENT)], receive_count=4, max_receive_count=4, age_hours=0.1, expired=False)
    assert backstop.action is Action.DEAD_LETTER
    assert "receive 4 (the queue's maxReceiveCount backstop)" in backstop.outcomes[0].reason
    retry = settle(
        [DELIVERED, failed(Cause.TENANT, "Segment answered 401")],
        receive_count=2,
        max_receive_count=9,
        age_hours=2.0,
        expired=False,
    )
    assert retry.action is Action.RETRY and retry.reason == "Segment answered 401"
