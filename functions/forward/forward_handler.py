"""SQS -> Lambda: hand the batch to the `Forwarder`, report per-record failures to SQS.

Delivery is decided for the whole batch at once (messages are grouped by tenant across records,
so no record is processed on its own), and the handler only turns that decision into the partial
batch response. Powertools' BatchProcessor is built for a handler per record; here it would only
format `batchItemFailures`, and importing it (asyncio for its async processor, every event data
class) was a sixth of this function's cold start (docs/benchmarks.md). Its contract is kept:
failed records are reported by id. A batch where nothing was delivered is reported the same way
when the forwarder gave its records their backoff (a Segment outage is not an error of this
function, and the `SegmentUnreachable` alarms say it); only when it could not (the visibility
change failed) does the invocation fail, so the event source mapping's own backoff applies.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from segment_bridge.config import get_settings
from segment_bridge.forward import (
    BREAKER_OPEN_METRIC,
    OLDEST_AGE_METRIC,
    Deadline,
    Forwarder,
    ForwardReport,
    QueuedRecord,
    SegmentClient,
    SqsDeadLetterQueue,
    SqsVisibility,
    TokenCache,
)
from segment_bridge.observability import NAMESPACE, SERVICE, freeze_setup_objects, logger, metrics
from segment_bridge.tenants import SecretsManagerTenants


class BatchNotDelivered(Exception):
    """No record of the batch was delivered: the invocation fails and SQS retries all of it."""


@lru_cache(maxsize=1)
def get_forwarder() -> Forwarder:
    settings = get_settings()
    forwarder = Forwarder(
        settings,
        SecretsManagerTenants(settings.secrets_prefix, settings.secrets_max_age_seconds),
        SegmentClient(
            {"us": settings.segment_url_us, "eu": settings.segment_url_eu},
            timeout=settings.segment_timeout_seconds,
            tokens=TokenCache({"us": settings.segment_oauth_url_us, "eu": settings.segment_oauth_url_eu}),
        ),
        SqsDeadLetterQueue(settings.dead_letter_queue_url),
        redelivery=SqsVisibility(settings.queue_url) if settings.queue_url else None,
    )
    freeze_setup_objects()
    return forwarder


def to_queued_record(record: dict[str, Any]) -> QueuedRecord:
    attributes = record.get("attributes") or {}
    sent = attributes.get("SentTimestamp")
    return QueuedRecord(
        record_id=record["messageId"],
        body=record.get("body") or "",
        receive_count=int(attributes.get("ApproximateReceiveCount", "1")),
        receipt_handle=record.get("receiptHandle") or "",
        sent_at=int(sent) / 1000 if sent else None,
    )


def record_metrics(report: ForwardReport) -> None:
    counts = {
        "MessagesDequeued": report.messages_received,
        "MessagesForwarded": report.messages_forwarded,
        "MessagesDeadLettered": report.messages_dead_lettered,
        "SegmentRequests": report.delivery.requests,
        "SegmentRetries": report.delivery.retries,
        "SegmentIsolationRequests": report.delivery.isolation_requests,
        "SegmentProbes": report.delivery.probes,
        "SegmentBatchesHeldBack": report.delivery.held_back,
        "RecordsFailed": len(report.failed),
        "RecordsPostponed": len(report.postponed),
        "RecordsDeadLettered": len(report.dead_lettered),
        "RecordsExpired": report.records_expired,
        **{f"SegmentStatus{status}": count for status, count in report.delivery.statuses.items()},
    }
    for name, value in counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    if report.records:
        metrics.add_metric(name=OLDEST_AGE_METRIC, unit=MetricUnit.Seconds, value=round(report.oldest_age_seconds))
    # Per region: a metric of its own with a `region` dimension (the others have only `service`).
    for state in report.breakers:
        regional = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
        regional.add_dimension(name="region", value=state.region)
        regional.add_metric(name=BREAKER_OPEN_METRIC, unit=MetricUnit.Count, value=int(state.open))
        regional.flush_metrics()


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = [to_queued_record(r) for r in event.get("Records", [])]
    forwarder = get_forwarder()
    report = forwarder.forward(records, Deadline.from_lambda_context(context))
    record_metrics(report)
    record_token_metrics(forwarder)
    return partial_batch_response(records, report)


def record_token_metrics(forwarder: Forwarder) -> None:
    """OAuth token requests of this invocation (only OAuth tenants make any)."""
    tokens = getattr(forwarder.client, "tokens", None)
    if not isinstance(tokens, TokenCache):
        return
    stats = tokens.take_stats()
    if stats.requests or stats.failures or stats.invalidated:
        metrics.add_metric(name="OAuthTokenRequests", unit=MetricUnit.Count, value=stats.requests)
        metrics.add_metric(name="OAuthTokenFailures", unit=MetricUnit.Count, value=stats.failures)
        metrics.add_metric(name="OAuthTokensRefused", unit=MetricUnit.Count, value=stats.invalidated)


def partial_batch_response(records: list[QueuedRecord], report: ForwardReport) -> dict[str, Any]:
    """`batchItemFailures` for the records to retry; raises when that is every record and none of
    them got its backoff (see module doc)."""
    failed = [r.record_id for r in records if r.record_id in report.failed]
    if records and len(failed) == len(records) and not report.postponed:
        reasons = sorted({report.failed[r] for r in failed})
        raise BatchNotDelivered(f"all {len(records)} records failed; SQS retries them: " + "; ".join(reasons[:3]))
    return {"batchItemFailures": [{"itemIdentifier": record_id} for record_id in failed]}
