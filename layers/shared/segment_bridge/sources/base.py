"""The shared mechanism every source plugs into.

A source is data plus three small functions: which media types it takes, how it verifies the
tool's signature, how it splits a body into events, and how one event maps to a Spec message.
Everything else (validation, identity policy, messageIds, context.integration, size limits,
enqueueing) is done once, in `normalize` and `ingest`, for all sources alike.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Literal, Mapping

from pydantic import BaseModel, ConfigDict, ValidationError

from .. import safe_json
from ..errors import MalformedRequest, Unauthorized
from ..tenants import TenantConfig


@dataclass(frozen=True)
class WebhookRequest:
    """A webhook as received: raw bytes (signatures cover them), lower-cased header names."""

    source: str
    tenant: str
    method: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    #: The URL the request was addressed to, as API Gateway saw it (Mandrill/Twilio sign a URL;
    #: their sources prefer the tenant's configured public URL).
    url: str = ""
    received_at: float = field(default_factory=time.time)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def media_type(self) -> str:
        value = self.header("content-type") or ""
        return value.split(";", 1)[0].strip().lower()


class SourceSettings(BaseModel):
    """Per-tenant, per-source settings common to every tool (each source extends it)."""

    model_config = ConfigDict(extra="forbid")

    #: Events with no Spec counterpart: `skip` them (reported as skipped) or `passthrough` them
    #: as custom Proper Case track events.
    unmapped_events: Literal["skip", "passthrough"] = "skip"
    #: Name of the tool's custom field that carries the customer's userId (custom args, metadata...).
    user_id_field: str = "user_id"


@dataclass(slots=True)  # slots: one per event, kept for the whole request (less for the GC to track)
class MappedEvent:
    """One tool event as a Spec-shaped message, before the shared normalizer finishes it."""

    message: dict[str, Any]
    #: The tool's own stable id for this event; the messageId is derived from it so a redelivered
    #: webhook reproduces the same messageId. None means: derive from the content.
    event_key: str | None = None
    #: Recipient identifiers (email, phone) for identity resolution and stable anonymousIds.
    identity_hints: dict[str, str] = field(default_factory=dict)


@dataclass
class Skipped:
    """An event deliberately not forwarded (no Spec counterpart); reported, not an error."""

    reason: str


class Rejected(Exception):
    """One event cannot be mapped; the rest of the request goes on."""


@dataclass
class VerifyContext:
    tolerance_seconds: int
    clock: Callable[[], float] = time.time


class Source(ABC):
    name: ClassVar[str]
    media_types: ClassVar[frozenset[str]] = frozenset({"application/json"})
    settings_model: ClassVar[type[SourceSettings]] = SourceSettings
    #: Methods answered with an empty 200 and no further work (Mandrill probes its URL with HEAD).
    probe_methods: ClassVar[frozenset[str]] = frozenset()

    def settings_for(self, tenant: TenantConfig) -> SourceSettings:
        """The tenant's settings for this source; a tenant not set up for it is unauthorized."""
        raw = tenant.sources.get(self.name)
        if raw is None:
            raise Unauthorized()
        try:
            return self.settings_model.model_validate(raw)
        except ValidationError:
            raise Unauthorized() from None

    @abstractmethod
    def verify(self, request: WebhookRequest, settings: SourceSettings, ctx: VerifyContext) -> None:
        """Raise `Unauthorized` unless the request carries the tool's valid signature."""

    @abstractmethod
    def parse(self, request: WebhookRequest) -> list[Any]:
        """Split the body into the tool's events; raise `MalformedRequest` for a body that is not the tool's format."""

    @abstractmethod
    def map_event(self, event: Any, settings: SourceSettings) -> MappedEvent | Skipped:
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
