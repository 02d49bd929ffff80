"""The SQS message format between ingest and forward, and how messages are packed into it.

Version 2 (what ingest writes) is JSON Lines: a header line, then one Spec message per line,
each exactly the compact JSON the normalizer produced and measured::

    {"v":2,"tenant":"acme","source":"sendgrid","count":2}
    {"type":"track","userId":"u1",...}
    {"type":"track","userId":"u2",...}

Compact JSON never holds a raw newline (the encoder escapes control characters inside strings),
so the forwarder gets every message's text back with one `split("\\n")`: no parse and no
re-serialization, and Segment receives byte for byte what ingest validated. Parsing version 1
and re-encoding every message was about 60 % of the forwarder's CPU (bench/FINDINGS.md).

Version 1, one JSON document `{"v":1,"tenant":...,"source":...,"messages":[...]}`, is still read:
messages enqueued, or dead-lettered, by an earlier deployment must survive the upgrade.

Tenant id only, never the writeKey: the forwarder reads keys from Secrets Manager itself.
The dead-letter queue uses the same format, so a redrive is a plain resend.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .limits import SQS_MAX_BATCH_BYTES, SQS_MAX_BATCH_ENTRIES, SQS_MESSAGE_TARGET_BYTES

FORMAT_VERSION = 2
#: Longest count a header can carry: reserved when sizing a body, before its count is known.
_MAX_COUNT_DIGITS = 7


class UnreadableBody(ValueError):
    """A queue message that is not in any version of the format; it can never be delivered."""


class QueueHeader(BaseModel):
    """The first line of a version 2 body."""

    # Built on first use: ingest writes this format but never reads it (cold start).
    model_config = ConfigDict(extra="ignore", defer_build=True)

    v: int = Field(ge=2, le=2)
    tenant: str = Field(min_length=1, max_length=64)
    source: str = Field(min_length=1, max_length=64)
    count: int = Field(ge=1)


class QueuedBatch(BaseModel):
    """A queue message decoded into objects: version 1's own model, and how operators and tests read either version."""

    model_config = ConfigDict(extra="ignore", defer_build=True)

    v: int = Field(1, ge=1, le=FORMAT_VERSION)
    tenant: str = Field(min_length=1, max_length=64)
    source: str = Field(min_length=1, max_length=64)
    messages: list[dict[str, Any]] = Field(min_length=1)


@dataclass(frozen=True)
class RawBatch:
    """A queue message as the forwarder uses it: each message still as its JSON text."""

    tenant: str
    source: str
    messages: list[str]


def _header(tenant: str, source: str, count: int) -> str:
    return f'{{"v":{FORMAT_VERSION},"tenant":{json.dumps(tenant)},"source":{json.dumps(source)},"count":{count}}}'


def queue_body(tenant: str, source: str, encoded_messages: Sequence[str]) -> str:
    """One body from already-serialized messages (compact JSON, one line each)."""
    return "\n".join((_header(tenant, source, len(encoded_messages)), *encoded_messages))


def pack_queue_bodies(
    tenant: str, source: str, messages: Sequence[tuple[str, int]], max_bytes: int = SQS_MESSAGE_TARGET_BYTES
) -> list[str]:
    """Pack `(json, utf8_size)` messages into as few bodies as fit in `max_bytes` each.

    Each message is at most 32 KB (checked at normalization), so it always fits in an empty body.
    """
    overhead = len(_header(tenant, source, 10**_MAX_COUNT_DIGITS - 1).encode("utf-8"))
    bodies: list[str] = []
    current: list[str] = []
    size = overhead
    for encoded, encoded_size in messages:
        extra = encoded_size + 1  # the newline before it
        if current and size + extra > max_bytes:
            bodies.append(queue_body(tenant, source, current))
            current, size = [], overhead
        current.append(encoded)
        size += extra
    if current:
        bodies.append(queue_body(tenant, source, current))
    return bodies


def split_body(body: str) -> RawBatch:
    """Tenant, source and each message's JSON text; raises `UnreadableBody` with the reason."""
    head, _, rest = body.partition("\n")
    try:
        header = json.loads(head) if head.startswith('{"v":2,') else None
    except ValueError:
        header = None
    if header is None:
        return _split_version_1(body)
    try:
        parsed = QueueHeader.model_validate(header)
    except ValidationError as exc:
        raise UnreadableBody(f"unreadable queue message: {exc.error_count()} error(s) in the header") from None
    lines = rest.split("\n") if rest else []
    if len(lines) != parsed.count or not all(line.startswith("{") and line.endswith("}") for line in lines):
        raise UnreadableBody(
            f"unreadable queue message: the header announces {parsed.count} message line(s), "
            f"the body has {len(lines)} (or a line is not a JSON object)"
        )
    return RawBatch(parsed.tenant, parsed.source, lines)


def _split_version_1(body: str) -> RawBatch:
    try:
        batch = QueuedBatch.model_validate_json(body)
    except ValidationError as exc:
        raise UnreadableBody(f"unreadable queue message: {exc.error_count()} validation error(s)") from None
    return RawBatch(batch.tenant, batch.source, [_encode(m) for m in batch.messages])


def read_body(body: str) -> QueuedBatch:
    """Either version as objects (the DLQ tools, tests); raises `UnreadableBody`. Not for the hot path."""
    raw = split_body(body)
    try:
        return QueuedBatch(
            v=FORMAT_VERSION, tenant=raw.tenant, source=raw.source, messages=[json.loads(line) for line in raw.messages]
        )
    except ValueError:  # ValidationError is one too
        raise UnreadableBody("unreadable queue message: a message line is not a JSON object") from None


def _encode(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class SendBatch:
    """One SendMessageBatch call's worth of bodies."""

    bodies: list[str]


def group_for_send(bodies: Iterable[str]) -> list[SendBatch]:
    """Group bodies into SendMessageBatch calls: at most 10 entries and 1 MiB per call."""
    calls: list[SendBatch] = []
    current: list[str] = []
    size = 0
    for body in bodies:
        body_size = len(body.encode("utf-8"))
        if current and (len(current) == SQS_MAX_BATCH_ENTRIES or size + body_size > SQS_MAX_BATCH_BYTES):
            calls.append(SendBatch(current))
            current, size = [], 0
        current.append(body)
        size += body_size
    if current:
        calls.append(SendBatch(current))
    return calls
