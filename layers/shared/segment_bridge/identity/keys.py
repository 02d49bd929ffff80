"""The identity loop's domain: a person's lookup keys, and how a tool event gets its userId back.

Segment sends the customer's identify/group/delete calls to our destination endpoint
(`destination.py`), which keeps email / phone / anonymousId -> userId links per tenant in the
identity table (`store.py`). When a tool's event arrives without a userId, ingest looks
its recipient up here, in one batched read per request, so Segment gets the customer's own userId
back instead of the tool's address (Segment: "Passing back the userId value sent from Segment into
your tool should be the default behaviour").

Keys. A link is one item keyed `{tenant}#{kind}#{sha256(tenant, normalized value)}`; a user's
own item, `{tenant}#user#{sha256(tenant, userId)}`, lists the user's link keys (the reverse index
deletion needs) and their group. The table never holds a plain address or phone number, not even
in a key, and one address gives unrelated keys in two tenants. A sha256 of an address is
pseudonymous, not anonymous (a candidate address can be hashed and compared), which is why the
table is still treated as personal data: encrypted, TTL'd, and emptied by Segment's deletions.

Everything here is pure; the DynamoDB adapter (`store.py`) implements the ports (`ports.py`),
and `resolution.py` is the ingest side of the loop.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["email", "phone", "anon"]

#: The order a tool event's candidates are tried in: an address the tool saw beats an anonymousId.
LOOKUP_ORDER: tuple[Kind, ...] = ("email", "phone", "anon")
#: Ids longer than Segment's own limit for ids never come from Segment; refuse to store them.
MAX_ID_LENGTH = 1024
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


# -- normalization and keys --------------------------------------------------------------------
def normalize_email(value: str) -> str | None:
    """Trimmed and lower-cased (what tools and Segment traits disagree on); None if not an address.

    No provider-specific folding (dots, +tags): those are different mailboxes in general.
    """
    email = value.strip().lower()
    return email if _EMAIL.fullmatch(email) else None


def normalize_phone(value: str) -> str | None:
    """E.164-ish: digits only, with a leading "+" kept ("00" read as "+"); None if implausible.

    Without a country code the digits are kept as they are; both sides of the loop normalize the
    same way, so "+1 (415) 555-0100" and "+14155550100" meet, while "4155550100" only meets itself.
    """
    text = value.strip()
    international = text.startswith(("+", "00"))
    digits = re.sub(r"\D", "", text)
    if text.startswith("00"):
        digits = digits[2:]
    if not 6 <= len(digits) <= 15:
        return None
    return f"+{digits}" if international else digits


def normalize_anonymous_id(value: str) -> str | None:
    anonymous_id = value.strip()
    return anonymous_id if 0 < len(anonymous_id) <= MAX_ID_LENGTH else None


_NORMALIZERS = {"email": normalize_email, "phone": normalize_phone, "anon": normalize_anonymous_id}


def _digest(tenant: str, value: str) -> str:
    return hashlib.sha256(f"{tenant}\x00{value}".encode("utf-8", "surrogatepass")).hexdigest()


def lookup_key(tenant: str, kind: Kind, value: str) -> str | None:
    """The table key of one link, or None when `value` is not a usable email/phone/anonymousId."""
    normalized = _NORMALIZERS[kind](value)
    return None if normalized is None else f"{tenant}#{kind}#{_digest(tenant, normalized)}"


def user_key(tenant: str, user_id: str) -> str:
    return f"{tenant}#user#{_digest(tenant, user_id)}"


# -- ordering ------------------------------------------------------------------------------------
#: How far past its receipt a Segment call's own time may order its writes. Segment corrects device
#: clocks (`timestamp = receivedAt - (sentAt - originalTimestamp)`), so a genuine timestamp is at
#: most a server clock's drift ahead of `receivedAt`; a minute covers NTP-synced senders. A call
#: dated later is ordered as if sent at `receivedAt` + this skew, i.e. by when Segment received it.
#: Unclamped, one identify dated 9999-12-31 outranked every later identify of its address, and a
#: delete dated 9999 suppressed the user's identifies forever (issue #13).
MAX_FUTURE_SKEW_MS = 60_000


def ordering_time_ms(own_ms: int | None, received_ms: int | None, now_ms: int) -> int:
    """The time a call's writes are ordered by: `min(own time, receivedAt + MAX_FUTURE_SKEW_MS)`.

    `received_ms` is Segment's `receivedAt`: it is set once, when Segment took the call in, so every
    retry of the call gets the same stamp (a retry must stay a no-op). It is itself no later than
    `now_ms`, the bridge's clock, so a forged `receivedAt` cannot lift the ceiling; a call without
    one is bounded by now. A call without a time of its own is ordered by its receipt. Times
    before 1970 count as 1970, so a stamp is never below the table's "no time" (-1).
    """
    received = now_ms if received_ms is None else min(received_ms, now_ms)
    own = received if own_ms is None else own_ms
    return max(0, min(own, received + MAX_FUTURE_SKEW_MS))


def ordering_ceiling_ms(now_ms: int) -> int:
    """The latest stamp a write made now can carry. A stored stamp above it was written before the
    clamp existed (a far-future identify or delete): writes treat it as older than themselves."""
    return now_ms + MAX_FUTURE_SKEW_MS


# -- what the store is asked and answers --------------------------------------------------------
@dataclass(frozen=True, order=True)
class Stamp:
    """Orders writes to one item: the call's time (`ordering_time_ms`), then its messageId as the tie-break.

    A write only lands on an item holding an older stamp. A redelivered message (same stamp) is
    thereby a no-op, and so is a late retry of an older identify that Segment delivers after a
    newer one (it retries for hours): messageId dedupe alone would let that one overwrite.
    """

    at_ms: int
    message_id: str


@dataclass(frozen=True)
class IdentityMatch:
    user_id: str
    group_id: str | None = None


@dataclass
class WriteOutcome:
    #: Items created, changed or removed.
    written: int = 0
    #: Items that already held this message or a newer one: duplicates and late retries.
    stale: int = 0
    #: The user was deleted after this message was sent; nothing was kept.
    suppressed: bool = False
    #: The table refused the message's data (DynamoDB's ValidationException: text it cannot store,
    #: an item over its size limit): why, for the caller. Retrying cannot help, so it is the
    #: message's 400; what the write had done before the refusal is harmless (see `store`).
    refused: str | None = None
