"""A local stand-in for Segment's ingestion API: `POST /v1/batch`, judged like Segment judges it.

It checks what a partner integration must get right (Basic auth with `writeKey:`, JSON content
type, gzip, 500 KB per request, 32 KB per message, 2,500 messages per batch, a `type` on every
item) and records every request, so tests and the demo can show exactly what Segment would have
received. Answers `200 {"success": true}` or `400 {"code", "message"}` like the real API.

Inspection endpoints (local only): `GET /_sink/requests`, `GET /_sink/messages`, `POST /_sink/reset`.
Fault injection: a `responder` may answer instead (see faults.py), stall, or drop the connection.

It is also Segment's OAuth token server (`POST /token`, the sink's URL being the server and the
assertion's audience): `register_oauth_app` gives it an app's public key; it verifies each client
assertion (RS256 signature, `kid`, `iss`/`sub`, `aud`, `iat`/`exp` within a minute, a `jti` never
seen before), issues short-lived opaque tokens, and `/v1/batch` then takes `Bearer <token>` with the
writeKey in the body. A source marked OAuth-only refuses Basic auth and expired tokens with 401, as
a Segment source with "Enable OAuth" on does. `clock_offset` skews its clock (and its `Date`
header), `token_responder` injects token-server faults.
"""

from __future__ import annotations

import base64
import gzip
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

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
    #: How the request authenticated: "basic" (writeKey), "bearer" (OAuth token, writeKey in the body) or "none".
    auth: str = "none"
    #: The Bearer token it carried (for responders that echo it, as a hostile error page might); never summarized.
    bearer: str | None = field(default=None, repr=False)
    #: The Host the client addressed: the local stack gives each Segment region its own host name.
    host: str | None = None

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("messages")
        data.pop("bearer")
        data["write_key"] = _mask(self.write_key)
        return data


@dataclass
class OAuthApp:
    """A Segment OAuth app as the emulated token server knows it, and the source connected to it."""

    client_id: str
    key_id: str
    public_key_pem: str
    #: The writeKey of the source connected to the app.
    write_key: str
    #: The source has "Enable OAuth" on: Basic auth with its writeKey is refused (401).
    oauth_only: bool = True
    #: Lifetime of the tokens it issues (Segment's are 1-30 days; short here so tests see renewals).
    token_lifetime: int = 3600


@dataclass
class TokenRequest:
    """One `POST /token` the sink answered (nothing secret: no assertion, no token)."""

    received_at: float
    client_id: str | None
    status: int
    error: str | None = None


#: A hook that may answer a token request instead of the sink (token-server faults): gets the form.
TokenResponder = Callable[[dict[str, str]], "Reply | None"]


def _mask(key: str | None) -> str | None:
    if not key:
        return key
    return "*" * max(0, len(key) - 4) + key[-4:]


class SegmentSink:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, responder: Responder | None = None) -> None:
        self.requests: list[ReceivedRequest] = []
        self.responder = responder
        #: The token server: apps by client id, issued tokens (token -> (client id, expiry)), used jtis.
        self.oauth_apps: dict[str, OAuthApp] = {}
        self.issued: dict[str, tuple[str, float]] = {}
        self.used_jtis: set[str] = set()
        self.token_requests: list[TokenRequest] = []
        self.token_responder: TokenResponder | None = None
        #: Seconds the sink's clock is ahead of the real one (negative: behind): clock-skew tests.
        self.clock_offset = 0.0
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

            def date_time_string(self, timestamp: float | None = None) -> str:
                return formatdate(sink.now() if timestamp is None else timestamp, usegmt=True)

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
                if self.path == "/token":
                    reply = sink.token(raw)
                else:
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
        scheme = (lower.get("authorization") or "").partition(" ")[0].lower()
        request.auth = scheme if scheme in ("basic", "bearer") else "none"
        if request.auth == "bearer":
            request.bearer = (lower.get("authorization") or "")[7:].strip()
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
        token_app: OAuthApp | None = None
        if request.auth == "bearer":
            token_app = self._token_app(headers.get("authorization", "")[7:].strip())
            if token_app is None:
                return 401, {"code": "unauthorized", "message": "the access token is invalid or expired"}
        elif not request.write_key:
            return 401, {"code": "unauthorized", "message": "missing Basic auth with the writeKey as username"}
        elif any(app.oauth_only and app.write_key == request.write_key for app in self.oauth_apps.values()):
            return 401, {"code": "unauthorized", "message": "this source requires an OAuth access token"}
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
        if token_app is not None:
            request.write_key = payload.get("writeKey") if isinstance(payload.get("writeKey"), str) else None
            if not request.write_key:
                return 400, {"code": "invalid_request", "message": "OAuth requests carry the writeKey in the body"}
            if request.write_key != token_app.write_key:
                return 401, {"code": "unauthorized", "message": "the writeKey's source is not connected to this app"}
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

    # -- the OAuth token server -----------------------------------------------------------
    def now(self) -> float:
        return time.time() + self.clock_offset

    def register_oauth_app(self, app: OAuthApp) -> None:
        with self._lock:
            self.oauth_apps[app.client_id] = app

    def expire_tokens(self) -> None:
        """Every token issued so far is expired from now on (the refresh path in tests)."""
        with self._lock:
            self.issued = {token: (client, 0.0) for token, (client, _) in self.issued.items()}

    def _token_app(self, token: str) -> OAuthApp | None:
        with self._lock:
            client_id, expires = self.issued.get(token, ("", 0.0))
            if expires <= self.now():
                return None
            return self.oauth_apps.get(client_id)

    def token(self, raw: bytes) -> Reply:
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True).items()}
        if self.token_responder is not None:
            override = self.token_responder(form)
            if override is not None:
                status = override[0] if isinstance(override, tuple) else 0
                self._record_token(TokenRequest(time.time(), None, status, "injected"))
                return override
        status, body = self._issue(form)
        self._record_token(TokenRequest(time.time(), body.pop("_client", None), status, body.get("error")))
        return status, {"Cache-Control": "no-store"}, body

    def _issue(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        import jwt

        def refuse(status: int, error: str, description: str, client: str | None = None) -> tuple[int, dict[str, Any]]:
            return status, {"error": error, "error_description": description, "_client": client}

        if form.get("grant_type") != "client_credentials":
            return refuse(400, "unsupported_grant_type", "grant_type must be client_credentials")
        if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            return refuse(400, "invalid_request", "client_assertion_type must be jwt-bearer")
        if form.get("scope") != "tracking_api:write":
            return refuse(400, "invalid_scope", "scope must be tracking_api:write")
        assertion = form.get("client_assertion", "")
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            return refuse(400, "invalid_request", "client_assertion is not a JWT")
        client = claims.get("iss")
        app = self.oauth_apps.get(client) if isinstance(client, str) else None
        if app is None:
            return refuse(401, "invalid_client", "unknown OAuth app")
        if header.get("alg") != "RS256" or header.get("kid") != app.key_id:
            return refuse(401, "invalid_client", "unknown key id or algorithm", client)
        try:
            claims = jwt.decode(
                assertion,
                app.public_key_pem,
                algorithms=["RS256"],
                audience=self.url,
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "require": ["iss", "sub", "aud", "iat", "exp", "jti"],
                },
            )
        except jwt.InvalidAudienceError:
            return refuse(401, "invalid_client", f"aud must be {self.url}", client)
        except jwt.PyJWTError:
            return refuse(401, "invalid_client", "the assertion's signature does not verify", client)
        now = self.now()
        if claims["sub"] != client:
            return refuse(401, "invalid_client", "sub must be the app id", client)
        if not isinstance(claims["exp"], int) or not isinstance(claims["iat"], int):
            return refuse(400, "invalid_request", "iat and exp must be integers", client)
        if claims["exp"] <= now:
            return refuse(400, "invalid_request", "Token is expired", client)
        if claims["iat"] > now + 1:
            return refuse(400, "invalid_request", "Token used before issued", client)
        if claims["exp"] - claims["iat"] > 60 or claims["exp"] - now > 60:
            return refuse(400, "invalid_request", "the assertion must expire within 60 s", client)
        with self._lock:
            if claims["jti"] in self.used_jtis:
                return refuse(400, "invalid_request", "jti already used", client)
            self.used_jtis.add(claims["jti"])
            token = secrets.token_urlsafe(24)
            self.issued[token] = (client, now + app.token_lifetime)
        return 200, {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": app.token_lifetime,
            "scope": "tracking_api:write",
            "_client": client,
        }

    def _record_token(self, request: TokenRequest) -> None:
        with self._lock:
            self.token_requests.append(request)

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
            self.token_requests.clear()


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
