"""Registry of webhook sources. Adding a tool = one module with a `Source` subclass, listed here."""

from __future__ import annotations

from .base import MappedEvent, Rejected, Skipped, Source, SourceSettings, VerifyContext, WebhookRequest
from .spec_source import SpecSource

SOURCES: dict[str, Source] = {source.name: source for source in (SpecSource(),)}


def get_source(name: str) -> Source | None:
    return SOURCES.get(name)


__all__ = [
    "SOURCES",
    "MappedEvent",
    "Rejected",
    "Skipped",
    "Source",
    "SourceSettings",
    "VerifyContext",
    "WebhookRequest",
    "get_source",
]
