"""Finish a mapped event into a Spec message Segment will accept from a partner.

Shared by every source: Spec validation, the userId rule, the stable messageId, the
`context.integration` stamp and the 32 KB limit. Pure functions, no I/O.
"""

from __future__ import annotations

import hashlib
import json
import json.encoder
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from pydantic import ValidationError

from ..events import MappedEvent, Rejected
from ..limits import MAX_MESSAGE_BYTES
from ..safe_json import content_digest
from ..spec import describe_validation_error, message_fields
from ..tenants import TenantConfig

#: Fixed namespace: the same (tenant, source, event) gives the same id on every deployment, so a
#: redelivered webhook, an SQS redelivery and a DLQ redrive all reproduce it for Segment's dedupe.
ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/segment-bridge/message-id")
#: SHA-1 state after the namespace's bytes: uuid5 hashes namespace + name, so each id copies this.
_ID_NAMESPACE_SHA1 = hashlib.sha1(ID_NAMESPACE.bytes)
#: uuid5 sets the variant bits (10xx) in the 17th hex digit: digit -> digit with them set.
_VARIANT_DIGIT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def _compact_encoder() -> Callable[[Any], str]:
    """`json.dumps(..., ensure_ascii=False, separators=(",", ":"), allow_nan=False)`, built once.

    `JSONEncoder.encode` builds its C encoder on every call (a fifth of the cost of encoding a
    message); this builds it once, with the arguments `encode` would pass it, where the C
    accelerator exists. No circular-reference check (a sixth of the encoding's cost): a message is
    parsed JSON plus fresh values, never a cycle.
    """
    encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False)
    make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if make_encoder is None:  # no C accelerator (other interpreters)
        return encoder.encode
    chunks = make_encoder(
        None,
        encoder.default,
        json.encoder.encode_basestring,
        None,
        encoder.key_separator,
        encoder.item_separator,
        encoder.sort_keys,
        encoder.skipkeys,
        encoder.allow_nan,
    )
    return lambda value: "".join(chunks(value, 0))


_encode = _compact_encoder()


@dataclass(frozen=True)
class Integration:
    name: str
    version: str

    def as_context(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version}


class NormalizedMessage(NamedTuple):
    """One finished message, kept until the request is enqueued. A NamedTuple: immutable and built
    at C speed, once per event (a frozen dataclass sets each field through `object.__setattr__`)."""

    message_id: str
    #: Compact JSON, exactly what goes into the /v1/batch array; its UTF-8 length is `size`.
    json: str
    size: int
    message: dict[str, Any]


def _uuid5(name: str) -> str:
    """`str(uuid.uuid5(ID_NAMESPACE, name))`: the same text without building UUID objects (hot path;
    tests/unit/test_spec_and_normalize.py pins the ids). `surrogatepass`: a tool's event id can hold a
    lone surrogate escape ("\\ud800" in its JSON); it still gets a stable id, and the message's own
    text is judged later (an invalid message is rejected, not a 500)."""
    sha1 = _ID_NAMESPACE_SHA1.copy()
    sha1.update(name.encode("utf-8", "surrogatepass"))
    h = sha1.hexdigest()
    # The first 16 bytes, with the version (5) and the variant in their hex digits.
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT_DIGIT[h[16]]}{h[17:20]}-{h[20:32]}"


def derive_message_id(tenant: str, source: str, event_key: str) -> str:
    name = "\n".join((tenant, source, event_key))
    return f"{source}-{_uuid5(name)}"


def derive_anonymous_id(tenant: str, kind: str, value: str) -> str:
    """A stable anonymousId per tenant and recipient; the address itself never becomes an id."""
    return _uuid5("\n".join((tenant, kind, value.strip().lower())))


def normalize(
    mapped: MappedEvent,
    *,
    tenant_id: str,
    tenant: TenantConfig,
    source: str,
    integration: Integration,
) -> NormalizedMessage:
    """Validate and complete one message; raise `Rejected` with a reason the sender can act on."""
    candidate = mapped.message
    if not isinstance(candidate.get("type"), str):
        raise Rejected('"type" is required: one of track, identify, page, screen, group, alias')
    try:
        fields = message_fields(candidate)
    except ValidationError as exc:
        raise Rejected(describe_validation_error(exc)) from None

    out = dict(candidate)
    if fields.user_id is not None:
        out["userId"] = fields.user_id
    else:
        if tenant.identity.missing_user_id != "anonymous":
            raise Rejected(
                "userId is required (Segment partner rule: send the customer's own userId); "
                "set it in the event, or allow anonymousId in the tenant's identity policy"
            )
        anonymous = fields.anonymous_id or _anonymous_from_hints(tenant_id, mapped.identity_hints)
        if not anonymous:
            raise Rejected("userId or anonymousId is required")
        out["anonymousId"] = anonymous
    if fields.anonymous_id is not None and "anonymousId" not in out:
        out["anonymousId"] = fields.anonymous_id
    if fields.timestamp is not None:
        out["timestamp"] = fields.timestamp

    message_id = fields.message_id or derive_message_id(
        tenant_id, source, mapped.event_key or content_digest(candidate)
    )
    out["messageId"] = message_id
    context = fields.context  # a fresh dict
    context["integration"] = integration.as_context()  # partner rule; overrides anything sent
    out["context"] = context
    out.pop("writeKey", None)  # never forward a key a sender put in the body

    try:
        encoded = _encode(out)
        # ASCII text (the common case, checked in O(1)) is its own UTF-8; anything else is encoded,
        # which also refuses lone surrogates.
        size = len(encoded) if encoded.isascii() else len(encoded.encode("utf-8"))
    except UnicodeEncodeError:
        raise Rejected("message contains invalid Unicode (a lone surrogate escape)") from None
    except (TypeError, ValueError) as exc:
        raise Rejected(f"message is not serializable as JSON: {exc}") from None
    if size > MAX_MESSAGE_BYTES:
        raise Rejected(f"message is {size} bytes serialized; Segment accepts at most {MAX_MESSAGE_BYTES}")
    return NormalizedMessage(message_id, encoded, size, out)  # positional: cheaper, once per event


def _anonymous_from_hints(tenant_id: str, hints: dict[str, str]) -> str | None:
    for kind in ("email", "phone"):
        if hints.get(kind):
            return derive_anonymous_id(tenant_id, kind, hints[kind])
    return None
