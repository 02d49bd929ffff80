"""`spec`: the partner's own tool posts Spec-shaped JSON, one message or `{"batch": [...]}`.

Signed like Stripe: `X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256("{t}.{raw body}")>`.
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from ...errors import MalformedRequest
from ...events import MappedEvent, Rejected, WebhookRequest
from ..signatures import check_timestamped_hmac
from .base import Source, SourceSettings, VerifyContext, load_json

SIGNATURE_HEADER = "x-signature"


class SpecSettings(SourceSettings):
    signing_secret: SecretStr


class SpecSource(Source[SpecSettings]):
    name = "spec"
    settings_model = SpecSettings

    def verify(self, request: WebhookRequest, settings: SpecSettings, ctx: VerifyContext) -> None:
        check_timestamped_hmac(
            settings.signing_secret.get_secret_value(),
            request.header(SIGNATURE_HEADER),
            request.body,
            ctx.tolerance_seconds,
            ctx.clock,
        )

    def parse(self, request: WebhookRequest) -> list[Any]:
        payload = load_json(request.body)
        if isinstance(payload, dict) and "batch" in payload:
            batch = payload["batch"]
            if not isinstance(batch, list):
                raise MalformedRequest('"batch" must be an array of Spec messages')
            return batch
        if isinstance(payload, dict):
            return [payload]
        raise MalformedRequest('body must be a Spec message object or {"batch": [...]}')

    def map_event(self, event: Any, settings: SpecSettings) -> MappedEvent:
        if not isinstance(event, dict):
            raise Rejected("each message must be a JSON object")
        # The sender's own messageId (kept by the normalizer) is its event id; otherwise the content.
        return MappedEvent(message=event, event_key=None)
