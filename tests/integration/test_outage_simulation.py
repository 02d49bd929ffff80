"""The outage benchmark, scaled down to seconds: the real forwarder on a virtual clock through a
total outage and an EU-only one (bench/bench_outage.py), and the clock it runs on."""

from __future__ import annotations

import threading

import pytest

from bench import bench_outage
from bench.bench_outage import VirtualClock
from segment_bridge.limits import PARTNER_MAX_REQUESTS_PER_SECOND


def test_the_virtual_clock_runs_sleepers_concurrently_and_in_order() -> None:
    clock = VirtualClock(1000.0)
    woke: list[tuple[str, float]] = []
    lock = threading.Lock()

    def nap(item: tuple[str, float]) -> float:
        name, seconds = item
        clock.sleep(seconds)
        with lock:
            woke.append((name, clock.now()))
        clock.sleep(1.0)
        return clock.now()

    ends = clock.run(nap, [("a", 5.0), ("b", 2.0), ("c", 2.0)], workers=3, name="t")
    assert sorted(woke) == [("a", 1005.0), ("b", 1002.0), ("c", 1002.0)]  # in parallel: not 1009
    assert ends == [1006.0, 1003.0, 1003.0] and clock.now() == 1006.0
    # Fewer workers than items: a worker takes the next item once free, as a pool does.
    clock.set(2000.0)
    assert clock.run(lambda s: (clock.sleep(s), clock.now())[1], [1.0, 1.0, 1.0], workers=2, name="t") == [
        2001.0,
        2001.0,
        2002.0,
    ]


def test_a_worker_error_reaches_the_caller() -> None:
    clock = VirtualClock(0.0)

    def boom(n: int) -> int:
        clock.sleep(1)
        if n == 1:
            raise ValueError("bug")
        return n

    with pytest.raises(ValueError, match="bug"):
        clock.run(boom, [0, 1, 2], workers=3, name="t")
    clock.set(10.0)  # the clock is usable again: every worker was accounted for


@pytest.mark.timeout(120)
def test_a_total_outage_scaled_down_loses_nothing_and_costs_few_requests() -> None:
    (messages, hours), _ = bench_outage.SIZES["smoke"]
    result = bench_outage.total_outage(messages, hours)
    assert result["lost"] == 0
    assert result["dead_lettered"] == result["dead_lettered_planted"] == result["planted"] > 0  # only the 400s
    assert result["delivered"] + result["dead_lettered"] == result["accepted"] == messages
    assert result["requests_during"] <= result["request_bound"]  # the breakers' bound held
    assert result["peak_requests_per_second"] <= PARTNER_MAX_REQUESTS_PER_SECOND  # the cap, never exceeded
    assert result["altered_messages"] == 0 and result["late_sent_at"] == 0  # timestamps, ids, sentAt
    assert result["moved_by_redrive"] == 0 and result["expired_in_queue"] == 0
    assert result["longest_invocation_seconds"] < bench_outage.LAMBDA_TIMEOUT_SECONDS
    # Few receives: the records waited out their backoff instead of the queue's 390 s.
    assert result["receives_per_record"] < hours * 3600 / 390 / 2
    assert bench_outage.total_outage_passes(result, hours)
    line = bench_outage.outage_line(result)
    assert line.startswith(f"outage: {hours:g} h down, {messages} accepted, ") and " req/s peak" in line


@pytest.mark.timeout(120)
def test_an_eu_outage_scaled_down_leaves_the_us_tenants_alone() -> None:
    _, (messages, hours, down_from, down_for) = bench_outage.SIZES["smoke"]
    result = bench_outage.region_outage(messages, hours, down_from, down_for)
    assert result["lost"] == 0 and result["dead_lettered"] == result["planted"]
    assert result["us_messages_during"] > 0 and result["us_ok_during"] > 0
    assert result["us_delay_max"] <= 60  # delivered throughout, not after the EU came back
    assert result["peak_requests_per_second"] <= PARTNER_MAX_REQUESTS_PER_SECOND
    assert bench_outage.region_outage_passes(result)
