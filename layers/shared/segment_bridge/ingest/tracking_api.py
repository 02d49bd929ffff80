"""Segment's own Tracking API, spoken by the bridge: any Segment library sends here by changing its host.

`POST /v1/batch`, `/v1/import` and the single calls (`/v1/track`, `/identify`, `/page`, `/screen`,
`/group`, `/alias`) take the bodies Segment's libraries send (JSON, optionally gzip), authenticated
by a **bridge key** where the library puts its writeKey: the HTTP Basic username (analytics-node,
analytics-python 2.4) or the body's `writeKey` (analytics-python 2.3.x sends no Basic header). The key is
`{tenant}.sbk_{secret}` (`tenants.new_bridge_key`), so the tenant is read from it; the secret is
checked with `tenants.bridge_key_matches` inside `tenants.authenticate_tenant`, so an unknown tenant
and a wrong key get the same 401, body and cost.

What this module decides is only the reading of such a request (`read_call`) and the answer a
library understands (`answer`); the messages then take the same path as every source's (review,
identity, normalization, the queue) under the source name `tracking`. docs/tracking-api.md has the
partner's side.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .. import safe_json
from ..auth import parse_basic_authorization
from ..errors import MalformedRequest, UnsupportedMediaType
from ..events import MappedEvent, Rejected

#: The source name these messages carry through the pipeline (queue header, metrics, conformance
#: overrides under `conformance.sources.tracking`). Not a webhook source: `/v1/webhooks/tracking/...`
#: does not exist.
SOURCE_NAME = "tracking"

#: Route -> the message type it implies; `None` for the batch routes, whose items carry their own.
#: `/v1/import` is Segment's legacy alias of `/v1/batch` (analytics-android still posts there).
ROUTES: dict[str, str | None] = {
    "batch": None,
    "import": None,
    "track": "track",
    "identify": "identify",
    "page": "page",
    "screen": "screen",
    "group": "group",
    "alias": "alias",
}

#: Largest request body, after gzip is undone. Segment's limit is 500 KB; analytics-python packs to
#: 475,000 bytes and checks *after* appending, so a batch it sends to Segment can reach ~507 KB of
#: messages plus its envelope. 512 KiB takes everything a library sends to Segment successfully and
#: still bounds the work (and a gzip bomb) per request.
MAX_REQUEST_BYTES = 512 * 1024
#: gzip members in one body (RFC 1952 lets members be concatenated; each library sends one). Each
#: member costs a new inflater and a header: bounded, so an unauthenticated body of thousands of empty
#: 20-byte members is a quick 400, not superlinear work.
MAX_GZIP_MEMBERS = 64
#: Compressed input is handed to zlib this much at a time, so what follows a member's end (zlib's
#: `unused_data`, a copy) is never more than this: inflating is linear in the body's size.
GZIP_CHUNK_BYTES = 16 * 1024
#: A gap between the library's `sentAt` and our clock below this is network latency (Segment assumes
#: a few hundred ms), and timestamps are kept byte for byte; above it the library's clock is off and
#: its timestamps are corrected the way Segment would (`timestamp = receivedAt - (sentAt - timestamp)`).
SENT_AT_SKEW_TOLERANCE_SECONDS = 1.0
#: Response headers with what became of a 200's messages: a library cannot report per-message
#: refusals, so a caller that wants them reads these (the reasons are in the logs and the debugger).
ACCEPTED_HEADER = "X-Bridge-Accepted"
REFUSED_HEADER = "X-Bridge-Refused"

#: The one 401 text, for a missing, malformed, unknown or wrong key alike.
UNAUTHORIZED_MESSAGE = (
    "invalid bridge key: send the key `segment-bridge tenants key add` printed ({tenant}.sbk_...) as the "
    "library's writeKey (HTTP Basic username, or writeKey in the body)"
)


@dataclass(frozen=True)
class TrackingRequest:
    """One Tracking API call as received: the route's last segment, lower-cased headers, raw bytes."""

    route: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    received_at: float = 0.0

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class TrackingCall:
    """A request read: the credential it carries and its messages, each still as sent."""

    credential: str | None
    messages: list[Any]


# -- reading a request ----------------------------------------------------------------------------
def decoded_body(request: TrackingRequest) -> bytes:
    """The body with gzip undone, never more than `MAX_REQUEST_BYTES` (400 above: Segment's own answer)."""
    media = (request.header("content-type") or "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise UnsupportedMediaType("Content-Type must be application/json (Segment's Tracking API)")
    encoding = (request.header("content-encoding") or "identity").strip().lower()
    if encoding == "identity":
        body = request.body
    elif encoding == "gzip":
        body = gunzip_bounded(request.body, MAX_REQUEST_BYTES)
    else:
        raise UnsupportedMediaType("Content-Encoding must be gzip or absent")
    if len(body) > MAX_REQUEST_BYTES:
        raise too_large(len(body))
    return body


def gunzip_bounded(data: bytes, limit: int) -> bytes:
    """gzip's members inflated, stopping as soon as the output passes `limit` (a 1 KB body can
    inflate to gigabytes: it is never inflated past the limit). At most `MAX_GZIP_MEMBERS` members;
    input goes in `GZIP_CHUNK_BYTES` at a time, so the work is linear in the body's size."""
    if len(data) > limit:  # compressed larger than allowed uncompressed: never a library's body
        raise too_large(len(data))
    view = memoryview(data)
    out = bytearray()
    position = members = 0
    while position < len(data):
        members += 1
        if members > MAX_GZIP_MEMBERS:
            raise MalformedRequest(f"gzip body has more than {MAX_GZIP_MEMBERS} members: send one gzip stream")
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        while not inflater.eof:
            if position >= len(data):
                raise MalformedRequest("gzip body is truncated")
            chunk = view[position : position + GZIP_CHUNK_BYTES]
            position += len(chunk)
            try:
                # Room for one byte past the limit: reaching it is the 400 below, so zlib never keeps
                # input back (`unconsumed_tail` stays empty) on a body within the limit.
                out += inflater.decompress(chunk, limit + 1 - len(out))
            except zlib.error:
                raise MalformedRequest("body is not valid gzip (Content-Encoding: gzip)") from None
            if len(out) > limit:
                raise too_large(len(out), inflated=True)
        position -= len(inflater.unused_data)  # the next member starts inside this chunk
    return bytes(out)


def too_large(size: int, *, inflated: bool = False) -> MalformedRequest:
    what = "decompressed body" if inflated else "body"
    return MalformedRequest(
        f"{what} is over {MAX_REQUEST_BYTES} bytes; Segment takes at most 500 KB per request: send smaller batches"
    )


def basic_credential(request: TrackingRequest) -> str | None:
    """The HTTP Basic username (where Segment's libraries put the writeKey); None without Basic auth."""
    credentials = parse_basic_authorization(request.header("authorization"))
    return credentials[0] if credentials else None


def read_call(request: TrackingRequest, body: bytes) -> TrackingCall:
    """The credential and the messages of a decoded body; 400 for a body that is not Segment's format.

    Batch routes take `{"batch": [...]}` with an optional top-level `context` and `integrations`,
    merged into each item (Segment's rule; an item's own keys win); the single routes take one
    message and set its `type` from the route. A `writeKey` and `sentAt` are removed wherever they
    are (the key never travels on; the forwarder sends its own `sentAt`); `sentAt` first corrects the
    messages' timestamps for the library's clock (`correct_clock`).
    """
    payload = safe_json.loads(body)
    if not isinstance(payload, dict):
        raise MalformedRequest('body must be a JSON object (a Segment message, or {"batch": [...]})')
    credential = payload.pop("writeKey", None)
    sent_at = payload.pop("sentAt", None)
    implied = ROUTES[request.route]
    if implied is None:
        batch = payload.get("batch")
        if not isinstance(batch, list):
            raise MalformedRequest('"batch" must be an array of Segment messages')
        shared_context = payload.get("context")
        shared_integrations = payload.get("integrations")
        messages: list[Any] = []
        for item in batch:
            if isinstance(item, dict):
                item = _merged(item, "context", shared_context)
                item = _merged(item, "integrations", shared_integrations)
                item.pop("sentAt", None)
                item.pop("writeKey", None)
            messages.append(item)
    else:
        payload["type"] = implied
        messages = [payload]
    correct_clock(messages, sent_at, request.received_at)
    return TrackingCall(credential if isinstance(credential, str) else None, messages)


def _merged(item: dict[str, Any], key: str, shared: Any) -> dict[str, Any]:
    if not isinstance(shared, dict) or not shared:
        return item
    own = item.get(key)
    return {**item, key: {**shared, **own} if isinstance(own, dict) else dict(shared)}


def correct_clock(messages: list[Any], sent_at: Any, received_at: float) -> None:
    """Give every message the timestamp Segment would have stored had the library sent to it.

    A message without one gets the time it was received (Segment uses its own receivedAt; the
    bridge may deliver it much later, so the time is fixed here). With the library's `sentAt` more
    than `SENT_AT_SKEW_TOLERANCE_SECONDS` off our clock, each timestamp moves by that gap.
    """
    received = datetime.fromtimestamp(received_at, UTC)
    skew = timedelta(0)
    sent = _parse_time(sent_at)
    if sent is not None and abs((received - sent).total_seconds()) > SENT_AT_SKEW_TOLERANCE_SECONDS:
        skew = received - sent
    for message in messages:
        if not isinstance(message, dict):
            continue
        raw = message.get("timestamp")
        if raw is None:
            message["timestamp"] = _format(received)
        elif skew:
            stamp = _parse_time(raw)
            if stamp is not None:  # anything else is the Spec check's to report
                message["timestamp"] = _shifted(stamp, skew, raw)


def _shifted(stamp: datetime, skew: timedelta, raw: str) -> str:
    """`stamp` moved by the library's clock skew; the library's own text when the corrected time
    would leave years 1-9999 (a clock thousands of years off: no correction can be written, and the
    message still carries the time its sender gave it, which the Spec check then judges)."""
    try:
        return _format(stamp + skew)
    except OverflowError:
        return raw


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # not ISO 8601, or a UTC form outside years 1-9999: unreadable
        return None


def _format(value: datetime) -> str:
    # `%04d`, not strftime's `%Y`: glibc does not pad years before 1000, which would not be ISO 8601.
    return f"{value.year:04d}-" + value.strftime("%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def map_message(message: Any) -> MappedEvent:
    """One library message as a mapped event: the library's own messageId is kept by the normalizer."""
    if not isinstance(message, dict):
        raise Rejected("each message must be a JSON object")
    return MappedEvent(message=message, event_key=None)


# -- answering ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrackingAnswer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


def answer(accepted: int, rejected: list[dict[str, Any]]) -> TrackingAnswer:
    """What a library is told: `200 {"success": true}` once what was accepted is on the queue, with the
    counts in headers (and, when some were refused, each refusal under `rejected`: the libraries read
    only the status, a caller or the local debugger can read more); or a 400 naming the reasons when
    nothing was accepted (the libraries report it as an error and do not retry: resending the same
    messages cannot succeed)."""
    headers = {ACCEPTED_HEADER: str(accepted), REFUSED_HEADER: str(len(rejected))}
    if not accepted and rejected:
        first = "; ".join(f"[{r['index']}] {r['message']}" for r in rejected[:3])
        more = f" (and {len(rejected) - 3} more)" if len(rejected) > 3 else ""
        message = f"no message was accepted: {first}{more}"
        body = {"code": "invalid_request", "message": message, "success": False, "rejected": rejected}
        return TrackingAnswer(400, body, headers)
    return TrackingAnswer(200, {"success": True, "rejected": rejected} if rejected else {"success": True}, headers)


__all__ = [
    "ACCEPTED_HEADER",
    "MAX_REQUEST_BYTES",
    "REFUSED_HEADER",
    "ROUTES",
    "SOURCE_NAME",
    "UNAUTHORIZED_MESSAGE",
    "TrackingAnswer",
    "TrackingCall",
    "TrackingRequest",
    "answer",
    "basic_credential",
    "decoded_body",
    "map_message",
    "read_call",
]
