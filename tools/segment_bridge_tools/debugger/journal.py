"""The debugger's memory: what crossed the local stack's boundaries, linked by messageId.

Three observations come in, each from a boundary of the stack, never from inside the package:

- an `Exchange`: one HTTP request to the API stand-in and the handler's answer (every route:
  webhooks, Segment's destination calls, whatever else the API serves);
- a `ReceivedRequest`: one `/v1/batch` request as the Segment sink judged it;
- a DLQ snapshot: the messages in the dead-letter queue, read without receiving them.

They are joined by `messageId`, which the ingest answer lists (`messageIds`, in event order), the
sink sees on every message and the DLQ body keeps. So a webhook's row can show what each of its
events became: refused with a reason, fixed by conformance, sent in which `/v1/batch` request with
which status and attempt, or dead-lettered and why. The observations may arrive in any order (the
forwarder can deliver a message before the API stand-in has recorded the answer that named it).

Everything is masked on the way in (`Redactor`), and the journal keeps the newest entries only:
`CAPACITY` of each kind, as Segment's Source Debugger caps its live view at 500 events, and at
most `MAX_RETAINED_BYTES` of bodies and messages in all.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from segment_bridge.forward.dead_letters import read_dead_letter

from ..sink import ReceivedRequest
from .redact import Redactor, last_four

#: Newest entries kept per kind (Segment's Source Debugger shows at most 500 events).
CAPACITY = 500
#: Bodies and messages kept in all: a load test through `make run` must not grow the process without bound.
MAX_RETAINED_BYTES = 64 * 1024 * 1024
#: Most messageIds whose fate is remembered (each is a few hundred bytes).
MAX_TRACES = 50_000

#: Routes of the API stand-in that name their source and tenant in the path; any other route is
#: recorded too, as `api` with its path (the ingest handler may serve more than webhooks).
ROUTES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^/v1/webhooks/(?P<source>[^/]+)/(?P<tenant>[^/]+)/?$"), "webhook"),
    (re.compile(r"^/v1/segment/(?P<tenant>[^/]+)/?$"), "destination"),
    # Segment's own Tracking API (a Segment library through the bridge): the tenant is in the bridge key.
    (re.compile(r"^/v1/(batch|import|track|identify|page|screen|group|alias)/?$"), "tracking"),
)


@dataclass(frozen=True)
class Exchange:
    """One request through the API stand-in and the answer it got (recorded by `IngestServer`)."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes
    status: int
    response_headers: Mapping[str, str]
    response_body: bytes
    started_at: float
    duration_ms: float


@dataclass(frozen=True)
class QueuedMessage:
    """A message sitting in a queue, as read without receiving it."""

    message_id: str
    body: str
    attributes: Mapping[str, str]
    sent_at: float


@dataclass(frozen=True)
class Notice:
    """What just happened, for live views (the terminal tail): `kind` and the entry's summary."""

    kind: str  # "webhook" | "request" | "dead_letter" | "dead_letter_gone"
    entry: dict[str, Any]


def classify(path: str) -> tuple[str, str | None, str | None]:
    """(kind, source, tenant) of an API path."""
    for pattern, kind in ROUTES:
        match = pattern.match(path)
        if match:
            groups = match.groupdict()
            return kind, groups.get("source") or "segment", groups.get("tenant")
    return "api", None, None


def event_name(message: Mapping[str, Any]) -> str:
    """How a message is named in lists: a track's event, a page's name, else its type."""
    kind = str(message.get("type") or "?")
    if kind == "track":
        return str(message.get("event") or "track")
    if kind in ("page", "screen") and message.get("name"):
        return f"{kind}: {message['name']}"
    return kind


@dataclass
class MessageTrace:
    """What became of one messageId after ingest accepted it."""

    message_id: str
    webhook_id: int | None = None
    index: int | None = None
    #: (request id, HTTP status) of each `/v1/batch` request that carried it, in order.
    attempts: list[tuple[int, int]] = field(default_factory=list)
    state: str = "queued"  # queued | delivered | failed | dead-lettered | left DLQ
    message: dict[str, Any] | None = None
    dead_letter_id: int | None = None
    reason: str | None = None

    @property
    def delivered(self) -> bool:
        return any(status == 200 for _, status in self.attempts)

    @property
    def failures_since_delivery(self) -> int:
        """Failed requests that carried it since it last reached Segment: the retries so far."""
        count = 0
        for _, status in reversed(self.attempts):
            if status == 200:
                break
            count += 1
        return count

    def view(self) -> dict[str, Any]:
        return {
            "messageId": self.message_id,
            "state": self.state,
            "attempts": [{"request": r, "status": s} for r, s in self.attempts],
            "deadLetter": self.dead_letter_id,
            "reason": self.reason,
            "event": event_name(self.message) if self.message else None,
            "message": self.message,
        }


@dataclass
class WebhookEntry:
    id: int
    at: float
    method: str
    path: str
    kind: str
    source: str | None
    tenant: str | None
    status: int
    duration_ms: float
    headers: dict[str, str]
    body: dict[str, Any]
    response: Any
    #: Per event of the request: {"index", "outcome", "reason", "messageId", "findings"}.
    events: list[dict[str, Any]]
    message_ids: list[str]
    findings: list[dict[str, Any]]
    size: int = 0


@dataclass
class RequestEntry:
    id: int
    at: float
    region: str | None
    host: str | None
    path: str
    status: int
    error: str | None
    fault: str | None
    message_count: int
    body_bytes: int
    wire_bytes: int
    sent_at: str | None
    write_key: str | None
    attempt: int
    #: Messages Segment had already received with a 200 (a tool re-sent its webhook, or a redrive):
    #: Segment drops them by messageId.
    duplicates: int
    message_ids: list[str]
    messages: list[dict[str, Any]]
    size: int = 0


@dataclass
class DeadLetterEntry:
    id: int
    sqs_id: str
    at: float
    tenant: str
    source: str
    reason: str
    status: str
    message_ids: list[str]
    messages: list[dict[str, Any]]
    redrivable: bool
    present: bool = True
    size: int = 0


class Journal:
    """Thread-safe record of the stack's traffic; `feed()` and `detail()` are what the page reads."""

    def __init__(
        self,
        redactor: Redactor | None = None,
        *,
        capacity: int = CAPACITY,
        max_bytes: int = MAX_RETAINED_BYTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redactor = redactor or Redactor()
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.clock = clock
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._seq = 0
        self._ids = 0
        self._webhooks: OrderedDict[int, WebhookEntry] = OrderedDict()
        self._requests: OrderedDict[int, RequestEntry] = OrderedDict()
        self._dead: OrderedDict[int, DeadLetterEntry] = OrderedDict()
        self._dead_by_sqs_id: dict[str, int] = {}
        #: Every DLQ message seen, kept apart from the entries: one evicted from the journal while
        #: still in the queue must not come back as new on the next look (a DLQ of > 500 messages).
        self._seen_dead: OrderedDict[str, None] = OrderedDict()
        self._traces: OrderedDict[str, MessageTrace] = OrderedDict()
        self._arrivals: list[tuple[str, int, int]] = []  # (kind, id, size), oldest first
        self._retained = 0
        self._listeners: list[Callable[[Notice], None]] = []

    # -- live views ---------------------------------------------------------------------------
    def subscribe(self, listener: Callable[[Notice], None]) -> None:
        self._listeners.append(listener)

    def wait(self, seq: int, timeout: float) -> int:
        """Block until the journal moved past `seq`, `wake()` or `timeout`; returns the current sequence number."""
        with self._changed:
            if self._seq == seq:
                self._changed.wait(timeout)
            return self._seq

    def wake(self) -> None:
        """Wake every `wait()` now (a server shutting down its event streams)."""
        with self._changed:
            self._changed.notify_all()

    @property
    def seq(self) -> int:
        with self._lock:
            return self._seq

    def _publish(self, notices: list[Notice]) -> None:
        for notice in notices:
            for listener in list(self._listeners):
                with contextlib.suppress(Exception):  # a broken view must never break the stack it watches
                    listener(notice)

    # -- observations -------------------------------------------------------------------------
    def record_exchange(self, exchange: Exchange) -> int:
        """One request through the API stand-in; returns the entry's id."""
        kind, source, tenant = classify(exchange.path)
        lower = {k.lower(): v for k, v in exchange.headers.items()}
        headers, taken = self.redactor.headers(exchange.headers)
        raw = exchange.body
        if kind == "tracking":
            source = "tracking"
            raw = _inflated(raw) if lower.get("content-encoding", "").strip().lower() == "gzip" else raw
            tenant = _tracking_tenant(lower.get("authorization"), raw)
        body = self.redactor.body(raw, lower.get("content-type", ""), taken)
        response = _json_or_text(exchange.response_body)
        response = self.redactor.known_only(response)
        report = _tracking_report(raw, exchange.path, response) if kind == "tracking" else response
        events, message_ids, findings = _events_of(report)
        with self._changed:
            entry = WebhookEntry(
                id=self._next_id(),
                at=exchange.started_at,
                method=exchange.method,
                path=exchange.path,
                kind=kind,
                source=source,
                tenant=tenant,
                status=exchange.status,
                duration_ms=round(exchange.duration_ms, 1),
                headers=headers,
                body=body,
                response=response,
                events=events,
                message_ids=message_ids,
                findings=findings,
                size=len(exchange.body) + len(exchange.response_body),
            )
            self._webhooks[entry.id] = entry
            for event in events:
                if event.get("messageId"):
                    trace = self._trace(event["messageId"])
                    trace.webhook_id, trace.index = entry.id, event["index"]
            self._arrived("webhook", entry.id, entry.size)
            notice = Notice("webhook", self._webhook_summary(entry))
            self._bump()
        self._publish([notice])
        return entry.id

    def record_segment_request(self, request: ReceivedRequest, region: str | None = None) -> int:
        """One `/v1/batch` request as the sink judged it (`region`: which regional endpoint it hit)."""
        messages = [self.redactor.known_only(m) for m in request.messages]
        message_ids = [str(m.get("messageId", "")) for m in messages if m.get("messageId")]
        with self._changed:
            traces = [self._trace(mid) for mid in message_ids]
            # A retry is a request for messages whose last requests failed; a message Segment already
            # has (200 before) is a duplicate it drops, not a retry.
            attempt = 1 + max((t.failures_since_delivery for t in traces), default=0)
            duplicates = sum(1 for t in traces if t.delivered)
            entry = RequestEntry(
                id=self._next_id(),
                at=request.received_at,
                region=region,
                host=request.host,
                path=request.path,
                status=request.status,
                error=self.redactor.scrub_text(request.error) if request.error else None,
                fault=request.fault,
                message_count=request.message_count,
                body_bytes=request.body_bytes,
                wire_bytes=request.content_length,
                sent_at=request.sent_at,
                write_key=last_four(request.write_key),
                attempt=attempt,
                duplicates=duplicates,
                message_ids=message_ids,
                messages=messages,
                size=request.body_bytes,
            )
            self._requests[entry.id] = entry
            for trace, message in zip(traces, messages, strict=True):
                trace.attempts.append((entry.id, request.status))
                trace.message = message
                trace.state = "delivered" if request.status == 200 or trace.delivered else "failed"
                trace.reason = entry.error
            self._arrived("request", entry.id, entry.size)
            notice = Notice("request", self._request_summary(entry))
            self._bump()
        self._publish([notice])
        return entry.id

    def record_dead_letters(self, queued: Iterable[QueuedMessage]) -> None:
        """The DLQ's current content: new messages become entries, vanished ones are marked gone."""
        queued = list(queued)
        notices: list[Notice] = []
        with self._changed:
            present = {m.message_id for m in queued}
            for message in queued:
                if message.message_id in self._seen_dead:
                    continue
                self._seen_dead[message.message_id] = None
                while len(self._seen_dead) > MAX_TRACES:
                    self._seen_dead.popitem(last=False)
                view = read_dead_letter(message.body, message.attributes)
                messages = [self.redactor.known_only(m) for m in view.messages]
                at = message.attributes.get("dead_lettered_at")
                entry = DeadLetterEntry(
                    id=self._next_id(),
                    sqs_id=message.message_id,
                    at=float(at) if at and at.isdigit() else message.sent_at,
                    tenant=view.tenant,
                    source=view.source,
                    reason=self.redactor.scrub_text(view.reason),
                    status=view.status,
                    message_ids=[str(m.get("messageId", "")) for m in messages if m.get("messageId")],
                    messages=messages,
                    redrivable=view.redrivable,
                    size=len(message.body),
                )
                self._dead[entry.id] = entry
                self._dead_by_sqs_id[message.message_id] = entry.id
                for mid, msg in zip(entry.message_ids, messages, strict=False):
                    trace = self._trace(mid)
                    trace.state, trace.dead_letter_id, trace.reason = "dead-lettered", entry.id, entry.reason
                    trace.message = trace.message or msg
                self._arrived("dead_letter", entry.id, entry.size)
                notices.append(Notice("dead_letter", self._dead_summary(entry)))
            for sqs_id, entry_id in list(self._dead_by_sqs_id.items()):
                entry = self._dead[entry_id]
                if entry.present and sqs_id not in present:
                    entry.present = False
                    for mid in entry.message_ids:
                        trace = self._traces.get(mid)
                        if trace is not None and trace.dead_letter_id == entry.id and trace.state == "dead-lettered":
                            trace.state = "left DLQ"
                    notices.append(Notice("dead_letter_gone", self._dead_summary(entry)))
            if notices:
                self._bump()
        self._publish(notices)

    # -- what the page reads --------------------------------------------------------------------
    def feed(self) -> dict[str, Any]:
        """Summaries of everything kept, newest first."""
        with self._lock:
            return {
                "seq": self._seq,
                "webhooks": [self._webhook_summary(e) for e in reversed(self._webhooks.values())],
                "requests": [self._request_summary(e) for e in reversed(self._requests.values())],
                "deadLetters": [self._dead_summary(e) for e in reversed(self._dead.values())],
            }

    def detail(self, kind: str, entry_id: int) -> dict[str, Any] | None:
        with self._lock:
            if kind == "webhooks" and entry_id in self._webhooks:
                return self._webhook_detail(self._webhooks[entry_id])
            if kind == "requests" and entry_id in self._requests:
                return self._request_detail(self._requests[entry_id])
            if kind == "dead-letters" and entry_id in self._dead:
                return self._dead_detail(self._dead[entry_id])
            return None

    # -- views (called with the lock held) ------------------------------------------------------
    def _webhook_summary(self, entry: WebhookEntry) -> dict[str, Any]:
        traces = [self._traces[m] for m in entry.message_ids if m in self._traces]
        outcomes = Counter(e["outcome"] for e in entry.events)
        response = entry.response if isinstance(entry.response, dict) else {}
        return {
            "id": entry.id,
            "at": entry.at,
            "method": entry.method,
            "path": entry.path,
            "kind": entry.kind,
            "source": entry.source,
            "tenant": entry.tenant,
            "status": entry.status,
            "durationMs": entry.duration_ms,
            "message": response.get("message") if entry.status >= 400 or not entry.events else None,
            "accepted": outcomes["accepted"],
            "rejected": outcomes["rejected"],
            "skipped": outcomes["skipped"],
            "applied": response.get("applied"),
            "findings": [
                {k: f.get(k) for k in ("index", "code", "action", "message", "fix", "path")} for f in entry.findings
            ],
            "events": sorted({event_name(t.message) for t in traces if t.message}),
            "delivery": dict(Counter(t.state for t in traces)),
            "segmentStatuses": sorted({s for t in traces for _, s in t.attempts}),
        }

    def _webhook_detail(self, entry: WebhookEntry) -> dict[str, Any]:
        events = []
        for event in entry.events:
            trace = self._traces.get(event["messageId"]) if event.get("messageId") else None
            events.append({**event, "trace": trace.view() if trace else None})
        request_ids = sorted({r for m in entry.message_ids if m in self._traces for r, _ in self._traces[m].attempts})
        return {
            **self._webhook_summary(entry),
            "headers": entry.headers,
            "body": entry.body,
            "response": entry.response,
            "eventsDetail": events,
            "requests": [self._request_summary(self._requests[r]) for r in request_ids if r in self._requests],
            "deadLetters": [
                self._dead_summary(self._dead[d])
                for d in sorted({t.dead_letter_id for t in self._traces_of(entry.message_ids) if t.dead_letter_id})
                if d in self._dead
            ],
        }

    def _request_summary(self, entry: RequestEntry) -> dict[str, Any]:
        return {
            "id": entry.id,
            "at": entry.at,
            "region": entry.region,
            "host": entry.host,
            "path": entry.path,
            "status": entry.status,
            "error": entry.error,
            "fault": entry.fault,
            "messages": entry.message_count,
            "bytes": entry.body_bytes,
            "wireBytes": entry.wire_bytes,
            "sentAt": entry.sent_at,
            "writeKey": entry.write_key,
            "attempt": entry.attempt,
            "duplicates": entry.duplicates,
            "tenants": self._tenants_of(entry.message_ids),
            "webhooks": sorted({t.webhook_id for t in self._traces_of(entry.message_ids) if t.webhook_id}),
        }

    def _request_detail(self, entry: RequestEntry) -> dict[str, Any]:
        return {**self._request_summary(entry), "batch": entry.messages}

    def _dead_summary(self, entry: DeadLetterEntry) -> dict[str, Any]:
        return {
            "id": entry.id,
            "sqsMessageId": entry.sqs_id,
            "at": entry.at,
            "tenant": entry.tenant,
            "source": entry.source,
            "reason": entry.reason,
            "status": entry.status,
            "messages": len(entry.message_ids),
            "events": sorted({event_name(m) for m in entry.messages}),
            "redrivable": entry.redrivable,
            "present": entry.present,
            "webhooks": sorted({t.webhook_id for t in self._traces_of(entry.message_ids) if t.webhook_id}),
        }

    def _dead_detail(self, entry: DeadLetterEntry) -> dict[str, Any]:
        return {**self._dead_summary(entry), "batch": entry.messages}

    def _traces_of(self, message_ids: Iterable[str]) -> list[MessageTrace]:
        return [self._traces[m] for m in message_ids if m in self._traces]

    def _tenants_of(self, message_ids: Iterable[str]) -> list[str]:
        tenants = set()
        for trace in self._traces_of(message_ids):
            webhook = self._webhooks.get(trace.webhook_id) if trace.webhook_id else None
            if webhook is not None and webhook.tenant:
                tenants.add(webhook.tenant)
        return sorted(tenants)

    # -- bookkeeping (lock held) ----------------------------------------------------------------
    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def _bump(self) -> None:
        self._seq += 1
        self._changed.notify_all()

    def _trace(self, message_id: str) -> MessageTrace:
        trace = self._traces.get(message_id)
        if trace is None:
            trace = self._traces[message_id] = MessageTrace(message_id)
            while len(self._traces) > MAX_TRACES:
                self._traces.popitem(last=False)
        return trace

    def _arrived(self, kind: str, entry_id: int, size: int) -> None:
        self._arrivals.append((kind, entry_id, size))
        self._retained += size
        kept = {"webhook": self._webhooks, "request": self._requests, "dead_letter": self._dead}
        while self._arrivals and (
            self._retained > self.max_bytes or any(len(store) > self.capacity for store in kept.values())
        ):
            over = {k for k, store in kept.items() if len(store) > self.capacity}
            # The oldest entry of a kind that is over its count, else the oldest of all (bytes).
            position = next((i for i, (k, _, _) in enumerate(self._arrivals) if k in over), 0)
            old_kind, old_id, old_size = self._arrivals.pop(position)
            self._retained -= old_size
            removed = kept[old_kind].pop(old_id, None)
            if isinstance(removed, WebhookEntry):
                for mid in removed.message_ids:
                    trace = self._traces.get(mid)
                    if trace is not None and trace.webhook_id == old_id:
                        del self._traces[mid]
            elif isinstance(removed, DeadLetterEntry):
                self._dead_by_sqs_id.pop(removed.sqs_id, None)


def _json_or_text(raw: bytes) -> Any:
    if not raw:
        return None
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def _inflated(body: bytes) -> bytes:
    from segment_bridge.errors import BridgeError
    from segment_bridge.ingest.tracking_api import MAX_REQUEST_BYTES, gunzip_bounded

    try:
        return gunzip_bounded(body, MAX_REQUEST_BYTES)
    except BridgeError:
        return body  # shown as sent: the bridge refused it too


def _tracking_tenant(authorization: str | None, body: bytes) -> str | None:
    """The tenant a Tracking API call's bridge key names (the part before the dot is no secret)."""
    from segment_bridge.auth import parse_basic_authorization
    from segment_bridge.tenants import split_bridge_key

    basic = parse_basic_authorization(authorization)
    credential = basic[0] if basic else None
    if credential is None:
        parsed = _json_or_text(body)
        credential = parsed.get("writeKey") if isinstance(parsed, dict) else None
    parts = split_bridge_key(credential) if isinstance(credential, str) else None
    return parts[0] if parts else None


def _tracking_report(body: bytes, path: str, response: Any) -> dict[str, Any]:
    """A Tracking API call as an ingest report: the answer names refusals by index (`rejected`); the
    accepted messages are the others, under the messageId the library sent (the bridge keeps it)."""
    if not isinstance(response, dict) or response.get("success") is None:
        return {}  # refused as a whole (401, 415...): no per-message outcome
    parsed = _json_or_text(body)
    items: list[Any] = []
    if isinstance(parsed, dict):
        items = parsed.get("batch") if path.rstrip("/").rsplit("/", 1)[-1] in ("batch", "import") else [parsed]
    items = items if isinstance(items, list) else []
    rejected = [r for r in response.get("rejected") or [] if isinstance(r, dict)]
    refused = {r.get("index") for r in rejected}
    ids = [
        str(item.get("messageId"))
        for index, item in enumerate(items)
        if index not in refused and isinstance(item, dict) and item.get("messageId")
    ]
    return {"messageIds": ids, "rejected": rejected}


def _events_of(response: Any) -> tuple[list[dict[str, Any]], list[str], list[dict[str, Any]]]:
    """Per-event outcomes from an ingest answer (`accepted`/`messageIds`/`rejected`/`skipped`/`conformance`).

    The answer lists refused events by index and accepted ones by messageId in event order, so
    the accepted events are the indices no other list names, in order. An answer of another shape
    (an error, another route) yields its messageIds, if any, without indices.
    """
    if not isinstance(response, dict):
        return [], [], []
    ids = [str(m) for m in response.get("messageIds") or [] if isinstance(m, str)]
    findings = [f for f in response.get("conformance") or [] if isinstance(f, dict)]
    refused: dict[int, tuple[str, str]] = {}
    for outcome, key, field_name in (("rejected", "rejected", "message"), ("skipped", "skipped", "reason")):
        for item in response.get(key) or []:
            if isinstance(item, dict) and isinstance(item.get("index"), int):
                refused[item["index"]] = (outcome, str(item.get(field_name) or ""))
    total = len(ids) + len(refused)
    by_index: dict[int, list[dict[str, Any]]] = {}
    for finding in findings:
        if isinstance(finding.get("index"), int):
            by_index.setdefault(finding["index"], []).append(finding)
    if any(index >= total for index in refused):
        # Not the shape we know: keep what is certain, the ids.
        events = [{"index": None, "outcome": "accepted", "messageId": m, "reason": None, "findings": []} for m in ids]
        return events, ids, findings
    events, accepted = [], iter(ids)
    for index in range(total):
        outcome, reason = refused.get(index, ("accepted", None))
        message_id = next(accepted) if outcome == "accepted" else None
        events.append(
            {
                "index": index,
                "outcome": outcome,
                "reason": reason,
                "messageId": message_id,
                "findings": by_index.get(index, []),
            }
        )
    return events, ids, findings
