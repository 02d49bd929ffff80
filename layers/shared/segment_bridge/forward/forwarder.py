"""Forward: queued Spec messages to each tenant's Segment workspace, reporting exactly what failed.

Records are grouped by tenant and the tenants are delivered concurrently (a small thread pool
sharing the instance's rate limiter and the invocation's deadline), so one tenant's broken
secret, 400 storm or slow answers do not hold the others back. Each tenant's messages are packed
into as few /v1/batch requests as the limits allow and sent by `TenantDelivery` (retries, 400
isolation, the region's circuit breaker). Then every record is settled from its messages'
outcomes, as `policy.settle` decides:

- all delivered: done;
- delivered or rejected only: done, and the rejected messages go to the DLQ with the reason;
- anything that may still be delivered failed: its visibility is set to its backoff
  (`policy.RedeliverySchedule`, through `ports.Redelivery`) and it is reported in
  `batchItemFailures`; SQS brings it back then (its messageIds are unchanged, so Segment drops
  whatever part had already arrived);
- nothing left to try (past `MaxDeliveryAgeHours`, after that receive's real attempt; the
  backstop's last receive; a 400 not isolated after `ISOLATION_RECEIVES`): what was not
  delivered goes to the DLQ with the reason, instead of SQS moving it silently.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from ..config import Settings
from ..errors import TenantConfigError
from ..observability import logger
from ..queue_format import RawBatch, UnreadableBody, split_body
from ..tenants import TenantDirectory, UnknownTenant
from .batching import Batch, pack_batches
from .breaker import Breakers, BreakerState
from .client import Target
from .dead_letters import DeadLetter, dead_letter_groups
from .delivery import DeliveryStats, IsolationBudget, TenantDelivery
from .policy import Action, Cause, MessageOutcome, RedeliverySchedule, Verdict, settle
from .ports import Concurrency, DeadLetterQueue, Pacer, Redelivery, SegmentSender
from .ratelimit import RateLimiter, paced_rate
from .retry import Deadline, RetryPolicy

#: Tenants delivered at once by one instance. Small: the rate limiter, not threads, sets the pace;
#: this only keeps a slow or broken tenant from blocking the rest of the batch.
TENANT_WORKERS = 4
#: Requests one tenant may have on the wire at once (its batches are dealt to this many lanes, each
#: a `TenantDelivery` of its own). One request at a time capped a tenant at 1 / Segment's round
#: trip per instance, about 6 requests/s at 150 ms: a deployment's one big tenant could not use the
#: partner cap. Each lane keeps delivery.py's rules; a broken tenant costs one failed request per lane.
TENANT_IN_FLIGHT = 2


@dataclass(frozen=True)
class QueuedRecord:
    record_id: str
    body: str
    receive_count: int = 1
    #: What ChangeMessageVisibility needs to give the record its backoff ("" : no backoff applied).
    receipt_handle: str = field(default="", repr=False)
    #: When SQS accepted the record (its SentTimestamp, epoch seconds); None: unknown, never too old.
    sent_at: float | None = None


_Item = TypeVar("_Item")
_Result = TypeVar("_Result")


def run_in_threads(work: Callable[[_Item], _Result], items: Sequence[_Item], workers: int, name: str) -> list[_Result]:
    """`ports.Concurrency` on a thread pool; a single item runs on the calling thread."""
    if len(items) <= 1 or workers <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix=name) as pool:
        return list(pool.map(work, items))


@dataclass
class ForwardReport:
    #: record id -> reason: reported as batchItemFailures, SQS redelivers them.
    failed: dict[str, str] = field(default_factory=dict)
    #: record id -> reason: some or all of the record's messages are on the DLQ (the record is done).
    dead_lettered: dict[str, str] = field(default_factory=dict)
    records: int = 0
    messages_received: int = 0
    messages_forwarded: int = 0
    messages_dead_lettered: int = 0
    #: record id -> seconds: failed records whose backoff was applied (visibility changed).
    postponed: dict[str, int] = field(default_factory=dict)
    #: Records given up because they were older than MaxDeliveryAgeHours.
    records_expired: int = 0
    #: Age of the oldest record received (seconds since SQS accepted it); 0 when unknown.
    oldest_age_seconds: float = 0.0
    #: Every region's breaker as this instance left it.
    breakers: list[BreakerState] = field(default_factory=list)
    #: Segment requests of every tenant: counts, retries, isolation, answers by status.
    delivery: DeliveryStats = field(default_factory=DeliveryStats)


@dataclass
class _Parsed:
    record: QueuedRecord
    #: Each message once, as its JSON text: sent to Segment and, if it comes to that, to the DLQ.
    batch: RawBatch
    #: Hours since SQS accepted the record (None: unknown).
    age_hours: float | None = None
    #: Past MaxDeliveryAgeHours when received: this receive is its last real attempt.
    expired: bool = False


#: One tenant's delivery: each of its records' message outcomes, and its request statistics.
_TenantResult = tuple[dict[str, list[MessageOutcome]], DeliveryStats]


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Forwarder:
    def __init__(
        self,
        settings: Settings,
        tenants: TenantDirectory,
        client: SegmentSender,
        dead_letters: DeadLetterQueue,
        limiter: Pacer | None = None,
        clock: Callable[[], str] = utc_now_iso,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
        policy: RetryPolicy | None = None,
        redelivery: Redelivery | None = None,
        now: Callable[[], float] = time.time,
        concurrency: Concurrency = run_in_threads,
    ) -> None:
        self.settings = settings
        self.tenants = tenants
        self.client = client
        self.dead_letters = dead_letters
        self.limiter = limiter or RateLimiter(paced_rate(settings.instance_requests_per_second))
        self.clock = clock
        self.rng = rng or random.Random()
        self.sleep = sleep
        self.policy = policy or RetryPolicy(request_timeout=settings.segment_timeout_seconds)
        #: Where failed records get their backoff; None (tests, the chaos bench): the queue's own timeout.
        self.redelivery = redelivery
        #: Wall clock (epoch seconds): records' ages, the breakers, the backoff's slots.
        self.now = now
        self.concurrency = concurrency
        self.schedule = RedeliverySchedule.for_settings(settings)
        #: One circuit breaker per region, kept across the invocations of this execution environment.
        self.breakers = Breakers(now, settings.breaker_probe_seconds)

    def forward(self, records: list[QueuedRecord], deadline: Deadline | None = None) -> ForwardReport:
        """Deliver `records`; stop sending at `deadline` (the handler derives it from the Lambda context)."""
        deadline = deadline or Deadline.after(float("inf"))
        report = ForwardReport(records=len(records))
        received_at = self.now()
        max_age_hours = self.settings.max_delivery_age_hours
        by_tenant: dict[str, list[_Parsed]] = defaultdict(list)
        for record in records:
            age_hours = None if record.sent_at is None else max(0.0, received_at - record.sent_at) / 3600
            if age_hours is not None:
                report.oldest_age_seconds = max(report.oldest_age_seconds, age_hours * 3600)
            try:
                batch = split_body(record.body)
            except UnreadableBody as exc:
                # Can never succeed: straight to the DLQ, body untouched, with the reason.
                unreadable = DeadLetter(record.body, str(exc), status=None, tenant="", source="", message_count=0)
                self._dead_letter(report, record, unreadable)
                continue
            report.messages_received += len(batch.messages)
            expired = age_hours is not None and age_hours >= max_age_hours
            by_tenant[batch.tenant].append(_Parsed(record, batch, age_hours, expired))

        outcomes = self._deliver_tenants(report, by_tenant, deadline)
        retries: list[tuple[QueuedRecord, int]] = []
        for items in by_tenant.values():
            for parsed in items:
                delay = self._settle(report, parsed, outcomes[parsed.record.record_id])
                if delay is not None:
                    retries.append((parsed.record, delay))
        self._postpone(report, retries)
        report.breakers = self.breakers.states()
        return report

    # -- delivery -------------------------------------------------------------------------
    def _deliver_tenants(
        self, report: ForwardReport, by_tenant: dict[str, list[_Parsed]], deadline: Deadline
    ) -> dict[str, list[MessageOutcome]]:
        """Outcome of every message, per record id."""
        jobs = [(tenant, items, random.Random(self.rng.getrandbits(64))) for tenant, items in by_tenant.items()]

        def deliver(job: tuple[str, list[_Parsed], random.Random]) -> _TenantResult:
            tenant, items, rng = job
            return self._deliver_tenant(tenant, items, rng, deadline)

        results = self.concurrency(deliver, jobs, TENANT_WORKERS, "tenant")
        outcomes: dict[str, list[MessageOutcome]] = {}
        for per_record, stats in results:
            outcomes.update(per_record)
            report.delivery.add(stats)
        return outcomes

    def _deliver_tenant(
        self, tenant_id: str, items: list[_Parsed], rng: random.Random, deadline: Deadline
    ) -> _TenantResult:
        try:
            return self._send_tenant(tenant_id, items, rng, deadline)
        except Exception as exc:  # a bug must not cost other tenants their deliveries
            logger.exception("tenant delivery crashed; its records will be retried", extra={"tenant": tenant_id})
            crashed = MessageOutcome(Verdict.FAILED, f"internal error: {type(exc).__name__}", None, Cause.TRANSIENT)
            return _all(items, crashed), DeliveryStats()

    def _send_tenant(
        self, tenant_id: str, items: list[_Parsed], rng: random.Random, deadline: Deadline
    ) -> _TenantResult:
        try:
            tenant = self.tenants.get(tenant_id)
        except (UnknownTenant, TenantConfigError) as exc:
            reason = f"tenant {tenant_id!r} has no usable secret" if isinstance(exc, UnknownTenant) else str(exc)
            logger.error("tenant unusable; its records will be retried", extra={"tenant": tenant_id, "reason": reason})
            return _all(items, MessageOutcome(Verdict.FAILED, reason, None, Cause.TENANT)), DeliveryStats()
        except Exception as exc:  # Secrets Manager unreachable or throttled
            logger.warning("tenant lookup failed", extra={"tenant": tenant_id, "error": type(exc).__name__})
            reason = f"tenant lookup failed: {type(exc).__name__}"
            return _all(items, MessageOutcome(Verdict.FAILED, reason, None, Cause.TRANSIENT)), DeliveryStats()

        entries: list[tuple[int, str, int]] = []  # owner = the message's index across `items`
        for parsed in items:
            for encoded in parsed.batch.messages:
                # ASCII text (the common case, checked in O(1)) is its own UTF-8.
                entries.append(
                    (len(entries), encoded, len(encoded) if encoded.isascii() else len(encoded.encode("utf-8")))
                )
        target = Target.for_tenant(tenant_id, tenant)  # Basic auth, or OAuth with the writeKey in the body
        batches = pack_batches(entries, envelope_extra=len(target.body_members))
        last_chance = any(parsed.expired for parsed in items)
        by_index, stats = self._deliver_in_lanes(target, batches, rng, deadline, last_chance)
        per_record: dict[str, list[MessageOutcome]] = {}
        index = 0
        for parsed in items:
            count = len(parsed.batch.messages)
            per_record[parsed.record.record_id] = [by_index[i] for i in range(index, index + count)]
            index += count
        return per_record, stats

    def _deliver_in_lanes(
        self, target: Target, batches: list[Batch[int]], rng: random.Random, deadline: Deadline, last_chance: bool
    ) -> tuple[dict[int, MessageOutcome], DeliveryStats]:
        """Deal `batches` to up to TENANT_IN_FLIGHT lanes (in order within each) and deliver them at once.

        The lanes share the instance's rate limiter, the region's breaker, the deadline and the
        tenant's 400 isolation budget, so a tenant costs no more requests than with one lane.
        """
        lanes = max(1, min(TENANT_IN_FLIGHT, len(batches)))
        budget = IsolationBudget()
        deliveries = [
            TenantDelivery(
                self.client,
                target,
                policy=self.policy,
                deadline=deadline,
                limiter=self.limiter,
                sent_at=self.clock,
                rng=random.Random(rng.getrandbits(64)),
                sleep=self.sleep,
                isolation_budget=budget,
                breaker=self.breakers[target.region],
                last_chance=last_chance,
            )
            for _ in range(lanes)
        ]
        results = self.concurrency(
            lambda lane: deliveries[lane].deliver(batches[lane::lanes]), list(range(lanes)), lanes, "lane"
        )
        by_index: dict[int, MessageOutcome] = {}
        stats = DeliveryStats()
        for delivery, outcomes in zip(deliveries, results, strict=False):
            by_index.update(outcomes)
            stats.add(delivery.stats)
        return by_index, stats

    # -- settling each record -------------------------------------------------------------
    def _settle(self, report: ForwardReport, parsed: _Parsed, outcomes: list[MessageOutcome]) -> int | None:
        """Apply `policy.settle` to one record; returns its backoff in seconds when it is to come back."""
        record = parsed.record
        report.messages_forwarded += sum(o.verdict is Verdict.DELIVERED for o in outcomes)
        settlement = settle(
            outcomes,
            receive_count=record.receive_count,
            max_receive_count=self.settings.max_receive_count,
            age_hours=parsed.age_hours,
            expired=parsed.expired,
        )
        if settlement.action is Action.RETRY:
            report.failed[record.record_id] = settlement.reason
            return self.schedule.delay(record.receive_count, self.now(), self.rng)
        if settlement.action is Action.DEAD_LETTER:
            report.records_expired += parsed.expired and any(o.verdict is Verdict.FAILED for o in outcomes)
            for dead in dead_letter_groups(parsed.batch, settlement.outcomes):
                self._dead_letter(report, record, dead)
        return None

    def _postpone(self, report: ForwardReport, retries: list[tuple[QueuedRecord, int]]) -> None:
        """Give each record to retry its backoff (before the handler reports it failed)."""
        delays = [(record, delay) for record, delay in retries if record.receipt_handle]
        if self.redelivery is None or not delays:
            return
        try:
            refused = self.redelivery.postpone([(record.receipt_handle, delay) for record, delay in delays])
        except Exception as exc:  # they come back after the queue's own visibility timeout instead
            logger.warning("backoff not applied", extra={"records": len(delays), "error": type(exc).__name__})
            return
        for record, delay in delays:
            if record.receipt_handle not in refused:
                report.postponed[record.record_id] = delay

    def _dead_letter(self, report: ForwardReport, record: QueuedRecord, dead: DeadLetter) -> None:
        try:
            self.dead_letters.dead_letter(
                dead.body, dead.reason, dead.attributes(record.record_id, record.receive_count)
            )
        except Exception as exc:  # leave the whole record to SQS (redelivery, then its redrive policy)
            logger.error("dead-lettering failed", extra={"record_id": record.record_id, "error": type(exc).__name__})
            report.failed[record.record_id] = dead.reason
            return
        report.dead_lettered.setdefault(record.record_id, dead.reason)
        report.messages_dead_lettered += dead.message_count
        logger.error(
            "dead-lettered",
            extra={
                "tenant": dead.tenant,
                "record_id": record.record_id,
                "messages": dead.message_count,
                "status": dead.status,
                "reason": dead.reason,
            },
        )


def _all(items: list[_Parsed], outcome: MessageOutcome) -> dict[str, list[MessageOutcome]]:
    return {p.record.record_id: [outcome] * len(p.batch.messages) for p in items}
