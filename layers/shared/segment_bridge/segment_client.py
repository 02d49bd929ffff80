"""A small HTTP client for Segment's /v1/batch, in the spirit of analytics-python's request.py.

One `requests.Session` per process (keep-alive to each regional host), gzip bodies, the writeKey
as HTTP Basic `writeKey:` (partner rule), and an outcome object instead of exceptions so the
forwarder can decide per status what to retry, isolate or dead-letter.
"""

from __future__ import annotations

import base64
import gzip
from dataclasses import dataclass
from typing import Mapping

import requests

from . import __version__
from .limits import SEGMENT_BATCH_URLS

USER_AGENT = f"segment-bridge/{__version__}"
#: zlib level 1: measured on 500 KB batches of Spec JSON it takes half the CPU of level 5 for a
#: body ~30% larger (~117 KB vs ~90 KB). Forwarder CPU is what Lambda bills; the extra bytes are
#: cents per million messages of egress.
GZIP_LEVEL = 1


@dataclass(frozen=True)
class SendOutcome:
    status: int | None  # None: no HTTP answer (timeout, connection error)
    error: str | None = None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def retryable(self) -> bool:
        # Segment: 429 and 5xx are transient, as are network failures; other 4xx never succeed as is.
        return self.status is None or self.status == 429 or self.status >= 500


def basic_auth(write_key: str) -> str:
    return "Basic " + base64.b64encode(f"{write_key}:".encode("utf-8")).decode("ascii")


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    for name in ("Retry-After", "X-RateLimit-Reset"):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value)
        except ValueError:
            continue
        if seconds > 1e9:  # an epoch timestamp rather than a delay
            import time

            seconds = seconds - time.time()
        return max(0.0, min(seconds, 300.0))
    return None


class SegmentClient:
    def __init__(
        self,
        urls: Mapping[str, str] | None = None,
        *,
        timeout: float = 10.0,
        session: requests.Session | None = None,
        compress: bool = True,
    ) -> None:
        self.urls = {**SEGMENT_BATCH_URLS, **{k: v for k, v in (urls or {}).items() if v}}
        self.timeout = timeout
        self.session = session or requests.Session()
        self.compress = compress

    def prepare(self, body: bytes) -> bytes:
        """The body as it goes on the wire (gzipped). Separate so the forwarder can compress before
        waiting for the rate limiter, and the limiter paces sends rather than CPU work."""
        return gzip.compress(body, compresslevel=GZIP_LEVEL) if self.compress else body

    def post_batch(
        self, region: str, write_key: str, body: bytes, timeout: float | None = None, *, prepared: bool = False
    ) -> SendOutcome:
        """`prepared`: `body` already went through `prepare`."""
        headers = {
            "Content-Type": "application/json",
            "Authorization": basic_auth(write_key),
            "User-Agent": USER_AGENT,
        }
        if not prepared:
            body = self.prepare(body)
        if self.compress:
            headers["Content-Encoding"] = "gzip"
        try:
            response = self.session.post(self.urls[region], data=body, headers=headers, timeout=timeout or self.timeout)
        except requests.Timeout:
            return SendOutcome(None, "timeout")
        except requests.RequestException as exc:
            return SendOutcome(None, f"connection error: {type(exc).__name__}")
        if response.status_code == 200:
            return SendOutcome(200)
        return SendOutcome(
            response.status_code,
            error=_error_text(response, write_key),
            retry_after=parse_retry_after(response.headers),
        )


def _error_text(response: requests.Response, write_key: str) -> str:
    """Segment's error message, without the writeKey if the answer quotes it.

    The text goes into failure reasons: logs, the DLQ's `reason` attribute, the exception SQS
    retries with. An error page that echoes the request (the key, the Authorization header) must
    not carry the key there, so it is redacted (before truncating, so no fragment survives a cut).
    """
    text = ""
    try:
        payload = response.json()
        if isinstance(payload, dict) and payload.get("message"):
            text = str(payload["message"])
    except ValueError:
        pass
    return redact(text or response.text or response.reason or "", write_key)[:300]


def redact(text: str, write_key: str) -> str:
    """`text` with the writeKey removed in every form a request carries it (raw, base64, Basic credentials)."""
    if not write_key:
        return text
    for form in (basic_auth(write_key).partition(" ")[2], base64.b64encode(write_key.encode("utf-8")).decode("ascii"),
                 write_key):
        text = text.replace(form, "[redacted]")
    return text
