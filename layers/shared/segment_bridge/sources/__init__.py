"""Registry of webhook sources. Adding a tool = one module with a `Source` subclass, listed here."""

from __future__ import annotations

from .base import MappedEvent, Rejected, Skipped, Source, SourceSettings, VerifyContext, WebhookRequest
from .mailgun import MailgunSource
from .mandrill import MandrillSource
from .postmark import PostmarkSource
from .sendgrid import SendGridSource
from .spec_source import SpecSource
from .stripe import StripeSource
from .twilio import TwilioSource

SOURCES: dict[str, Source] = {
    source.name: source
    for source in (
        SpecSource(),
        SendGridSource(),
        MailgunSource(),
        PostmarkSource(),
        MandrillSource(),
        TwilioSource(),
        StripeSource(),
    )
}


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
