"""The SQS message format between ingest and forward, and how messages are packed into it.

Body: `{"v": 1, "tenant": "...", "source": "...", "messages": [<Spec message>, ...]}`.
Tenant id only, never the writeKey: the forwarder reads keys from Secrets Manager itself.
Packing is string concatenation of already-serialized messages, so nothing is encoded twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from pydantic import BaseModel, ConfigDict, Field

from .limits import SQS_MAX_BATCH_BYTES, SQS_MAX_BATCH_ENTRIES, SQS_MESSAGE_TARGET_BYTES

FORMAT_VERSION = 1


class QueuedBatch(BaseModel):
    model_config = ConfigDict(extra="ignore")

    v: int = Field(FORMAT_VERSION, ge=1, le=FORMAT_VERSION)
    tenant: str = Field(min_length=1, max_length=64)
    source: str = Field(min_length=1, max_length=64)
    messages: list[dict[str, Any]] = Field(min_length=1)


def _header(tenant: str, source: str) -> str:
    return f'{{"v":{FORMAT_VERSION},"tenant":{json.dumps(tenant)},"source":{json.dumps(source)},"messages":['


def queue_body(tenant: str, source: str, encoded_messages: Sequence[str]) -> str:
    """One body from already-serialized messages; the DLQ uses it too, so a redrive is a plain resend."""
    return _header(tenant, source) + ",".join(encoded_messages) + "]}"


def pack_queue_bodies(
    tenant: str, source: str, messages: Sequence[tuple[str, int]], max_bytes: int = SQS_MESSAGE_TARGET_BYTES
) -> list[str]:
    """Pack `(json, utf8_size)` messages into as few bodies as fit in `max_bytes` each.

    Each message is at most 32 KB (checked at normalization), so it always fits in an empty body.
    """
    head = _header(tenant, source)
    overhead = len(head.encode("utf-8")) + 2  # "]}"
    bodies: list[str] = []
    current: list[str] = []
    size = overhead
    for encoded, encoded_size in messages:
        extra = encoded_size + (1 if current else 0)
        if current and size + extra > max_bytes:
            bodies.append(head + ",".join(current) + "]}")
            current, size = [], overhead
            extra = encoded_size
        current.append(encoded)
        size += extra
    if current:
        bodies.append(head + ",".join(current) + "]}")
    return bodies


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
