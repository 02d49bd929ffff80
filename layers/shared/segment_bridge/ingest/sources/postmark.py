"""`postmark`: one JSON object per request, routed on `RecordType`.

Postmark does not sign webhooks; the webhook is configured with HTTP Basic credentials
(`https://user:password@host/...` or its HttpAuth setting), checked here in constant time.
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from ...events import MappedEvent, Rejected, Skipped, WebhookRequest
from ...safe_json import text
from ..signatures import check_basic_auth
from . import email
from .base import Source, SourceSettings, VerifyContext, load_one_object
from .mapping import (
    EventTable,
    PropertyTable,
    ToolEvent,
    as_list,
    custom_user_id,
    dig,
    event_key,
    first_text,
    read_properties,
)

EVENTS = EventTable(
    tool="postmark",
    noun="Email",
    mapped={
        "Delivery": email.EMAIL_DELIVERED,
        "Open": email.EMAIL_OPENED,
        "Click": email.EMAIL_LINK_CLICKED,
        "Bounce/hard": email.EMAIL_BOUNCED,
        "SpamComplaint": email.EMAIL_MARKED_AS_SPAM,
        "SubscriptionChange/unsubscribed": email.UNSUBSCRIBED,
    },
    unmapped={
        "Bounce/soft": email.EMAIL_SOFT_BOUNCED,
        # Suppressed after a hard bounce or spam complaint: that event arrives as its own webhook.
        "SubscriptionChange/suppressed": "Email Suppressed",
        "SubscriptionChange/resubscribed": email.RESUBSCRIBED,
    },
)

#: Bounce `Type`s that mean the address is undeliverable; the others (Transient, SoftBounce,
#: AutoResponder, DnsError, Blocked...) are temporary or not bounces at all.
HARD_BOUNCE_TYPES = frozenset({"HardBounce", "BadEmailAddress"})
#: `SuppressionReason` of a recipient's own unsubscribe (link, or suppressed by the sender on request).
UNSUBSCRIBE_REASONS = frozenset({"ManualSuppression"})
#: Each RecordType's event time field.
TIME_FIELDS = ("DeliveredAt", "ReceivedAt", "BouncedAt", "ChangedAt")

#: Email spec property <- where Postmark's record keeps it, in `email.PROPERTY_ORDER`, then extras.
PROPERTIES: PropertyTable = (
    ("email_id", ("MessageID",)),
    ("email_subject", ("Subject",)),
    ("link_url", ("OriginalLink",)),
    ("message_stream", ("MessageStream",)),
)
#: Bounces also say why, and which kind of bounce (Postmark's `Type`).
BOUNCE_PROPERTIES: PropertyTable = PROPERTIES + (
    ("reason", ("Details", "Description")),
    ("bounce_type", ("Type",)),
)


class PostmarkSettings(SourceSettings):
    #: The HTTP Basic credentials set on the Postmark webhook.
    username: str
    password: SecretStr


class PostmarkSource(Source[PostmarkSettings]):
    name = "postmark"
    settings_model = PostmarkSettings

    def verify(self, request: WebhookRequest, settings: PostmarkSettings, ctx: VerifyContext) -> None:
        check_basic_auth(request.header("authorization"), settings.username, settings.password.get_secret_value())

    def parse(self, request: WebhookRequest) -> list[Any]:
        return load_one_object(request.body, 'one Postmark webhook object with a "RecordType"')

    def map_event(self, event: Any, settings: PostmarkSettings) -> MappedEvent | Skipped:
        if not isinstance(event, dict) or text(event.get("RecordType")) is None:
            raise Rejected('a Postmark webhook must be an object with a "RecordType"')
        kind = _kind(event)
        recipient = first_text(event.get("Recipient"), event.get("Email"))
        timestamp = first_text(*(event.get(name) for name in TIME_FIELDS))
        tool_event = ToolEvent(
            tool=self.name,
            kind=kind,
            tool_id=first_text(event.get("ID"), event.get("MessageID")),
            # Postmark has no event id: the message, the record type, the recipient and the time.
            key=event_key(event.get("MessageID"), event["RecordType"], recipient, timestamp),
            timestamp=timestamp,
            user_id=custom_user_id(event.get("Metadata"), settings),
            email=recipient,
            ip=text(dig(event, "Geo", "IP")),
            user_agent=text(event.get("UserAgent")),
        )
        properties = read_properties(event, BOUNCE_PROPERTIES if event["RecordType"] == "Bounce" else PROPERTIES)
        properties["tags"] = as_list(event.get("Tag"))
        return EVENTS.track(tool_event, properties, settings)


def _kind(record: dict[str, Any]) -> str:
    record_type = str(record["RecordType"])
    if record_type == "Bounce":
        return "Bounce/hard" if text(record.get("Type")) in HARD_BOUNCE_TYPES else "Bounce/soft"
    if record_type == "SubscriptionChange":
        if record.get("SuppressSending") is not True:
            return "SubscriptionChange/resubscribed"
        reason = text(record.get("SuppressionReason"))
        unsubscribed = reason is None or reason in UNSUBSCRIBE_REASONS
        return "SubscriptionChange/unsubscribed" if unsubscribed else "SubscriptionChange/suppressed"
    return record_type
