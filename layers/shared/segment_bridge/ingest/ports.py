"""What the ingest pipeline needs from the world, declared in one place.

`Ingestor` takes an implementation of each through its constructor: the handler wires the real
ones (SQS, DynamoDB, the conformance reviewer, the identity resolver), tests pass fakes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..conformance import Review
    from ..events import MappedEvent
    from ..identity import Resolution
    from ..tenants import TenantConfig


class MessageQueue(Protocol):
    """Where accepted messages go (`queue.SqsQueue`). Returns the number of API calls made."""

    def send_bodies(self, bodies: list[str], attributes: dict[str, str]) -> int: ...


class MessageReviewer(Protocol):
    """Spec conformance (`conformance.ConformanceReviewer`): may repair `mapped.message` in place.

    Returns one decision per finding (all shown in the response); an event with a refusal is
    rejected with it as the reason and not normalized.
    """

    def review(self, mapped: MappedEvent, *, source: str, tenant_id: str, tenant: TenantConfig) -> Review: ...


class IdentityResolver(Protocol):
    """The identity loop (`identity.TableIdentityResolver`): fills in missing userIds in one batch."""

    def resolve(self, tenant_id: str, tenant: TenantConfig, events: list[MappedEvent]) -> Resolution: ...


class ReplayGuard(Protocol):
    """Single-use signature tokens (`replay.InMemoryReplayGuard`, `replay.DynamoDBReplayGuard`)."""

    def claim(self, key: str, fingerprint: str, now: float, expires_at: float) -> bool:
        """True if `key` is new (or expired), or was first seen with this same `fingerprint`; False
        for a replay. `now` is the verifier's clock, so a guard and the replay window agree."""
        ...
