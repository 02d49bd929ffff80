"""`mandrill`: Mailchimp Transactional (Mandrill) webhooks.

A form-encoded body whose one field, `mandrill_events`, is a JSON array of up to 1,000 events.
`X-Mandrill-Signature` is base64 HMAC-SHA1, keyed with the webhook key, of the webhook URL exactly
as configured in Mandrill followed by each POST param's name and value, sorted by name. Mandrill
checks a new webhook URL with HEAD, which is answered 200.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

from ...errors import MalformedRequest
from ...events import MappedEvent, Rejected, Skipped, WebhookRequest
from ...safe_json import text
from . import email
from .base import RequestLimits, Source, VerifyContext, load_json
from .form import UrlSignedSettings, form_pairs, verify_url_signed
from .mapping import (
    EventTable,
    PropertyTable,
    ToolEvent,
    as_list,
    custom_user_id,
    dig,
    event_key,
    first_text,
    from_unix,
    read_properties,
)

SIGNATURE_HEADER = "x-mandrill-signature"
EVENTS_FIELD = "mandrill_events"

EVENTS = EventTable(
    tool="mandrill",
    noun="Email",
    mapped={
        "delivered": email.EMAIL_DELIVERED,
        "open": email.EMAIL_OPENED,
        "click": email.EMAIL_LINK_CLICKED,
        "hard_bounce": email.EMAIL_BOUNCED,
        "spam": email.EMAIL_MARKED_AS_SPAM,
        "unsub": email.UNSUBSCRIBED,
    },
    unmapped={
        # "send" means Mandrill handed the message on, not that a server accepted it ("delivered").
        "send": email.EMAIL_SENT,
        "deferral": email.EMAIL_DEFERRED,
        "soft_bounce": email.EMAIL_SOFT_BOUNCED,
        "reject": email.EMAIL_DROPPED,
        # Sync events: changes to the account's deny ("blacklist") and allow ("whitelist") lists.
        "blacklist/add": "Email Denylist Entry Added",
        "blacklist/change": "Email Denylist Entry Changed",
        "blacklist/remove": "Email Denylist Entry Removed",
        "whitelist/add": "Email Allowlist Entry Added",
        "whitelist/remove": "Email Allowlist Entry Removed",
    },
)


def _message_id(event: Mapping[str, Any]) -> str | None:
    """Mandrill's message id: on the event, or on its `msg`."""
    return first_text(event.get("_id"), dig(event.get("msg"), "_id"))


def _sync_entry(event: Mapping[str, Any]) -> Any:
    """The list entry a sync event is about (`reject` for the deny list, `entry` for the allow list)."""
    entry = event.get("reject")
    return entry if isinstance(entry, dict) else event.get("entry")


#: Email spec property <- where a Mandrill message event keeps it, in `email.PROPERTY_ORDER`, then extras.
PROPERTIES: PropertyTable = (
    ("email_id", (_message_id,)),
    ("email_subject", (("msg", "subject"),)),
    ("link_url", ("url",)),
    ("reason", (("msg", "diag"),)),
    ("bounce_type", (("msg", "bounce_description"),)),
)
#: What a sync event (a deny/allow list change) says about its entry.
SYNC_PROPERTIES: PropertyTable = (
    ("reason", (lambda event: dig(_sync_entry(event), "reason"),)),
    ("detail", (lambda event: dig(_sync_entry(event), "detail"),)),
)


#: Mandrill posts one parameter, `mandrill_events` (up to 1,000 events: its value may be most of the
#: body); a few more leave room for additions. The body itself is bounded by MAX_BODY_BYTES.
LIMITS = RequestLimits(max_params=8, max_name_bytes=64)


class MandrillSettings(UrlSignedSettings):
    #: The webhook's key, shown in Mandrill's Settings > Webhooks. (`url`: as entered in Mandrill.)
    webhook_key: SecretStr


class MandrillSource(Source[MandrillSettings]):
    name = "mandrill"
    media_types = frozenset({"application/x-www-form-urlencoded"})
    settings_model = MandrillSettings
    probe_methods = frozenset({"HEAD"})
    limits = LIMITS

    def verify(self, request: WebhookRequest, settings: MandrillSettings, ctx: VerifyContext) -> None:
        verify_url_signed(request, settings.webhook_key.get_secret_value(), settings.url, SIGNATURE_HEADER)

    def parse(self, request: WebhookRequest) -> list[Any]:
        raw = dict(form_pairs(request.body)).get(EVENTS_FIELD)
        if raw is None:
            raise MalformedRequest(f"form field {EVENTS_FIELD!r} is missing")
        events = load_json(raw, EVENTS_FIELD)
        if not isinstance(events, list):
            raise MalformedRequest(f"{EVENTS_FIELD} must be a JSON array of events")
        return events

    def map_event(self, event: Any, settings: MandrillSettings) -> MappedEvent | Skipped:
        if not isinstance(event, dict):
            raise Rejected("each Mandrill event must be an object")
        if text(event.get("event")) is not None:
            return self._message_event(event, settings)
        if text(event.get("type")) is not None and text(event.get("action")) is not None:
            return self._sync_event(event, settings)
        raise Rejected('a Mandrill event needs an "event" (message events) or "type" and "action" (sync events)')

    def _message_event(self, event: dict[str, Any], settings: MandrillSettings) -> MappedEvent | Skipped:
        kind = str(event["event"])
        msg = event.get("msg")
        message_id = _message_id(event)
        tool_event = ToolEvent(
            tool=self.name,
            kind=kind,
            tool_id=message_id,
            # A click also names its link: link scanners click every link of a message in one
            # second, and each click is its own event (other types keep the key they always had).
            key=event_key(message_id, kind, event.get("ts"), text(event.get("url")) if kind == "click" else None),
            timestamp=from_unix(event.get("ts")),
            user_id=custom_user_id(dig(msg, "metadata"), settings),
            email=text(dig(msg, "email")),
            ip=text(event.get("ip")),
            user_agent=text(event.get("user_agent")),
        )
        properties = read_properties(event, PROPERTIES)
        properties["tags"] = as_list(dig(msg, "tags"))
        return EVENTS.track(tool_event, properties, settings)

    def _sync_event(self, event: dict[str, Any], settings: MandrillSettings) -> MappedEvent | Skipped:
        kind = f"{event['type']}/{event['action']}"
        address = text(dig(_sync_entry(event), "email"))
        tool_event = ToolEvent(
            tool=self.name,
            kind=kind,
            tool_id=None,
            key=event_key(kind, address, event.get("ts")),
            timestamp=from_unix(event.get("ts")),
            email=address,
        )
        return EVENTS.track(tool_event, read_properties(event, SYNC_PROPERTIES), settings)
