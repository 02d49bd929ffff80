"""A circuit breaker per Segment region, per forwarder instance: stop sending into an outage.

While a region answers, nothing changes. After `FAILURES_TO_OPEN` transient answers in a row from
it (5xx, 408, 429 after its Retry-After, timeouts, dropped connections: `policy.classify`), the
breaker **opens**: the instance stops sending that region's batches, and the records fail at once
(no 60 s invocations spent retrying into a dead endpoint) and go back to SQS with their backoff.
Once per `PROBE_INTERVAL_SECONDS` one caller is allowed a **probe**: a small request (one message,
one attempt) with real messages, so a probe that succeeds delivers them. Any successful answer
closes the breaker, and the rest of that invocation is sent as usual.

What does not count: a tenant's own refusal (401/403/404) says nothing about the region, so it
neither opens the breaker nor closes it; a 400/413 is Segment judging content, so the region is up.

State lives in the warm execution environment (a `Breakers` per `Forwarder`), so it carries
across invocations; a new environment finds out again within its first requests. Thread-safe: the
tenants and lanes of an invocation share it.

The bound during a total outage, per instance and region: at most `FAILURES_TO_OPEN` failed
requests (plus those already in flight) to open it, then one probe per `PROBE_INTERVAL_SECONDS`,
that is at most 60 requests an hour (`outage_requests_per_hour`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from ..observability import logger
from .policy import Cause, classify

if TYPE_CHECKING:
    from .client import SendOutcome

#: Transient answers in a row that open a region's breaker. A total outage produces them within
#: one invocation's first requests (each request makes up to 5 attempts, and tenants run in
#: parallel lanes); partial faults almost never do: with a quarter of answers failing (the chaos
#: run's mix), ten in a row has odds of about 1 in a million per request.
FAILURES_TO_OPEN = 10
#: While open, one probe per this many seconds per instance and region. It bounds the requests an
#: outage costs (60 an hour) and how long after Segment recovers an instance keeps failing records
#: fast; records come back on their own backoff (up to 15 min) anyway, so a shorter interval would
#: buy little.
PROBE_INTERVAL_SECONDS = 60.0
#: Messages in a probe: the smallest real request, so a probe that succeeds delivers something.
PROBE_MESSAGES = 1
#: Metric the forwarder emits per region (1 open, 0 closed), which `segment-bridge status` reads.
BREAKER_OPEN_METRIC = "SegmentBreakerOpen"


class Permit(str, Enum):
    #: Closed: send as usual.
    SEND = "send"
    #: Open, and a probe is due: send one small request, once.
    PROBE = "probe"
    #: Open: do not send; fail fast.
    WAIT = "wait"


@dataclass(frozen=True)
class BreakerState:
    region: str
    open: bool
    #: Since when it has been open (wall clock), None when closed.
    opened_at: float | None
    #: Transient answers in a row so far.
    failures: int


class CircuitBreaker:
    def __init__(
        self,
        region: str,
        clock: Callable[[], float] = time.time,
        *,
        failures_to_open: int = FAILURES_TO_OPEN,
        probe_interval: float = PROBE_INTERVAL_SECONDS,
    ) -> None:
        self.region = region
        self.clock = clock
        self.failures_to_open = failures_to_open
        self.probe_interval = probe_interval
        self._failures = 0
        self._opened_at: float | None = None
        self._next_probe_at = 0.0
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None

    def permit(self) -> Permit:
        """May a request go to this region now? At most one PROBE is granted per interval."""
        with self._lock:
            if self._opened_at is None:
                return Permit.SEND
            now = self.clock()
            if now >= self._next_probe_at:
                self._next_probe_at = now + self.probe_interval
                return Permit.PROBE
            return Permit.WAIT

    def record(self, outcome: SendOutcome) -> None:
        """Count an answer: transient ones towards opening, any real answer but a tenant's refusal closes."""
        cause = classify(outcome)
        if cause is Cause.TENANT:
            return
        with self._lock:
            if cause is Cause.TRANSIENT:
                self._failures += 1
                if self._opened_at is None and self._failures >= self.failures_to_open:
                    self._opened_at = now = self.clock()
                    self._next_probe_at = now + self.probe_interval
                    logger.warning(
                        "Segment region unreachable: circuit open, probing with one message per interval",
                        extra={"region": self.region, "failures": self._failures},
                    )
                return
            opened_at, self._opened_at, self._failures = self._opened_at, None, 0
        if opened_at is not None:
            logger.info(
                "Segment region answers again: circuit closed",
                extra={"region": self.region, "open_seconds": round(self.clock() - opened_at, 1)},
            )

    def state(self) -> BreakerState:
        with self._lock:
            return BreakerState(self.region, self._opened_at is not None, self._opened_at, self._failures)

    def held_back_reason(self) -> str:
        since = self._opened_at
        ago = f" for {self.clock() - since:.0f} s" if since is not None else ""
        return f"not sent: Segment's {self.region} region is unreachable (circuit open{ago})"


class Breakers:
    """One `CircuitBreaker` per region, made on first use."""

    def __init__(self, clock: Callable[[], float] = time.time, probe_interval: float = PROBE_INTERVAL_SECONDS) -> None:
        self.clock = clock
        self.probe_interval = probe_interval
        self._by_region: dict[str, CircuitBreaker] = {}
        self._lock = threading.Lock()

    def __getitem__(self, region: str) -> CircuitBreaker:
        with self._lock:
            breaker = self._by_region.get(region)
            if breaker is None:
                breaker = CircuitBreaker(region, self.clock, probe_interval=self.probe_interval)
                self._by_region[region] = breaker
            return breaker

    def states(self) -> list[BreakerState]:
        with self._lock:
            breakers = list(self._by_region.values())
        return [b.state() for b in sorted(breakers, key=lambda b: b.region)]


def outage_requests_per_hour(instances: int, regions: int, probe_interval: float = PROBE_INTERVAL_SECONDS) -> float:
    """Segment requests an hour of total outage costs, once the breakers are open: one probe per
    interval per instance and region (each invocation probes only if one is due)."""
    return instances * regions * 3600 / probe_interval


def opening_requests(instances: int, regions: int, in_flight: int) -> int:
    """Requests it takes to open every breaker: the failures that open it, plus those in flight then."""
    return instances * regions * (FAILURES_TO_OPEN + in_flight)
