"""`sendgrid`: SendGrid's Event Webhook, a JSON array of events, signed with ECDSA.

Signed Event Webhook: `X-Twilio-Email-Event-Webhook-Signature` is a base64 DER ECDSA P-256 /
SHA-256 signature of `X-Twilio-Email-Event-Webhook-Timestamp` + the raw body (which ends in CRLF;
re-serialized JSON would not verify). The key is the one SendGrid shows: base64 DER SPKI.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import SecretStr, field_validator

from ..errors import MalformedRequest
from ..signatures import check_ecdsa_signature, check_timestamp, load_ec_public_key
from . import email
from .base import MappedEvent, Rejected, Skipped, Source, SourceSettings, VerifyContext, WebhookRequest, load_json
from .mapping import EventTable, ToolEvent, as_list, custom_user_id, event_key, first_text, flag, from_unix, text

SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"

EVENTS = EventTable(
    tool="sendgrid",
    noun="Email",
    mapped={
        "delivered": email.EMAIL_DELIVERED,
        "open": email.EMAIL_OPENED,
        "click": email.EMAIL_LINK_CLICKED,
        "bounce": email.EMAIL_BOUNCED,
        "spamreport": email.EMAIL_MARKED_AS_SPAM,
        "unsubscribe": email.UNSUBSCRIBED,
        "group_unsubscribe": email.UNSUBSCRIBED,
    },
    unmapped={
        "processed": "Email Processed",
        "deferred": email.EMAIL_DEFERRED,
        "dropped": email.EMAIL_DROPPED,
        "bounce/blocked": email.EMAIL_SOFT_BOUNCED,
        "group_resubscribe": email.RESUBSCRIBED,
    },
)

#: Only on these is `ip`/`useragent` the recipient's; on delivery events `ip` is SendGrid's
#: sending IP, which must not become the user's `context.ip`.
RECIPIENT_ACTIONS = frozenset({"open", "click", "spamreport", "unsubscribe", "group_unsubscribe", "group_resubscribe"})


class SendGridSettings(SourceSettings):
    #: The verification key from SendGrid's Mail Settings, base64 DER SubjectPublicKeyInfo.
    public_key: SecretStr

    @field_validator("public_key")
    @classmethod
    def _is_p256_key(cls, value: SecretStr) -> SecretStr:
        try:
            _public_key(value.get_secret_value())
        except Exception:  # any decoding/parsing failure means the same thing to the operator
            raise ValueError("must be SendGrid's verification key: base64 DER of a P-256 public key") from None
        return value


@lru_cache(maxsize=256)
def _public_key(der_base64: str) -> ec.EllipticCurvePublicKey:
    return load_ec_public_key(der_base64)


class SendGridSource(Source):
    name = "sendgrid"
    settings_model = SendGridSettings

    def verify(self, request: WebhookRequest, settings: SendGridSettings, ctx: VerifyContext) -> None:  # type: ignore[override]
        timestamp = request.header(TIMESTAMP_HEADER) or ""
        check_ecdsa_signature(
            _public_key(settings.public_key.get_secret_value()),
            timestamp.encode("utf-8") + request.body,
            request.header(SIGNATURE_HEADER),
        )
        check_timestamp(timestamp, ctx.tolerance_seconds, ctx.clock)

    def parse(self, request: WebhookRequest) -> list[Any]:
        events = load_json(request.body)
        if not isinstance(events, list):
            raise MalformedRequest("body must be a JSON array of SendGrid events")
        return events

    def map_event(self, event: Any, settings: SourceSettings) -> MappedEvent | Skipped:
        if not isinstance(event, dict) or text(event.get("event")) is None:
            raise Rejected('each SendGrid event must be an object with an "event" type')
        kind = str(event["event"])
        if kind == "bounce" and event.get("type") == "blocked":
            kind = "bounce/blocked"
        recipient_action = kind in RECIPIENT_ACTIONS
        tool_event = ToolEvent(
            tool=self.name,
            kind=kind,
            tool_id=text(event.get("sg_event_id")),
            # The type is part of the key: SendGrid's own sample reuses one sg_event_id for all types.
            key=event_key(event.get("sg_event_id"), kind),
            timestamp=from_unix(event.get("timestamp")),
            user_id=custom_user_id(event, settings),  # custom args arrive as top-level keys
            email=text(event.get("email")),
            ip=text(event.get("ip")) if recipient_action else None,
            user_agent=text(event.get("useragent")) if recipient_action else None,
        )
        fields = email.EmailFields(
            email_id=text(event.get("sg_message_id")),
            campaign_id=first_text(event.get("marketing_campaign_id"), event.get("singlesend_id")),
            campaign_name=first_text(event.get("marketing_campaign_name"), event.get("singlesend_name")),
            link_url=text(event.get("url")) if kind == "click" else None,
            list_id=text(event.get("asm_group_id")),
            extra={
                "reason": text(event.get("reason")),
                "status": text(event.get("status")),
                "bounce_type": text(event.get("type")),
                "bounce_classification": text(event.get("bounce_classification")),
                "machine_open": flag(event.get("sg_machine_open")),
                "tags": as_list(event.get("category")),
            },
        )
        return EVENTS.track(tool_event, fields.properties(), settings)
