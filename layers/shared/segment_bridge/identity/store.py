"""The identity table in DynamoDB: batched lookups for ingest, ordered conditional writes for Segment's calls.

One table, partition key `pk` only (see `identity.py` for the key scheme), TTL on `expiresAt`.

    link item  {tenant}#email|phone|anon#{digest}: userId, groupId?, groupAt?, at, mid, expiresAt
    user item  {tenant}#user#{digest}:  lookupKeys (string set), groupId?, groupAt?, groupMid?,
                                        deletedAt? (tombstone), expiresAt

Dedupe is a conditional write, not Powertools idempotency: every write lands only on an item
holding an older `Stamp` (message time, then messageId). That costs no extra request per message
(the 5 s budget has to cover batches), it also keeps a late retry of an older identify from
overwriting a newer one, and a request that fails half-way needs no IN_PROGRESS record to recover:
Segment's retry re-runs it and the parts already applied are no-ops.

Write order is chosen so that every failure point leaves something a retry or a deletion still
finds: a user's item lists a link key before the link is written, and a link written while a
deletion ran is taken back.

Stamps are clamped before they get here (`keys.ordering_time_ms`), so no stored `at`, `groupAt` or
`deletedAt` lies more than `MAX_FUTURE_SKEW_MS` ahead of the clock. One that does was written before
the clamp (a far-future call): every condition treats it as older than the write (`:ceiling`), so
such items heal on the next call instead of pinning a link or a tombstone forever.

Failures: throttling is a 429, anything else the table or the network does is a 503 (Segment
retries both) -- except the table refusing the data itself (`REFUSED_CODES`), which no retry can
fix: the write stops and returns `WriteOutcome(refused=...)`, the message's own 400.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from ..aws import THROTTLING_CODES, AwsAdapter, error_code
from ..errors import BridgeError, ServiceUnavailable, Throttled
from ..limits import DYNAMODB_BATCH_GET_MAX_KEYS
from ..observability import logger
from .keys import IdentityMatch, Stamp, WriteOutcome, ordering_ceiling_ms, user_key

CONDITION_FAILED = "ConditionalCheckFailedException"
#: DynamoDB refusing the request's data rather than failing to serve it: text it cannot store (a
#: lone surrogate), an item over 400 KB. The same request would fail the same way on every retry.
REFUSED_CODES = frozenset({"ValidationException", "SerializationException"})

#: Condition of a write ordered by `Stamp`: the item is absent or holds an older message (or a
#: stamp from before the clamp, above `:ceiling`).
NEWER_THAN_ITEM = "attribute_not_exists(pk) OR #at < :at OR (#at = :at AND #mid < :mid) OR #at > :ceiling"
#: The user was not deleted after the message was sent (deletion tombstone on the user item).
NOT_DELETED_SINCE = "(attribute_not_exists(#deletedAt) OR #deletedAt < :at OR #deletedAt > :ceiling)"


class ConditionFailed(Exception):
    pass


class Refused(Exception):
    """The table refused a write's data (`REFUSED_CODES`); turned into `WriteOutcome.refused`."""


class DynamoDBIdentityStore(AwsAdapter):
    """`IdentityLookup` and `IdentityWriter` over one DynamoDB table (low-level client, no resource layer)."""

    service = "dynamodb"

    #: Re-asks for UnprocessedKeys this many times (with a short backoff) before answering 503.
    UNPROCESSED_RETRIES = 3

    def __init__(
        self,
        table_name: str,
        dynamodb: Any = None,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        client_options: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__(dynamodb, **(client_options or {}))
        self.table_name = table_name
        self._clock = clock
        self._sleep = sleep

    # -- reads (ingest) -------------------------------------------------------------------------
    def lookup(self, keys: Sequence[str]) -> dict[str, IdentityMatch]:
        now = int(self._clock())
        found: dict[str, IdentityMatch] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), DYNAMODB_BATCH_GET_MAX_KEYS):
            for item in self._batch_get(unique[start : start + DYNAMODB_BATCH_GET_MAX_KEYS]):
                # TTL deletion runs up to days late; an expired link must not resolve meanwhile.
                if "userId" in item and int(item.get("expiresAt", {}).get("N", "0")) > now:
                    group = item.get("groupId", {}).get("S")
                    found[item["pk"]["S"]] = IdentityMatch(user_id=item["userId"]["S"], group_id=group)
        return found

    def _batch_get(self, keys: list[str]) -> Iterator[dict[str, Any]]:
        request: dict[str, Any] = {
            self.table_name: {
                "Keys": [{"pk": {"S": key}} for key in keys],
                "ProjectionExpression": "pk, userId, groupId, expiresAt",
            }
        }
        for attempt in range(self.UNPROCESSED_RETRIES + 1):
            response = self._call("batch_get_item", RequestItems=request)
            yield from response.get("Responses", {}).get(self.table_name, [])
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return
            self._sleep(0.05 * 2**attempt)
        logger.warning("identity lookup left keys unprocessed", extra={"keys": len(request[self.table_name]["Keys"])})
        raise ServiceUnavailable("the identity table is busy; retry the webhook later")

    # -- writes (Segment's calls) ---------------------------------------------------------------
    def link(self, tenant: str, user_id: str, keys: Sequence[str], stamp: Stamp, expires_at: int) -> WriteOutcome:
        """identify (and alias, track...): point each key at `user_id`, unless newer data is there."""
        try:
            return self._link(tenant, user_id, keys, stamp, expires_at)
        except Refused as exc:
            return WriteOutcome(refused=str(exc))

    def join_group(self, tenant: str, user_id: str, group_id: str, stamp: Stamp, expires_at: int) -> WriteOutcome:
        """group: the user's groupId, on the user item and copied onto each of their links."""
        try:
            return self._join_group(tenant, user_id, group_id, stamp, expires_at)
        except Refused as exc:
            return WriteOutcome(refused=str(exc))

    def forget(self, tenant: str, user_id: str, stamp: Stamp, tombstone_expires_at: int) -> WriteOutcome:
        """delete (Segment's user deletion, the GDPR path): remove every link and the group of `user_id`.

        Every link still pointing at the user goes, whatever its stamp: a deletion is the user's
        right, not an ordering question (a link stamped in the far future once survived it, and
        ingest kept putting the deleted userId on tool events). What stays is a tombstone on the
        user item, a hash and a time, until `tombstone_expires_at`: it stops Segment's late retries
        of calls sent before the deletion from re-creating links; calls sent after it link again.
        """
        try:
            return self._forget(tenant, user_id, stamp, tombstone_expires_at)
        except Refused as exc:
            return WriteOutcome(refused=str(exc))

    def _ceiling(self) -> dict[str, str]:
        return _n(ordering_ceiling_ms(int(self._clock() * 1000)))

    def _link(self, tenant: str, user_id: str, keys: Sequence[str], stamp: Stamp, expires_at: int) -> WriteOutcome:
        owner = user_key(tenant, user_id)
        ceiling = self._ceiling()
        # 1. List the keys under the user first: a failure after this still leaves them findable by a deletion.
        try:
            self._update(
                owner,
                "ADD #lookupKeys :keys SET #expiresAt = :exp",
                NOT_DELETED_SINCE,
                {":keys": {"SS": list(keys)}, ":exp": _n(expires_at), ":at": _n(stamp.at_ms), ":ceiling": ceiling},
            )
        except ConditionFailed:
            return WriteOutcome(suppressed=True)
        # 2. The links themselves, each only over an older one.
        written = []
        outcome = WriteOutcome()
        for key in keys:
            item = {
                "pk": {"S": key},
                "userId": {"S": user_id},
                "at": _n(stamp.at_ms),
                "mid": {"S": stamp.message_id},
                "expiresAt": _n(expires_at),
            }
            try:
                self._call(
                    "put_item",
                    TableName=self.table_name,
                    Item=item,
                    ConditionExpression=NEWER_THAN_ITEM,
                    ExpressionAttributeNames={"#at": "at", "#mid": "mid"},
                    ExpressionAttributeValues={
                        ":at": _n(stamp.at_ms),
                        ":mid": {"S": stamp.message_id},
                        ":ceiling": ceiling,
                    },
                )
                written.append(key)
            except ConditionFailed:
                outcome.stale += 1
        if not written:
            return outcome
        # 3. Read the user back (strongly): a deletion or a group change that ran between 1 and 2
        #    saw our keys listed but not yet written, so it is ours to apply to them now.
        user = self._get(owner)
        if stamp.at_ms <= _number(user, "deletedAt") <= int(ceiling["N"]):
            for key in written:
                self._delete_if(key, "#mid = :mid", {"#mid": "mid"}, {":mid": {"S": stamp.message_id}})
            return WriteOutcome(suppressed=True)
        if "groupId" in user:
            for key in written:
                self._copy_group(key, user_id, user["groupId"]["S"], _number(user, "groupAt"), ceiling)
        outcome.written = len(written)
        return outcome

    def _join_group(self, tenant: str, user_id: str, group_id: str, stamp: Stamp, expires_at: int) -> WriteOutcome:
        owner = user_key(tenant, user_id)
        ceiling = self._ceiling()
        newer_group = (
            "(attribute_not_exists(#groupAt) OR #groupAt < :at OR (#groupAt = :at AND #groupMid < :mid)"
            " OR #groupAt > :ceiling)"
        )
        values = {
            ":g": {"S": group_id},
            ":at": _n(stamp.at_ms),
            ":mid": {"S": stamp.message_id},
            ":exp": _n(expires_at),
            ":ceiling": ceiling,
        }
        try:
            user = self._update(
                owner,
                "SET #groupId = :g, #groupAt = :at, #groupMid = :mid, #expiresAt = :exp",
                f"{NOT_DELETED_SINCE} AND {newer_group}",
                values,
                returns="ALL_NEW",
            )
        except ConditionFailed:
            # A duplicate, an older group call, or a user deleted since. A duplicate may be the retry
            # of a request that failed while copying: copying again is harmless, skipping it is not.
            user = self._get(owner)
            if (_number(user, "groupAt"), user.get("groupMid", {}).get("S")) == (stamp.at_ms, stamp.message_id):
                self._copy_group_to_links(user, user_id, group_id, stamp.at_ms, ceiling)
            return WriteOutcome(stale=1)
        return WriteOutcome(written=1 + self._copy_group_to_links(user, user_id, group_id, stamp.at_ms, ceiling))

    def _forget(self, tenant: str, user_id: str, stamp: Stamp, tombstone_expires_at: int) -> WriteOutcome:
        owner = user_key(tenant, user_id)
        forget_group = "REMOVE #groupId, #groupAt, #groupMid"
        try:
            # The tombstone moves forward only (or replaces one from before the clamp)...
            user = self._update(
                owner,
                f"SET #deletedAt = :at, #expiresAt = if_not_exists(#expiresAt, :exp) {forget_group}",
                "attribute_not_exists(#deletedAt) OR #deletedAt <= :at OR #deletedAt > :ceiling",
                {":at": _n(stamp.at_ms), ":exp": _n(tombstone_expires_at), ":ceiling": self._ceiling()},
                returns="ALL_NEW",
            )
            outcome = WriteOutcome(written=1)
        except ConditionFailed:
            # ...but a deletion older than the tombstone still removes whatever the user has now.
            try:
                user = self._update(owner, forget_group, "attribute_exists(pk)", {}, returns="ALL_NEW")
            except ConditionFailed:  # the item expired meanwhile: nothing is left
                return WriteOutcome(stale=1)
            outcome = WriteOutcome()
        keys = user.get("lookupKeys", {}).get("SS", [])
        deleted = []
        for key in keys:
            # Every link still pointing at this user, whatever its stamp (a link that moved on to
            # another user is theirs now).
            if self._delete_if(key, "#userId = :uid", {"#userId": "userId"}, {":uid": {"S": user_id}}):
                deleted.append(key)
        outcome.written += len(deleted)
        if not outcome.written:
            outcome.stale = 1  # an older deletion with nothing left to remove: a late retry
        try:
            # Shorten the item to a tombstone once no link is left; otherwise keep listing the survivors.
            self._update(
                owner,
                "SET #expiresAt = :exp" + (" DELETE #lookupKeys :keys" if deleted else ""),
                "attribute_not_exists(#lookupKeys) OR size(#lookupKeys) <= :n",
                {
                    ":exp": _n(tombstone_expires_at),
                    ":n": _n(len(deleted)),
                    **({":keys": {"SS": deleted}} if deleted else {}),
                },
            )
        except ConditionFailed:
            if deleted:
                self._update(owner, "DELETE #lookupKeys :keys", None, {":keys": {"SS": deleted}})
        return outcome

    # -- small helpers --------------------------------------------------------------------------
    def _copy_group_to_links(
        self, user: Mapping[str, Any], user_id: str, group_id: str, group_at: int, ceiling: dict[str, str]
    ) -> int:
        return sum(
            self._copy_group(key, user_id, group_id, group_at, ceiling)
            for key in user.get("lookupKeys", {}).get("SS", [])
        )

    def _copy_group(self, key: str, user_id: str, group_id: str, group_at: int, ceiling: dict[str, str]) -> int:
        try:
            self._update(
                key,
                "SET #groupId = :g, #groupAt = :gat",
                "#userId = :uid AND (attribute_not_exists(#groupAt) OR #groupAt <= :gat OR #groupAt > :ceiling)",
                {":g": {"S": group_id}, ":gat": _n(group_at), ":uid": {"S": user_id}, ":ceiling": ceiling},
            )
            return 1
        except ConditionFailed:
            return 0  # the link moved to another user, is gone, or carries a newer group already

    def _update(
        self, key: str, expression: str, condition: str | None, values: dict[str, Any], returns: str = "NONE"
    ) -> dict[str, Any]:
        names = {
            f"#{name}": name for name in _ATTRIBUTES if f"#{name}" in expression or f"#{name}" in (condition or "")
        }
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": {"pk": {"S": key}},
            "UpdateExpression": expression,
            "ExpressionAttributeNames": names,
            "ReturnValues": returns,
        }
        if values:  # DynamoDB refuses an empty ExpressionAttributeValues
            kwargs["ExpressionAttributeValues"] = values
        if condition:
            kwargs["ConditionExpression"] = condition
        attributes: dict[str, Any] = self._call("update_item", **kwargs).get("Attributes", {})
        return attributes

    def _get(self, key: str) -> dict[str, Any]:
        response = self._call("get_item", TableName=self.table_name, Key={"pk": {"S": key}}, ConsistentRead=True)
        item: dict[str, Any] = response.get("Item", {})
        return item

    def _delete_if(self, key: str, condition: str, names: dict[str, str], values: dict[str, Any]) -> bool:
        try:
            self._call(
                "delete_item",
                TableName=self.table_name,
                Key={"pk": {"S": key}},
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
            return True
        except ConditionFailed:
            return False

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """One DynamoDB call; failures become what the HTTP callers should see (429 or 503)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response: dict[str, Any] = getattr(self.client, operation)(**kwargs)
            return response
        except (BotoCoreError, ClientError) as exc:  # BotoCoreError: timeouts, connection errors
            code = error_code(exc)
            if code == CONDITION_FAILED:
                raise ConditionFailed() from None
            if code in REFUSED_CODES:
                # Logged without the table's text (it may quote the data); the code says which kind.
                logger.warning("identity table refused a write", extra={"operation": operation, "error": code})
                raise Refused(
                    f"the identity table refused this message's data ({code}); check its ids and traits "
                    "for text that is not valid Unicode and for values that are far too long"
                ) from None
            raise _unavailable(operation, code) from None


_ATTRIBUTES = ("at", "mid", "userId", "groupId", "groupAt", "groupMid", "lookupKeys", "deletedAt", "expiresAt")


def _unavailable(operation: str, code: str) -> BridgeError:
    logger.warning("identity table call failed", extra={"operation": operation, "error": code})
    if code in THROTTLING_CODES:
        return Throttled("the identity table is throttled; retry later")
    return ServiceUnavailable("the identity table is unavailable; retry later")


def _n(value: int) -> dict[str, str]:
    return {"N": str(int(value))}


def _number(item: Mapping[str, Any], name: str) -> int:
    return int(item.get(name, {}).get("N", "-1"))
