"""OAuth 2.0 for tenants whose Segment source requires it (segment-facts.md 1.3.1, docs/oauth.md).

- `make_assertion`: the JWT client assertion Segment's token servers take: RS256 with the key id in
  the `kid` header; `iss` and `sub` the OAuth app id, `aud` the regional token server, `iat`, `exp`
  under a minute ahead, a unique `jti`. Signed by PyJWT (with `cryptography`), not by hand.
- `TokenServerClient`: the HTTP adapter: one form-encoded client-credentials grant to
  `{server}/token`, its answer as a `TokenAnswer` value (never an exception).
- `TokenCache`: one token per tenant and instance, renewed at half its lifetime (as analytics-python
  and analytics-node do), the server's clock skew learned from its `Date` header, a 429's reset
  honoured, and every failure turned into a `TokenResult` with the status the delivery already
  classifies: no answer / 5xx / 429 are transient (SQS retries, the outage policy applies), a refusal of
  the tenant's credentials is a 401 (refused for the tenant, like a bad writeKey).

Neither a token nor the private key is ever logged, put into an error text or a repr.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import requests

from ..limits import (
    OAUTH_ASSERTION_BACKDATE_SECONDS,
    OAUTH_ASSERTION_LIFETIME_SECONDS,
    OAUTH_MAX_TOKEN_CHARS,
    OAUTH_MAX_TOKEN_LIFETIME_SECONDS,
    SEGMENT_OAUTH_SERVERS,
)
from ..observability import logger
from ..tenants import OAUTH_DEFAULT_SCOPE

#: RFC 7523 (JWT bearer client authentication).
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: A token still valid for at least this long is used when its renewal fails (the token server is
#: down, or rate-limits us): delivery goes on while the token lasts, and renewal is tried again next time.
STALE_TOKEN_MARGIN_SECONDS = 60.0
#: Longest wait a token server's 429 may impose (its reset header); longer answers are read as this.
MAX_RATE_LIMIT_WAIT_SECONDS = 300.0
#: Wait after a 429 that says nothing about when to come back (analytics-python waits 5 s).
DEFAULT_RATE_LIMIT_WAIT_SECONDS = 5.0
#: Answers from a token server whose `error_description` means the assertion's times were off: our
#: clock, not the credentials. Retried once at once with the skew learned from that answer's `Date`.
CLOCK_ERRORS = ("token is expired", "token used before issued")
#: Anything shaped like a JWT (three base64url parts) is cut out of a token server's error text.
_JWT_LIKE = re.compile(r"[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
#: What we quote of a token server's error text at most.
MAX_ERROR_CHARS = 200


@dataclass(frozen=True)
class OAuthCredentials:
    """One tenant's OAuth app, as the forwarder uses it. Nothing of it is printed."""

    tenant: str
    client_id: str
    key_id: str
    private_key: str = field(repr=False)
    scope: str = OAUTH_DEFAULT_SCOPE

    @property
    def fingerprint(self) -> str:
        """Changes with any credential: a token of the old app or key is never used for the new one."""
        material = "\0".join((self.client_id, self.key_id, self.scope, self.private_key))
        return hashlib.sha256(material.encode("utf-8")).hexdigest()


def make_assertion(credentials: OAuthCredentials, audience: str, now: float, jti: str, key: Any = None) -> str:
    """The signed client assertion (`key`: the loaded private key, or None to read the PEM)."""
    import jwt  # lazily: only tenants sent with OAuth pay for PyJWT's import (bench: cold start)

    issued = int(now)
    claims = {
        "iss": credentials.client_id,
        "sub": credentials.client_id,
        "aud": audience,
        "iat": issued - OAUTH_ASSERTION_BACKDATE_SECONDS,
        "exp": issued + OAUTH_ASSERTION_LIFETIME_SECONDS,
        "jti": jti,
    }
    signing_key = key if key is not None else credentials.private_key
    return jwt.encode(claims, signing_key, algorithm="RS256", headers={"kid": credentials.key_id, "typ": "JWT"})


def load_private_key(pem: str) -> Any:
    """The RSA private key of a PEM; ValueError (without the key in it) if it is not a usable one."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(pem.encode("utf-8"), password=None)
    except (ValueError, TypeError):
        raise ValueError("the OAuth private key is not a readable unencrypted PEM key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the OAuth private key is not an RSA key (Segment's assertions are RS256)")
    return key


class TokenAnswer(NamedTuple):
    """What one token request came to. (NamedTuples, not dataclasses, here: this module is imported
    by every forwarder cold start, OAuth tenants or not, and a frozen dataclass costs ~10x as much to
    define.)"""

    status: int | None  # None: no HTTP answer (timeout, connection error)
    access_token: str | None = None
    expires_in: float = 0.0
    #: The OAuth error and its description, or why there was no answer (never the token or assertion).
    error: str | None = None
    retry_after: float | None = None
    #: The server's clock (its `Date` header), unix seconds.
    server_time: float | None = None

    def __repr__(self) -> str:  # never the token
        return f"TokenAnswer(status={self.status!r}, error={self.error!r}, retry_after={self.retry_after!r})"


class TokenServerClient:
    """`POST {server}/token`, form-encoded client-credentials grant with a JWT client assertion."""

    def __init__(self, session: requests.Session | None = None) -> None:
        self.session = session or requests.Session()

    def request(self, server: str, form: Mapping[str, str], timeout: float) -> TokenAnswer:
        try:
            response = self.session.post(
                f"{server.rstrip('/')}/token",
                data=dict(form),
                headers={"Accept": "application/json"},
                timeout=timeout,
            )
        except requests.Timeout:
            return TokenAnswer(None, error="timeout")
        except requests.RequestException as exc:
            return TokenAnswer(None, error=f"connection error: {type(exc).__name__}")
        return read_token_response(response.status_code, response.headers, response.text)


def read_token_response(status: int, headers: Mapping[str, str], text: str, now: float | None = None) -> TokenAnswer:
    """A token server's HTTP answer as a `TokenAnswer` (pure: tests feed it answers directly)."""
    server_time = _http_date(headers.get("Date"))
    payload: dict[str, Any] = {}
    try:
        parsed = json.loads(text) if text else {}
        if isinstance(parsed, dict):
            payload = parsed
    except ValueError:
        pass
    if status == 200:
        token, lifetime = payload.get("access_token"), payload.get("expires_in")
        if not _usable_token(token) or not isinstance(lifetime, (int, float)) or isinstance(lifetime, bool):
            return TokenAnswer(502, error="the token server answered 200 without a usable access_token and expires_in")
        if lifetime <= 0:
            return TokenAnswer(502, error="the token server answered 200 with a token that has already expired")
        return TokenAnswer(
            200,
            access_token=str(token),
            expires_in=float(min(lifetime, OAUTH_MAX_TOKEN_LIFETIME_SECONDS)),
            server_time=server_time,
        )
    error = " ".join(str(payload.get(k)) for k in ("error", "error_description") if payload.get(k)) or text
    return TokenAnswer(
        status,
        error=_clean(error) or None,
        retry_after=_rate_limit_wait(headers, now) if status == 429 else None,
        server_time=server_time,
    )


def _usable_token(token: Any) -> bool:
    # It goes into an Authorization header: visible ASCII only (no CR/LF header injection), bounded.
    return (
        isinstance(token, str) and 0 < len(token) <= OAUTH_MAX_TOKEN_CHARS and token.isascii() and token.isprintable()
    )


def _clean(text: str) -> str:
    return _JWT_LIKE.sub("[redacted]", text.replace("\n", " ").replace("\r", " ")).strip()[:MAX_ERROR_CHARS]


def _http_date(value: str | None) -> float | None:
    from email.utils import parsedate_to_datetime  # here: only OAuth tenants need it (cold start)

    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _rate_limit_wait(headers: Mapping[str, str], now: float | None) -> float:
    """Seconds until a 429 lifts: `X-RateLimit-Reset` (analytics-python) or `Retry-After` (analytics-node),
    each a delay in seconds or, when it looks like one, a unix time."""
    for name in ("X-RateLimit-Reset", "Retry-After"):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value)
        except ValueError:
            continue
        if seconds > 1e9:
            seconds -= time.time() if now is None else now
        return max(0.0, min(seconds, MAX_RATE_LIMIT_WAIT_SECONDS))
    return DEFAULT_RATE_LIMIT_WAIT_SECONDS


class TokenResult(NamedTuple):
    """A token, or why there is none, with the status delivery classifies (see the module doc)."""

    token: str | None = None
    status: int | None = None
    error: str | None = None
    retry_after: float | None = None

    def __repr__(self) -> str:  # never the token
        return f"TokenResult(status={self.status!r}, error={self.error!r}, retry_after={self.retry_after!r})"


class TokenStats:
    """Token requests since the last `TokenCache.take_stats()`."""

    __slots__ = ("failures", "invalidated", "requests")

    def __init__(self) -> None:
        self.requests = self.failures = self.invalidated = 0


class _Cached(NamedTuple):
    token: str
    renew_at: float  # monotonic
    expires_at: float  # monotonic


class TokenCache:
    """Access tokens per tenant (and region and credentials) for this instance; thread-safe.

    A tenant's token is fetched by one thread at a time (the others wait and share it). The clock
    skew of each token server (its `Date` minus our clock) is learned from every answer and applied
    to the assertions' `iat`/`exp`, as analytics-python does.
    """

    def __init__(
        self,
        servers: Mapping[str, str] | None = None,
        *,
        client: TokenServerClient | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        new_jti: Callable[[], str] | None = None,
    ) -> None:
        self.servers = {**SEGMENT_OAUTH_SERVERS, **{k: v.rstrip("/") for k, v in (servers or {}).items() if v}}
        self.client = client or TokenServerClient()
        self.clock = clock
        self.monotonic = monotonic
        self.new_jti = new_jti or _uuid4
        self.stats = TokenStats()
        self._cached: dict[tuple[str, str, str], _Cached] = {}
        self._blocked_until: dict[tuple[str, str, str], float] = {}
        self._keys: dict[str, Any] = {}  # fingerprint -> loaded private key
        self._skew: dict[str, float] = {}  # server -> its clock minus ours, seconds
        self._locks: dict[tuple[str, str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def token(self, credentials: OAuthCredentials, region: str, timeout: float) -> TokenResult:
        key = (credentials.tenant, region, credentials.fingerprint)
        with self._lock(key):
            now = self.monotonic()
            cached = self._cached.get(key)
            if cached is not None and now < cached.renew_at:
                return TokenResult(cached.token)
            blocked = self._blocked_until.get(key, 0.0) - now
            if blocked > 0:
                wait = TokenResult(status=429, error="the OAuth token server rate-limits us", retry_after=blocked)
                return self._still_valid(cached, now) or wait
            result = self._fetch(key, credentials, region, timeout)
            if result.token is None:
                stale = self._still_valid(cached, self.monotonic())
                if stale is not None:
                    logger.warning(
                        "OAuth token renewal failed; using the current token while it lasts",
                        extra={"tenant": credentials.tenant, "status": result.status, "error": result.error},
                    )
                    return stale
            return result

    def invalidate(self, credentials: OAuthCredentials, region: str, token: str) -> None:
        """Forget `token` (Segment refused it): the next `token()` fetches a new one. A token that a
        concurrent refresh already replaced is left alone."""
        key = (credentials.tenant, region, credentials.fingerprint)
        with self._lock(key):
            cached = self._cached.get(key)
            if cached is not None and cached.token == token:
                del self._cached[key]
                with self._guard:
                    self.stats.invalidated += 1

    def take_stats(self) -> TokenStats:
        """The counts since the last call (the handler turns them into metrics)."""
        with self._guard:
            stats, self.stats = self.stats, TokenStats()
        return stats

    # -- internals ------------------------------------------------------------------------
    def _lock(self, key: tuple[str, str, str]) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    @staticmethod
    def _still_valid(cached: _Cached | None, now: float) -> TokenResult | None:
        if cached is not None and now < cached.expires_at - STALE_TOKEN_MARGIN_SECONDS:
            return TokenResult(cached.token)
        return None

    def _fetch(
        self, key: tuple[str, str, str], credentials: OAuthCredentials, region: str, timeout: float
    ) -> TokenResult:
        server = self.servers.get(region)
        if server is None:
            return TokenResult(status=401, error=f"no OAuth token server for region {region!r}")
        try:
            private_key = self._private_key(credentials)
        except ValueError as exc:
            return self._failed(TokenResult(status=401, error=f"{exc}; fix the tenant's oauth block"))
        started = self.monotonic()
        answer = self._ask(server, credentials, private_key, timeout)
        if answer.status == 400 and _is_clock_error(answer) and answer.server_time is not None:
            # `iat`/`exp` were off by the server's clock: ask once more, now with its skew applied.
            answer = self._ask(server, credentials, private_key, max(0.1, timeout - (self.monotonic() - started)))
        if answer.status == 200 and answer.access_token is not None:
            now = self.monotonic()
            self._cached[key] = _Cached(answer.access_token, now + answer.expires_in / 2, now + answer.expires_in)
            self._blocked_until.pop(key, None)
            return TokenResult(answer.access_token)
        if answer.status == 429:
            wait = DEFAULT_RATE_LIMIT_WAIT_SECONDS if answer.retry_after is None else answer.retry_after
            self._blocked_until[key] = self.monotonic() + wait
        return self._failed(_classify(answer))

    def _ask(self, server: str, credentials: OAuthCredentials, private_key: Any, timeout: float) -> TokenAnswer:
        now = self.clock() + self._skew.get(server, 0.0)
        assertion = make_assertion(credentials, server, now, self.new_jti(), key=private_key)
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": assertion,
            "scope": credentials.scope,
        }
        with self._guard:
            self.stats.requests += 1
        answer = self.client.request(server, form, timeout)
        if answer.server_time is not None:
            self._skew[server] = answer.server_time - self.clock()
        return answer

    def _private_key(self, credentials: OAuthCredentials) -> Any:
        fingerprint = credentials.fingerprint
        key = self._keys.get(fingerprint)
        if key is None:
            key = load_private_key(credentials.private_key)  # RSA key checks cost milliseconds: once
            self._keys[fingerprint] = key
        return key

    def _failed(self, result: TokenResult) -> TokenResult:
        with self._guard:
            self.stats.failures += 1
        return result


def _uuid4() -> str:
    import uuid  # here: only OAuth tenants need it (cold start)

    return str(uuid.uuid4())


def _is_clock_error(answer: TokenAnswer) -> bool:
    return any(phrase in (answer.error or "").lower() for phrase in CLOCK_ERRORS)


def _classify(answer: TokenAnswer) -> TokenResult:
    """A failed token request as the status delivery understands (module doc)."""
    detail = f": {answer.error}" if answer.error else ""
    if answer.status is None:
        # delivery words it "no answer from Segment (OAuth token server: timeout)"
        return TokenResult(status=None, error=f"OAuth token server: {answer.error}")
    if answer.status == 429:
        return TokenResult(
            status=429, error=f"the OAuth token server rate-limits us{detail}", retry_after=answer.retry_after
        )
    if answer.status >= 500:
        return TokenResult(status=answer.status, error=f"the OAuth token server answered {answer.status}{detail}")
    if answer.status == 400 and _is_clock_error(answer):
        # Still off after a correction: our clock or theirs, not the tenant's credentials. Transient.
        return TokenResult(status=503, error=f"the OAuth token server refused the assertion's times{detail}")
    # 400 invalid_client / invalid_grant / invalid_scope, 401, 403...: the app id, key id, key or
    # scope is wrong, or the app was deleted. Never a 400 here: delivery would bisect the batch for it.
    return TokenResult(
        status=401, error=f"the OAuth token server refused the tenant's credentials ({answer.status}{detail})"
    )
