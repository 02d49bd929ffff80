"""The identity loop's domain: a person's lookup keys, and how a tool event gets its userId back.

Segment sends the customer's identify/group/delete calls to our destination endpoint
(`destination.py`), which keeps email / phone / anonymousId -> userId links per tenant in the
identity table (`identity_store.py`). When a tool's event arrives without a userId, ingest looks
its recipient up here, in one batched read per request, so Segment gets the customer's own userId
back instead of the tool's address (Segment: "Passing back the userId value sent from Segment into
your tool should be the default behaviour").

Keys. A link is one item keyed `{tenant}#{kind}#{sha256(tenant, normalized value)}`; a user's
own item, `{tenant}#user#{sha256(tenant, userId)}`, lists the user's link keys (the reverse index
deletion needs) and their group. The table never holds a plain address or phone number, not even
in a key, and one address gives unrelated keys in two tenants. A sha256 of an address is
pseudonymous, not anonymous (a candidate address can be hashed and compared), which is why the
table is still treated as personal data: encrypted, TTL'd, and emptied by Segment's deletions.

Everything here is pure; the DynamoDB adapter implements `IdentityLookup` and `IdentityWriter`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Literal, Mapping, Protocol, Sequence

from .sources.base import MappedEvent
from .tenants import TenantConfig

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
    international = text.startswith("+") or text.startswith("00")
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


# -- what the store is asked and answers --------------------------------------------------------
@dataclass(frozen=True, order=True)
class Stamp:
    """Orders writes to one item: the message's own time, then its messageId as the tie-break.

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


class IdentityLookup(Protocol):
    def lookup(self, keys: Sequence[str]) -> Mapping[str, IdentityMatch]:
        """The live links among `keys` (missing and expired ones left out), in batched reads."""
        ...


class IdentityWriter(Protocol):
    def link(self, tenant: str, user_id: str, keys: Sequence[str], stamp: Stamp, expires_at: int) -> WriteOutcome: ...

    def join_group(self, tenant: str, user_id: str, group_id: str, stamp: Stamp, expires_at: int) -> WriteOutcome: ...

    def forget(self, tenant: str, user_id: str, stamp: Stamp, tombstone_expires_at: int) -> WriteOutcome: ...


# -- resolution on the ingest path ---------------------------------------------------------------
@dataclass
class Resolution:
    #: Events that had no userId and got one from the identity table.
    resolved: int = 0
    #: Events that had no userId and a recipient to look up, but no link: the tenant's policy applies.
    missed: int = 0


def needs_user_id(message: Mapping[str, Any]) -> bool:
    user_id = message.get("userId")
    return user_id is None or (isinstance(user_id, str) and not user_id.strip())


def candidate_keys(tenant: str, event: MappedEvent) -> list[str]:
    """The event's lookup keys, best first: the recipient's email and phone, then its anonymousId."""
    values: dict[Kind, object] = {
        "email": event.identity_hints.get("email"),
        "phone": event.identity_hints.get("phone"),
        "anon": event.message.get("anonymousId"),
    }
    keys = []
    for kind in LOOKUP_ORDER:
        value = values[kind]
        key = lookup_key(tenant, kind, value) if isinstance(value, str) else None
        if key is not None and key not in keys:
            keys.append(key)
    return keys


def apply_match(message: dict[str, Any], match: IdentityMatch) -> None:
    """Give the message the customer's userId, and `context.groupId` when the user has a group."""
    message["userId"] = match.user_id
    if match.group_id:
        context = dict(message.get("context") or {})
        context.setdefault("groupId", match.group_id)
        message["context"] = context


class TableIdentityResolver:
    """Ingest's `IdentityResolver`: fills in missing userIds with one batched lookup per request.

    Only tenants with a destination API key take part: without one Segment cannot have sent us
    anything, so there is nothing to look up and no read is made.
    """

    def __init__(self, lookup: IdentityLookup) -> None:
        self.store = lookup

    def resolve(self, tenant_id: str, tenant: TenantConfig, events: list[MappedEvent]) -> Resolution:
        if tenant.destination is None:
            return Resolution()
        wanted = [(event, candidate_keys(tenant_id, event)) for event in events if needs_user_id(event.message)]
        wanted = [(event, keys) for event, keys in wanted if keys]
        if not wanted:
            return Resolution()
        found = self.store.lookup(list(dict.fromkeys(key for _, keys in wanted for key in keys)))
        resolution = Resolution()
        for event, keys in wanted:
            match = next((found[key] for key in keys if key in found), None)
            if match is None:
                resolution.missed += 1
            else:
                apply_match(event.message, match)
                resolution.resolved += 1
        return resolution
