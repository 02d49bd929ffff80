"""What the identity loop needs from its table, declared in one place (`store.DynamoDBIdentityStore`
implements both; tests pass fakes)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from .keys import IdentityMatch, Stamp, WriteOutcome


class IdentityLookup(Protocol):
    def lookup(self, keys: Sequence[str]) -> Mapping[str, IdentityMatch]:
        """The live links among `keys` (missing and expired ones left out), in batched reads."""
        ...


class IdentityWriter(Protocol):
    def link(self, tenant: str, user_id: str, keys: Sequence[str], stamp: Stamp, expires_at: int) -> WriteOutcome: ...

    def join_group(self, tenant: str, user_id: str, group_id: str, stamp: Stamp, expires_at: int) -> WriteOutcome: ...

    def forget(self, tenant: str, user_id: str, stamp: Stamp, tombstone_expires_at: int) -> WriteOutcome: ...
