"""Per-instance pacing of Segment requests (token bucket).

Segment asks partners for at most 50 requests/s in total. The template caps the forwarder's
concurrency (MaximumConcurrency) and gives each instance `50 / MaximumConcurrency` requests/s, so
the fleet can never exceed the cap however many instances run.
"""

from __future__ import annotations

import threading
import time
from typing import Callable


class RateLimiter:
    def __init__(
        self,
        rate_per_second: float,
        burst: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate_per_second
        self.capacity = max(1.0, burst)
        self._tokens = self.capacity
        self._last = clock()
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Block until a request may be sent; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1.0
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self.rate
        if wait:
            self._sleep(wait)
        return wait
