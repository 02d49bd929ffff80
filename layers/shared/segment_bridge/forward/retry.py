"""When to retry a Segment request, how long to wait, and when to stop: inside the Lambda's time.

Capped exponential backoff with full jitter (the AWS Architecture Blog's recommendation, and what
analytics-python's `backoff.expo` does by default), but bounded by the invocation's deadline
instead of a wall-clock budget of minutes: a request that cannot succeed in this invocation is
reported failed, and SQS redelivers its records after the visibility timeout, which is the long
backoff. Pure decisions only; `delivery.TenantDelivery` runs the attempts. A few lines, so no
dependency on `backoff`/`tenacity` (neither knows about deadlines).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from .client import SendOutcome

#: First nominal wait; doubles per retry (0.5, 1, 2, 4, 8 s), each drawn uniformly from [0, nominal].
BACKOFF_BASE_SECONDS = 0.5
#: Longest nominal wait between two attempts of one request.
BACKOFF_CAP_SECONDS = 8.0
#: Attempts of one request within an invocation (1 + 4 retries); SQS redelivery retries further.
MAX_ATTEMPTS = 5
#: Kept back from the Lambda's remaining time to dead-letter, report batchItemFailures and flush
#: metrics: a request still running at the timeout would fail the whole batch instead.
REPORT_MARGIN_SECONDS = 3.0
#: Shortest timeout worth giving a request; with less time left, it is not sent at all.
MIN_REQUEST_SECONDS = 1.0


class RemainingTime(Protocol):
    """What a Deadline needs of a Lambda context."""

    def get_remaining_time_in_millis(self) -> int: ...


@dataclass(frozen=True)
class Deadline:
    """A point on the monotonic clock by which sending must stop."""

    at: float
    clock: Callable[[], float] = time.monotonic

    @classmethod
    def after(cls, seconds: float, clock: Callable[[], float] = time.monotonic) -> Deadline:
        return cls(clock() + seconds, clock)

    @classmethod
    def from_lambda_context(cls, context: RemainingTime, margin: float = REPORT_MARGIN_SECONDS) -> Deadline:
        remaining_ms = context.get_remaining_time_in_millis()
        return cls.after(max(0.0, remaining_ms / 1000 - margin))

    def remaining(self) -> float:
        return max(0.0, self.at - self.clock())


@dataclass(frozen=True)
class RetryPolicy:
    base: float = BACKOFF_BASE_SECONDS
    cap: float = BACKOFF_CAP_SECONDS
    max_attempts: int = MAX_ATTEMPTS
    #: The per-request timeout when time is plentiful (SEGMENT_TIMEOUT_SECONDS).
    request_timeout: float = 10.0
    min_request_seconds: float = MIN_REQUEST_SECONDS

    def backoff(self, retry: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**(retry-1))] for the retry-th retry (1-based)."""
        return rng.uniform(0.0, min(self.cap, self.base * 2 ** (retry - 1)))

    def wait_before(self, retry: int, outcome: SendOutcome, rng: random.Random) -> float:
        """Segment's Retry-After / X-RateLimit-Reset is a floor (plus a little jitter so instances
        do not return in step); without it, the jittered backoff."""
        if outcome.retry_after is not None:
            return outcome.retry_after + rng.uniform(0.0, self.base)
        return self.backoff(retry, rng)

    def worth_waiting(self, wait: float, deadline: Deadline) -> bool:
        """Whether a retry after `wait` seconds would still leave time for a request."""
        return wait + self.min_request_seconds <= deadline.remaining()

    def timeout_within(self, deadline: Deadline) -> float | None:
        """The timeout for a request sent now, or None when too little time is left to send one."""
        remaining = deadline.remaining()
        if remaining < min(self.min_request_seconds, self.request_timeout):
            return None
        return min(self.request_timeout, remaining)


#: The outcome of a request that was never sent: no time was left for it in this invocation.
OUT_OF_TIME = SendOutcome(None, "out of time: left for SQS to redeliver")


def out_of_time(last: SendOutcome) -> SendOutcome:
    """The last answer, saying that time (not the attempt count) ended the retries."""
    if last is OUT_OF_TIME:
        return last
    return replace(last, error=f"{last.error or 'failed'}; out of time for retries")
