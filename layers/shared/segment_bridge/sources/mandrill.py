"""`mandrill`: Mailchimp Transactional (Mandrill) webhooks.

A form-encoded body whose one field, `mandrill_events`, is a JSON array of up to 1,000 events.
`X-Mandrill-Signature` is base64 HMAC-SHA1, keyed with the webhook key, of the webhook URL exactly
as configured in Mandrill followed by each POST param's name and value, sorted by name. Mandrill
checks a new webhook URL with HEAD, which is answered 200.
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from ..errors import MalformedRequest
from . import email
from .base import MappedEvent, Rejected, Skipped, Source, SourceSettings, VerifyContext, WebhookRequest, load_json
from .form import form_pairs, verify_url_signed
from .mapping import EventTable, ToolEvent, as_list, custom_user_id, dig, event_key, first_text, from_unix, text

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


class MandrillSettings(SourceSettings):
    #: The webhook's key, shown in Mandrill's Settings > Webhooks.
    webhook_key: SecretStr
    #: The webhook URL exactly as entered in Mandrill; default: the URL the request arrived on.
    url: str | None = None


class MandrillSource(Source):
    name = "mandrill"
    media_types = frozenset({"application/x-www-form-urlencoded"})
    settings_model = MandrillSettings
    probe_methods = frozenset({"HEAD"})

    def verify(self, request: WebhookRequest, settings: MandrillSettings, ctx: VerifyContext) -> None:  # type: ignore[override]
        verify_url_signed(request, settings.webhook_key.get_secret_value(), settings.url, SIGNATURE_HEADER)

    def parse(self, request: WebhookRequest) -> list[Any]:
        raw = dict(form_pairs(request.body)).get(EVENTS_FIELD)
        if raw is None:
            raise MalformedRequest(f"form field {EVENTS_FIELD!r} is missing")
        events = load_json(raw, EVENTS_FIELD)
        if not isinstance(events, list):
            raise MalformedRequest(f"{EVENTS_FIELD} must be a JSON array of events")
        return events

    def map_event(self, event: Any, settings: SourceSettings) -> MappedEvent | Skipped:
        if not isinstance(event, dict):
            raise Rejected("each Mandrill event must be an object")
        if text(event.get("event")) is not None:
            return self._message_event(event, settings)
        if text(event.get("type")) is not None and text(event.get("action")) is not None:
            return self._sync_event(event, settings)
        raise Rejected('a Mandrill event needs an "event" (message events) or "type" and "action" (sync events)')

    def _message_event(self, event: dict[str, Any], settings: SourceSettings) -> MappedEvent | Skipped:
        kind = str(event["event"])
        msg = event.get("msg")
        message_id = first_text(event.get("_id"), dig(msg, "_id"))
        tool_event = ToolEvent(
            tool=self.name,
            kind=kind,
            tool_id=message_id,
            key=event_key(message_id, kind, event.get("ts")),
            timestamp=from_unix(event.get("ts")),
            user_id=custom_user_id(dig(msg, "metadata"), settings),
            email=text(dig(msg, "email")),
            ip=text(event.get("ip")),
            user_agent=text(event.get("user_agent")),
        )
        fields = email.EmailFields(
            email_id=message_id,
            email_subject=text(dig(msg, "subject")),
            link_url=text(event.get("url")),
            extra={
                "reason": text(dig(msg, "diag")),
                "bounce_type": text(dig(msg, "bounce_description")),
                "tags": as_list(dig(msg, "tags")),
            },
        )
        return EVENTS.track(tool_event, fields.properties(), settings)

    def _sync_event(self, event: dict[str, Any], settings: SourceSettings) -> MappedEvent | Skipped:
        kind = f"{event['type']}/{event['action']}"
        entry = event.get("reject") if isinstance(event.get("reject"), dict) else event.get("entry")
        address = text(dig(entry, "email"))
        tool_event = ToolEvent(
            tool=self.name,
            kind=kind,
            tool_id=None,
            key=event_key(kind, address, event.get("ts")),
            timestamp=from_unix(event.get("ts")),
            email=address,
        )
        properties = {"reason": text(dig(entry, "reason")), "detail": text(dig(entry, "detail"))}
        return EVENTS.track(tool_event, properties, settings)
