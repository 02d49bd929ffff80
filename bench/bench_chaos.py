"""Chaos at scale: N messages through the real `Forwarder` into a Segment that misbehaves.

    .venv/bin/python bench/bench_chaos.py [--messages 100000] [--seed 7]

What runs: the benchmark's deterministic messages (bench/messages.py: ~1 KB each, three tenants
in two regions), packed into SQS records exactly as ingest packs webhooks, a few of them marked
so that Segment refuses them with a 400. Two forwarder "instances" (threads, as the template's
MaximumConcurrency 2), each with its own `Forwarder` and rate limiter at its share of the 50
requests/s cap, take invocation-sized groups of records (1,000 records / 6 MB, as the event
source) from an in-memory SQS stand-in: failed records come back after a (scaled-down) visibility
timeout with their receive count raised, and the forwarder dead-letters on the last receive into
an in-memory DLQ. Segment is the project's sink over loopback, counting messageIds instead of
keeping bodies, with a seeded `FaultPlan`: drops, stalls past the client timeout, 500, 503 and
429 with Retry-After.

Prints delivered / dead-lettered / lost messages, duplicate deliveries and duplicate requests
(which Segment's messageId dedupe absorbs), requests per 1,000 messages and the peak request rate
the sink saw. `run(messages)` returns the same figures as a dict; `section(size)` is what
`python -m bench` shows (smoke: 2,000 messages, quick: 10,000, full: 100,000).
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "layers" / "shared", ROOT / "tools"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from bench.common import Section  # noqa: E402
from bench.messages import TENANTS, BenchMessage, encode, invocations, spec_messages, sqs_records, write_key  # noqa: E402
from bench.sink_process import CountingSink  # noqa: E402
from segment_bridge.config import Settings  # noqa: E402
from segment_bridge.forward.client import SegmentClient  # noqa: E402
from segment_bridge.forward.forwarder import Forwarder, QueuedRecord  # noqa: E402
from segment_bridge.forward.retry import Deadline  # noqa: E402
from segment_bridge.limits import MAX_BATCH_MESSAGES, MAX_BATCH_REQUEST_BYTES  # noqa: E402
from segment_bridge.queue_format import read_body  # noqa: E402
from segment_bridge.tenants import StaticTenants, TenantConfig  # noqa: E402
from segment_bridge_tools.faults import REJECT_MARKER, FaultPlan  # noqa: E402
from segment_bridge_tools.sink import ReceivedRequest  # noqa: E402

DEFAULT_MESSAGES = 100_000
#: Messages per run size of `python -m bench` (the smoke size is what `make test` runs).
SIZES = {"smoke": 2_000, "quick": 10_000, "full": DEFAULT_MESSAGES}
#: One message in this many is one Segment will never take (400).
BAD_EVERY = 10_000
#: The template's defaults, except the visibility timeout (390 s), scaled down to keep the run short.
INSTANCES = 2
PARTNER_REQUESTS_PER_SECOND = 50.0
LAMBDA_TIMEOUT_SECONDS = 60.0
MAX_RECEIVE_COUNT = 5
VISIBILITY_SECONDS = 3.0
SEGMENT_TIMEOUT_SECONDS = 2.0


def fault_plan(seed: int) -> FaultPlan:
    return FaultPlan(
        error_500=0.05,
        error_503=0.05,
        rate_limited=0.05,
        retry_after_seconds=1.0,
        stall=0.02,
        stall_seconds=SEGMENT_TIMEOUT_SECONDS + 1.0,
        drop=0.03,
        seed=seed,
    )


class ChaosSink(CountingSink):
    """Also counts requests that brought Segment nothing new (every messageId already delivered)."""

    def __init__(self) -> None:
        super().__init__()
        self.duplicate_requests = 0

    def _record(self, request: ReceivedRequest) -> None:
        if request.status == 200 and request.messages:
            ids = {str(m.get("messageId")) for m in request.messages}
            with self._lock:
                self.duplicate_requests += ids <= self._ids
        super()._record(request)


class InMemoryDLQ:
    def __init__(self) -> None:
        self.items: list[tuple[str, str, dict[str, str]]] = []
        self._lock = threading.Lock()

    def dead_letter(self, body: str, reason: str, attributes: dict[str, str]) -> None:
        with self._lock:
            self.items.append((body, reason, attributes))


@dataclass(order=True)
class _Pending:
    visible_at: float
    record: QueuedRecord = field(compare=False)


class QueueStandIn:
    """SQS as the forwarder sees it: receive a group of visible records, delete or let them reappear."""

    def __init__(self, groups: list[list[QueuedRecord]]) -> None:
        self._groups = deque(groups)  # first receives, in invocation-sized groups
        self._retries: list[_Pending] = []
        self._lock = threading.Lock()
        self.in_flight = 0

    def receive(self) -> list[QueuedRecord] | None:
        """The next group; [] when nothing is visible yet; None when everything is settled."""
        with self._lock:
            now = time.monotonic()
            due = [p for p in self._retries if p.visible_at <= now]
            if due:
                self._retries = [p for p in self._retries if p.visible_at > now]
                group = [QueuedRecord(p.record.record_id, p.record.body, p.record.receive_count + 1) for p in due]
            elif self._groups:
                group = self._groups.popleft()
            else:
                return None if not self._retries and not self.in_flight else []
            self.in_flight += 1
            return group

    def settle(self, group: list[QueuedRecord], failed: set[str]) -> None:
        with self._lock:
            self.in_flight -= 1
            later = time.monotonic() + VISIBILITY_SECONDS
            self._retries.extend(_Pending(later, r) for r in group if r.record_id in failed)


def marked(messages: list[BenchMessage]) -> tuple[list[BenchMessage], set[str]]:
    """Every BAD_EVERY-th track message carries the reject marker (a few, however small the run)."""
    every = min(BAD_EVERY, max(len(messages) // 5, 1))
    out, bad = [], set()
    for index, item in enumerate(messages):
        if index % every == every // 2 and item.message["type"] == "track":
            message = {**item.message, "properties": {**item.message["properties"], REJECT_MARKER: True}}
            item = BenchMessage(item.tenant, message, encode(message))
            bad.add(message["messageId"])
        out.append(item)
    return out, bad


def run(
    messages: int = DEFAULT_MESSAGES, *, seed: int = 7, log: Any = lambda line: print(line, file=sys.stderr, flush=True)
) -> dict[str, Any]:
    started = time.monotonic()
    corpus, bad = marked(spec_messages(messages))
    records = sqs_records(corpus)
    groups = [[QueuedRecord(r["MessageId"], r["Body"]) for r in group] for group in invocations(records)]
    log(f"chaos: {messages:,} messages in {len(records):,} SQS records, {len(groups)} invocations, {len(bad)} bad")

    plan = fault_plan(seed)
    sink = ChaosSink()
    sink.responder = plan
    sink.start()
    settings = Settings(
        PARTNER_REQUESTS_PER_SECOND=PARTNER_REQUESTS_PER_SECOND,
        FORWARDER_MAX_CONCURRENCY=INSTANCES,
        MAX_RECEIVE_COUNT=MAX_RECEIVE_COUNT,
        SEGMENT_TIMEOUT_SECONDS=SEGMENT_TIMEOUT_SECONDS,
    )
    tenants = StaticTenants({t: TenantConfig(write_key=write_key(t), region=region) for t, _, region in TENANTS})
    dlq = InMemoryDLQ()
    queue = QueueStandIn(groups)
    totals: Counter[str] = Counter()
    totals_lock = threading.Lock()

    def instance(number: int) -> None:
        client = SegmentClient({"us": sink.batch_url, "eu": sink.batch_url}, timeout=SEGMENT_TIMEOUT_SECONDS)
        forwarder = Forwarder(settings, tenants, client, dlq, rng=random.Random(seed * 100 + number))
        while (group := queue.receive()) is not None:
            if not group:
                time.sleep(0.05)
                continue
            report = forwarder.forward(group, Deadline.after(LAMBDA_TIMEOUT_SECONDS - 3.0))
            queue.settle(group, set(report.failed))
            with totals_lock:
                totals.update(
                    invocations=1,
                    retries=report.delivery.retries,
                    isolation_requests=report.delivery.isolation_requests,
                    records_failed=len(report.failed),
                    redelivered=sum(r.receive_count > 1 for r in group),
                )

    threads = [threading.Thread(target=instance, args=(n,), name=f"forwarder-{n}") for n in range(INSTANCES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    stats = sink.stats()
    duplicate_requests = sink.duplicate_requests
    sink.stop()

    dead_ids: set[str] = set()
    dead_reasons: Counter[str] = Counter()
    for body, _reason, attributes in dlq.items:
        ids = [str(m["messageId"]) for m in read_body(body).messages]  # the queue's own format, any version
        dead_ids.update(ids)
        dead_reasons[attributes.get("status") or "no answer"] += len(ids)
    accepted = {m.message["messageId"] for m in corpus}
    delivered_ids = sink._ids & accepted
    lost = accepted - delivered_ids - dead_ids
    result = {
        "messages": messages,
        "delivered": len(delivered_ids),
        "dead_lettered": len(dead_ids),
        "dead_lettered_bad": len(dead_ids & bad),
        "dead_lettered_by_status": dict(dead_reasons),
        "lost": len(lost),
        "duplicate_deliveries": stats["messages"] - stats["unique_message_ids"],
        "duplicate_requests": duplicate_requests,
        "requests": stats["requests"],
        "requests_per_1000_messages": round(stats["requests"] / (messages / 1000), 2),
        "requests_200_per_1000_messages": round(stats["statuses"].get("200", 0) / (messages / 1000), 2),
        "statuses": stats["statuses"],
        "faults_injected": dict(plan.injected),
        "retries": totals["retries"],
        "isolation_requests": totals["isolation_requests"],
        "invocations": totals["invocations"],
        "records_redelivered": totals["redelivered"],
        "peak_requests_per_second": stats["peak_requests_per_second"],
        "request_cap": PARTNER_REQUESTS_PER_SECOND,
        "max_request_bytes": stats["max_body_bytes"],
        "max_request_messages": stats["max_messages"],
        "within_limits": stats["max_body_bytes"] <= MAX_BATCH_REQUEST_BYTES
        and stats["max_messages"] <= MAX_BATCH_MESSAGES,
        "seconds": round(elapsed, 1),
    }
    return result


def section(size: str, log: Any) -> Section:
    """The run at `size`, as a section of `python -m bench`: its targets are the delivery guarantees."""
    result = run(SIZES[size], log=log)
    n = result["messages"]
    section = Section(f"5. Delivery under faults: {n:,} messages into a misbehaving Segment (bench/bench_chaos.py)")
    section.add(
        "Delivered / dead-lettered / lost",
        f"{result['delivered']:,} / {result['dead_lettered']:,} / {result['lost']:,}",
        "lost = 0",
        result["lost"] == 0,
    )
    section.add(
        "Dead letters that are the planted 400s",
        f"{result['dead_lettered_bad']} of {result['dead_lettered']}",
        "all",
        result["dead_lettered_bad"] == result["dead_lettered"],
    )
    section.add(
        "Peak requests in any second",
        f"{result['peak_requests_per_second']} (cap {PARTNER_REQUESTS_PER_SECOND:g})",
        f"<= {PARTNER_REQUESTS_PER_SECOND:g}",
        result["peak_requests_per_second"] <= PARTNER_REQUESTS_PER_SECOND,
    )
    section.add(
        "Largest request within Segment's limits",
        f"{result['max_request_bytes']:,} B, {result['max_request_messages']:,} messages",
        "500 KB, 2,500",
        bool(result["within_limits"]),
    )
    section.add(
        "Requests per 1,000 messages (of which answered 200)",
        f"{result['requests_per_1000_messages']} ({result['requests_200_per_1000_messages']})",
    )
    section.add("Duplicate deliveries (dropped by Segment's messageId dedupe)", f"{result['duplicate_deliveries']:,}")
    section.add("Duplicate requests (nothing new for Segment)", f"{result['duplicate_requests']:,}")
    section.add(
        "Faults injected", ", ".join(f"{count} x {name}" for name, count in sorted(result["faults_injected"].items()))
    )
    section.add(
        "Retries / isolation requests / invocations",
        f"{result['retries']:,} / {result['isolation_requests']:,} / {result['invocations']:,}",
    )
    section.add("Wall time", f"{result['seconds']} s")
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=DEFAULT_MESSAGES)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    result = run(args.messages, seed=args.seed)
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    ok = (
        result["lost"] == 0
        and result["within_limits"]
        and result["peak_requests_per_second"] <= PARTNER_REQUESTS_PER_SECOND
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
