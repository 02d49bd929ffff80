"""The types every stage of a webhook's life shares: the request as received, one tool event mapped
to a Spec-shaped message, and the two ways an event can leave the pipeline early.

They live in the kernel, not in the sources package, because normalization, conformance review and
identity resolution all read them and none of those should depend on the plug-ins that make them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


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


@dataclass(slots=True)  # slots: one per event, kept for the whole request (less for the GC to track)
class MappedEvent:
    """One tool event as a Spec-shaped message, before the shared normalizer finishes it."""

    message: dict[str, Any]
    #: The tool's own stable id for this event; the messageId is derived from it so a redelivered
    #: webhook reproduces the same messageId. None means: derive from the content.
    event_key: str | None = None
    #: Recipient identifiers (email, phone) for identity resolution and stable anonymousIds.
    identity_hints: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Skipped:
    """An event deliberately not forwarded (no Spec counterpart); reported, not an error."""

    reason: str


class Rejected(Exception):
    """One event cannot be used; the rest of the request goes on.

    An exception, not a returned value, because it is raised from deep inside mapping and
    normalization helpers; it carries nothing but its message, which the caller reports per index.
    """
