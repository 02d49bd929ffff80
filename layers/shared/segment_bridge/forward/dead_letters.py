"""What a dead-letter queue message looks like, written by the forwarder and read by `segment-bridge dlq`.

Body: the main queue's own format (`segment_bridge.queue_format`: a header line, one message per line), holding only the
messages that were not delivered, so a redrive sends it back to the main queue unchanged and the
messages keep their messageIds (Segment drops any that had arrived after all).
Message attributes say why: `reason`, `status` (Segment's HTTP status, absent without an answer),
`tenant`, `source`, `message_count`, `source_record_id`, `receive_count`, `dead_lettered_at`.
Never a writeKey: the body has none and the reason is built from Segment's answer and our checks.

Two other kinds can be there: an unreadable record (body as received, reason only) and a record
moved by the queue's redrive policy without us (original body, no attributes).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..aws import AwsAdapter
from ..queue_format import RawBatch, UnreadableBody, queue_body, read_body
from .policy import MessageOutcome, Verdict

#: Reason shown for a message SQS moved on its own (the forwarder crashed or timed out, or
#: dead-lettering itself failed on the last receive).
MOVED_BY_SQS = "moved by the queue's redrive policy (no reason recorded)"


@dataclass(frozen=True)
class DeadLetter:
    body: str
    reason: str
    status: int | None
    tenant: str
    source: str
    message_count: int

    def attributes(self, record_id: str, receive_count: int) -> dict[str, str]:
        """Everything but `reason` (the queue adapter adds it and the time); empty values are dropped."""
        return {
            "tenant": self.tenant,
            "source": self.source,
            "status": str(self.status) if self.status is not None else "",
            "message_count": str(self.message_count) if self.message_count else "",
            "source_record_id": record_id,
            "receive_count": str(receive_count),
        }


def dead_letter_groups(batch: RawBatch, outcomes: Sequence[MessageOutcome]) -> list[DeadLetter]:
    """One DLQ message per distinct (status, reason) among a record's undelivered messages."""
    groups: dict[tuple[int | None, str], list[str]] = {}
    for message, outcome in zip(batch.messages, outcomes, strict=False):
        if outcome.verdict is not Verdict.DELIVERED:
            groups.setdefault((outcome.status, outcome.reason), []).append(message)
    return [
        DeadLetter(
            queue_body(batch.tenant, batch.source, messages), reason, status, batch.tenant, batch.source, len(messages)
        )
        for (status, reason), messages in groups.items()
    ]


@dataclass(frozen=True)
class DeadLetterView:
    """A DLQ message as an operator sees it."""

    tenant: str
    source: str
    reason: str
    status: str
    messages: list[dict[str, Any]]
    #: False for bodies that are not queue messages: a redrive would only bring them back here.
    redrivable: bool


def read_dead_letter(body: str, attributes: Mapping[str, str]) -> DeadLetterView:
    """`attributes` are plain strings (SQS MessageAttributes' StringValue)."""
    try:
        batch = read_body(body)
    except UnreadableBody:
        return DeadLetterView(
            attributes.get("tenant", ""),
            attributes.get("source", ""),
            attributes.get("reason", MOVED_BY_SQS),
            attributes.get("status", ""),
            [],
            False,
        )
    return DeadLetterView(
        batch.tenant,
        batch.source,
        attributes.get("reason", MOVED_BY_SQS),
        attributes.get("status", ""),
        batch.messages,
        True,
    )


def string_attributes(sqs_message: Mapping[str, Any]) -> dict[str, str]:
    """SQS `MessageAttributes` of a ReceiveMessage result as a plain dict."""
    return {name: value.get("StringValue", "") for name, value in (sqs_message.get("MessageAttributes") or {}).items()}


def message_ids(view: DeadLetterView) -> list[str]:
    return [str(m.get("messageId", "")) for m in view.messages]


class SqsDeadLetterQueue(AwsAdapter):
    """`DeadLetterQueue` over SQS: the body with why it failed as message attributes (never secrets)."""

    service = "sqs"

    def __init__(self, queue_url: str, sqs: object = None) -> None:
        super().__init__(sqs)
        self.queue_url = queue_url

    def dead_letter(self, body: str, reason: str, attributes: dict[str, str]) -> None:
        attrs = {"reason": reason[:1000], "dead_lettered_at": str(int(time.time())), **attributes}
        self.client.send_message(
            QueueUrl=self.queue_url,
            MessageBody=body,
            MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attrs.items() if v},
        )
