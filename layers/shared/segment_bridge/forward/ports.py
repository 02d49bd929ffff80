"""What the forward pipeline needs from the world, declared in one place.

`Forwarder` takes an implementation of each through its constructor: the handler wires the real
ones (`client.SegmentClient`, `dead_letters.SqsDeadLetterQueue`), tests pass fakes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .batching import Batch
    from .client import PreparedRequest, SendOutcome, Target


class SegmentSender(Protocol):
    """Segment's /v1/batch: a packed batch made into a request, then sent (see `client`)."""

    def prepare(self, target: Target, batch: Batch[Any], sent_at: str) -> PreparedRequest: ...

    def send(self, request: PreparedRequest, timeout: float | None = None) -> SendOutcome: ...


class DeadLetterQueue(Protocol):
    """Where messages that can never be delivered go, with why (`dead_letters.SqsDeadLetterQueue`)."""

    def dead_letter(self, body: str, reason: str, attributes: dict[str, str]) -> None: ...


class Pacer(Protocol):
    """The instance's pace of Segment requests (`ratelimit.RateLimiter`): blocks until one may go."""

    def acquire(self) -> float: ...
