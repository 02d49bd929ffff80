"""Segment -> bridge: the destination endpoint `POST /v1/segment/{tenant}`, the identity loop's input.

Segment forwards the customer's calls here as a Direct destination / Subscription webhook: one
message, or a batch (`{"batch": [...]}`, or the bare JSON array Webhooks (Actions) batching sends),
with the customer's key as `Authorization: Basic base64(apiKey:)`. What each call teaches us:

    identify          traits.email / traits.phone / anonymousId  -> userId
    track/page/screen anonymousId -> userId
    alias             previousId -> userId
    group             userId -> groupId (copied onto the user's links, for `context.groupId`)
    delete            removes the user's links and group (Segment's user deletion: the GDPR path)

Answers, as Segment's partner docs ask: 200 done (duplicates included), 400 malformed and 401 bad
key (Segment does not retry those), 501 a call type we do not implement, 413 too large, 429/503 when
the identity table is throttled or down, or time runs out (Segment retries for up to 4 hours; the
parts already applied are no-ops then). All within Segment's 5 s timeout.

Segment warns that field casing varies between customers, so fields are read tolerantly: `userId`,
`user_id`, `UserID` and `userid` are the same field here.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .. import safe_json
from ..auth import constant_time_equals, parse_basic_authorization
from ..config import Settings
from ..errors import (
    BridgeError,
    MalformedRequest,
    PayloadTooLarge,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedCallType,
)
from ..tenants import (
    TENANT_ID_RULE,
    RefusalFloor,
    TenantConfig,
    TenantDirectory,
    authenticate_tenant,
    decoy_secret,
    is_valid_tenant_id,
)
from .keys import MAX_ID_LENGTH, Stamp, WriteOutcome, lookup_key, ordering_time_ms
from .ports import IdentityWriter

SUPPORTED_TYPES = ("identify", "group", "alias", "track", "page", "screen", "delete")
#: How long a deletion's tombstone outlives it: well past Segment's 4 h retry window.
TOMBSTONE_SECONDS = 2 * 24 * 3600
#: Stop starting writes when less than this is left of the invocation; answer 503 instead.
TIME_MARGIN_SECONDS = 1.0
#: Users written in parallel within one batch (one user's calls always run in order).
WORKERS = 8

UNAUTHORIZED_MESSAGE = "invalid API key or unknown tenant"
#: A batch none of whose messages could be used: each is listed under `rejected` with its reason.
NOTHING_USABLE = "no message in the batch was accepted; each is listed under rejected with the reason"


@dataclass(frozen=True)
class DestinationRequest:
    tenant: str
    authorization: str | None
    body: bytes


# -- reading Segment's calls ---------------------------------------------------------------------
@dataclass(frozen=True)
class SegmentCall:
    """The fields of one Segment message the identity loop uses, whatever their casing."""

    type: str
    stamp: Stamp
    user_id: str | None = None
    anonymous_id: str | None = None
    previous_id: str | None = None
    group_id: str | None = None
    email: str | None = None
    phone: str | None = None


def _canonical(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _fields(value: Any) -> dict[str, Any]:
    """A message's (or traits') fields by canonical name; the first spelling present wins."""
    fields: dict[str, Any] = {}
    if isinstance(value, Mapping):
        for name, item in value.items():
            if isinstance(name, str):
                fields.setdefault(_canonical(name), item)
    return fields


def _id(value: Any, name: str) -> str | None:
    """An id field as text (Segment's libraries stringify numeric ids), refused when overlong."""
    found = safe_json.text(value)
    if found is not None and len(found) > MAX_ID_LENGTH:
        raise MalformedRequest(f"{name} is longer than {MAX_ID_LENGTH} characters")
    return _storable(found, name)


def _storable(value: str | None, name: str) -> str | None:
    """Text the identity table can hold. A lone surrogate (`"\\ud800"` is valid JSON, not Unicode)
    has no UTF-8 form: DynamoDB refuses it, and that refusal once became a 503 that Segment retried
    for 4 hours and that failed the rest of the batch. It is this message's 400 instead.

    NUL and other control characters are valid Unicode and are kept as sent: Segment's own libraries
    send them as is (analytics-python only JSON-escapes them), and an id changed here would no
    longer match the customer's own calls (docs/security.md, round 2)."""
    if value is not None and safe_json.has_lone_surrogate(value):
        raise MalformedRequest(f"{name} is not valid Unicode text (it holds a lone surrogate escape); send UTF-8 text")
    return value


#: Where a message keeps its own time (Segment's corrected `timestamp` first), and its receipt.
OWN_TIME_FIELDS = ("timestamp", "originaltimestamp", "sentat")
RECEIVED_TIME_FIELDS = ("receivedat",)


def _time_ms(fields: Mapping[str, Any], names: tuple[str, ...]) -> int | None:
    for name in names:
        value = fields.get(name)
        if isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value.strip())
            except ValueError:
                continue
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return int(moment.timestamp() * 1000)
    return None


def read_call(raw: Any, now_ms: int) -> SegmentCall:
    """One Segment message; raises `MalformedRequest` (400) or `UnsupportedCallType` (501)."""
    if not isinstance(raw, Mapping):
        raise MalformedRequest("each message must be a JSON object")
    fields = _fields(raw)
    kind = fields.get("type")
    if not isinstance(kind, str) or not kind.strip():
        raise MalformedRequest('"type" is required')
    kind = kind.strip().lower()
    if kind not in SUPPORTED_TYPES:
        raise UnsupportedCallType(
            f"call type {kind[:32]!r} is not supported; this destination takes " + ", ".join(SUPPORTED_TYPES)
        )
    # Without a messageId the content stands in, so a redelivery is still recognized; without a
    # timestamp the time of arrival does (a redelivery of such a message is then applied again,
    # which rewrites the same values).
    message_id = _id(fields.get("messageid"), "messageId") or safe_json.content_digest(raw)
    traits = _fields(fields.get("traits"))
    context_traits = _fields(_fields(fields.get("context")).get("traits"))

    def trait(*names: str) -> str | None:
        for source in (traits, context_traits):
            for name in names:
                value = source.get(name)
                if isinstance(value, str):
                    return _storable(value, f"traits.{name}")
        return None

    # Ordered by its own time, but never later than a little after Segment received it (keys.py).
    at_ms = ordering_time_ms(_time_ms(fields, OWN_TIME_FIELDS), _time_ms(fields, RECEIVED_TIME_FIELDS), now_ms)
    return SegmentCall(
        type=kind,
        stamp=Stamp(at_ms, message_id),
        user_id=_id(fields.get("userid"), "userId"),
        anonymous_id=_id(fields.get("anonymousid"), "anonymousId"),
        previous_id=_id(fields.get("previousid"), "previousId"),
        group_id=_id(fields.get("groupid"), "groupId"),
        email=trait("email"),
        phone=trait("phone", "phonenumber", "mobile"),
    )


# -- what each call asks of the store --------------------------------------------------------------
@dataclass(frozen=True)
class Link:
    user_id: str
    keys: tuple[str, ...]
    stamp: Stamp


@dataclass(frozen=True)
class JoinGroup:
    user_id: str
    group_id: str
    stamp: Stamp


@dataclass(frozen=True)
class Forget:
    user_id: str
    stamp: Stamp


@dataclass(frozen=True)
class Ignore:
    """A valid call that teaches nothing (e.g. an anonymous track): acknowledged, not stored."""

    reason: str


UserOperation = Link | JoinGroup | Forget
Operation = UserOperation | Ignore


def plan(tenant: str, call: SegmentCall) -> Operation:
    if call.type == "delete":
        if not call.user_id:
            raise MalformedRequest("delete needs the userId of the user to delete")
        return Forget(call.user_id, call.stamp)
    if call.type == "group":
        if not call.group_id:
            raise MalformedRequest("group needs a groupId")
        if not call.user_id:
            return Ignore("group without userId: nothing to link the group to")
        return JoinGroup(call.user_id, call.group_id, call.stamp)
    if call.type == "alias":
        if not (call.user_id and call.previous_id):
            raise MalformedRequest("alias needs userId and previousId")
        candidates = [lookup_key(tenant, "anon", call.previous_id)]
    elif call.type == "identify":
        candidates = [
            lookup_key(tenant, "email", call.email) if call.email else None,
            lookup_key(tenant, "phone", call.phone) if call.phone else None,
            lookup_key(tenant, "anon", call.anonymous_id) if call.anonymous_id else None,
        ]
    else:  # track, page, screen: only the anonymousId they were sent with
        candidates = [lookup_key(tenant, "anon", call.anonymous_id) if call.anonymous_id else None]
    keys = tuple(dict.fromkeys(key for key in candidates if key))
    if not call.user_id:
        return Ignore(f"{call.type} without userId: nothing to link")
    if not keys:
        return Ignore(f"{call.type} carries no email, phone or anonymousId to link to the userId")
    return Link(call.user_id, keys, call.stamp)


# -- the request -------------------------------------------------------------------------------------
def parse_body(body: bytes) -> tuple[list[Any], bool]:
    """The messages of a request and whether it was a batch."""
    payload = safe_json.loads(body)  # 400 for invalid JSON or nesting deeper than MAX_JSON_DEPTH
    if isinstance(payload, list):
        return payload, True
    if isinstance(payload, dict):
        batch = _fields(payload).get("batch")
        if "type" not in _fields(payload) and batch is not None:
            if not isinstance(batch, list):
                raise MalformedRequest('"batch" must be an array of messages')
            return batch, True
        return [payload], False
    raise MalformedRequest('body must be a Segment message, {"batch": [...]} or an array of messages')


@dataclass
class DestinationResult:
    """What one request to the destination came to; the handler answers with `status` and `body()`."""

    received: int = 0
    applied: int = 0
    duplicates: int = 0
    suppressed: int = 0
    deleted_users: int = 0
    ignored: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    #: 200, or the status of the first problem when no message of a batch was usable (400 or 501).
    status: int = 200

    def count(self, index: int, operation: Operation, outcome: WriteOutcome) -> None:
        if outcome.refused is not None:
            self.rejected.append({"index": index, "status": MalformedRequest.status_code, "message": outcome.refused})
        elif outcome.suppressed:
            self.suppressed += 1
        elif outcome.written:
            self.applied += 1
            self.deleted_users += isinstance(operation, Forget)
        else:
            self.duplicates += 1

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {} if self.status == 200 else {"message": NOTHING_USABLE}
        body.update(received=self.received, applied=self.applied, duplicates=self.duplicates)
        if self.suppressed:
            body["suppressed"] = self.suppressed
        if self.deleted_users:
            body["deletedUsers"] = self.deleted_users
        if self.ignored:
            body["ignored"] = self.ignored
        if self.rejected:
            body["rejected"] = self.rejected
        return body


class OutOfTime(Exception):
    pass


class DestinationService:
    def __init__(
        self,
        settings: Settings,
        tenants: TenantDirectory,
        store: IdentityWriter,
        *,
        clock: Callable[[], float] = time.time,
        workers: int = WORKERS,
        refusal_floor: RefusalFloor | None = None,
    ) -> None:
        self.settings = settings
        self.tenants = tenants
        self.refusal_floor = refusal_floor or RefusalFloor(settings.unauthorized_floor_seconds)
        self.store = store
        self.clock = clock
        self.workers = workers

    def authenticate(self, request: DestinationRequest) -> TenantConfig:
        """Same 401, at the same cost, for an unknown tenant, a tenant without the loop, and a wrong key
        (compared in constant time; against a decoy when there is no key to compare with)."""
        if len(request.body) > self.settings.max_body_bytes:
            raise PayloadTooLarge(f"body exceeds {self.settings.max_body_bytes} bytes; lower the batch size")
        if not is_valid_tenant_id(request.tenant):
            raise MalformedRequest(TENANT_ID_RULE)
        credentials = parse_basic_authorization(request.authorization)  # Segment sends `apiKey:`
        if credentials is None or not credentials[0]:
            raise Unauthorized(UNAUTHORIZED_MESSAGE)
        given = credentials[0]

        def check(tenant: TenantConfig | None) -> TenantConfig:
            expected = tenant.destination.api_key.get_secret_value() if tenant and tenant.destination else None
            matches = constant_time_equals(expected or decoy_secret(), given)
            if tenant is None or expected is None or not matches:
                raise Unauthorized(UNAUTHORIZED_MESSAGE)
            return tenant

        return authenticate_tenant(self.tenants, request.tenant, check, floor=self.refusal_floor)

    def handle(
        self, request: DestinationRequest, remaining_seconds: Callable[[], float] | None = None
    ) -> DestinationResult:
        self.authenticate(request)
        messages, batched = parse_body(request.body)
        if len(messages) > self.settings.destination_max_batch:
            raise PayloadTooLarge(
                f"{len(messages)} messages in one request; set the batch size to at most "
                f"{self.settings.destination_max_batch}"
            )
        result = DestinationResult(received=len(messages))
        now = self.clock()
        operations: list[tuple[int, UserOperation]] = []
        errors: list[BridgeError] = []
        for index, raw in enumerate(messages):
            try:
                operation = plan(request.tenant, read_call(raw, int(now * 1000)))
            except (MalformedRequest, UnsupportedCallType) as exc:
                if not batched:
                    raise
                errors.append(exc)
                result.rejected.append({"index": index, "status": exc.status_code, "message": exc.message})
                continue
            if isinstance(operation, Ignore):
                result.ignored.append({"index": index, "reason": operation.reason})
            else:
                operations.append((index, operation))
        if errors and len(errors) == len(messages):
            # Nothing in the batch was usable: say so with the status of the first problem.
            result.status = errors[0].status_code
            return result
        self._apply(request.tenant, operations, result, int(now), remaining_seconds)
        result.rejected.sort(key=lambda entry: int(entry["index"]))
        if result.rejected and len(result.rejected) == len(messages):
            # Every message was refused, some by the table itself: the same answers as above.
            if not batched:
                raise MalformedRequest(str(result.rejected[0]["message"]))
            result.status = int(result.rejected[0]["status"])
        return result

    # -- applying, per user in order, users in parallel ----------------------------------------------------
    def _apply(
        self,
        tenant: str,
        operations: list[tuple[int, UserOperation]],
        result: DestinationResult,
        now: int,
        remaining_seconds: Callable[[], float] | None,
    ) -> None:
        """Each message's writes; a message the table refuses is that message's 400 (`WriteOutcome.refused`)
        and the others go on. Only throttling, unavailability and the clock stop the request (429/503)."""
        lanes: dict[str, list[tuple[int, UserOperation]]] = {}
        for index, operation in operations:
            lanes.setdefault(operation.user_id, []).append((index, operation))
        expires_at = now + self.settings.identity_ttl_days * 86400
        lock = threading.Lock()
        stop = threading.Event()
        failures: list[BaseException] = []

        def run(lane: list[tuple[int, UserOperation]]) -> None:
            for index, operation in lane:
                if stop.is_set():
                    return
                if remaining_seconds is not None and remaining_seconds() < TIME_MARGIN_SECONDS:
                    raise OutOfTime()
                outcome = self._write(tenant, operation, expires_at, now + TOMBSTONE_SECONDS)
                with lock:
                    result.count(index, operation, outcome)

        def guarded(lane: list[tuple[int, UserOperation]]) -> None:
            try:
                run(lane)
            except BaseException as exc:
                stop.set()
                failures.append(exc)

        if len(lanes) <= 1:
            for lane in lanes.values():
                guarded(lane)
        else:
            with ThreadPoolExecutor(max_workers=min(self.workers, len(lanes))) as pool:
                list(pool.map(guarded, lanes.values()))
        if failures:
            if any(isinstance(exc, OutOfTime) for exc in failures):
                done = result.applied + result.duplicates + result.suppressed
                raise ServiceUnavailable(
                    f"ran out of time after {done} of {len(operations)} messages; a retry "
                    "skips those already applied (or lower the batch size)"
                )
            raise failures[0]

    def _write(self, tenant: str, operation: UserOperation, expires_at: int, tombstone_expires_at: int) -> WriteOutcome:
        if isinstance(operation, Link):
            return self.store.link(tenant, operation.user_id, operation.keys, operation.stamp, expires_at)
        if isinstance(operation, JoinGroup):
            return self.store.join_group(tenant, operation.user_id, operation.group_id, operation.stamp, expires_at)
        assert isinstance(operation, Forget)
        return self.store.forget(tenant, operation.user_id, operation.stamp, tombstone_expires_at)
