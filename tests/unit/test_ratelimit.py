"""Pacing: each instance's share of Segment's 50 requests/s, evenly spaced even when threads run late."""

from __future__ import annotations

import itertools
import threading

import pytest

from segment_bridge.config import Settings
from segment_bridge.forward.ratelimit import RATE_HEADROOM, RateLimiter, paced_rate
from segment_bridge.limits import PARTNER_MAX_REQUESTS_PER_SECOND


class FakeTime:
    def __init__(self, oversleep: dict[int, float] | None = None) -> None:
        self.now = 0.0
        self.sleeps = 0
        self.oversleep = oversleep or {}

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds + self.oversleep.get(self.sleeps, 0.0)
        self.sleeps += 1


def grants(limiter: RateLimiter, clock: FakeTime, count: int) -> list[float]:
    times = []
    for _ in range(count):
        limiter.acquire()
        times.append(clock.now)
    return times


def test_grants_are_evenly_spaced() -> None:
    clock = FakeTime()
    times = grants(RateLimiter(5.0, clock=clock.clock, sleep=clock.sleep), clock, 6)
    assert times == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])


def test_a_late_thread_does_not_let_the_next_request_bunch_up() -> None:
    clock = FakeTime(oversleep={1: 0.15})  # the second wait overruns by 150 ms
    times = grants(RateLimiter(5.0, clock=clock.clock, sleep=clock.sleep), clock, 5)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.2 - 1e-9  # a reserving bucket sends the one after the late one 50 ms later


def test_threads_share_one_instance_rate() -> None:
    limiter = RateLimiter(200.0)
    stamps: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(10):
            limiter.acquire()
            with lock:
                stamps.append(limiter._clock())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stamps.sort()
    assert stamps[-1] - stamps[0] >= 39 / 200 - 0.01  # 40 grants at 200/s, whichever thread asked


@pytest.mark.parametrize("concurrency", [2, 3, 5, 10, 50])
def test_the_fleet_stays_under_the_partner_cap(concurrency: int) -> None:
    settings = Settings(
        PARTNER_REQUESTS_PER_SECOND=PARTNER_MAX_REQUESTS_PER_SECOND, FORWARDER_MAX_CONCURRENCY=concurrency
    )
    fleet = concurrency * paced_rate(settings.instance_requests_per_second)
    assert fleet == pytest.approx(PARTNER_MAX_REQUESTS_PER_SECOND * RATE_HEADROOM)
    assert fleet < PARTNER_MAX_REQUESTS_PER_SECOND
