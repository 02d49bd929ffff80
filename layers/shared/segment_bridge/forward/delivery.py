"""Deliver one tenant's packed batches and decide, message by message, what happened.

- Transient answers (429, 5xx, timeouts, dropped connections) are retried within the invocation's
  deadline, as `retry.RetryPolicy` decides (`TenantDelivery._send` runs the attempts).
- A 400 (or 413) means the batch can never succeed as is: it is split in halves until the
  offending messages are alone; everything else is delivered and only they are `REJECTED`.
  Splitting costs requests, so a tenant gets `ISOLATION_REQUEST_BUDGET` of them per invocation;
  beyond that the rest is `FAILED` and SQS brings it back (a 400 storm cannot eat the budget).
- Any other final failure (retries or time exhausted, 401/403/404) stops the tenant for this
  invocation: its later batches are `FAILED` without being sent, so a broken or slow tenant
  gives its time and request budget back to the others.
"""

from __future__ import annotations

import random
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from .batching import Batch
from .client import SendOutcome, Target
from .ports import Pacer, SegmentSender
from .retry import OUT_OF_TIME, Deadline, RetryPolicy, out_of_time

#: Statuses that condemn a batch's content rather than the request: bisect to find the culprits.
BISECT_STATUSES = frozenset({400, 413})
#: Sub-batch requests one tenant may spend isolating rejected messages per invocation. One bad
#: message in a 2,500-message batch costs about 2 x log2(2,500) = 24 requests.
ISOLATION_REQUEST_BUDGET = 64


class Verdict(str, Enum):
    DELIVERED = "delivered"
    #: Segment refused the message itself (400 alone in its batch): dead-letter, never retry.
    REJECTED = "rejected"
    #: Not delivered in this invocation; SQS redelivers its record.
    FAILED = "failed"


@dataclass(frozen=True)
class MessageOutcome:
    verdict: Verdict
    reason: str = ""
    status: int | None = None


DELIVERED = MessageOutcome(Verdict.DELIVERED)


@dataclass
class DeliveryStats:
    requests: int = 0
    retries: int = 0
    isolation_requests: int = 0
    statuses: Counter[str] = field(default_factory=Counter)

    def add(self, other: DeliveryStats) -> None:
        self.requests += other.requests
        self.retries += other.retries
        self.isolation_requests += other.isolation_requests
        self.statuses.update(other.statuses)

    def record(self, outcome: SendOutcome, retry: bool) -> None:
        self.requests += 1
        self.retries += retry
        self.statuses[status_label(outcome)] += 1


def describe(outcome: SendOutcome) -> str:
    if outcome.status is None:
        return f"no answer from Segment ({outcome.error})"
    detail = f": {outcome.error}" if outcome.error else ""
    return f"Segment answered {outcome.status}{detail}"


def status_label(outcome: SendOutcome) -> str:
    """Metric-friendly: the HTTP status, or Timeout / ConnectionError when there was no answer."""
    if outcome.status is not None:
        return str(outcome.status)
    return "Timeout" if outcome.error == "timeout" else "ConnectionError"


class TenantDelivery:
    """One tenant's batches, in order, through `client` to `target`, paced by the instance's limiter."""

    def __init__(
        self,
        client: SegmentSender,
        target: Target,
        *,
        policy: RetryPolicy,
        deadline: Deadline,
        limiter: Pacer,
        sent_at: Callable[[], str],
        rng: random.Random,
        sleep: Callable[[float], None] = time.sleep,
        isolation_budget: int = ISOLATION_REQUEST_BUDGET,
    ) -> None:
        self.client = client
        self.target = target
        self.policy = policy
        self.deadline = deadline
        self.limiter = limiter
        self.sent_at = sent_at
        self.rng = rng
        self.sleep = sleep
        self.isolation_budget = isolation_budget
        self.stats = DeliveryStats()

    def deliver(self, batches: list[Batch[int]]) -> dict[int, MessageOutcome]:
        """Outcome per owner (message index) of every item in `batches`."""
        outcomes: dict[int, MessageOutcome] = {}
        work = deque((batch, False) for batch in batches)  # (batch, made by splitting)
        budget = self.isolation_budget
        halted: MessageOutcome | None = None
        while work:
            batch, is_half = work.popleft()
            if halted is not None:
                outcomes.update(dict.fromkeys(batch.owners, halted))
                continue
            self.stats.isolation_requests += is_half
            outcome = self._send(batch)
            if outcome.ok:
                outcomes.update(dict.fromkeys(batch.owners, DELIVERED))
            elif outcome.status in BISECT_STATUSES and len(batch) == 1:
                outcomes[batch.owners[0]] = MessageOutcome(Verdict.REJECTED, describe(outcome), outcome.status)
            elif outcome.status in BISECT_STATUSES and budget >= 2:
                budget -= 2
                first, second = batch.split()
                work.extendleft(((second, True), (first, True)))  # depth first, order kept
            elif outcome.status in BISECT_STATUSES:
                reason = f"{describe(outcome)} (not isolated: {self.isolation_budget} split requests spent)"
                outcomes.update(dict.fromkeys(batch.owners, MessageOutcome(Verdict.FAILED, reason, outcome.status)))
            else:
                outcomes.update(
                    dict.fromkeys(batch.owners, MessageOutcome(Verdict.FAILED, describe(outcome), outcome.status))
                )
                halted = MessageOutcome(
                    Verdict.FAILED, f"not sent: an earlier request failed ({describe(outcome)})", outcome.status
                )
        return outcomes

    def _send(self, batch: Batch[int]) -> SendOutcome:
        """One batch until a final answer (200 or a 4xx other than 429), attempts run out, or time does.

        Each attempt is prepared afresh (so `sentAt` is the time it leaves), then waits for a token:
        the limiter paces what reaches the wire, and retries count against the same budget.
        Returns the last outcome; `OUT_OF_TIME` if not even one attempt fitted.
        """
        outcome = OUT_OF_TIME
        for number in range(1, self.policy.max_attempts + 1):
            if number > 1:
                wait = self.policy.wait_before(number - 1, outcome, self.rng)
                if not self.policy.worth_waiting(wait, self.deadline):
                    return out_of_time(outcome)
                self.sleep(wait)
            request = self.client.prepare(self.target, batch, self.sent_at())
            self.limiter.acquire()
            timeout = self.policy.timeout_within(self.deadline)
            if timeout is None:
                return out_of_time(outcome)
            outcome = self.client.send(request, timeout)
            self.stats.record(outcome, retry=number > 1)
            if outcome.ok or not outcome.retryable:
                return outcome
        return outcome
