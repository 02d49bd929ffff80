"""Segment's Email spec, shared by the email tools (SendGrid, Mailgun, Postmark, Mandrill).

Spec: segment-docs `src/connections/spec/email.md`. Event names are exact (note "Email Marked as
Spam" and the prefix-less "Unsubscribed"); properties are the Spec's snake_case ones. Adapters
fill `EmailFields` from their payload and name their own extras; their `EventTable` maps the
tool's event types to these names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EMAIL_DELIVERED = "Email Delivered"
EMAIL_OPENED = "Email Opened"
EMAIL_LINK_CLICKED = "Email Link Clicked"
EMAIL_BOUNCED = "Email Bounced"
EMAIL_MARKED_AS_SPAM = "Email Marked as Spam"
UNSUBSCRIBED = "Unsubscribed"

#: Custom names for the email events the Spec has no counterpart for, shared so every tool
#: passes the same thing through under the same name.
EMAIL_SENT = "Email Sent"
EMAIL_DEFERRED = "Email Deferred"
#: The tool did not even try (suppression list, policy): not a bounce from a receiving server.
EMAIL_DROPPED = "Email Dropped"
#: A temporary failure (soft bounce, block); the address is not known to be undeliverable.
EMAIL_SOFT_BOUNCED = "Email Soft Bounced"
RESUBSCRIBED = "Resubscribed"


@dataclass
class EmailFields:
    """The Email spec's properties; `extra` holds a tool's additional, documented ones."""

    email_id: str | None = None
    email_subject: str | None = None
    campaign_id: str | None = None
    campaign_name: str | None = None
    link_url: str | None = None
    list_id: str | None = None
    list_name: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def properties(self) -> dict[str, Any]:
        # Shallow: `asdict` deep-copies every value, which cost a quarter of ingest's CPU on an email
        # webhook (bench/ingest.py: 4,650 -> 6,200 events/s per core); the values are fresh per event.
        # Spelled out (the fields in order, then `extra`) because it runs once per event.
        return {
            "email_id": self.email_id,
            "email_subject": self.email_subject,
            "campaign_id": self.campaign_id,
            "campaign_name": self.campaign_name,
            "link_url": self.link_url,
            "list_id": self.list_id,
            "list_name": self.list_name,
            **self.extra,
        }


