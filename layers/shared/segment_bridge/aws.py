"""Small adapters around the AWS calls we make, so domain code and tests can swap them.

Clients are created lazily (a boto3 client made before moto starts is not mocked) and honour
`AWS_ENDPOINT_URL`, which is how `make run` points everything at the embedded moto server.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from .errors import ServiceUnavailable
from .queue_format import group_for_send

logger = Logger(child=True)


@lru_cache(maxsize=None)
def client(service: str, connect_timeout: float = 2, read_timeout: float = 5, max_attempts: int = 3) -> Any:
    import boto3
    from botocore.config import Config

    # Tight timeouts: the webhook caller waits on us, and SQS answers in milliseconds when healthy.
    # Callers with a harder deadline (the Segment destination: 5 s in all) pass tighter ones.
    config = Config(connect_timeout=connect_timeout, read_timeout=read_timeout,
                    retries={"mode": "standard", "max_attempts": max_attempts})
    return boto3.client(service, config=config)


class MessageQueue(Protocol):
    def send_bodies(self, bodies: list[str], attributes: dict[str, str]) -> int: ...


class _SqsAdapter:
    def __init__(self, queue_url: str, sqs: Any = None) -> None:
        self.queue_url = queue_url
        self._sqs = sqs

    @property
    def sqs(self) -> Any:
        if self._sqs is None:
            self._sqs = client("sqs")
        return self._sqs


class SqsQueue(_SqsAdapter):
    """Sends bodies with SendMessageBatch; returns the number of API calls made."""

    #: Entries SQS reports as Failed are re-sent this many times before we give up with a 503.
    RESEND_ATTEMPTS = 2

    def send_bodies(self, bodies: list[str], attributes: dict[str, str]) -> int:
        from botocore.exceptions import BotoCoreError, ClientError

        message_attributes = {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()}
        calls = 0
        for batch in group_for_send(bodies):
            pending = {str(i): body for i, body in enumerate(batch.bodies)}
            for attempt in range(self.RESEND_ATTEMPTS + 1):
                entries = [
                    {"Id": key, "MessageBody": body, "MessageAttributes": message_attributes}
                    for key, body in pending.items()
                ]
                try:
                    calls += 1
                    response = self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
                except (BotoCoreError, ClientError) as exc:
                    logger.warning("SendMessageBatch failed", extra={"error": type(exc).__name__, "attempt": attempt})
                    if attempt == self.RESEND_ATTEMPTS:
                        raise ServiceUnavailable("the queue is unavailable; retry the webhook later") from None
                    continue
                failed = {entry["Id"] for entry in response.get("Failed", [])}
                pending = {key: body for key, body in pending.items() if key in failed}
                if not pending:
                    break
                logger.warning("SendMessageBatch entries failed", extra={"failed": len(pending), "attempt": attempt})
            if pending:
                raise ServiceUnavailable("the queue refused part of the request; retry the webhook later")
        return calls


class DeadLetterQueue(Protocol):
    def dead_letter(self, body: str, reason: str, attributes: dict[str, str]) -> None: ...


class SqsDeadLetterQueue(_SqsAdapter):
    """Writes a failed record to the DLQ with why it failed, as message attributes (never secrets)."""

    def dead_letter(self, body: str, reason: str, attributes: dict[str, str]) -> None:
        attrs = {"reason": reason[:1000], "dead_lettered_at": str(int(time.time())), **attributes}
        self.sqs.send_message(
            QueueUrl=self.queue_url,
            MessageBody=body,
            MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attrs.items() if v},
        )
