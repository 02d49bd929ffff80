"""The delivery policy: what a failure means, when a record comes back, and when it is given up.

Three questions, each answered in one place here:

1. **What kind of failure is it?** `classify` sorts every answer (and every non-answer) into a
   `Cause`: `TRANSIENT` (try again later: Segment or the way to it failed this time), `TENANT`
   (this tenant's own credentials or configuration are refused) or `MESSAGE` (Segment refuses the
   content). Everything that decides on failures reads it: the retries inside an invocation
   (`delivery`), the region's circuit breaker (`breaker`: only transient answers open it, so a
   tenant whose key is refused cannot), and the settling of each record (below). A new kind of
   failure (a token server, say) is reported as a `SendOutcome` and lands in the same three bins.
2. **When is a failed record received again?** `RedeliverySchedule`: capped exponential backoff
   across receives, from the record's receive count, with jitter, applied with
   ChangeMessageVisibility before the handler reports the record in `batchItemFailures`.
3. **When is it given up?** `settle`: by cause, never by count. A message goes to the DLQ only when
   it can never be delivered (a 400 isolated to it) or when its record is older than
   `MaxDeliveryAgeHours`, and then only after a real attempt in that receive (`Forwarder` sends an
   expired record even through an open breaker). The queue's `maxReceiveCount` stays as a
   backstop the schedule never reaches (`receives_to_expire`, docs/delivery.md "The backstop").

Pure decisions only: no clock, no AWS. `forwarder.Forwarder` applies them.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import TYPE_CHECKING

from ..limits import SQS_MAX_RECEIVE_COUNT, SQS_MAX_VISIBILITY_SECONDS

if TYPE_CHECKING:
    from ..config import Settings
    from .client import SendOutcome


# -- 1. what a failure means ------------------------------------------------------------------
class Cause(str, Enum):
    #: Segment (or the way to it) failed this time: 5xx, 408, 429, timeouts, dropped connections,
    #: an open circuit breaker, time running out, Secrets Manager unreachable, a crash of ours.
    TRANSIENT = "transient"
    #: This tenant's own requests are refused as configured: 401, 403, 404 and other 4xx, a
    #: missing or invalid secret. Other tenants in the region are fine; an operator can fix it.
    TENANT = "tenant"
    #: Segment refuses the content (400, 413): split until the offending messages are alone.
    MESSAGE = "message"


#: Statuses that condemn a batch's content rather than the request: bisect to find the culprits.
MESSAGE_REFUSED_STATUSES = frozenset({400, 413})
#: 4xx answers that mean "later", like 5xx: request timeout, rate limited.
TRANSIENT_CLIENT_STATUSES = frozenset({408, 429})


def classify(outcome: SendOutcome) -> Cause | None:
    """The cause of a failed request; None when it succeeded."""
    if outcome.ok:
        return None
    status = outcome.status
    if status is None or status >= 500 or status in TRANSIENT_CLIENT_STATUSES:
        return Cause.TRANSIENT
    if status in MESSAGE_REFUSED_STATUSES:
        return Cause.MESSAGE
    return Cause.TENANT


class Verdict(str, Enum):
    DELIVERED = "delivered"
    #: Segment refused the message itself (400 alone in its batch): dead-letter, never retry.
    REJECTED = "rejected"
    #: Not delivered in this receive; `settle` decides whether the record comes back.
    FAILED = "failed"


@dataclass(frozen=True)
class MessageOutcome:
    verdict: Verdict
    reason: str = ""
    status: int | None = None
    #: Why a FAILED message failed (None for the others).
    cause: Cause | None = None


DELIVERED = MessageOutcome(Verdict.DELIVERED)

#: Metric the forwarder emits each invocation: the age of the oldest record it received, from SQS's
#: SentTimestamp. SQS's own ApproximateAgeOfOldestMessage stops counting a message after a few
#: receives, which is every message of an outage; this one does not.
OLDEST_AGE_METRIC = "OldestMessageAgeSeconds"


# -- 2. when a failed record comes back -------------------------------------------------------
#: First wait before a record that failed is received again. Long enough that a blip (a deploy of
#: Segment's, a dropped connection) costs one more receive, short enough that it is still "soon".
#: Also the slot visible times are rounded up to (see `RedeliverySchedule.delay`).
REDELIVERY_BASE_SECONDS = 30.0
#: Longest wait between two receives of a failing record (30 s doubling: 30, 60, 120, 240, 480,
#: then 900). It bounds how long after Segment's recovery the last of a backlog comes back (about
#: 15 min) and how often a record is received during a long outage (4 times an hour).
REDELIVERY_CAP_SECONDS = 900.0
#: Each wait is drawn uniformly from [(1 - JITTER) x nominal, nominal]: records that failed
#: together come back spread over a fifth of their wait (3 min at the cap) instead of in step, and
#: the wait never falls below 80 % of nominal, which is what the backstop arithmetic counts on.
REDELIVERY_JITTER = 0.2
#: Receives held back under the backstop for receives that do not follow the schedule: a crash or
#: a Lambda timeout, or a visibility change that failed, brings a record back after the queue's
#: own 390 s. A hundred of them per record still cannot make the backstop fire first.
BACKSTOP_SLACK = 100


@dataclass(frozen=True)
class RedeliverySchedule:
    base: float = REDELIVERY_BASE_SECONDS
    cap: float = REDELIVERY_CAP_SECONDS
    jitter: float = REDELIVERY_JITTER

    @classmethod
    def for_settings(cls, settings: Settings) -> RedeliverySchedule:
        """The configured schedule, its cap stretched if the age limit needs it to stay under the backstop.

        With the defaults (168 h, a 1,000-receive backstop) the 15 min cap needs 845 receives, so
        nothing changes. Past about 190 h the cap grows (to ~28 min at the 335 h maximum) so that a
        record is still given up by age, with its reason, before SQS's redrive policy would move it
        without one. A backstop too small for any cap (tests set 3 or 4) is left to fire first.
        """
        schedule = cls(
            settings.redelivery_base_seconds, max(settings.redelivery_base_seconds, settings.redelivery_cap_seconds)
        )
        age = settings.max_delivery_age_hours * 3600
        budget = settings.max_receive_count - BACKSTOP_SLACK
        if schedule.receives_to_expire(age) <= budget:
            return schedule
        low, high = int(schedule.cap), SQS_MAX_VISIBILITY_SECONDS
        if replace(schedule, cap=high).receives_to_expire(age) > budget:
            return schedule
        while low < high:  # the smallest cap that fits: receives only fall as the cap grows
            middle = (low + high) // 2
            if replace(schedule, cap=middle).receives_to_expire(age) <= budget:
                high = middle
            else:
                low = middle + 1
        return replace(schedule, cap=float(high))

    def nominal(self, receive_count: int) -> float:
        """The wait after the `receive_count`-th receive failed: base x 2^(n-1), capped."""
        exponent = min(max(receive_count, 1) - 1, 32)  # 2^32 x base is far past any cap
        return min(self.cap, self.base * float(2**exponent))

    def delay(self, receive_count: int, now: float, rng: random.Random) -> int:
        """Seconds until the record should be visible again (a ChangeMessageVisibility timeout).

        The jittered wait ends on the next multiple of `base` on the wall clock: records due within
        the same slot become visible together, so the event source hands them to one invocation
        instead of one each (the invocation bound in docs/delivery.md). Rounding only lengthens.
        """
        nominal = self.nominal(receive_count)
        wait = rng.uniform((1 - self.jitter) * nominal, nominal)
        visible_at = math.ceil((now + wait) / self.base) * self.base
        return int(min(SQS_MAX_VISIBILITY_SECONDS, max(1, math.ceil(visible_at - now))))

    def shortest_wait(self, receive_count: int) -> float:
        return (1 - self.jitter) * self.nominal(receive_count)

    def receives_to_expire(self, age_seconds: float) -> int:
        """Most receives a record can have until the one that finds it past `age_seconds`.

        Every wait at its shortest (80 % of nominal; rounding to slots only adds): receive 1 at 0,
        receive n+1 at least `shortest_wait(1) + ... + shortest_wait(n)` later, and one more
        receive, past the limit, to give it up.
        """
        elapsed, receives = 0.0, 1
        while receives <= SQS_MAX_RECEIVE_COUNT * 10:
            elapsed += self.shortest_wait(receives)
            if elapsed > age_seconds:
                return receives + 1
            receives += 1
        return receives


# -- 3. when a record is given up -------------------------------------------------------------
class Action(str, Enum):
    #: Every message delivered: the record is done.
    DONE = "done"
    #: Something may still be delivered: back to SQS with its backoff.
    RETRY = "retry"
    #: Nothing left to try: the undelivered messages go to the DLQ (the record is done).
    DEAD_LETTER = "dead_letter"


@dataclass(frozen=True)
class Settlement:
    action: Action
    #: The messages' outcomes, with the reason a message was given up added to FAILED ones.
    outcomes: Sequence[MessageOutcome]
    #: For RETRY: the first failure's reason (what `batchItemFailures` is reported with).
    reason: str = ""


def settle(
    outcomes: Sequence[MessageOutcome],
    *,
    receive_count: int,
    max_receive_count: int,
    age_hours: float | None,
    expired: bool,
) -> Settlement:
    """What becomes of a record, from its messages' outcomes in this receive.

    `expired`: the record was past `MaxDeliveryAgeHours` when it was received (and so had its
    last real attempt in this receive). `receive_count >= max_receive_count`: this is the last
    receive before SQS's redrive policy would move it silently, so we move it, with a reason.
    """
    failed = [o for o in outcomes if o.verdict is Verdict.FAILED]
    if not failed:
        if all(o.verdict is Verdict.DELIVERED for o in outcomes):
            return Settlement(Action.DONE, outcomes)
        return Settlement(Action.DEAD_LETTER, outcomes)  # only rejected ones: never retried
    # A 400 whose isolation ran out of split requests is retried too: its messages may be fine, and
    # the next receive packs the record with others, so it usually resolves (docs/delivery.md).
    if not expired and receive_count < max_receive_count:
        # Rejected messages of this record are found again on redelivery; dead-lettering them now
        # would put them on the DLQ once per receive.
        return Settlement(Action.RETRY, outcomes, failed[0].reason)
    if expired:
        suffix = f"; given up after {age_hours or 0:.1f} h in the queue (MaxDeliveryAgeHours)"
    else:
        suffix = f"; given up on receive {receive_count} (the queue's maxReceiveCount backstop)"
    given_up = [replace(o, reason=o.reason + suffix) if o.verdict is Verdict.FAILED else o for o in outcomes]
    return Settlement(Action.DEAD_LETTER, given_up)
