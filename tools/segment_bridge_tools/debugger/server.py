"""The debugger page and its JSON feeds, served on loopback by the local stack.

    GET  /debugger                       the page (static HTML, CSS and JavaScript from static/)
    GET  /debugger/api/feed              summaries of every kept webhook, /v1/batch request, dead letter
    GET  /debugger/api/{kind}/{id}       one entry in full (kind: webhooks, requests, dead-letters)
    GET  /debugger/api/stream            server-sent events: `update` with the journal's sequence number
    POST /debugger/api/send              {"source": name}: send that source's sample webhook, signed

It is a developer tool for one machine, so it guards against the two ways a page on another site
could reach it: it binds to a loopback address only (refuses any other), and it answers only
requests addressed to a loopback Host (a DNS-rebinding page would send its own host name). The one
request that does something, `send`, must be JSON from the page's own origin, which a cross-site
form cannot produce. Every JSON answer is scrubbed of known secrets once more as it leaves.
"""

from __future__ import annotations

import ipaddress
import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .journal import Journal

STATIC = Path(__file__).with_name("static")
#: The files the page is made of, and their media types; nothing else is served from disk.
STATIC_FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
}
#: A heartbeat keeps idle event streams open through proxies and lets the server notice closed tabs.
STREAM_HEARTBEAT_SECONDS = 15.0
#: Largest `send` request body accepted (it only names a source).
MAX_SEND_BODY_BYTES = 4096
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "[::1]", "::1"}
#: The page loads only from itself: no CDN, no inline script, no framing by other sites.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
DETAIL = re.compile(r"^/debugger/api/(webhooks|requests|dead-letters)/(\d+)$")


@dataclass(frozen=True)
class SendResult:
    """What sending a sample webhook produced: the API's status and answer."""

    status: int
    body: Any


@dataclass(frozen=True)
class SampleSources:
    """The sources the page offers, and how to send one's sample (None: it cannot be sent, and why)."""

    names: tuple[str, ...]
    unavailable: Mapping[str, str]
    send: Callable[[str], SendResult]


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


class DebuggerServer:
    def __init__(
        self,
        journal: Journal,
        samples: SampleSources,
        info: Mapping[str, Any],
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if not is_loopback(host):
            raise ValueError(f"the debugger binds to loopback only, not {host!r}: it shows what the bridge received")
        self.journal = journal
        self.samples = samples
        self.info = dict(info)
        self._stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                return

            # -- plumbing ---------------------------------------------------------------------
            def _answer(
                self, status: int, body: bytes, content_type: str, extra: Mapping[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in {**SECURITY_HEADERS, **(extra or {})}.items():
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _json(self, status: int, value: Any) -> None:
                text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
                data = server.journal.redactor.scrub_text(text).encode("utf-8")
                self._answer(status, data, "application/json; charset=utf-8")

            def _host_ok(self) -> bool:
                host = urlsplit(f"//{self.headers.get('Host', '')}").hostname or ""
                if host in LOOPBACK_NAMES or is_loopback(host):
                    return True
                self._json(421, {"message": "the debugger answers only on 127.0.0.1 or localhost"})
                return False

            # -- routes -----------------------------------------------------------------------
            def do_GET(self) -> None:
                if not self._host_ok():
                    return
                path = urlsplit(self.path).path
                if path in ("/", "/debugger/"):
                    self._answer(302, b"", "text/plain", {"Location": "/debugger"})
                elif path == "/debugger":
                    self._static("index.html")
                elif path.startswith("/debugger/static/"):
                    self._static(path.removeprefix("/debugger/static/"))
                elif path == "/debugger/api/feed":
                    self._json(200, {**server.journal.feed(), "stack": server.info, "sources": server.source_list()})
                elif path == "/debugger/api/stream":
                    self._stream()
                elif match := DETAIL.match(path):
                    entry = server.journal.detail(match.group(1), int(match.group(2)))
                    if entry is None:
                        self._json(404, {"message": "no such entry (the debugger keeps the newest 500 of each kind)"})
                    else:
                        self._json(200, entry)
                else:
                    self._json(404, {"message": "unknown path; the debugger is at /debugger"})

            do_HEAD = do_GET

            def do_POST(self) -> None:
                if not self._host_ok():
                    return
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_SEND_BODY_BYTES:
                    self.close_connection = True
                    self._json(413, {"message": f"send takes a body of at most {MAX_SEND_BODY_BYTES} bytes"})
                    return
                raw = self.rfile.read(length) if length else b""
                if urlsplit(self.path).path != "/debugger/api/send":
                    self._json(404, {"message": "unknown path; POST /debugger/api/send sends a sample webhook"})
                    return
                origin = self.headers.get("Origin")
                if origin is not None and not is_loopback(urlsplit(origin).hostname or ""):
                    self._json(403, {"message": "send is accepted from the debugger page only"})
                    return
                if not (self.headers.get("Content-Type") or "").startswith("application/json"):
                    self._json(415, {"message": 'send takes Content-Type: application/json, {"source": "<name>"}'})
                    return
                try:
                    source = json.loads(raw)["source"]
                    assert isinstance(source, str)
                except (ValueError, KeyError, TypeError, AssertionError):
                    self._json(400, {"message": 'send takes {"source": "<name>"}, a built-in source'})
                    return
                if source not in server.samples.names:
                    names = ", ".join(server.samples.names)
                    self._json(404, {"message": f"unknown source {source[:64]!r}; use one of {names}"})
                    return
                if source in server.samples.unavailable:
                    self._json(409, {"message": server.samples.unavailable[source]})
                    return
                try:
                    result = server.samples.send(source)
                except Exception as exc:  # the API stand-in was unreachable: say so, never a stack trace
                    self._json(502, {"message": f"could not send the {source} sample: {type(exc).__name__}"})
                    return
                self._json(200, {"source": source, "status": result.status, "response": result.body})

            def _static(self, name: str) -> None:
                if name not in STATIC_FILES:
                    self._json(404, {"message": "unknown file"})
                    return
                self._answer(200, (STATIC / name).read_bytes(), STATIC_FILES[name])

            def _stream(self) -> None:
                """Server-sent events: one `update` per change of the journal, a comment as heartbeat."""
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream; charset=utf-8")
                for name, value in SECURITY_HEADERS.items():
                    self.send_header(name, value)
                self.send_header("Connection", "close")  # the body ends when the stream does
                self.end_headers()
                self.close_connection = True
                seq = -1
                try:
                    while not server._stopping.is_set():
                        current = server.journal.wait(seq, timeout=STREAM_HEARTBEAT_SECONDS)
                        if server._stopping.is_set():
                            break
                        if current != seq:
                            seq = current
                            self.wfile.write(f"event: update\ndata: {json.dumps({'seq': seq})}\n\n".encode())
                        else:
                            self.wfile.write(b": heartbeat\n\n")
                        self.wfile.flush()
                except OSError:  # the tab was closed
                    return

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True

    def source_list(self) -> list[dict[str, Any]]:
        return [
            {"name": name, "available": name not in self.samples.unavailable, "why": self.samples.unavailable.get(name)}
            for name in self.samples.names
        ]

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/debugger"

    def start(self) -> DebuggerServer:
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, name="debugger", daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.journal.wake()  # the event streams see `_stopping` and end
        self.server.shutdown()
        self.server.server_close()
