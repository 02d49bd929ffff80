"""Signature primitives shared by every source: constant-time comparison and replay windows.

Each tool's scheme is data on top of these (which header, which bytes, which digest); no source
compares digests or reads clocks by itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Callable

from .errors import Unauthorized

Clock = Callable[[], float]


def hmac_digest(key: str | bytes, message: bytes, algorithm: str = "sha256") -> bytes:
    key_bytes = key.encode("utf-8") if isinstance(key, str) else key
    return hmac.new(key_bytes, message, getattr(hashlib, algorithm)).digest()


def constant_time_equals(expected: str | bytes, given: str | bytes) -> bool:
    a = expected.encode("utf-8") if isinstance(expected, str) else expected
    b = given.encode("utf-8") if isinstance(given, str) else given
    return hmac.compare_digest(a, b)


def check_hex_signature(key: str, message: bytes, candidates: list[str], algorithm: str = "sha256") -> None:
    """Accept if any candidate equals hex(HMAC); every candidate is compared (no early exit on length)."""
    expected = hmac_digest(key, message, algorithm).hex()
    ok = False
    for candidate in candidates:
        ok |= constant_time_equals(expected, candidate.strip().lower())
    if not ok:
        raise Unauthorized()


def check_base64_signature(key: str, message: bytes, candidate: str | None, algorithm: str = "sha1") -> None:
    if not candidate:
        raise Unauthorized()
    expected = base64.b64encode(hmac_digest(key, message, algorithm))
    if not constant_time_equals(expected, candidate.strip()):
        raise Unauthorized()


def check_timestamp(timestamp: str | int | float | None, tolerance_seconds: int, clock: Clock = time.time) -> int:
    """Reject a timestamp outside +-tolerance of now (replay window). Returns it as int seconds."""
    try:
        value = int(float(str(timestamp).strip()))
    except (TypeError, ValueError):
        raise Unauthorized() from None
    if abs(clock() - value) > tolerance_seconds:
        raise Unauthorized("signature timestamp outside the allowed window; check the sender's clock")
    return value


def parse_timestamped_header(header: str | None) -> tuple[str | None, list[str]]:
    """Parse `t=<unix>,v1=<hex>[,v1=<hex>...]` (Stripe's format, reused by the `spec` source)."""
    if not header:
        return None, []
    timestamp: str | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t" and timestamp is None:
            timestamp = value
        elif key == "v1":
            signatures.append(value)
    return timestamp, signatures[:8]  # bound the work an attacker can ask for


def check_timestamped_hmac(
    secret: str, header: str | None, body: bytes, tolerance_seconds: int, clock: Clock = time.time
) -> None:
    """HMAC-SHA256 over `"{t}.{raw body}"`, header `t=..,v1=..` (Stripe, and our `spec` source)."""
    timestamp, signatures = parse_timestamped_header(header)
    if timestamp is None or not signatures:
        raise Unauthorized()
    # Verify the signature first, then the window: a forged request learns nothing about our clock.
    check_hex_signature(secret, timestamp.encode("ascii", "replace") + b"." + body, signatures)
    check_timestamp(timestamp, tolerance_seconds, clock)


def sign_timestamped(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """Build an `X-Signature` header value; used by the CLI, the local demo and tests."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac_digest(secret, str(t).encode() + b"." + body).hex()
    return f"t={t},v1={digest}"
