"""Registry of webhook sources. Adding a tool = one module with a `Source` subclass, listed here
(CONTRIBUTING.md walks through it)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from importlib import import_module
from typing import Any

from .base import Source, SourceSettings, VerifyContext

#: Source name -> "module:Class" in this package. A module is imported the first time its source
#: is used, so a cold start loads only the tool its first webhook comes from (and that tool's
#: dependencies: `cryptography` is SendGrid's alone).
REGISTRY: dict[str, str] = {
    "spec": "spec_source:SpecSource",
    "sendgrid": "sendgrid:SendGridSource",
    "mailgun": "mailgun:MailgunSource",
    "postmark": "postmark:PostmarkSource",
    "mandrill": "mandrill:MandrillSource",
    "twilio": "twilio:TwilioSource",
    "stripe": "stripe:StripeSource",
}


class _Sources(Mapping[str, Source[Any]]):
    """`SOURCES`: a read-only mapping of name -> the one instance of each source, made on first use."""

    def __init__(self, registry: Mapping[str, str]) -> None:
        self._registry = registry
        self._instances: dict[str, Source[Any]] = {}

    def __getitem__(self, name: str) -> Source[Any]:
        source = self._instances.get(name)
        if source is None:
            module, _, class_name = self._registry[name].partition(":")
            source = self._instances.setdefault(name, getattr(import_module(f"{__name__}.{module}"), class_name)())
        return source

    def __iter__(self) -> Iterator[str]:
        return iter(self._registry)

    def __len__(self) -> int:
        return len(self._registry)


SOURCES: Mapping[str, Source[Any]] = _Sources(REGISTRY)


def get_source(name: str) -> Source[Any] | None:
    return SOURCES.get(name)


__all__ = ["REGISTRY", "SOURCES", "Source", "SourceSettings", "VerifyContext", "get_source"]
