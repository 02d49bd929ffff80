"""`segment-bridge dlq inspect|redrive`: why messages were dead-lettered, and sending them back.

Plain SQS calls only (ReceiveMessage, SendMessageBatch, DeleteMessageBatch), so it works against
moto and the local stack too, where StartMessageMoveTask does not exist. A redrive copies each
body byte for byte to the main queue and deletes it from the DLQ only after SQS confirmed the
send: an interrupted redrive can leave a message in both queues, never in neither, and since its
messageIds are unchanged Segment drops the second copy.

Queue URLs come from `--queue-url`/`--dlq-url` (or QUEUE_URL / DEAD_LETTER_QUEUE_URL), or from the
CloudFormation outputs of `--stack NAME`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import click

from segment_bridge.forward.dead_letters import DeadLetterView, read_dead_letter, string_attributes
from segment_bridge.queue_format import group_for_send

#: How long inspected messages stay hidden from other readers before they are released again.
PEEK_VISIBILITY_SECONDS = 30
#: How long a message being redriven stays hidden: enough for one send and delete round.
REDRIVE_VISIBILITY_SECONDS = 120
#: Long polling on each ReceiveMessage, so a short-poll miss does not end the scan early.
RECEIVE_WAIT_SECONDS = 1
#: Field names whose values are never printed.
SECRET_NAME = re.compile(
    r"(secret|token|password|passwd|authorization|credential|signature|api_?key|write_?key|"
    r"private_?key|access_?key|^key$)",
    re.IGNORECASE,
)
#: Values that look like credentials whatever their field: known prefixes, or long unbroken tokens
#: mixing upper case, lower case and digits (writeKeys do; hex ids and UUIDs do not).
SECRET_VALUE = re.compile(
    r"^(sk|rk|pk)_(live|test)_|^whsec_|^SG\.|^key-[0-9a-f]{8,}|"
    r"^(?=.*[A-Z])(?=.*[a-z])(?=.*[0-9])[A-Za-z0-9+/=_]{32,}$"
)
#: Most DLQ messages one redrive scans (each stays hidden while the scan runs).
SCAN_LIMIT = 100_000
MASK = "****"


@dataclass
class Received:
    message_id: str
    receipt_handle: str
    body: str
    attributes: dict[str, str]
    view: DeadLetterView


def mask_secrets(value: Any, name: str = "") -> Any:
    """A copy of `value` safe to print: secret-looking fields and values replaced by `****`."""
    if name and SECRET_NAME.search(name):
        return MASK
    if isinstance(value, dict):
        return {k: mask_secrets(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_secrets(v) for v in value]
    if isinstance(value, str) and SECRET_VALUE.search(value):
        return MASK
    return value


# -- SQS ----------------------------------------------------------------------------------------
def _sqs() -> Any:
    import boto3

    return boto3.client("sqs")


def _cloudformation() -> Any:
    import boto3

    return boto3.client("cloudformation")


def stack_outputs(stack: str) -> dict[str, str]:
    described = _cloudformation().describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def receive_batches(sqs: Any, queue_url: str, limit: int, visibility: int) -> Iterator[list[Received]]:
    """Up to `limit` distinct messages, a ReceiveMessage call at a time, each hidden for `visibility` s."""
    seen: set[str] = set()
    while len(seen) < limit:
        batch = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(10, limit - len(seen)),
            VisibilityTimeout=visibility,
            WaitTimeSeconds=RECEIVE_WAIT_SECONDS,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        fresh = [m for m in batch if m["MessageId"] not in seen]
        if not fresh:
            return
        seen.update(m["MessageId"] for m in fresh)
        yield [_received(m) for m in fresh]


def _received(message: dict[str, Any]) -> Received:
    attributes = string_attributes(message)
    return Received(
        message["MessageId"],
        message["ReceiptHandle"],
        message["Body"],
        attributes,
        read_dead_letter(message["Body"], attributes),
    )


def release(sqs: Any, queue_url: str, messages: list[Received]) -> None:
    """Make messages visible again at once (we only looked, or left them where they were)."""
    for start in range(0, len(messages), 10):
        sqs.change_message_visibility_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": 0}
                for i, m in enumerate(messages[start : start + 10])
            ],
        )


def move(sqs: Any, source_url: str, target_url: str, messages: list[Received]) -> tuple[list[Received], list[Received]]:
    """Send each body unchanged to `target_url`, then delete the sent ones from `source_url`.

    Returns (moved, not moved); a message is deleted only if its send succeeded.
    """
    moved: list[Received] = []
    failed: list[Received] = []
    pending = iter(messages)
    for call in group_for_send(m.body for m in messages):
        chunk = [next(pending) for _ in call.bodies]
        response = sqs.send_message_batch(
            QueueUrl=target_url,
            Entries=[
                {"Id": str(i), "MessageBody": m.body, "MessageAttributes": _queue_attributes(m)}
                for i, m in enumerate(chunk)
            ],
        )
        sent = {int(entry["Id"]) for entry in response.get("Successful", [])}
        moved_now = [m for i, m in enumerate(chunk) if i in sent]
        failed.extend(m for i, m in enumerate(chunk) if i not in sent)
        if moved_now:
            sqs.delete_message_batch(
                QueueUrl=source_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(moved_now)],
            )
            moved.extend(moved_now)
    return moved, failed


def _queue_attributes(message: Received) -> dict[str, dict[str, str]]:
    """The attributes ingest puts on a queue message (tenant, source); the DLQ's reasons stay behind."""
    values = {"tenant": message.view.tenant, "source": message.view.source}
    return {k: {"DataType": "String", "StringValue": v} for k, v in values.items() if v}


# -- commands -----------------------------------------------------------------------------------
def _queues(ctx: click.Context) -> tuple[str, str]:
    options = ctx.obj
    queue_url, dlq_url = options["queue_url"], options["dlq_url"]
    if options["stack"]:
        outputs = stack_outputs(options["stack"])
        queue_url = queue_url or outputs.get("QueueUrl", "")
        dlq_url = dlq_url or outputs.get("DeadLetterQueueUrl", "")
    if not dlq_url:
        raise click.UsageError("no dead-letter queue: pass --dlq-url, set DEAD_LETTER_QUEUE_URL, or use --stack")
    return queue_url, dlq_url


@click.group()
@click.option("--queue-url", envvar="QUEUE_URL", default="", help="Main queue URL (or QUEUE_URL).")
@click.option(
    "--dlq-url", envvar="DEAD_LETTER_QUEUE_URL", default="", help="Dead-letter queue URL (or DEAD_LETTER_QUEUE_URL)."
)
@click.option("--stack", default="", help="Read both URLs from this CloudFormation stack's outputs.")
@click.pass_context
def dlq(ctx: click.Context, queue_url: str, dlq_url: str, stack: str) -> None:
    """Inspect the dead-letter queue and redrive it to the main queue."""
    ctx.obj = {"queue_url": queue_url, "dlq_url": dlq_url, "stack": stack}


@dlq.command("inspect")
@click.option("--limit", default=1000, show_default=True, help="Most DLQ messages to read.")
@click.option("--samples", default=3, show_default=True, help="Messages to show in full (secrets masked).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def inspect(ctx: click.Context, limit: int, samples: int, as_json: bool) -> None:
    """Count dead letters by tenant and reason and show a few, without secrets. Nothing is removed."""
    _, dlq_url = _queues(ctx)
    sqs = _sqs()
    received = [item for batch in receive_batches(sqs, dlq_url, limit, PEEK_VISIBILITY_SECONDS) for item in batch]
    release(sqs, dlq_url, received)
    report = summarize(received, samples)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(
        f"{report['dead_letters']} dead letter(s) holding {report['messages']} Spec message(s)"
        + (f" (read at most {limit})" if len(received) >= limit else "")
    )
    if not received:
        return
    click.echo("\nby tenant:")
    for tenant, counts in report["by_tenant"].items():
        click.echo(
            f"  {tenant or '(unknown)':<24} {counts['dead_letters']:>6} dead letter(s) "
            f"{counts['messages']:>8} message(s)"
        )
    click.echo("\nby reason:")
    for row in report["by_reason"]:
        status = f"[{row['status']}] " if row["status"] else ""
        click.echo(f"  {row['dead_letters']:>6} x {status}{row['reason']}")
    for sample in report["samples"]:
        click.echo(
            f"\nsample {sample['sqs_message_id']} tenant={sample['tenant'] or '?'} status={sample['status'] or '-'} "
            f"messages={sample['message_count']}\n  reason: {sample['reason']}"
        )
        click.echo("  " + json.dumps(sample["first_message"], indent=2).replace("\n", "\n  "))


def summarize(received: list[Received], samples: int) -> dict[str, Any]:
    by_tenant: dict[str, Counter[str]] = {}
    by_reason: Counter[tuple[str, str]] = Counter()
    for item in received:
        counts = by_tenant.setdefault(item.view.tenant, Counter())
        counts["dead_letters"] += 1
        counts["messages"] += len(item.view.messages)
        by_reason[(item.view.status, item.view.reason)] += 1
    return {
        "dead_letters": len(received),
        "messages": sum(len(item.view.messages) for item in received),
        "by_tenant": {tenant: dict(counts) for tenant, counts in sorted(by_tenant.items())},
        "by_reason": [
            {"status": status, "reason": reason, "dead_letters": count}
            for (status, reason), count in by_reason.most_common()
        ],
        "samples": [
            {
                "sqs_message_id": item.message_id,
                "tenant": item.view.tenant,
                "status": item.view.status,
                "reason": item.view.reason,
                "message_count": len(item.view.messages),
                "redrivable": item.view.redrivable,
                "first_message": mask_secrets(item.view.messages[0]) if item.view.messages else MASK,
            }
            for item in received[:samples]
        ],
    }


@dlq.command("redrive")
@click.option("--tenant", default="", help="Only this tenant's dead letters.")
@click.option("--max", "max_messages", default=10_000, show_default=True, help="Most DLQ messages to move.")
@click.option("--dry-run", is_flag=True, help="Say what would move; move nothing.")
@click.pass_context
def redrive(ctx: click.Context, tenant: str, max_messages: int, dry_run: bool) -> None:
    """Move dead letters back to the main queue, bodies unchanged (their messageIds too)."""
    queue_url, dlq_url = _queues(ctx)
    if not queue_url:
        raise click.UsageError("no main queue: pass --queue-url, set QUEUE_URL, or use --stack")
    sqs = _sqs()
    chosen: list[Received] = []
    moved: list[Received] = []
    failed: list[Received] = []
    others: list[Received] = []
    # Batch by batch, so a long scan moves as it goes and each receipt handle is used while fresh.
    for batch in receive_batches(sqs, dlq_url, SCAN_LIMIT, REDRIVE_VISIBILITY_SECONDS):
        take = [m for m in batch if m.view.redrivable and tenant in ("", m.view.tenant)][: max_messages - len(chosen)]
        chosen.extend(take)
        others.extend(m for m in batch if all(m is not t for t in take))
        if take and not dry_run:
            done, not_done = move(sqs, dlq_url, queue_url, take)
            moved.extend(done)
            failed.extend(not_done)
        if len(chosen) >= max_messages:
            break
    release(sqs, dlq_url, others + failed + (chosen if dry_run else []))
    unreadable = sum(not m.view.redrivable for m in others)
    count = sum(len(m.view.messages) for m in (chosen if dry_run else moved))
    verb = "would move" if dry_run else "moved"
    click.echo(
        f"{verb} {len(chosen) if dry_run else len(moved)} dead letter(s) ({count} messages) to the main queue"
        + (f"; {len(failed)} could not be sent and stay on the DLQ" if failed else "")
        + (f"; {unreadable} unreadable left on the DLQ" if unreadable else "")
    )
    if failed:
        raise SystemExit(1)
