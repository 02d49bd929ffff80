"""The backoff's adapter: ChangeMessageVisibilityBatch on the main queue for records that failed.

The event source mapping deletes what succeeded and, for what the handler reports in
`batchItemFailures`, does nothing: the record becomes visible again when its visibility timeout
runs out. Setting that timeout before answering is how a record waits its backoff
(`policy.RedeliverySchedule`) instead of the queue's fixed 390 s. A change that fails (an expired
receipt handle, SQS throttling) only means the record comes back sooner; it is never lost.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..aws import AwsAdapter, error_code
from ..limits import SQS_MAX_VISIBILITY_BATCH_ENTRIES
from ..observability import logger


class SqsVisibility(AwsAdapter):
    """`ports.Redelivery` over SQS."""

    service = "sqs"

    def __init__(self, queue_url: str, sqs: object = None) -> None:
        # Tight timeouts: this runs in the invocation's last seconds, inside the report margin.
        super().__init__(sqs, connect_timeout=1, read_timeout=2, max_attempts=2)
        self.queue_url = queue_url

    def postpone(self, delays: Sequence[tuple[str, int]]) -> set[str]:
        """Hide each (receipt handle, seconds); returns the handles whose change failed."""
        failed: set[str] = set()
        for start in range(0, len(delays), SQS_MAX_VISIBILITY_BATCH_ENTRIES):
            chunk = delays[start : start + SQS_MAX_VISIBILITY_BATCH_ENTRIES]
            entries = [
                {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": seconds}
                for i, (handle, seconds) in enumerate(chunk)
            ]
            try:
                response = self.client.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=entries)
            except Exception as exc:  # the records come back after the queue's own timeout instead
                logger.warning("visibility change failed", extra={"records": len(chunk), "error": error_code(exc)})
                failed.update(handle for handle, _ in chunk)
                continue
            for entry in response.get("Failed") or []:
                failed.add(chunk[int(entry["Id"])][0])
            if response.get("Failed"):
                codes = sorted({str(e.get("Code", "")) for e in response["Failed"]})
                logger.warning("visibility change refused", extra={"records": len(response["Failed"]), "codes": codes})
        return failed
