"""HTTP Basic credentials, both ways, and the constant-time comparison every secret check uses.

Segment takes the writeKey as Basic `writeKey:`; Segment calls our destination with Basic
`apiKey:`; Postmark signs its webhooks with Basic `user:password`. One parser and one builder serve
all of them, so no caller decodes base64 or compares secrets on its own.
"""

from __future__ import annotations

import base64
import binascii
import hmac


def constant_time_equals(expected: str | bytes, given: str | bytes) -> bool:
    """True if both are the same text, in time that does not depend on where they differ."""
    a = expected.encode("utf-8", "surrogatepass") if isinstance(expected, str) else expected
    b = given.encode("utf-8", "surrogatepass") if isinstance(given, str) else given
    return hmac.compare_digest(a, b)


def basic_authorization(username: str, password: str = "") -> str:
    """The `Authorization` header value for HTTP Basic `username:password`."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def parse_basic_authorization(header: str | None) -> tuple[str, str] | None:
    """`(username, password)` of a Basic `Authorization` header; None if it is not one.

    A header without a colon in its credentials reads as a username with an empty password, the
    way Segment's libraries send a key alone.
    """
    scheme, _, encoded = (header or "").strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        return None
    username, _, password = decoded.partition(":")
    return username, password


def redact_basic_credential(text: str, username: str) -> str:
    """`text` without `username` in any form a Basic request carries it (raw, base64, `user:`)."""
    if not username:
        return text
    raw = username.encode("utf-8", "surrogatepass")
    for form in (base64.b64encode(raw + b":").decode("ascii"), base64.b64encode(raw).decode("ascii"), username):
        text = text.replace(form, "[redacted]")
    return text
