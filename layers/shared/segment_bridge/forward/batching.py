"""Pack already-serialized Spec messages into /v1/batch request bodies within Segment's limits.

Greedy and order-preserving: each request is filled up to 475 KB (analytics-python's
BATCH_SIZE_LIMIT, leaving room under Segment's 500 KB) and 2,500 messages, so a backlog costs as
few requests as the limits allow. Each item keeps its owner (the SQS record it came from) so a
failed request can be traced back to exactly the records to retry.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ..limits import BATCH_TARGET_BYTES, MAX_BATCH_MESSAGES

Owner = TypeVar("Owner", bound=Hashable)

_PREFIX = b'{"batch":['
_SUFFIX_TEMPLATE = '],"sentAt":"{}"}}'
#: `{"batch":[` + `],"sentAt":"2026-01-01T00:00:00.000Z"}`
ENVELOPE_BYTES = len(_PREFIX) + len(_SUFFIX_TEMPLATE.format("2026-01-01T00:00:00.000Z"))


@dataclass
class Batch(Generic[Owner]):
    items: list[str] = field(default_factory=list)
    owners: list[Owner] = field(default_factory=list)
    #: Bytes of the request body once wrapped (items, commas and envelope).
    size: int = ENVELOPE_BYTES
    #: UTF-8 size of each item, so halves can be sized without re-encoding.
    sizes: list[int] = field(default_factory=list)
    #: Bytes of the envelope's further members (`,"writeKey":"..."` for an OAuth tenant, whose writeKey
    #: travels in the body), already counted in `size`: the body is exactly `size` bytes.
    extra: int = 0

    def __len__(self) -> int:
        return len(self.items)

    def body(self, sent_at: str, members: bytes = b"") -> bytes:
        """The request body; `members` (JSON `,"name":value` pairs) go after `sentAt`."""
        if len(members) != self.extra:
            # Packed for another envelope: sending would break the size arithmetic under 500 KB.
            raise ValueError(f"batch packed for {self.extra} envelope bytes, got {len(members)}")
        items = ",".join(self.items).encode("utf-8")
        return b"".join((_PREFIX, items, b'],"sentAt":"', sent_at.encode("ascii"), b'"', members, b"}"))

    def split(self) -> tuple[Batch[Owner], Batch[Owner]]:
        """Two halves in order: bisection isolates the messages Segment rejects with a 400."""
        return self.split_at(len(self.items) // 2)

    def split_at(self, index: int) -> tuple[Batch[Owner], Batch[Owner]]:
        """The first `index` items and the rest, in order (a breaker's probe takes the head)."""
        return self._slice(0, index), self._slice(index, len(self.items))

    def _slice(self, start: int, stop: int) -> Batch[Owner]:
        sizes = self.sizes[start:stop]
        return Batch(
            items=self.items[start:stop],
            owners=self.owners[start:stop],
            size=ENVELOPE_BYTES + self.extra + sum(sizes) + max(0, len(sizes) - 1),
            sizes=sizes,
            extra=self.extra,
        )


def pack_batches(
    items: Iterable[tuple[Owner, str, int]],
    *,
    max_bytes: int = BATCH_TARGET_BYTES,
    max_messages: int = MAX_BATCH_MESSAGES,
    envelope_extra: int = 0,
) -> list[Batch[Owner]]:
    """`items` are `(owner, json, utf8_size)`; returns batches in input order.

    `envelope_extra`: bytes the envelope carries besides `batch` and `sentAt` (`Target.body_members`).
    """
    batches: list[Batch[Owner]] = []

    def new_batch() -> Batch[Owner]:
        return Batch(size=ENVELOPE_BYTES + envelope_extra, extra=envelope_extra)

    current: Batch[Owner] = new_batch()
    for owner, encoded, size in items:
        extra = size + (1 if current.items else 0)
        if current.items and (current.size + extra > max_bytes or len(current.items) >= max_messages):
            batches.append(current)
            current = new_batch()
            extra = size
        current.items.append(encoded)
        current.owners.append(owner)
        current.sizes.append(size)
        current.size += extra
    if current.items:
        batches.append(current)
    return batches
