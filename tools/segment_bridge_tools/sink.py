"""A local stand-in for Segment's ingestion API: `POST /v1/batch`, judged like Segment judges it.

It checks what a partner integration must get right (Basic auth with `writeKey:`, JSON content
type, gzip, 500 KB per request, 32 KB per message, 2,500 messages per batch, a `type` on every
item) and records every request, so tests and the demo can show exactly what Segment would have
received. Answers `200 {"success": true}` or `400 {"code", "message"}` like the real API.

Inspection endpoints (local only): `GET /_sink/requests`, `GET /_sink/messages`, `POST /_sink/reset`.
Fault injection: a `responder` may answer instead (see faults.py), stall, or drop the connection.
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from segment_bridge.limits import MAX_BATCH_MESSAGES, MAX_BATCH_REQUEST_BYTES, MAX_MESSAGE_BYTES

#: `(status, headers, body)` of an HTTP answer.
Answer = tuple[int, dict[str, str], dict[str, Any]]


@dataclass(frozen=True)
class Drop:
    """Close the connection without answering: the client sees a connection error."""


@dataclass(frozen=True)
class Stall:
    """Answer only after `seconds` (past the client's timeout); `answer` None: the sink's own verdict."""

    seconds: float
    answer: Answer | None = None


Reply = Answer | Drop | Stall
#: A hook that may answer instead of the sink (fault injection): gets the parsed request (with the
#: sink's verdict in `status`), returns a `Reply`, or None to let the sink answer normally.
Responder = Callable[["ReceivedRequest"], "Reply | None"]


@dataclass
class ReceivedRequest:
    received_at: float
    path: str
    write_key: str | None
    content_length: int
    body_bytes: int  # after gunzip: what Segment's 500 KB limit applies to
    message_count: int
    status: int = 200
    error: str | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    sent_at: str | None = None
    #: "stall" or "drop" when the responder injected one.
    fault: str | None = None
    #: The Host the client addressed: the local stack gives each Segment region its own host name.
    host: str | None = None

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("messages")
        data["write_key"] = _mask(self.write_key)
        return data


def _mask(key: str | None) -> str | None:
    if not key:
        return key
    return "*" * max(0, len(key) - 4) + key[-4:]


class SegmentSink:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, responder: Responder | None = None) -> None:
        self.requests: list[ReceivedRequest] = []
        self.responder = responder
        #: Called with every request once it is recorded (the local debugger watches through it).
        self.observer: Callable[[ReceivedRequest], None] | None = None
        self._lock = threading.Lock()
        #: When the current thread's request line arrived, before its body was read (rate checks).
        self._arrival = threading.local()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # answer small responses at once, not after a delayed ACK

            def log_message(self, *args: Any) -> None:  # quiet
                return

            def do_GET(self) -> None:
                if self.path == "/_sink/requests":
                    self._send(200, {"requests": [r.summary() for r in sink.snapshot()]})
                elif self.path == "/_sink/messages":
                    self._send(200, {"messages": sink.messages()})
                else:
                    self._send(404, {"code": "not_found", "message": "unknown path"})

            def do_POST(self) -> None:
                sink._arrival.at = time.time()
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if self.path == "/_sink/reset":
                    sink.reset()
                    self._send(200, {"success": True})
                    return
                reply = sink.judge(self.path, dict(self.headers.items()), raw)
                if isinstance(reply, Drop):
                    self.close_connection = True  # nothing written: the client's read fails
                    return
                if isinstance(reply, Stall):
                    time.sleep(reply.seconds)
                    reply = reply.answer or (500, {}, {"code": "stalled", "message": "stalled"})
                status, headers, body = reply
                try:
                    self._send(status, body, headers)
                except OSError:  # the client gave up waiting (stall): nothing to answer
                    self.close_connection = True

            def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def batch_url(self) -> str:
        return f"{self.url}/v1/batch"

    def start(self) -> SegmentSink:
        # A short poll interval makes stop() quick (the default 0.5 s adds up across tests).
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, name="segment-sink", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- what Segment would do ------------------------------------------------------------
    def judge(self, path: str, headers: dict[str, str], raw: bytes) -> Reply:
        lower = {k.lower(): v for k, v in headers.items()}
        arrived = self._arrival.__dict__.pop("at", None) or time.time()
        request = ReceivedRequest(arrived, path, _write_key(lower.get("authorization")), len(raw), 0, 0)
        request.host = lower.get("host")
        status, body = self._validate(request, lower, raw)
        request.status = status
        if self.responder is not None:
            override = self.responder(request)
            if isinstance(override, Drop):
                request.status, request.error, request.fault = 0, "connection dropped", "drop"
                self._record(request)
                return override
            if isinstance(override, Stall):
                answer = override.answer or (status, {}, body)
                request.status, request.error, request.fault = answer[0], answer[2].get("message"), "stall"
                self._record(request)
                return Stall(override.seconds, answer)
            if override is not None:
                status, extra_headers, body = override
                request.status, request.error = status, body.get("message")
                self._record(request)
                return status, extra_headers, body
        request.status = status
        request.error = body.get("message") if status != 200 else None
        self._record(request)
        return status, {}, body

    def _validate(self, request: ReceivedRequest, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, Any]]:
        if request.path != "/v1/batch":
            return 404, {"code": "not_found", "message": f"no route {request.path}"}
        if not request.write_key:
            return 401, {"code": "unauthorized", "message": "missing Basic auth with the writeKey as username"}
        if not headers.get("content-type", "").startswith("application/json"):
            return 400, {"code": "invalid_request", "message": "Content-Type must be application/json"}
        if headers.get("content-encoding") == "gzip":
            try:
                raw = gzip.decompress(raw)
            except OSError:
                return 400, {"code": "invalid_request", "message": "body is not valid gzip"}
        request.body_bytes = len(raw)
        if len(raw) > MAX_BATCH_REQUEST_BYTES:
            return 400, {
                "code": "request_too_large",
                "message": f"batch is {len(raw)} bytes, limit {MAX_BATCH_REQUEST_BYTES}",
            }
        try:
            payload = json.loads(raw)
            batch = payload["batch"]
            assert isinstance(batch, list)
        except (ValueError, KeyError, TypeError, AssertionError):
            return 400, {"code": "invalid_json", "message": 'body must be JSON {"batch": [...]}'}
        request.message_count = len(batch)
        request.sent_at = payload.get("sentAt")
        if len(batch) > MAX_BATCH_MESSAGES:
            # Segment answers 200 and drops the events; the sink flags it so tests can fail on it.
            request.error = f"{len(batch)} messages exceed {MAX_BATCH_MESSAGES}: Segment would drop them"
            return 200, {"success": True}
        for item in batch:
            if not isinstance(item, dict) or "type" not in item:
                return 400, {"code": "invalid_request", "message": "every batch item needs a type"}
            if len(json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode()) > MAX_MESSAGE_BYTES:
                return 400, {"code": "message_too_large", "message": "a message exceeds 32 KB"}
        request.messages = batch
        return 200, {"success": True}

    def _record(self, request: ReceivedRequest) -> None:
        with self._lock:
            self.requests.append(request)
        if self.observer is not None:
            self.observer(request)

    # -- inspection -----------------------------------------------------------------------
    def snapshot(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self.requests)

    def messages(self) -> list[dict[str, Any]]:
        return [m for r in self.snapshot() if r.status == 200 for m in r.messages]

    def max_requests_in_window(self, window: float = 1.0) -> int:
        """Most requests that arrived within any `window` seconds (sliding): the peak request rate."""
        times = sorted(r.received_at for r in self.snapshot())
        best = start = 0
        for end, arrived in enumerate(times):
            while arrived - times[start] >= window:
                start += 1
            best = max(best, end - start + 1)
        return best

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()


def _write_key(authorization: str | None) -> str | None:
    if not authorization or not authorization.startswith("Basic "):
        return None
    try:
        decoded = base64.b64decode(authorization[6:], validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    key, sep, password = decoded.partition(":")
    # Segment's documented form is "writeKey:" with an empty password.
    return key if sep and not password and key else None
