"""`segment-bridge status`: is the bridge keeping up, is Segment reachable, what needs a human.

One screen: the main queue's depth, the age of its oldest message, each region's circuit breaker
as the forwarder last reported it, and the dead-letter queue by tenant and by reason.

Where each figure comes from:
- depth: SQS `GetQueueAttributes` (visible; in flight, which during an outage is mostly records
  waiting out their backoff; delayed);
- oldest message: the forwarder's own `OldestMessageAgeSeconds` metric (from each record's
  SentTimestamp), next to SQS's `ApproximateAgeOfOldestMessage`, which stops counting a message
  after a few receives and so misses exactly the messages an outage keeps;
- breakers: the latest `SegmentBreakerOpen` datapoint per region (CloudWatch, one-minute
  resolution). Metrics rather than a state record the forwarder would write: the breaker lives in
  each warm instance and the forwarder already reports it every invocation (the alarms use the
  same datapoints), so there is nothing more to write on the hot path, no table to provision and
  no permission to grant. The cost is a minute or two of lag, and no report at all when no
  invocation touched a region, which is itself the answer: nothing of that region is waiting;
- dead letters: read as `dlq inspect` reads them (hidden for 30 s, then released; nothing is
  removed), counted by tenant and by (status, reason).

Needs `sqs:GetQueueAttributes`, `sqs:ReceiveMessage`, `sqs:ChangeMessageVisibility` on the DLQ and
`cloudwatch:GetMetricData`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from segment_bridge.forward import BREAKER_OPEN_METRIC, OLDEST_AGE_METRIC
from segment_bridge.limits import SEGMENT_BATCH_URLS
from segment_bridge.observability import NAMESPACE, SERVICE

from .cli_dlq import PEEK_VISIBILITY_SECONDS, receive_batches, release, stack_outputs, summarize

#: How far back the breaker's last report and the oldest age are looked for, by default.
DEFAULT_MINUTES = 15


def _client(service: str) -> Any:
    import boto3

    return boto3.client(service)


def queue_depth(sqs: Any, url: str) -> dict[str, int]:
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    visible, hidden, delayed = (int(attributes.get(name, 0)) for name in names)
    return {"visible": visible, "in_flight": hidden, "delayed": delayed, "total": visible + hidden + delayed}


def latest_metrics(cloudwatch: Any, queue_name: str, minutes: int, now: datetime) -> dict[str, Any]:
    """The newest datapoint (and the window's maximum) of every metric status reads."""
    queries: dict[str, tuple[str, str, list[dict[str, str]]]] = {
        "oldest": (NAMESPACE, OLDEST_AGE_METRIC, [{"Name": "service", "Value": SERVICE}]),
        "sqs_oldest": ("AWS/SQS", "ApproximateAgeOfOldestMessage", [{"Name": "QueueName", "Value": queue_name}]),
        **{
            f"breaker_{region}": (
                NAMESPACE,
                BREAKER_OPEN_METRIC,
                [{"Name": "region", "Value": region}, {"Name": "service", "Value": SERVICE}],
            )
            for region in SEGMENT_BATCH_URLS
        },
    }
    response = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": key,
                "MetricStat": {
                    "Metric": {"Namespace": namespace, "MetricName": name, "Dimensions": dimensions},
                    "Period": 60,
                    "Stat": "Maximum",
                },
                "ReturnData": True,
            }
            for key, (namespace, name, dimensions) in queries.items()
            if key != "sqs_oldest" or queue_name
        ],
        StartTime=now - timedelta(minutes=minutes),
        EndTime=now + timedelta(minutes=1),
        ScanBy="TimestampDescending",
    )
    found: dict[str, Any] = {}
    for result in response.get("MetricDataResults", []):
        points = sorted(zip(result.get("Timestamps", []), result.get("Values", []), strict=False), reverse=True)
        if points:
            found[result["Id"]] = {
                "value": points[0][1],
                "at": points[0][0].astimezone(UTC).isoformat(timespec="seconds"),
                "max": max(v for _, v in points),
            }
    return found


def build_status(queue_url: str, dlq_url: str, minutes: int, limit: int, now: datetime | None = None) -> dict[str, Any]:
    sqs, cloudwatch = _client("sqs"), _client("cloudwatch")
    now = now or datetime.now(UTC)
    status: dict[str, Any] = {"checked_at": now.isoformat(timespec="seconds"), "window_minutes": minutes}
    if queue_url:
        status["queue"] = queue_depth(sqs, queue_url)
    metrics = latest_metrics(cloudwatch, queue_url.rstrip("/").rsplit("/", 1)[-1] if queue_url else "", minutes, now)
    oldest, sqs_oldest = metrics.get("oldest"), metrics.get("sqs_oldest")
    status["oldest_message_seconds"] = oldest["max"] if oldest else None
    status["sqs_oldest_message_seconds"] = sqs_oldest["value"] if sqs_oldest else None
    status["breakers"] = {
        region: (
            {"state": "open" if report["value"] >= 1 else "closed", "reported_at": report["at"]}
            if (report := metrics.get(f"breaker_{region}"))
            else {"state": "no report", "reported_at": None}
        )
        for region in SEGMENT_BATCH_URLS
    }
    received = [item for batch in receive_batches(sqs, dlq_url, limit, PEEK_VISIBILITY_SECONDS) for item in batch]
    release(sqs, dlq_url, received)
    summary = summarize(received, samples=0)
    summary.pop("samples")
    status["dead_letters"] = {**summary, "depth": queue_depth(sqs, dlq_url)["total"], "read": len(received)}
    return status


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "no report"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


def render(status: dict[str, Any]) -> list[str]:
    window = status["window_minutes"]
    lines = []
    if "queue" in status:
        q = status["queue"]
        waiting = f"{q['visible']:,} waiting, {q['in_flight']:,} in flight or backing off"
        lines.append(f"main queue     {waiting}, {q['delayed']:,} delayed")
    lines.append(
        f"oldest message {_age(status['oldest_message_seconds'])} (the forwarder's measure, last {window} min); "
        f"SQS's own: {_age(status['sqs_oldest_message_seconds'])} (it stops counting after a few receives)"
    )
    for number, (region, breaker) in enumerate(status["breakers"].items()):
        label = "segment        " if number == 0 else "               "
        if breaker["state"] == "no report":
            lines.append(f"{label}{region}: no report in the last {window} min (no invocation sent anything there)")
        else:
            verdict = "unreachable, circuit open" if breaker["state"] == "open" else "reachable, circuit closed"
            lines.append(f"{label}{region}: {verdict} (reported {breaker['reported_at']})")
    dead = status["dead_letters"]
    lines.append(
        f"dead letters   {dead['depth']:,} on the DLQ, {dead['messages']:,} Spec messages in the {dead['read']:,} read"
    )
    for tenant, counts in dead["by_tenant"].items():
        name = tenant or "(unknown)"
        lines.append(
            f"  tenant {name:<24} {counts['dead_letters']:>6} dead letter(s) {counts['messages']:>8} message(s)"
        )
    for row in dead["by_reason"]:
        status_code = f"[{row['status']}] " if row["status"] else ""
        lines.append(f"  {row['dead_letters']:>6} x {status_code}{row['reason']}")
    return lines


@click.command("status")
@click.option("--queue-url", envvar="QUEUE_URL", default="", help="Main queue URL (or QUEUE_URL).")
@click.option(
    "--dlq-url", envvar="DEAD_LETTER_QUEUE_URL", default="", help="Dead-letter queue URL (or DEAD_LETTER_QUEUE_URL)."
)
@click.option("--stack", default="", help="Read both URLs from this CloudFormation stack's outputs.")
@click.option("--minutes", default=DEFAULT_MINUTES, show_default=True, help="How far back to look for metrics.")
@click.option("--limit", default=1000, show_default=True, help="Most DLQ messages to read for the counts.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status_command(queue_url: str, dlq_url: str, stack: str, minutes: int, limit: int, as_json: bool) -> None:
    """Queue depth, oldest message, Segment's reachability per region, dead letters by tenant and reason."""
    if stack:
        outputs = stack_outputs(stack)
        queue_url = queue_url or outputs.get("QueueUrl", "")
        dlq_url = dlq_url or outputs.get("DeadLetterQueueUrl", "")
    if not dlq_url:
        raise click.UsageError("no dead-letter queue: pass --dlq-url, set DEAD_LETTER_QUEUE_URL, or use --stack")
    status = build_status(queue_url, dlq_url, minutes, limit)
    if as_json:
        click.echo(json.dumps(status, indent=2))
        return
    for line in render(status):
        click.echo(line)
