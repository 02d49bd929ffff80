"""Replay guards: remember single-use signature tokens for as long as their timestamp is valid.

Mailgun signs only `timestamp + token`, not the event, so a captured signature could carry any
event-data until its timestamp goes stale. A guard binds each token to a fingerprint of the first
body it came with: the same token with the same body is a redelivery (harmless, its messageIds are
stable), the same token with another body is a replay and is refused.

`InMemoryReplayGuard` lives in one Lambda execution environment: it stops replays that reach the
same warm instance, not ones spread across concurrent instances. `DynamoDBReplayGuard` (one
conditional put per request, TTL on `expires_at`) is the shared, production-grade upgrade.
"""

from __future__ import annotations

from collections import OrderedDict

from ..aws import AwsAdapter, error_code
from ..errors import ServiceUnavailable
from ..observability import logger


class InMemoryReplayGuard:
    """Bounded LRU of claimed keys; expired entries are dropped, the oldest go first when full."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._seen: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def claim(self, key: str, fingerprint: str, now: float, expires_at: float) -> bool:
        seen = self._seen.get(key)
        if seen is not None and seen[1] >= now:
            return seen[0] == fingerprint
        self._seen[key] = (fingerprint, expires_at)
        self._seen.move_to_end(key)
        while len(self._seen) > self.max_entries:
            self._seen.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._seen)


class DynamoDBReplayGuard(AwsAdapter):
    """Shared across instances: a table with partition key `key` (S) and TTL on `expires_at` (N).

    DynamoDB's TTL deletes lazily, so the condition also treats an expired item as free.
    """

    service = "dynamodb"

    def __init__(self, table_name: str, dynamodb: object = None) -> None:
        super().__init__(dynamodb)
        self.table_name = table_name

    def claim(self, key: str, fingerprint: str, now: float, expires_at: float) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.put_item(
                TableName=self.table_name,
                Item={"key": {"S": key}, "fingerprint": {"S": fingerprint}, "expires_at": {"N": str(int(expires_at))}},
                ConditionExpression="attribute_not_exists(#k) OR #fp = :fp OR #exp < :now",
                ExpressionAttributeNames={"#k": "key", "#fp": "fingerprint", "#exp": "expires_at"},
                ExpressionAttributeValues={":fp": {"S": fingerprint}, ":now": {"N": str(int(now))}},
            )
        except (BotoCoreError, ClientError) as exc:
            code = error_code(exc)
            if code == "ConditionalCheckFailedException":
                return False
            logger.warning("replay table call failed", extra={"error": code})
            raise ServiceUnavailable("replay protection is temporarily unavailable; retry later") from None
        return True
