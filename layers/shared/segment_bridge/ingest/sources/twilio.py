"""`twilio`: Twilio Messaging status callbacks (form-encoded, one status change per request).

`X-Twilio-Signature` is base64 HMAC-SHA1, keyed with the account's Auth Token, of the full
callback URL (query included) followed by every POST param's name and value sorted by name; all
received params count, since Twilio adds new ones without notice. Like Twilio's own validator,
the URL is accepted with and without an explicit default port.

The Segment Spec has no SMS events, so statuses become custom Proper Case events ("SMS
Delivered"...). Callbacks carry no custom fields; a userId can ride on the StatusCallback URL's
query string (`?user_id=...`, the name set by `user_id_field`).
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from ...events import MappedEvent, Rejected, Skipped, WebhookRequest
from ...safe_json import text
from .base import RequestLimits, Source, VerifyContext
from .form import UrlSignedSettings, form_pairs, verify_url_signed
from .mapping import EventTable, PropertyTable, ToolEvent, dig, event_key, first_text, from_unix, read_properties

SIGNATURE_HEADER = "x-twilio-signature"

EVENTS = EventTable(
    tool="twilio",
    noun="SMS",
    mapped={
        "sent": "SMS Sent",
        "delivered": "SMS Delivered",
        "undelivered": "SMS Undelivered",
        "failed": "SMS Failed",
        "read": "SMS Read",
    },
    # Anything else (queued, sending, canceled, ...) passes through as "SMS <Status>".
)


#: Status keys, new and legacy (SMS-only accounts send `SmsStatus`, `SmsSid`).
STATUS_FIELDS = ("MessageStatus", "SmsStatus")
MESSAGE_SID_FIELDS = ("MessageSid", "SmsSid")

#: Property <- the callback parameter(s) that carry it.
PROPERTIES: PropertyTable = (
    ("message_id", MESSAGE_SID_FIELDS),
    ("to", ("To",)),
    ("from", ("From",)),
    ("status", STATUS_FIELDS),
    ("error_code", ("ErrorCode",)),
    ("messaging_service_sid", ("MessagingServiceSid",)),
)


#: A status callback is about ten short parameters (~250 bytes, the sample); Twilio adds new ones
#: without notice, hence the room. Its signature covers every parameter, so these bound the work an
#: unsigned request can ask for: at most 100 parameters decoded and hashed (twice: both URL forms).
LIMITS = RequestLimits(max_body_bytes=64 * 1024, max_params=100, max_name_bytes=64, max_value_bytes=16 * 1024)


class TwilioSettings(UrlSignedSettings):
    #: The account's Auth Token (it signs every webhook of the account). (`url`: the StatusCallback URL.)
    auth_token: SecretStr


class TwilioSource(Source[TwilioSettings]):
    name = "twilio"
    media_types = frozenset({"application/x-www-form-urlencoded"})
    settings_model = TwilioSettings
    limits = LIMITS

    def verify(self, request: WebhookRequest, settings: TwilioSettings, ctx: VerifyContext) -> None:
        verify_url_signed(
            request, settings.auth_token.get_secret_value(), settings.url, SIGNATURE_HEADER, port_variants=True
        )

    def parse(self, request: WebhookRequest) -> list[Any]:
        # The callback has no time of its own: the time it reached us stands for the status change.
        return [
            {"params": dict(form_pairs(request.body)), "query": dict(request.query), "received_at": request.received_at}
        ]

    def map_event(self, event: Any, settings: TwilioSettings) -> MappedEvent | Skipped:
        params = dig(event, "params")
        if not isinstance(params, dict):
            raise Rejected("a Twilio status callback must carry MessageStatus")
        status = first_text(*(params.get(name) for name in STATUS_FIELDS))
        if status is None:
            raise Rejected("a Twilio status callback must carry MessageStatus")
        message_sid = first_text(*(params.get(name) for name in MESSAGE_SID_FIELDS))
        recipient = text(params.get("To"))
        tool_event = ToolEvent(
            tool=self.name,
            kind=status,
            tool_id=message_sid,
            key=event_key(message_sid, status),
            timestamp=from_unix(dig(event, "received_at")),
            user_id=text(dig(event, "query", settings.user_id_field)),
            # "whatsapp:+1555..." -> "+1555...": the trait is the number, the channel stays in `to`.
            phone=recipient.rpartition(":")[2] if recipient else None,
        )
        return EVENTS.track(tool_event, read_properties(params, PROPERTIES), settings)
