"""The HTTP client for Segment's /v1/batch, in the spirit of analytics-python's request.py.

`prepare` is the one place a packed batch becomes an HTTP request: the `{"batch": [...],
"sentAt": ...}` envelope stamped at sending time, gzip, and the writeKey as HTTP Basic `writeKey:`
(partner rule). `send` puts a prepared request on the wire and returns a `SendOutcome` instead of
raising, so delivery can decide per status what to retry, isolate or dead-letter. Two steps
because the rate limiter sits between them: it paces what reaches the wire, not the CPU work of
compressing bodies of varying size.

One `requests.Session` per process keeps a connection alive to each regional host.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from .. import __version__
from ..auth import basic_authorization, redact_basic_credential
from ..limits import SEGMENT_BATCH_URLS
from .batching import Batch
from .policy import Cause, classify

USER_AGENT = f"segment-bridge/{__version__}"
#: zlib level 1: measured on 500 KB batches of Spec JSON it takes half the CPU of level 5 for a
#: body ~30% larger (~117 KB vs ~90 KB). Forwarder CPU is what Lambda bills; the extra bytes are
#: cents per million messages of egress.
GZIP_LEVEL = 1
#: Longest wait a Retry-After / X-RateLimit-Reset may ask for; longer answers are read as this.
MAX_RETRY_AFTER_SECONDS = 300.0


@dataclass(frozen=True)
class SendOutcome:
    """What one request to Segment came to: its status, or why there was none."""

    status: int | None  # None: no HTTP answer (timeout, connection error)
    error: str | None = None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def retryable(self) -> bool:
        """Worth another attempt: a transient failure, as `policy.classify` (the one place) says."""
        return classify(self) is Cause.TRANSIENT


@dataclass(frozen=True)
class Target:
    """Where, and as whom, one tenant's batches are sent."""

    region: str
    write_key: str = field(repr=False)


@dataclass(frozen=True)
class PreparedRequest:
    """A batch as it goes on the wire. Nothing of it is printed: the headers hold the writeKey."""

    url: str
    headers: Mapping[str, str] = field(repr=False)
    body: bytes = field(repr=False)
    #: Only to redact the key from Segment's error text, should an error page echo it.
    write_key: str = field(repr=False)


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from Retry-After or X-RateLimit-Reset (a delay, or an epoch time), capped."""
    for name in ("Retry-After", "X-RateLimit-Reset"):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value)
        except ValueError:
            continue
        if seconds > 1e9:  # an epoch timestamp rather than a delay
            seconds -= time.time() if now is None else now
        return max(0.0, min(seconds, MAX_RETRY_AFTER_SECONDS))
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

    def prepare(self, target: Target, batch: Batch[Any], sent_at: str) -> PreparedRequest:
        """The request for `batch`: envelope with `sentAt`, gzip, headers with the writeKey."""
        body = batch.body(sent_at)
        headers = {
            "Content-Type": "application/json",
            "Authorization": basic_authorization(target.write_key),
            "User-Agent": USER_AGENT,
        }
        if self.compress:
            body = gzip.compress(body, compresslevel=GZIP_LEVEL)
            headers["Content-Encoding"] = "gzip"
        return PreparedRequest(self.urls[target.region], headers, body, target.write_key)

    def send(self, request: PreparedRequest, timeout: float | None = None) -> SendOutcome:
        try:
            response = self.session.post(
                request.url, data=request.body, headers=dict(request.headers), timeout=timeout or self.timeout
            )
        except requests.Timeout:
            return SendOutcome(None, "timeout")
        except requests.RequestException as exc:
            return SendOutcome(None, f"connection error: {type(exc).__name__}")
        if response.status_code == 200:
            return SendOutcome(200)
        return SendOutcome(
            response.status_code,
            error=_error_text(response, request.write_key),
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
    return redact_basic_credential(text or response.text or response.reason or "", write_key)[:300]
