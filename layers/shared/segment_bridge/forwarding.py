"""Forward: queued Spec messages to each tenant's Segment workspace, reporting exactly what failed.

Records are grouped by tenant; a tenant's messages are packed into as few /v1/batch requests as
the limits allow. A record succeeds only when every request carrying one of its messages got a
200; otherwise it is reported as a batch item failure and SQS redelivers it (its messageIds are
unchanged, so Segment drops whatever part had already arrived). On its last allowed receive a
failing record is written to the DLQ by us, with the reason, instead of silently by SQS.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from pydantic import ValidationError

from .aws import DeadLetterQueue, encode_json
from .batching import pack_batches
from .config import Settings
from .errors import TenantConfigError
from .observability import logger
from .queue_format import QueuedBatch
from .ratelimit import RateLimiter
from .segment_client import SegmentClient
from .tenants import TenantDirectory, UnknownTenant


@dataclass(frozen=True)
class QueuedRecord:
    record_id: str
    body: str
    receive_count: int = 1


@dataclass
class ForwardReport:
    failed: dict[str, str] = field(default_factory=dict)  # record id -> reason
    dead_lettered: dict[str, str] = field(default_factory=dict)
    messages_forwarded: int = 0
    requests: int = 0
    statuses: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Forwarder:
    def __init__(
        self,
        settings: Settings,
        tenants: TenantDirectory,
        client: SegmentClient,
        dead_letters: DeadLetterQueue,
        limiter: RateLimiter | None = None,
        clock: Callable[[], str] = utc_now_iso,
    ) -> None:
        self.settings = settings
        self.tenants = tenants
        self.client = client
        self.dead_letters = dead_letters
        self.limiter = limiter or RateLimiter(settings.instance_requests_per_second)
        self.clock = clock

    def forward(self, records: list[QueuedRecord]) -> ForwardReport:
        report = ForwardReport()
        by_tenant: dict[str, list[tuple[QueuedRecord, QueuedBatch]]] = defaultdict(list)
        tenant_of: dict[str, str] = {}
        for record in records:
            try:
                batch = QueuedBatch.model_validate_json(record.body)
            except ValidationError as exc:
                # Can never succeed: straight to the DLQ with the reason, no retries.
                self._dead_letter(report, record, f"unreadable queue message: {exc.error_count()} validation error(s)", "")
                continue
            by_tenant[batch.tenant].append((record, batch))
            tenant_of[record.record_id] = batch.tenant

        for tenant_id, items in by_tenant.items():
            self._forward_tenant(report, tenant_id, items)

        by_id = {record.record_id: record for record in records}
        for record_id, reason in list(report.failed.items()):
            record = by_id[record_id]
            if record.receive_count >= self.settings.max_receive_count:
                del report.failed[record_id]
                self._dead_letter(report, record, reason, tenant_of.get(record_id, ""))
        return report

    def _forward_tenant(self, report: ForwardReport, tenant_id: str, items: list[tuple[QueuedRecord, QueuedBatch]]) -> None:
        try:
            tenant = self.tenants.get(tenant_id)
        except (UnknownTenant, TenantConfigError) as exc:
            reason = f"tenant {tenant_id!r} has no usable secret" if isinstance(exc, UnknownTenant) else str(exc)
            logger.error("tenant unusable; its records will be retried", extra={"tenant": tenant_id, "reason": reason})
            for record, _ in items:
                report.failed[record.record_id] = reason
            return
        except Exception as exc:
            logger.warning("tenant lookup failed", extra={"tenant": tenant_id, "error": type(exc).__name__})
            for record, _ in items:
                report.failed[record.record_id] = f"tenant lookup failed: {type(exc).__name__}"
            return

        write_key = tenant.write_key.get_secret_value()
        entries = []
        for record, batch in items:
            for message in batch.messages:
                encoded = encode_json(message)
                entries.append((record.record_id, str(message.get("messageId", "")), encoded, len(encoded.encode("utf-8"))))
        for request in pack_batches(entries):
            self.limiter.acquire()
            outcome = self.client.post_batch(tenant.region, write_key, request.body(self.clock()))
            report.requests += 1
            report.statuses[str(outcome.status or "network")] += 1
            if outcome.ok:
                report.messages_forwarded += len(request.items)
                continue
            reason = f"segment answered {outcome.status or 'no response'}: {outcome.error or ''}".strip()
            logger.warning("segment request failed", extra={"tenant": tenant_id, "status": outcome.status, "error": outcome.error})
            for owner in set(request.owners):
                report.failed.setdefault(owner, reason)

    def _dead_letter(self, report: ForwardReport, record: QueuedRecord, reason: str, tenant: str) -> None:
        try:
            self.dead_letters.dead_letter(
                record.body, reason, {"tenant": tenant, "source_record_id": record.record_id, "receive_count": str(record.receive_count)}
            )
            report.dead_lettered[record.record_id] = reason
            logger.error("record dead-lettered", extra={"tenant": tenant, "record_id": record.record_id, "reason": reason})
        except Exception as exc:  # leave it to SQS's redrive policy rather than lose it
            logger.error("dead-lettering failed", extra={"record_id": record.record_id, "error": type(exc).__name__})
            report.failed[record.record_id] = reason
