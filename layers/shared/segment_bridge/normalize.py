"""Finish a mapped event into a Spec message Segment will accept from a partner.

Shared by every source: Spec validation, the userId rule, the stable messageId, the
`context.integration` stamp and the 32 KB limit. Pure functions, no I/O.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from .limits import MAX_MESSAGE_BYTES
from .sources.base import MappedEvent, Rejected
from .spec import AnyMessage, format_timestamp
from .tenants import TenantConfig

_MESSAGE = TypeAdapter(AnyMessage)
#: Fixed namespace: the same (tenant, source, event) gives the same id on every deployment, so a
#: redelivered webhook, an SQS redelivery and a DLQ redrive all reproduce it for Segment's dedupe.
ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/segment-bridge/message-id")
#: SHA-1 state after the namespace's bytes: uuid5 hashes namespace + name, so each id copies this.
_ID_NAMESPACE_SHA1 = hashlib.sha1(ID_NAMESPACE.bytes)
#: uuid5 sets the variant bits (10xx) in the 17th hex digit: digit -> digit with them set.
_VARIANT_DIGIT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}
#: `json.dumps(..., ensure_ascii=False, separators=(",", ":"), allow_nan=False)`, built once
#: (`json.dumps` with options builds a new encoder on every call). No circular-reference check
#: (a sixth of the encoding's cost): a message is parsed JSON plus fresh values, never a cycle.
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False).encode
#: A UTC timestamp as the built-in sources write it ("2026-01-05T09:00:00Z", "...:00.123456Z").
_UTC_TIMESTAMP = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9])(?:\.([0-9]{1,6}))?Z"
)


@dataclass(frozen=True)
class Integration:
    name: str
    version: str

    def as_context(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version}


@dataclass(frozen=True)
class NormalizedMessage:
    message_id: str
    #: Compact JSON, exactly what goes into the /v1/batch array; its UTF-8 length is `size`.
    json: str
    size: int
    message: dict[str, Any]


def _uuid5(name: str) -> str:
    """`str(uuid.uuid5(ID_NAMESPACE, name))`: the same text without building UUID objects (hot path;
    tests/unit/test_spec_and_normalize.py pins the ids)."""
    sha1 = _ID_NAMESPACE_SHA1.copy()
    sha1.update(name.encode("utf-8"))
    h = sha1.hexdigest()
    # The first 16 bytes, with the version (5) and the variant in their hex digits.
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT_DIGIT[h[16]]}{h[17:20]}-{h[20:32]}"


def derive_message_id(tenant: str, source: str, event_key: str) -> str:
    name = "\n".join((tenant, source, event_key))
    return f"{source}-{_uuid5(name)}"


def derive_anonymous_id(tenant: str, kind: str, value: str) -> str:
    """A stable anonymousId per tenant and recipient; the address itself never becomes an id."""
    return _uuid5("\n".join((tenant, kind, value.strip().lower())))


def content_key(message: dict[str, Any]) -> str:
    canonical = json.dumps(message, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False, include_input=False)[:5]:
        location = ".".join(str(p) for p in error["loc"] if not isinstance(p, int) or len(error["loc"]) == 1)
        parts.append(f"{location}: {error['msg']}" if location else error["msg"])
    return "; ".join(parts)


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
        model = _MESSAGE.validate_python(candidate)
    except ValidationError as exc:
        raise Rejected(describe_validation_error(exc)) from None

    out = dict(candidate)
    if model.userId is not None:
        out["userId"] = model.userId
    else:
        if tenant.identity.missing_user_id != "anonymous":
            raise Rejected(
                "userId is required (Segment partner rule: send the customer's own userId); "
                "set it in the event, or allow anonymousId in the tenant's identity policy"
            )
        anonymous = model.anonymousId or _anonymous_from_hints(tenant_id, mapped.identity_hints)
        if not anonymous:
            raise Rejected("userId or anonymousId is required")
        out["anonymousId"] = anonymous
    if model.anonymousId is not None and "anonymousId" not in out:
        out["anonymousId"] = model.anonymousId
    if model.timestamp is not None:
        out["timestamp"] = _timestamp_text(candidate.get("timestamp"), model.timestamp)

    message_id = model.messageId or derive_message_id(
        tenant_id, source, mapped.event_key or content_key(candidate)
    )
    out["messageId"] = message_id
    context = dict(model.context)
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


def _timestamp_text(raw: Any, parsed: datetime) -> str:
    """`format_timestamp(parsed)`, without the datetime round trip when `raw` (which pydantic parsed
    into `parsed`) is already UTC with a "Z": then it is `raw` with the fraction cut or padded to
    milliseconds, the same text (tests/unit/test_spec_and_normalize.py compares both)."""
    if isinstance(raw, str):
        match = _UTC_TIMESTAMP.fullmatch(raw)
        if match is not None:
            whole, fraction = match.groups()
            return f"{whole}.{((fraction or '') + '000')[:3]}Z"
    return format_timestamp(parsed)


def _anonymous_from_hints(tenant_id: str, hints: dict[str, str]) -> str | None:
    for kind in ("email", "phone"):
        if hints.get(kind):
            return derive_anonymous_id(tenant_id, kind, hints[kind])
    return None
