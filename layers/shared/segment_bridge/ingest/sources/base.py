"""The shared mechanism every source plugs into.

A source is data plus a few small functions: which media types it takes, how it verifies the
tool's signature, how it splits a body into events, and how one event maps to a Spec message
(through the tables and `ToolEvent` of `mapping`). Everything else (validation, identity policy,
messageIds, context.integration, size limits, enqueueing) is done once, in `normalize` and the
ingest pipeline, for all sources alike.

`Source` is generic over its settings model, so each tool's `verify` and `map_event` receive its
own settings type (`Source[StripeSettings]`) and the type checker holds them to it.

Work before the signature is bounded (docs/security.md, round 2): `precheck` refuses, from each
source's `limits` and before any tenant lookup, what the tool could never have sent; `verify` then
only reads what the signature covers; an unknown tenant (or one without this source) is verified
against `decoy_settings`, so it costs what a bad signature for a real tenant costs.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from ... import safe_json
from ...errors import MalformedRequest, PayloadTooLarge, Unauthorized
from ...events import MappedEvent, Skipped, WebhookRequest
from ...tenants import TenantConfig, decoy_secret
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


@dataclass(frozen=True)
class RequestLimits:
    """The most one request of a tool can hold, as data on its source; `None` means no limit of its own.

    Checked by `check` before the tenant is looked up, so the answer (413, saying which limit) is the
    same for every tenant and costs a few C-level passes over the body. They bound the work `verify`
    does before the signature is known to be good: a form signature covers every parameter, so all
    of them are decoded and hashed first (600,000 empty parameters once cost 5 CPU-seconds).
    """

    #: Largest body, below the deployment's MAX_BODY_BYTES.
    max_body_bytes: int | None = None
    #: Form-encoded bodies: most parameters (`&`-separated pieces), longest name and value, in bytes
    #: as sent (percent-encoded, so never shorter than decoded).
    max_params: int | None = None
    max_name_bytes: int | None = None
    max_value_bytes: int | None = None

    def check(self, source: str, body: bytes) -> None:
        if self.max_body_bytes is not None and len(body) > self.max_body_bytes:
            raise PayloadTooLarge(
                f"{source} requests are at most {self.max_body_bytes} bytes; this one has {len(body)}"
            )
        if self.max_params is None:
            return
        pieces = body.count(b"&") + 1
        if pieces > self.max_params:
            raise PayloadTooLarge(
                f"{source} requests carry at most {self.max_params} form parameters; this one has {pieces}"
            )
        for piece in body.split(b"&"):  # at most max_params pieces
            name, _, value = piece.partition(b"=")
            if self.max_name_bytes is not None and len(name) > self.max_name_bytes:
                raise PayloadTooLarge(f"{source} form parameter names are at most {self.max_name_bytes} bytes")
            if self.max_value_bytes is not None and len(value) > self.max_value_bytes:
                raise PayloadTooLarge(f"{source} form parameter values are at most {self.max_value_bytes} bytes")


class Source(ABC, Generic[SettingsT]):
    name: ClassVar[str]
    media_types: ClassVar[frozenset[str]] = frozenset({"application/json"})
    settings_model: type[SettingsT]
    #: Methods answered with an empty 200 and no further work (Mandrill probes its URL with HEAD).
    probe_methods: ClassVar[frozenset[str]] = frozenset()
    #: What one of the tool's requests can hold (checked by `precheck`, before any tenant lookup).
    limits: ClassVar[RequestLimits] = RequestLimits()

    def precheck(self, request: WebhookRequest) -> None:
        """Refuse what the tool could never have sent (413), before the tenant lookup and the signature."""
        self.limits.check(self.name, request.body)

    def settings_or_none(self, tenant: TenantConfig | None) -> SettingsT | None:
        """The tenant's settings for this source; None for no tenant, or one not set up (or set up wrongly) for it."""
        raw = tenant.sources.get(self.name) if tenant is not None else None
        if raw is None:
            return None
        try:
            return self.settings_model.model_validate(raw)
        except ValidationError:
            return None

    def settings_for(self, tenant: TenantConfig) -> SettingsT:
        """The tenant's settings for this source; a tenant not set up for it is unauthorized."""
        settings = self.settings_or_none(tenant)
        if settings is None:
            raise Unauthorized()
        return settings

    @cached_property
    def decoy_settings(self) -> SettingsT:
        """Settings whose every required field is a random secret of this process (`tenants.decoy_secret`).

        `verify` runs against them for an unknown tenant or one without this source, so that refusal
        does the same work as a bad signature for a real tenant (and the caller refuses it whatever
        `verify` says). A source whose secrets have a format (SendGrid's key) overrides this.
        """
        required = {
            name: decoy_secret() for name, info in self.settings_model.model_fields.items() if info.is_required()
        }
        return self.settings_model.model_validate(required)

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
