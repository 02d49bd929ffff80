"""The ingest side of the identity loop: a tool event without a userId gets the customer's own back.

One batched lookup per request, best candidate first (the recipient's email, then phone, then the
event's anonymousId); a miss leaves the tenant's `missing_user_id` policy to decide.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..events import MappedEvent
from ..tenants import TenantConfig
from .keys import LOOKUP_ORDER, IdentityMatch, Kind, lookup_key
from .ports import IdentityLookup


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
