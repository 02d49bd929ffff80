"""What the forward pipeline needs from the world, declared in one place.

`Forwarder` takes an implementation of each through its constructor: the handler wires the real
ones (`client.SegmentClient`, `dead_letters.SqsDeadLetterQueue`, `visibility.SqsVisibility`),
tests pass fakes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

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


class Redelivery(Protocol):
    """When failed records come back (`visibility.SqsVisibility`): their visibility timeouts."""

    def postpone(self, delays: Sequence[tuple[str, int]]) -> set[str]:
        """Hide each (receipt handle, seconds); returns the handles that could not be changed."""
        ...


Item = TypeVar("Item")
Result = TypeVar("Result")


class Concurrency(Protocol):
    """Run `work` on every item, up to `workers` at once, results in order (`forwarder.run_in_threads`).

    The outage simulation (bench/bench_outage.py) passes one that runs the same threads on its
    simulated clock, so the figures it reports are those of the real, concurrent forwarder.
    """

    def __call__(
        self, work: Callable[[Item], Result], items: Sequence[Item], workers: int, name: str
    ) -> list[Result]: ...
