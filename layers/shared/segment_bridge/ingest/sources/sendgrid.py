"""`sendgrid`: SendGrid's Event Webhook, a JSON array of events, signed with ECDSA.

Signed Event Webhook: `X-Twilio-Email-Event-Webhook-Signature` is a base64 DER ECDSA P-256 /
SHA-256 signature of `X-Twilio-Email-Event-Webhook-Timestamp` + the raw body (which ends in CRLF;
re-serialized JSON would not verify). The key is the one SendGrid shows: base64 DER SPKI.
"""

from __future__ import annotations

from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr, field_validator

from ...errors import MalformedRequest
from ...events import MappedEvent, Rejected, Skipped, WebhookRequest
from ...safe_json import text
from ..signatures import check_ecdsa_signature, check_timestamp, load_ec_public_key
from . import email
from .base import Source, SourceSettings, VerifyContext, load_json
from .mapping import (
    EventTable,
    PropertyTable,
    ToolEvent,
    as_list,
    custom_user_id,
    event_key,
    exact_key,
    flag,
    from_unix,
    read_properties,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"
#: Starts every event key derived from the event's content (`_event_key`), so none can equal a key
#: of the earlier form, `sg_event_id:type`, which events without `sg_message_id` still get.
KEY_VERSION = "sg2"

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

#: Email spec property <- the SendGrid field(s) that carry it (the first with text wins), in
#: `email.PROPERTY_ORDER`, then SendGrid's extras.
PROPERTIES: PropertyTable = (
    ("email_id", ("sg_message_id",)),
    ("campaign_id", ("marketing_campaign_id", "singlesend_id")),
    ("campaign_name", ("marketing_campaign_name", "singlesend_name")),
    ("list_id", ("asm_group_id",)),
    ("reason", ("reason",)),
    ("status", ("status",)),
    ("bounce_type", ("type",)),
    ("bounce_classification", ("bounce_classification",)),
)
#: Click events also carry the link, in its place among the spec's fields.
CLICK_PROPERTIES = PROPERTIES[:3] + (("link_url", ("url",)),) + PROPERTIES[3:]


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


class SendGridSource(Source[SendGridSettings]):
    name = "sendgrid"
    settings_model = SendGridSettings

    @cached_property
    def decoy_settings(self) -> SendGridSettings:
        """A P-256 public key whose private half this process made and dropped: an ECDSA check
        against it costs what a real tenant's costs, and nothing can pass it."""
        import base64

        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        der = (
            ec.generate_private_key(ec.SECP256R1())
            .public_key()
            .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        return SendGridSettings(public_key=SecretStr(base64.b64encode(der).decode("ascii")))

    def verify(self, request: WebhookRequest, settings: SendGridSettings, ctx: VerifyContext) -> None:
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

    def map_event(self, event: Any, settings: SendGridSettings) -> MappedEvent | Skipped:
        if not isinstance(event, dict) or text(event.get("event")) is None:
            raise Rejected('each SendGrid event must be an object with an "event" type')
        kind = str(event["event"])
        if kind == "bounce" and event.get("type") == "blocked":
            kind = "bounce/blocked"
        name = EVENTS.resolve(kind, settings)
        if isinstance(name, Skipped):
            return name
        properties = read_properties(event, CLICK_PROPERTIES if kind == "click" else PROPERTIES)
        machine_open = flag(event.get("sg_machine_open"))
        if machine_open is not None:
            properties["machine_open"] = machine_open
        tags = as_list(event.get("category"))
        if tags:
            properties["tags"] = tags
        recipient_action = kind in RECIPIENT_ACTIONS
        timestamp = from_unix(event.get("timestamp"))
        email = text(event.get("email"))
        return ToolEvent(
            tool=self.name,
            kind=kind,
            tool_id=text(event.get("sg_event_id")),  # the delivery's id: kept for QA, not the key
            key=_event_key(event, kind, email),
            timestamp=timestamp,
            user_id=custom_user_id(event, settings),  # custom args arrive as top-level keys
            email=email,
            ip=text(event.get("ip")) if recipient_action else None,
            user_agent=text(event.get("useragent")) if recipient_action else None,
        ).track(name, properties)


def _event_key(event: dict[str, Any], kind: str, email: str | None) -> str | None:
    """What identifies one SendGrid event whatever the delivery attempt.

    Not `sg_event_id`: SendGrid re-posts events, and a re-post can carry a new one
    (sendgrid-nodejs#1435), which would make one open two messages in Segment. One event is one
    message (`sg_message_id`, per recipient), one type, one second and one recipient; plus the
    link for a click (two links clicked in one second are two events), the bounce type, and the
    attempt number of a deferral. Without `sg_message_id` (preference-center unsubscribes) the
    old key, `sg_event_id` and the type, is all there is.
    """
    get = event.get
    message_id = get("sg_message_id")
    if not isinstance(message_id, str) or not message_id or message_id.isspace():
        return event_key(get("sg_event_id"), kind)
    detail = get("url") if kind == "click" else get("type") if kind[:6] == "bounce" else get("attempt")
    # The time as SendGrid sent it (whole Unix seconds): the same in every re-post, and no ":" to escape.
    # `attempt` counts only on deferrals; other types carry none, so reading it costs one lookup.
    return exact_key(
        KEY_VERSION, message_id, kind, text(get("timestamp")), email.lower() if email else None, text(detail)
    )
