"""Signature primitives shared by every source: constant-time comparison and replay windows.

Each tool's scheme is data on top of these (which header, which bytes, which digest); no source
compares digests or reads clocks by itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from ..auth import constant_time_equals, parse_basic_authorization
from ..errors import Unauthorized

if TYPE_CHECKING:  # `cryptography` is imported on first use: only SendGrid's ECDSA needs it (cold start)
    from cryptography.hazmat.primitives.asymmetric import ec

Clock = Callable[[], float]


def hmac_digest(key: str | bytes, message: bytes, algorithm: str = "sha256") -> bytes:
    key_bytes = key.encode("utf-8") if isinstance(key, str) else key
    return hmac.new(key_bytes, message, getattr(hashlib, algorithm)).digest()


def hex_signature_matches(key: str, message: bytes, candidates: list[str], algorithm: str = "sha256") -> bool:
    """True if any candidate equals hex(HMAC); every candidate is compared (no early exit on length)."""
    expected = hmac_digest(key, message, algorithm).hex()
    ok = False
    for candidate in candidates:
        ok |= constant_time_equals(expected, candidate.strip().lower())
    return ok


def check_hex_signature(key: str, message: bytes, candidates: list[str], algorithm: str = "sha256") -> None:
    """Accept if any candidate equals hex(HMAC) (`hex_signature_matches`); else 401."""
    if not hex_signature_matches(key, message, candidates, algorithm):
        raise Unauthorized()


def check_base64_signature(key: str, message: bytes, candidate: str | None, algorithm: str = "sha1") -> None:
    if not candidate:
        raise Unauthorized()
    expected = base64.b64encode(hmac_digest(key, message, algorithm))
    if not constant_time_equals(expected, candidate.strip()):
        raise Unauthorized()


#: A signed timestamp is whole Unix seconds in ASCII digits: what every tool sends (Stripe's `t=`,
#: SendGrid's timestamp header, Mailgun's `signature.timestamp`, our `spec` source). Twelve digits
#: reach the year 33658; anything longer, signed, fractional, exponent or non-ASCII is not one.
#: (`int(float(t))` let `inf` and `1e400` through to an OverflowError, a 500.)
TIMESTAMP_PATTERN = re.compile(r"[0-9]{1,12}")


def check_timestamp(timestamp: str | int | None, tolerance_seconds: int, clock: Clock = time.time) -> int:
    """Reject a timestamp outside +-tolerance of now (replay window). Returns it as int seconds.

    Anything but whole seconds in ASCII digits (`TIMESTAMP_PATTERN`) is the same 401 as a bad
    signature: a number that cannot be a time is not a signed time.
    """
    if isinstance(timestamp, bool) or not isinstance(timestamp, (str, int)):
        raise Unauthorized()
    digits = timestamp.strip() if isinstance(timestamp, str) else str(timestamp)
    if not TIMESTAMP_PATTERN.fullmatch(digits):
        raise Unauthorized()
    value = int(digits)
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


def url_params_payload(url: str, params: Iterable[tuple[str, str]]) -> bytes:
    """`url` followed by every `name + value`, sorted by name then value (Mandrill and Twilio).

    Pairs (not a dict) keep repeated names; identical pairs count once, as in Twilio's own validator.
    """
    return (url + "".join(name + value for name, value in sorted(set(params)))).encode("utf-8")


def url_port_variants(url: str) -> list[str]:
    """The URL without and with its scheme's default port: Twilio signs either form."""
    parts = urlsplit(url)
    if parts.port is not None:
        return [urlunsplit(parts._replace(netloc=parts.netloc.rsplit(":", 1)[0])), url]
    default_port = 443 if parts.scheme == "https" else 80
    return [url, urlunsplit(parts._replace(netloc=f"{parts.netloc}:{default_port}"))]


def check_url_params_signature(key: str, urls: list[str], params: list[tuple[str, str]], candidate: str | None) -> None:
    """base64 HMAC-SHA1 of `url_params_payload` for any of `urls` (every URL is tried, no early exit)."""
    if not candidate:
        raise Unauthorized()
    ok = False
    for url in urls:
        expected = base64.b64encode(hmac_digest(key, url_params_payload(url, params), "sha1"))
        ok |= constant_time_equals(expected, candidate.strip())
    if not ok:
        raise Unauthorized()


def check_basic_auth(header: str | None, username: str, password: str) -> None:
    """HTTP Basic credentials, compared as one `user:password` string in constant time."""
    given = parse_basic_authorization(header)
    if given is None or not constant_time_equals(f"{username}:{password}", ":".join(given)):
        raise Unauthorized()


def load_ec_public_key(der_base64: str) -> ec.EllipticCurvePublicKey:
    """A base64 DER SubjectPublicKeyInfo P-256 key (how SendGrid shows its verification key)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = serialization.load_der_public_key(base64.b64decode(der_base64.strip(), validate=True))
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("not a P-256 (secp256r1) elliptic-curve public key")
    return key


def check_ecdsa_signature(public_key: ec.EllipticCurvePublicKey, message: bytes, candidate: str | None) -> None:
    """ECDSA-SHA256 over `message`; the candidate is a base64 DER signature (SendGrid)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    if not candidate:
        raise Unauthorized()
    try:
        public_key.verify(base64.b64decode(candidate.strip(), validate=True), message, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError):
        raise Unauthorized() from None


def sign_timestamped(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """Build an `X-Signature` header value; used by the CLI, the local demo and tests."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac_digest(secret, str(t).encode() + b"." + body).hex()
    return f"t={t},v1={digest}"
