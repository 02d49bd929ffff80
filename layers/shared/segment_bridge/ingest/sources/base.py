"""The shared mechanism every source plugs into.

A source is data plus a few small functions: which media types it takes, how it verifies the
tool's signature, how it splits a body into events, and how one event maps to a Spec message
(through the tables and `ToolEvent` of `mapping`). Everything else (validation, identity policy,
messageIds, context.integration, size limits, enqueueing) is done once, in `normalize` and the
ingest pipeline, for all sources alike.

`Source` is generic over its settings model, so each tool's `verify` and `map_event` receive its
own settings type (`Source[StripeSettings]`) and the type checker holds them to it.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from ... import safe_json
from ...errors import MalformedRequest, Unauthorized
from ...events import MappedEvent, Skipped, WebhookRequest
from ...tenants import TenantConfig
from ..ports import ReplayGuard
from ..replay import InMemoryReplayGuard


class SourceSettings(BaseModel):
    """Per-tenant, per-source settings common to every tool (each source extends it)."""

    model_config = ConfigDict(extra="forbid")

    #: Events with no Spec counterpart: `skip` them (reported as skipped) or `passthrough` them
    #: as custom Proper Case track events.
    unmapped_events: Literal["skip", "passthrough"] = "skip"
    #: Name of the tool's custom field that carries the customer's userId (custom args, metadata...).
    user_id_field: str = "user_id"


SettingsT = TypeVar("SettingsT", bound=SourceSettings)


@dataclass(frozen=True)
class VerifyContext:
    """What signature checks need from the deployment, given by the ingest pipeline (never found
    globally): the replay window, the clock, and the guard for single-use signature tokens."""

    tolerance_seconds: int
    clock: Callable[[], float] = time.time
    replay_guard: ReplayGuard = field(default_factory=InMemoryReplayGuard)


class Source(ABC, Generic[SettingsT]):
    name: ClassVar[str]
    media_types: ClassVar[frozenset[str]] = frozenset({"application/json"})
    settings_model: type[SettingsT]
    #: Methods answered with an empty 200 and no further work (Mandrill probes its URL with HEAD).
    probe_methods: ClassVar[frozenset[str]] = frozenset()

    def settings_for(self, tenant: TenantConfig) -> SettingsT:
        """The tenant's settings for this source; a tenant not set up for it is unauthorized."""
        raw = tenant.sources.get(self.name)
        if raw is None:
            raise Unauthorized()
        try:
            return self.settings_model.model_validate(raw)
        except ValidationError:
            raise Unauthorized() from None

    @abstractmethod
    def verify(self, request: WebhookRequest, settings: SettingsT, ctx: VerifyContext) -> None:
        """Raise `Unauthorized` unless the request carries the tool's valid signature."""

    @abstractmethod
    def parse(self, request: WebhookRequest) -> list[Any]:
        """Split the body into the tool's events; raise `MalformedRequest` for a body that is not the tool's format."""

    @abstractmethod
    def map_event(self, event: Any, settings: SettingsT) -> MappedEvent | Skipped:
        """Map one tool event; raise `Rejected` with a reason the caller can act on."""


def load_json(body: bytes | str, what: str = "body") -> Any:
    """Parse an untrusted JSON body: invalid JSON and nesting beyond MAX_JSON_DEPTH are a 400."""
    return safe_json.loads(body, what)


def load_one_object(body: bytes | str, expected: str) -> list[Any]:
    """A body that is a single JSON object (one event per request), as a one-event list.

    `expected` describes the tool's format for the 400 a body of another shape gets.
    """
    payload = load_json(body)
    if not isinstance(payload, dict):
        raise MalformedRequest(f"body must be {expected}")
    return [payload]
