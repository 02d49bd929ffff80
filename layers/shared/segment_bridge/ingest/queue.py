"""The ingest queue adapter: normalized messages onto SQS in as few SendMessageBatch calls as fit."""

from __future__ import annotations

from ..aws import AwsAdapter, error_code
from ..errors import ServiceUnavailable
from ..observability import logger
from ..queue_format import group_for_send


class SqsQueue(AwsAdapter):
    """`MessageQueue` over SQS: sends bodies with SendMessageBatch; returns the number of API calls made."""

    service = "sqs"
    #: Entries SQS reports as Failed are re-sent this many times before we give up with a 503.
    RESEND_ATTEMPTS = 2

    def __init__(self, queue_url: str, sqs: object = None) -> None:
        super().__init__(sqs)
        self.queue_url = queue_url

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
                    response = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
                except (BotoCoreError, ClientError) as exc:
                    logger.warning("SendMessageBatch failed", extra={"error": error_code(exc), "attempt": attempt})
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
