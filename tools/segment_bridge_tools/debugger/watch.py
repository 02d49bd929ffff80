"""Watch a queue's content without taking part in it: a peek function, polled on a thread."""

from __future__ import annotations

import threading
from collections.abc import Callable

from .journal import QueuedMessage

#: How often the dead-letter queue is looked at; a dead letter shows within this long.
WATCH_INTERVAL_SECONDS = 0.5


class QueueWatcher:
    """Calls `report(peek())` every `interval` seconds until stopped.

    `peek` must not receive the messages (that would hide them from `segment-bridge dlq` and count
    as a receive); the local stack reads its in-process SQS emulation instead.
    """

    def __init__(
        self,
        peek: Callable[[], list[QueuedMessage]],
        report: Callable[[list[QueuedMessage]], None],
        interval: float = WATCH_INTERVAL_SECONDS,
    ) -> None:
        self.peek = peek
        self.report = report
        self.interval = interval
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dlq-watch", daemon=True)

    def start(self) -> QueueWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def poll_once(self) -> None:
        self.report(self.peek())

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll_once()
            except Exception:  # the stand-in is stopping or busy: try again next round
                self.errors += 1
