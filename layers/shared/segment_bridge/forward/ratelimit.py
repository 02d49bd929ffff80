"""Per-instance pacing of Segment requests (token bucket).

Segment asks partners for at most 50 requests/s in total. The template caps the forwarder's
concurrency (MaximumConcurrency) and gives each instance `50 / MaximumConcurrency` requests/s, so
the fleet can never exceed the cap however many instances run.

Each instance paces at `RATE_HEADROOM` of its share: requests leave evenly spaced, but reach
Segment a few milliseconds early or late (gzip time grows with the body, networks jitter), and
spacing of exactly 1/rate would let such jitter put rate + 1 requests into some one-second window.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

#: Fraction of its share an instance uses: 10 % of the spacing is slack for arrival jitter.
RATE_HEADROOM = 0.9
#: Rounding slack on the token count, so a wait of exactly 1/rate is always enough.
_EPSILON = 1e-9


def paced_rate(share_per_second: float) -> float:
    """The rate an instance's limiter runs at, given its share of the partner cap."""
    return share_per_second * RATE_HEADROOM


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
        """Block until a request may be sent; returns the seconds waited.

        A token is taken only when one is there at the moment of the grant; nothing is reserved
        ahead. So a thread that oversleeps (CPU contention) delays the next grant instead of
        leaving together with it: grants stay at least 1/rate apart after the first `burst`.
        """
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1.0 - _EPSILON:
                    self._tokens -= 1.0
                    return waited
                wait = (1.0 - self._tokens) / self.rate
            self._sleep(wait)
            waited += wait
