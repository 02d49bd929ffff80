"""What the admin pipeline needs from the world, declared in one place.

`TenantAdmin` takes an implementation of each through its constructor: the admin Lambda and the
CLI wire the real ones (`store.SecretsManagerStore`, `forward.TokenCache`), tests pass fakes or moto.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..forward import OAuthCredentials, TokenResult


@dataclass(frozen=True)
class SecretState:
    exists: bool
    #: Set while a deleted secret waits out its recovery window (a PUT restores it).
    deletion_date: datetime | None = None


class SecretStore(Protocol):
    """The tenant secrets (`{prefix}/tenants/{tenant}`), by full secret name."""

    def describe(self, name: str) -> SecretState: ...

    def read(self, name: str) -> str: ...

    def create(self, name: str, value: str, description: str) -> None: ...

    def update(self, name: str, value: str) -> None: ...

    def restore(self, name: str) -> None: ...

    def delete(self, name: str, recovery_days: int | None) -> datetime | None: ...


class TokenProbe(Protocol):
    """One real token round trip with a tenant's OAuth credentials (`forward.TokenCache.token`)."""

    def token(self, credentials: OAuthCredentials, region: str, timeout: float) -> TokenResult: ...
