"""The HTTP client for Segment's /v1/batch, in the spirit of analytics-python's request.py.

`prepare` is the one place a packed batch becomes an HTTP request: the `{"batch": [...],
"sentAt": ...}` envelope stamped at sending time, gzip, and the writeKey as HTTP Basic `writeKey:`
(partner rule). `send` puts a prepared request on the wire and returns a `SendOutcome` instead of
raising, so delivery can decide per status what to retry, isolate or dead-letter. Two steps
because the rate limiter sits between them: it paces what reaches the wire, not the CPU work of
compressing bodies of varying size.

A tenant with OAuth (`Target.oauth`) is sent with `Authorization: Bearer <token>` and its writeKey
in the body, as Segment asks; the token comes from `oauth.TokenCache` at sending time. A 401/403
from Segment drops that token and the request is sent once more with a new one, inside the same
timeout; a token that cannot be had is a `SendOutcome` with the status delivery already handles
(see `oauth`). That one re-send is not paced by the rate limiter: it happens at most once per
refused token, and a second refusal halts the tenant's lane for the invocation.

One `requests.Session` per process keeps a connection alive to each regional host.
"""

from __future__ import annotations

import gzip
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from .. import __version__
from ..auth import basic_authorization, redact_basic_credential
from ..limits import SEGMENT_BATCH_URLS
from ..tenants import TenantConfig
from .batching import Batch
from .oauth import OAuthCredentials, TokenCache
from .policy import Cause, classify

USER_AGENT = f"segment-bridge/{__version__}"
#: zlib level 1: measured on 500 KB batches of Spec JSON it takes half the CPU of level 5 for a
#: body ~30% larger (~117 KB vs ~90 KB). Forwarder CPU is what Lambda bills; the extra bytes are
#: cents per million messages of egress.
GZIP_LEVEL = 1
#: Longest wait a Retry-After / X-RateLimit-Reset may ask for; longer answers are read as this.
MAX_RETRY_AFTER_SECONDS = 300.0
#: Segment's answers that mean "this token is not (or no longer) good": drop it, fetch a new one.
TOKEN_REFUSED_STATUSES = frozenset({401, 403})


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
    #: The tenant's OAuth app when it is sent with OAuth; None: Basic auth with the writeKey.
    oauth: OAuthCredentials | None = field(default=None, repr=False)

    @classmethod
    def for_tenant(cls, tenant_id: str, tenant: TenantConfig) -> Target:
        oauth, credentials = tenant.oauth, None
        if oauth is not None and oauth.client_id and oauth.key_id:  # `uses_oauth`: a pending block keeps Basic
            credentials = OAuthCredentials(
                tenant_id, oauth.client_id, oauth.key_id, oauth.private_key.get_secret_value(), oauth.scope
            )
        return cls(tenant.region, tenant.write_key.get_secret_value(), credentials)

    @property
    def body_members(self) -> bytes:
        """What the envelope carries besides `batch` and `sentAt` (`pack_batches` counts it): with OAuth
        the writeKey, which Segment wants in the payload next to the Bearer token."""
        if self.oauth is None:
            return b""
        return b',"writeKey":' + json.dumps(self.write_key).encode("ascii")


@dataclass(frozen=True)
class PreparedRequest:
    """A batch as it goes on the wire. Nothing of it is printed: the headers hold the writeKey."""

    url: str
    headers: Mapping[str, str] = field(repr=False)
    body: bytes = field(repr=False)
    #: Only to redact the key from Segment's error text, should an error page echo it.
    write_key: str = field(repr=False)
    region: str = ""
    #: Set for OAuth: `send` adds `Authorization: Bearer <token>` from the token cache.
    oauth: OAuthCredentials | None = field(default=None, repr=False)


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
        tokens: TokenCache | None = None,
    ) -> None:
        self.urls = {**SEGMENT_BATCH_URLS, **{k: v for k, v in (urls or {}).items() if v}}
        self.timeout = timeout
        self.session = session or requests.Session()
        self.compress = compress
        #: OAuth access tokens of this instance's tenants (only OAuth tenants use it).
        self.tokens = tokens or TokenCache()

    def prepare(self, target: Target, batch: Batch[Any], sent_at: str) -> PreparedRequest:
        """The request for `batch`: envelope with `sentAt`, gzip, headers with the writeKey (Basic) or,
        for OAuth, the writeKey in the body and the token added by `send`."""
        body = batch.body(sent_at, target.body_members)
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        if target.oauth is None:
            headers["Authorization"] = basic_authorization(target.write_key)
        if self.compress:
            body = gzip.compress(body, compresslevel=GZIP_LEVEL)
            headers["Content-Encoding"] = "gzip"
        return PreparedRequest(self.urls[target.region], headers, body, target.write_key, target.region, target.oauth)

    def send(self, request: PreparedRequest, timeout: float | None = None) -> SendOutcome:
        budget = timeout or self.timeout
        if request.oauth is None:
            return self._post(request, request.headers, budget)
        ends = time.monotonic() + budget
        outcome = SendOutcome(None, "timeout")
        for attempt in range(2):  # the second only after Segment refused the first token
            token = self.tokens.token(request.oauth, request.region, budget)
            if token.token is None:
                return SendOutcome(token.status, token.error, token.retry_after)
            left = ends - time.monotonic()
            if left <= 0:
                return SendOutcome(None, "timeout")
            headers = {**request.headers, "Authorization": f"Bearer {token.token}"}
            outcome = self._post(request, headers, left, token.token)
            if outcome.status not in TOKEN_REFUSED_STATUSES:
                return outcome
            self.tokens.invalidate(request.oauth, request.region, token.token)
            budget = ends - time.monotonic()
            if attempt == 0 and budget <= 0:
                # The token was refused and no time is left to try a new one: retry later, not "refused".
                return SendOutcome(None, f"timeout (Segment answered {outcome.status} and a new token did not fit)")
        return outcome

    def _post(
        self, request: PreparedRequest, headers: Mapping[str, str], timeout: float, token: str = ""
    ) -> SendOutcome:
        try:
            response = self.session.post(request.url, data=request.body, headers=dict(headers), timeout=timeout)
        except requests.Timeout:
            return SendOutcome(None, "timeout")
        except requests.RequestException as exc:
            return SendOutcome(None, f"connection error: {type(exc).__name__}")
        if response.status_code == 200:
            return SendOutcome(200)
        return SendOutcome(
            response.status_code,
            error=_error_text(response, request.write_key, token),
            retry_after=parse_retry_after(response.headers),
        )


def _error_text(response: requests.Response, write_key: str, token: str = "") -> str:
    """Segment's error message, without the writeKey if the answer quotes it.

    The text goes into failure reasons: logs, the DLQ's `reason` attribute, the exception SQS
    retries with. An error page that echoes the request (the key, the Authorization header, an
    OAuth token) must not carry them there, so they are redacted (before truncating, so no
    fragment survives a cut).
    """
    text = ""
    try:
        payload = response.json()
        if isinstance(payload, dict) and payload.get("message"):
            text = str(payload["message"])
    except ValueError:
        pass
    text = redact_basic_credential(text or response.text or response.reason or "", write_key)
    if token:
        # The request's token, and (defence in depth) anything that follows "Bearer" or looks like a JWT.
        text = _BEARER.sub("Bearer [redacted]", text.replace(token, "[redacted]"))
        text = _JWT_LIKE.sub("[redacted]", text)
    return text[:300]


_BEARER = re.compile(r"Bearer\s+\S+", re.IGNORECASE)
_JWT_LIKE = re.compile(r"[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
