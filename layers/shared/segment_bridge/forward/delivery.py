"""Deliver one tenant's packed batches and decide, message by message, what happened.

- Transient answers (429, 5xx, timeouts, dropped connections) are retried within the invocation's
  deadline, as `retry.RetryPolicy` decides (`TenantDelivery._send` runs the attempts).
- A 400 (or 413) means the batch can never succeed as is: it is split in halves until the
  offending messages are alone; everything else is delivered and only they are `REJECTED`.
  Splitting costs requests, so a tenant gets `ISOLATION_REQUEST_BUDGET` of them per invocation,
  shared by its lanes (`IsolationBudget`); beyond that the rest is `FAILED` and SQS brings it back
  (a 400 storm cannot eat the instance's request budget).
- Any other final failure (retries or time exhausted, 401/403/404) stops the tenant for this
  invocation: its later batches are `FAILED` without being sent, so a broken or slow tenant
  gives its time and request budget back to the others.
- The region's circuit breaker (`breaker`) is asked before every request: while it is open, the
  batches are `FAILED` at once (transient, so they come back on their backoff), except one small
  probe per interval; a record past its age limit (`last_chance`) still gets one real attempt.

Every failure carries its `policy.Cause`, which `policy.settle` decides on.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from .batching import Batch
from .breaker import PROBE_MESSAGES, CircuitBreaker, Permit
from .client import SendOutcome, Target
from .policy import DELIVERED, Cause, MessageOutcome, Verdict, classify
from .ports import Pacer, SegmentSender
from .retry import OUT_OF_TIME, Deadline, RetryPolicy, out_of_time

#: Sub-batch requests one tenant may spend isolating rejected messages per invocation. One bad
#: message in a 2,500-message batch costs about 2 x log2(2,500) = 24 requests.
ISOLATION_REQUEST_BUDGET = 64


class IsolationBudget:
    """The split requests one tenant may still spend in this invocation, shared by its lanes: two
    bad messages in one lane's full batches (~2 x 18 requests) must not run out of half of it."""

    def __init__(self, requests: int = ISOLATION_REQUEST_BUDGET) -> None:
        self.total = requests
        self._left = requests
        self._lock = threading.Lock()

    def take(self, requests: int) -> bool:
        with self._lock:
            if self._left < requests:
                return False
            self._left -= requests
            return True


@dataclass
class DeliveryStats:
    requests: int = 0
    retries: int = 0
    isolation_requests: int = 0
    #: Probes sent through an open breaker.
    probes: int = 0
    #: Batches not sent because their region's breaker was open.
    held_back: int = 0
    statuses: Counter[str] = field(default_factory=Counter)

    def add(self, other: DeliveryStats) -> None:
        self.requests += other.requests
        self.retries += other.retries
        self.isolation_requests += other.isolation_requests
        self.probes += other.probes
        self.held_back += other.held_back
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
        isolation_budget: int | IsolationBudget = ISOLATION_REQUEST_BUDGET,
        breaker: CircuitBreaker | None = None,
        last_chance: bool = False,
    ) -> None:
        self.client = client
        self.target = target
        self.policy = policy
        self.deadline = deadline
        self.limiter = limiter
        self.sent_at = sent_at
        self.rng = rng
        self.sleep = sleep
        self.isolation_budget = (
            isolation_budget if isinstance(isolation_budget, IsolationBudget) else IsolationBudget(isolation_budget)
        )
        self.breaker = breaker
        #: Some of these messages are past their age limit: send each batch once even if the breaker
        #: is open, so they are given up on Segment's answer, not on the breaker's word.
        self.last_chance = last_chance
        self.stats = DeliveryStats()

    def deliver(self, batches: list[Batch[int]]) -> dict[int, MessageOutcome]:
        """Outcome per owner (message index) of every item in `batches`."""
        outcomes: dict[int, MessageOutcome] = {}
        work = deque((batch, False) for batch in batches)  # (batch, made by splitting)
        halted: MessageOutcome | None = None
        while work:
            batch, is_half = work.popleft()
            if halted is not None:
                outcomes.update(dict.fromkeys(batch.owners, halted))
                continue
            permit = self.breaker.permit() if self.breaker is not None else Permit.SEND
            if permit is Permit.WAIT and not self.last_chance and self.breaker is not None:
                self.stats.held_back += 1
                held = MessageOutcome(Verdict.FAILED, self.breaker.held_back_reason(), None, Cause.TRANSIENT)
                outcomes.update(dict.fromkeys(batch.owners, held))
                continue
            if permit is Permit.PROBE and len(batch) > PROBE_MESSAGES:
                batch, rest = batch.split_at(PROBE_MESSAGES)
                work.appendleft((rest, is_half))
            self.stats.isolation_requests += is_half
            self.stats.probes += permit is Permit.PROBE
            # Through an open breaker (a probe, a last chance): one attempt, no retries into the outage.
            outcome = self._send(batch, attempts=self.policy.max_attempts if permit is Permit.SEND else 1)
            cause = classify(outcome)
            if cause is None:
                outcomes.update(dict.fromkeys(batch.owners, DELIVERED))
            elif cause is Cause.MESSAGE and len(batch) == 1:
                outcomes[batch.owners[0]] = MessageOutcome(Verdict.REJECTED, describe(outcome), outcome.status)
            elif cause is Cause.MESSAGE and self.isolation_budget.take(2):
                first, second = batch.split()
                work.extendleft(((second, True), (first, True)))  # depth first, order kept
            elif cause is Cause.MESSAGE:
                spent = self.isolation_budget.total
                reason = f"{describe(outcome)} (not isolated: {spent} split requests spent)"
                outcomes.update(
                    dict.fromkeys(batch.owners, MessageOutcome(Verdict.FAILED, reason, outcome.status, cause))
                )
            else:
                failed = MessageOutcome(Verdict.FAILED, describe(outcome), outcome.status, cause)
                outcomes.update(dict.fromkeys(batch.owners, failed))
                halted = MessageOutcome(
                    Verdict.FAILED, f"not sent: an earlier request failed ({describe(outcome)})", outcome.status, cause
                )
        return outcomes

    def _send(self, batch: Batch[int], attempts: int) -> SendOutcome:
        """One batch until a final answer (200 or a 4xx other than 429), attempts run out, or time does.

        Each attempt is prepared afresh (so `sentAt` is the time it leaves), then waits for a token:
        the limiter paces what reaches the wire, and retries count against the same budget. Every
        answer goes to the region's breaker; once it opens, no further retry is made.
        Returns the last outcome; `OUT_OF_TIME` if not even one attempt fitted.
        """
        outcome = OUT_OF_TIME
        for number in range(1, attempts + 1):
            if number > 1 and self.breaker is not None and self.breaker.is_open:
                return replace(outcome, error=f"{outcome.error or 'failed'}; circuit opened, not retried")
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
            if self.breaker is not None:
                self.breaker.record(outcome)
            if outcome.ok or not outcome.retryable:
                return outcome
        return outcome
