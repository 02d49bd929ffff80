"""`mailgun`: one JSON event per request, `{"signature": {...}, "event-data": {...}}`.

The signature is in the body: hex HMAC-SHA256 of `timestamp + token` with the webhook signing key.
It does not cover event-data, so besides the timestamp window each token is claimed in the
deployment's replay guard (`VerifyContext.replay_guard`), bound to the body it first came with
(see `segment_bridge.ingest.replay`).

The signature is read without parsing event-data: a regex finds the flat `"signature": {...}`
object(s) and only those few hundred bytes are parsed (`signature_candidates`), so an unsigned
request costs one C-level scan of the body, not a parse of all of it. Which object carried the
signature does not matter: the token is then bound to the whole body by the replay guard, and
`parse` reads event-data from the full document as before.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from itertools import islice
from typing import Any

from pydantic import SecretStr

from ...errors import MalformedRequest, Unauthorized
from ...events import MappedEvent, Rejected, Skipped, WebhookRequest
from ...safe_json import text
from ..signatures import check_timestamp, hex_signature_matches
from . import email
from .base import RequestLimits, Source, SourceSettings, VerifyContext, load_json
from .mapping import (
    EventTable,
    PropertyTable,
    ToolEvent,
    as_list,
    custom_user_id,
    dig,
    exact_key,
    first_item,
    from_unix,
    read_properties,
)

EVENTS = EventTable(
    tool="mailgun",
    noun="Email",
    mapped={
        "delivered": email.EMAIL_DELIVERED,
        "opened": email.EMAIL_OPENED,
        "clicked": email.EMAIL_LINK_CLICKED,
        "failed/permanent": email.EMAIL_BOUNCED,
        "complained": email.EMAIL_MARKED_AS_SPAM,
        "unsubscribed": email.UNSUBSCRIBED,
    },
    unmapped={
        "failed/temporary": email.EMAIL_DEFERRED,  # Mailgun retries these
        "failed/suppressed": email.EMAIL_DROPPED,  # not sent: the address is on a suppression list
        "rejected": email.EMAIL_DROPPED,
    },
)


def _campaign(field: str) -> Callable[[Mapping[str, Any]], Any]:
    """A field of the event's first campaign (Mailgun lists the campaigns a message belongs to)."""
    return lambda event: dig(first_item(event.get("campaigns")), field)


#: Email spec property <- where Mailgun's event-data keeps it, in `email.PROPERTY_ORDER`.
PROPERTIES: PropertyTable = (
    ("email_id", (("message", "headers", "message-id"),)),
    ("email_subject", (("message", "headers", "subject"),)),
    ("campaign_id", (_campaign("id"),)),
    ("campaign_name", (_campaign("name"),)),
    ("link_url", ("url",)),
    ("list_id", (("mailing-list", "address"),)),
)
#: Failures also say why, in Mailgun's words, and how severe.
FAILED_PROPERTIES: PropertyTable = PROPERTIES + (
    ("reason", (("delivery-status", "description"), ("delivery-status", "message"), "reason")),
    ("status", (("delivery-status", "code"),)),
    ("bounce_type", ("severity",)),
)


#: One event per request: the samples are 0.8-1.5 KB. 1 MiB is hundreds of times that, and bounds
#: what a captured (timestamp, token) pair can carry, since Mailgun's signature does not cover it.
LIMITS = RequestLimits(max_body_bytes=1024 * 1024)
#: Mailgun's `{"timestamp": ..., "token": ..., "signature": ...}`: flat (no braces inside) and short.
MAX_SIGNATURE_OBJECT_BYTES = 1024
SIGNATURE_OBJECT = re.compile(rb'"signature"[ \t\r\n]*:[ \t\r\n]*(\{[^{}]{0,%d}\})' % MAX_SIGNATURE_OBJECT_BYTES)
#: Flat `"signature"` objects looked at, first ones first: Mailgun puts its own at the top of the
#: body; a few more allow for a custom variable of that name before it.
MAX_SIGNATURE_CANDIDATES = 4


def signature_candidates(body: bytes) -> list[tuple[str, str, str]]:
    """(timestamp, token, signature) of the first flat `"signature"` objects in `body`, parsing only them."""
    found = []
    for match in islice(SIGNATURE_OBJECT.finditer(body), MAX_SIGNATURE_CANDIDATES):
        try:
            fields = load_json(match.group(1), "signature")
        except MalformedRequest:
            continue
        timestamp, token, digest = (text(dig(fields, k)) for k in ("timestamp", "token", "signature"))
        if timestamp and token and digest:
            found.append((timestamp, token, digest))
    return found


class MailgunSettings(SourceSettings):
    #: The "HTTP webhook signing key" from Mailgun's Sending > Webhooks page.
    signing_key: SecretStr


class MailgunSource(Source[MailgunSettings]):
    name = "mailgun"
    settings_model = MailgunSettings
    limits = LIMITS

    def verify(self, request: WebhookRequest, settings: MailgunSettings, ctx: VerifyContext) -> None:
        key = settings.signing_key.get_secret_value()
        signed: tuple[str, str] | None = None
        for timestamp, token, digest in signature_candidates(request.body):  # every candidate is hashed
            matches = hex_signature_matches(key, (timestamp + token).encode("utf-8", "surrogatepass"), [digest])
            if matches and signed is None:
                signed = (timestamp, token)
        if signed is None:
            raise Unauthorized()
        timestamp, token = signed
        signed_at = check_timestamp(timestamp, ctx.tolerance_seconds, ctx.clock)
        fingerprint = hashlib.sha256(request.body).hexdigest()
        key = f"mailgun:{request.tenant}:{token}"
        if not ctx.replay_guard.claim(key, fingerprint, ctx.clock(), signed_at + ctx.tolerance_seconds):
            raise Unauthorized("signature token was already used with a different body")

    def parse(self, request: WebhookRequest) -> list[Any]:
        event_data = dig(load_json(request.body), "event-data")
        if not isinstance(event_data, dict):
            raise MalformedRequest('body must be a Mailgun webhook: {"signature": {...}, "event-data": {...}}')
        return [event_data]

    def map_event(self, event: Any, settings: MailgunSettings) -> MappedEvent | Skipped:
        if not isinstance(event, dict) or text(event.get("event")) is None:
            raise Rejected('Mailgun event-data must be an object with an "event" type')
        kind = str(event["event"])
        if kind == "failed":
            suppressed = str(event.get("reason") or "").startswith("suppress-")
            kind = "failed/suppressed" if suppressed else f"failed/{text(event.get('severity')) or 'permanent'}"
        client = event.get("client-info")
        event_id = text(event.get("id"))
        timestamp = from_unix(event.get("timestamp"))
        tool_event = ToolEvent(
            tool=self.name,
            kind=kind,
            tool_id=event_id,
            # Mailgun's event id is "unique within a day" (its Events docs), and Segment's dedupe
            # outlives a day: with the event's own time, ids of two days can never meet. A retry
            # re-posts the same event-data, so both stay the same.
            key=exact_key(event_id, text(event.get("timestamp"))) if event_id else None,
            timestamp=timestamp,
            user_id=custom_user_id(event.get("user-variables"), settings),
            email=text(event.get("recipient")),
            ip=text(event.get("ip")),
            user_agent=text(dig(client, "user-agent")),
        )
        properties = read_properties(event, FAILED_PROPERTIES if kind.startswith("failed/") else PROPERTIES)
        properties["tags"] = as_list(event.get("tags"))
        if kind == "opened" and isinstance(client, dict) and "bot" in client:
            # client-info.bot names the bot (e.g. "apple") on machine opens and is "" otherwise.
            properties["machine_open"] = bool(client["bot"])
        return EVENTS.track(tool_event, properties, settings)
