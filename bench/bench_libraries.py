"""Segment's libraries through the bridge: analytics-python sending N messages straight to Segment
(the sink) and through the bridge, K clients at once.

    .venv/bin/python -m bench --only libraries
    .venv/bin/python -m bench.bench_libraries [--messages 100000]

A partner's backend that uses analytics-python keeps one `Client` per customer (each with that
customer's writeKey). Here K such clients run at once, one thread and one `Client` per tenant,
every library option at its default (upload_size 100, upload_interval 0.5 s, no gzip, one
consumer thread, max_queue_size 10,000), in a process of their own, calling `track`/`identify`
with the benchmark's messages (bench/messages.py, ~1 KB each, split evenly over the tenants).
When a call finds the library's queue full (it returns False and drops the message), the thread
waits 5 ms and calls again: a backend that wants every event sent does that, the library is
unchanged. Two arms, the same calls, one after the other, into the same sink (bench/sink_process.py,
its own process, counting requests, unique messageIds and the most requests in any 1 s):

- direct: `Client(customer's writeKey, host=sink)`, as the backend sends to Segment today.
- through the bridge: `Client(customer's bridge key, host=bridge)`. The bridge is the local stack
  (tools/segment_bridge_tools/local_stack.py) in a process of its own, pointed at the sink: the
  ingest handler behind the API stand-in (`/v1/batch`), SQS on moto, the forward handler. The
  forwarder runs as deployed: the template's event source settings (BatchSize 1000, batching
  window 5 s, MaximumConcurrency 2, visibility 390 s), PartnerRequestsPerSecond 50 split over
  the 2 instances. Two things of the stack are replaced for that (benchmark only): its poller,
  which invokes as soon as one receive comes back empty, by one that waits out the batching
  window and stops at 1,000 records or 6 MB of event as the event source mapping does; and the
  one forwarder its pollers share by one per poller (as two Lambda instances have), each with
  its limiter at its share of the cap.

Live, the forwarder keeps up with what the one local ingest instance accepts, so the partner cap
is also judged where it binds: a third run queues N / 4 more calls (new messageIds) with the
pollers paused, then releases them.

Measured at the sink: requests per 1,000 messages, the most requests in any 1 s, and that every
message arrived exactly once (count, unique messageIds and a digest of the set). At the bridge:
the library's requests and what ingest accepted; forward invocations and records.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "layers" / "shared", ROOT / "tools"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from bench.common import (  # noqa: E402
    PYTHON,
    Section,
    Sink,
    child_env,
    die_with_parent,
    package_version,
    run_worker,
    start_sink,
    write_result,
)
from bench.messages import INVOKE_PAYLOAD_BYTES, load_pickle, prepare  # noqa: E402
from bench.sink_process import ids_digest  # noqa: E402

MODULE = "bench.bench_libraries"
#: Messages per run size of `python -m bench` (smoke is what `make test` runs).
SIZES = {"smoke": 2_000, "quick": 20_000, "full": 100_000}
#: The customers of the partner's backend: one analytics-python `Client` each, all at once.
TENANTS = [("acme", "us"), ("globex", "us"), ("initech", "eu"), ("umbrella", "us")]
#: The template's defaults (template.yaml): the event source mapping and the queue.
BATCH_SIZE = 1000  # ForwardBatchSize
BATCHING_WINDOW_SECONDS = 5.0  # ForwardBatchingWindowSeconds
CONCURRENCY = 2  # ForwardMaximumConcurrency
VISIBILITY_SECONDS = 390  # EventQueue VisibilityTimeout
PARTNER_CAP = 50  # PartnerRequestsPerSecond, Segment's limit for a partner
#: Target: the bridge sends at most half the requests the library sends straight, in the same run.
#: The library uploads `upload_size` (100) messages per request; the bridge packs each tenant's share
#: of an invocation into 500 KB batches (~450 of these ~1 KB messages), so the gain grows with volume:
#: a ratio, not an absolute count, because a small run is dominated by one partial batch per tenant and
#: invocation (smoke: 2,000 messages, 4 tenants, about 2.5x; 100,000 messages, about 4x).
MIN_REQUEST_REDUCTION = 2.0
#: A call that finds the library's queue full is made again after this.
QUEUE_FULL_WAIT_SECONDS = 0.005
#: Give up waiting for deliveries when the sink saw nothing new for this long.
STALL_SECONDS = 120.0
#: After the last delivery: time for a second copy to show, were one on its way.
SETTLE_SECONDS = 1.0
#: The backlog run sends n / this many messages, their messageIds with this suffix.
BACKLOG_SHARE = 4
BACKLOG_SUFFIX = "-backlog"


def write_key(tenant: str) -> str:
    """The customer's Segment writeKey (what the backend has today, and what the bridge sends on)."""
    return f"wk_lib_{tenant}_0123456789abcdef"


def assign(calls: list[tuple[str, str, dict[str, Any]]]) -> list[tuple[str, str, dict[str, Any]]]:
    """The benchmark's calls spread evenly over `TENANTS` (call i goes to tenant i mod K)."""
    names = [t for t, _ in TENANTS]
    return [(names[i % len(names)], method, kwargs) for i, (_, method, kwargs) in enumerate(calls)]


# -- the partner's backend (a worker process) -------------------------------------------------------
def clients_worker(args: argparse.Namespace) -> dict[str, Any]:
    from segment.analytics import Client

    keys: dict[str, str] = json.loads(Path(args.keys).read_text())
    calls = assign(load_pickle(args.calls)[: args.n])
    if args.id_suffix:  # another batch of the same calls: new messageIds
        calls = [(t, m, {**kw, "message_id": kw["message_id"] + args.id_suffix}) for t, m, kw in calls]
    errors: list[str] = []
    lock = threading.Lock()

    def on_error(error: Exception, batch: Any) -> None:
        with lock:
            errors.append(f"{type(error).__name__}: {error}"[:300])

    clients = {tenant: Client(keys[tenant], host=args.host, on_error=on_error) for tenant, _ in TENANTS}
    retries = dict.fromkeys(clients, 0)
    finished: dict[str, float] = {}

    def customer(tenant: str) -> None:
        client = clients[tenant]
        for name, method, kwargs in calls:
            if name != tenant:
                continue
            send = getattr(client, method)
            while not send(**kwargs)[0]:  # the library's queue is full: it dropped the call
                retries[tenant] += 1
                time.sleep(QUEUE_FULL_WAIT_SECONDS)
        client.flush()  # returns once the consumer thread has uploaded everything
        finished[tenant] = time.perf_counter()

    started, cpu = time.perf_counter(), time.process_time()
    threads = [threading.Thread(target=customer, args=(t,), name=f"customer-{t}") for t in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for client in clients.values():
        client.shutdown()
    return {
        "calls": len(calls),
        "queue_full_retries": sum(retries.values()),
        "errors": len(errors),
        "first_errors": errors[:5],
        "wall_seconds": max(finished.values()) - started,
        "cpu_seconds": time.process_time() - cpu,
        "digest": ids_digest(str(kwargs["message_id"]) for _, _, kwargs in calls),
    }


# -- the bridge (a worker process) ----------------------------------------------------------------
def stack_worker(args: argparse.Namespace) -> None:
    """The local stack, pointed at the sink, as deployed; line protocol on the original stdout:
    prints `{"host", "keys"}` once ready, then answers `stats`, `drain`, `pause` and `resume` (the
    pollers) with one JSON line each, until `stop` or end of input. Everything else the process
    prints goes to stderr."""
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    from segment_bridge_tools.local_stack import LocalStack, StackConfig

    first, region = TENANTS[0]
    config = StackConfig(
        tenant=first,
        write_key=write_key(first),
        region=region,
        real_segment=True,  # no in-process sink: the sink process, through SEGMENT_URL_*
        extra_env={"SEGMENT_URL_US": args.sink, "SEGMENT_URL_EU": args.sink},
        batch_size=BATCH_SIZE,
        batching_window_seconds=BATCHING_WINDOW_SECONDS,
        visibility_timeout_seconds=VISIBILITY_SECONDS,
        partner_requests_per_second=PARTNER_CAP,
        forwarder_concurrency=CONCURRENCY,
        oauth_tenant="",
    )
    stack = LocalStack(config).start()
    try:
        keys = {first: stack.bridge_key}
        for tenant, tenant_region in TENANTS[1:]:
            stack.put_tenant(
                tenant,
                {
                    "write_key": write_key(tenant),
                    "region": tenant_region,
                    "sources": {},
                    "identity": {"missing_user_id": "reject"},
                },
            )
            keys[tenant] = stack.add_bridge_key(tenant)
        running = threading.Event()
        running.set()
        pollers, received_again = deployed_pollers(stack, running)
        front = FrontDoor()
        assert stack.ingest is not None
        stack.ingest.observer = front
        ready_cpu = time.process_time()  # the stack's start (imports, moto, tenants) is not the traffic's
        print(json.dumps({"host": stack.tracking_host, "keys": keys}), file=protocol)
        for line in sys.stdin:
            command = line.strip()
            if command == "stats":
                answer: dict[str, Any] = {
                    **front.stats(),
                    "invocations": sum(p.invocations for p in pollers),
                    "records": sum(p.records for p in pollers),
                    "max_records": max(p.max_records for p in pollers),
                    "max_event_bytes": max(p.max_event_bytes for p in pollers),
                    "failed_records": sum(p.handler_module.failed for p in pollers),
                    "records_received_again": received_again[0],
                    "invoke_seconds": round(sum(p.invoke_seconds for p in pollers), 2),
                    "queue_depth": stack.queue_depth(),
                    "dlq_depth": stack.queue_depth(stack.dlq_url),
                    "cpu_seconds": round(time.process_time() - ready_cpu, 2),
                }
            elif command in ("pause", "resume"):
                (running.clear if command == "pause" else running.set)()
                answer = {"running": running.is_set()}
            elif command == "drain":
                answer = {"drained": stack.wait_until_drained(timeout=float(args.drain_timeout))}
            else:
                break
            print(json.dumps(answer), file=protocol)
    finally:
        stack.stop()


class FrontDoor:
    """The API stand-in's exchanges (`IngestServer.observer`): the library's requests to the bridge."""

    def __init__(self) -> None:
        self.requests = 0
        self.statuses: dict[str, int] = {}
        self.accepted = self.refused = 0
        self._lock = threading.Lock()

    def __call__(self, exchange: Any) -> None:
        headers = {k.lower(): v for k, v in exchange.response_headers.items()}
        with self._lock:
            self.requests += 1
            self.statuses[str(exchange.status)] = self.statuses.get(str(exchange.status), 0) + 1
            self.accepted += int(headers.get("x-bridge-accepted", 0))
            self.refused += int(headers.get("x-bridge-refused", 0))

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "ingest_requests": self.requests,
                "ingest_statuses": dict(self.statuses),
                "accepted": self.accepted,
                "refused": self.refused,
            }


def deployed_pollers(stack: Any, running: threading.Event) -> tuple[list[Any], list[int]]:
    """Replace the stack's pollers by `CONCURRENCY` event-source-faithful ones, one forwarder each,
    receiving only while `running` is set. Returns them, and a counter of records received again
    while already received (a copy)."""
    from segment_bridge_tools.lambda_events import sqs_event
    from segment_bridge_tools.local_stack import QueuePoller

    for poller in stack.pollers:
        poller.stop()
    handler = stack.pollers[0].handler_module
    build = handler.get_forwarder.__wrapped__  # the handler's own setup, uncached
    local = threading.local()

    def instance_forwarder() -> Any:
        """This poller thread's forwarder: each concurrent invocation is a Lambda instance of its own."""
        if getattr(local, "forwarder", None) is None:
            local.forwarder = build()
        return local.forwarder

    instance_forwarder.cache_clear = lambda: None  # type: ignore[attr-defined]  # local_stack.clear_caches
    handler.get_forwarder = instance_forwarder

    receiving = threading.Lock()
    seen: set[str] = set()
    received_again = [0]

    class EventSourcePoller(QueuePoller):
        """Waits out the batching window from the first record; stops at `batch_size` records or when
        the next record would take the event past Lambda's 6 MB (that record opens the next batch)."""

        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, **kw)
            self.records = self.max_records = self.max_event_bytes = 0
            self.invoke_seconds = 0.0
            self._carry: list[tuple[dict[str, Any], int]] = []

        def _receive(self) -> list[dict[str, Any]]:
            messages: list[dict[str, Any]] = []
            size = len('{"Records":[]}')
            opened: float | None = None
            while not self._stop.is_set():
                if not messages and not self._carry and not running.is_set():  # paused
                    time.sleep(0.05)
                    continue
                if self._carry:
                    received = self._carry
                    self._carry = []
                else:
                    with receiving:  # one receive at a time: moto's ReceiveMessage is not atomic
                        batch = self.sqs.receive_message(
                            QueueUrl=self.queue_url,
                            MaxNumberOfMessages=10,
                            WaitTimeSeconds=1,  # long polling, as the event source's pollers do
                            AttributeNames=["All"],
                            MessageAttributeNames=["All"],
                        ).get("Messages", [])
                    with receiving:
                        for message in batch:
                            if message["MessageId"] in seen:
                                received_again[0] += 1
                            seen.add(message["MessageId"])
                    received = [(m, len(json.dumps(sqs_event([m])["Records"][0])) + 1) for m in batch]
                for index, (message, record_bytes) in enumerate(received):
                    if messages and (len(messages) == self.batch_size or size + record_bytes > INVOKE_PAYLOAD_BYTES):
                        self._carry = received[index:]
                        return self._took(messages, size)
                    messages.append(message)
                    size += record_bytes
                if messages and opened is None:
                    opened = time.monotonic()
                if len(messages) >= self.batch_size or (
                    opened is not None and time.monotonic() - opened >= self.window_seconds
                ):
                    return self._took(messages, size)
            return messages

        def _invoke(self, messages: list[dict[str, Any]]) -> None:
            started = time.perf_counter()
            super()._invoke(messages)
            self.invoke_seconds += time.perf_counter() - started

        def _took(self, messages: list[dict[str, Any]], size: int) -> list[dict[str, Any]]:
            self.records += len(messages)
            self.max_records = max(self.max_records, len(messages))
            self.max_event_bytes = max(self.max_event_bytes, size)
            return messages

    class Counted:
        """The handler module as a poller calls it, counting the records it reports failed."""

        def __init__(self) -> None:
            self.failed = 0

        def lambda_handler(self, event: dict[str, Any], context: Any) -> Any:
            try:
                response = handler.lambda_handler(event, context)
            except Exception:
                self.failed += len(event["Records"])
                raise
            self.failed += len((response or {}).get("batchItemFailures", []))
            return response

    pollers = [
        EventSourcePoller(
            Counted(),
            stack.queue_url,
            BATCH_SIZE,
            BATCHING_WINDOW_SECONDS,
            stack.config.forwarder_timeout_seconds,
        ).start()
        for _ in range(CONCURRENCY)
    ]
    stack.pollers = pollers
    return pollers, received_again


class Bridge:
    """The stack worker, from the benchmark's side."""

    def __init__(self, sink_batch_url: str, drain_timeout: float) -> None:
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115  # closed by stop()
        self.process = subprocess.Popen(
            [PYTHON, "-m", MODULE, "stack", "--sink", sink_batch_url, "--drain-timeout", str(drain_timeout)],
            cwd=ROOT,
            env=child_env({"POWERTOOLS_LOG_LEVEL": "ERROR"}),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            preexec_fn=die_with_parent,
        )
        ready = self._read()
        self.host: str = ready["host"]
        self.keys: dict[str, str] = ready["keys"]

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(timeout=30)
            self._stderr.seek(0)
            raise RuntimeError(f"the stack worker exited ({self.process.returncode}):\n{self._stderr.read()[-3000:]}")
        return json.loads(line)

    def ask(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._read()

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.write("stop\n")
                self.process.stdin.close()
                self.process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
        self._stderr.close()


# -- the benchmark ----------------------------------------------------------------------------------
def send(calls_path: str, n: int, host: str, keys: dict[str, str], tmp: Path, name: str, suffix: str = "") -> Any:
    keys_path = tmp / f"keys-{name}.json"
    keys_path.write_text(json.dumps(keys))
    args = ["--calls", calls_path, "--n", str(n), "--host", host, "--keys", str(keys_path), f"--id-suffix={suffix}"]
    return run_worker(MODULE, ["clients", *args], timeout=1800)


def wait_for_sink(sink: Sink, n: int) -> dict[str, Any]:
    """Poll the sink until it has `n` unique messages, or nothing new arrived for `STALL_SECONDS`."""
    stats, last, changed = sink.stats(), -1, time.monotonic()
    while stats["unique_message_ids"] < n and time.monotonic() - changed < STALL_SECONDS:
        if stats["unique_message_ids"] != last:
            last, changed = stats["unique_message_ids"], time.monotonic()
        time.sleep(0.1)
        stats = sink.stats()
    return stats


def run(n: int, log: Any, backlog: int | None = None) -> dict[str, Any]:
    """The three runs: straight to the sink; through the bridge as the calls come (live); and a backlog
    queued while the forwarder is paused, then released (what the partner cap has to hold)."""
    backlog = min(n, n // BACKLOG_SHARE if backlog is None else backlog)  # the calls are the first n, reused
    meta = prepare(n, Path(tempfile.gettempdir()) / "segment-bridge-bench", log)
    sink_service = start_sink()
    sink = Sink(sink_service.url)
    bridge: Bridge | None = None
    result: dict[str, Any] = {"messages": n, "backlog_messages": backlog, "clients": len(TENANTS)}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-libraries-") as directory:
            tmp = Path(directory)
            k = len(TENANTS)
            log(f"libraries: {n:,} messages from {k} analytics-python clients at once, straight to the sink")
            sink.reset()
            clients = send(meta["calls"], n, sink.url, {t: write_key(t) for t, _ in TENANTS}, tmp, "direct")
            result["direct"] = {"clients": clients, "sink": sink.stats()}
            _log_arm(log, "straight", result["direct"]["sink"], f"{clients['wall_seconds']:.1f} s")

            log("libraries: the bridge (the local stack, its own process); the same clients through it")
            started = time.perf_counter()
            bridge = Bridge(sink.batch_url, drain_timeout=120)
            result["startup_seconds"] = round(time.perf_counter() - started, 1)
            sink.reset()
            started = time.perf_counter()
            clients = send(meta["calls"], n, bridge.host, bridge.keys, tmp, "live")
            sent = time.perf_counter() - started
            log(f"  calls done in {sent:.1f} s; waiting for the forwarder")
            wait_for_sink(sink, n)
            delivered = time.perf_counter() - started
            drained = bridge.ask("drain")["drained"]
            time.sleep(SETTLE_SECONDS)  # anything still on its way (a second copy would show)
            result["live"] = {
                "clients": clients,
                "sink": sink.stats(),
                "stack": bridge.ask("stats"),
                "drained": drained,
                "send_seconds": round(sent, 1),
                "delivered_seconds": round(delivered, 1),
            }
            _log_arm(log, "live", result["live"]["sink"], f"all delivered {delivered:.1f} s after the first call")

            log(f"libraries: {backlog:,} more messages queued with the forwarder paused, then released")
            bridge.ask("pause")
            sink.reset()
            clients = send(meta["calls"], backlog, bridge.host, bridge.keys, tmp, "backlog", suffix=BACKLOG_SUFFIX)
            queued = bridge.ask("stats")
            started = time.perf_counter()
            bridge.ask("resume")
            wait_for_sink(sink, backlog)
            drain = time.perf_counter() - started
            drained = bridge.ask("drain")["drained"]
            time.sleep(SETTLE_SECONDS)
            result["backlog"] = {
                "clients": clients,
                "sink": sink.stats(),
                "queued": queued,
                "stack": bridge.ask("stats"),
                "drained": drained,
                "drain_seconds": round(drain, 1),
            }
            _log_arm(log, "backlog", result["backlog"]["sink"], f"drained in {drain:.1f} s")
    finally:
        if bridge is not None:
            bridge.stop()
        sink_service.stop()
    return result


def _log_arm(log: Any, name: str, sink: dict[str, Any], extra: str) -> None:
    log(
        f"  {name}: {sink['requests']:,} requests at the sink, {sink['unique_message_ids']:,} messages, "
        f"peak {sink['peak_requests_per_second']} req/s; {extra}"
    )


def per_1000(count: float, messages: int) -> float:
    return 1000 * count / max(messages, 1)


def outcome(arm: dict[str, Any], n: int) -> dict[str, Any]:
    """Delivered (unique messageIds), duplicates, lost, and whether exactly the ids sent arrived, once."""
    sink = arm["sink"]
    unique = sink["unique_message_ids"]
    return {
        "delivered": unique,
        "duplicates": sink["messages"] - unique,
        "lost": max(0, n - unique),
        "exactly_once": unique == sink["messages"] == n and sink["unique_ids_digest"] == arm["clients"]["digest"],
    }


def summary_line(result: dict[str, Any]) -> str:
    n, m = result["messages"], result["backlog_messages"]
    d, live, back = result["direct"]["sink"], result["live"]["sink"], result["backlog"]["sink"]
    once_live, once_back = outcome(result["live"], n), outcome(result["backlog"], m)
    return (
        f"libraries: {n} messages from {result['clients']} analytics-python clients at once, "
        f"{per_1000(d['requests'], n):.1f} requests per 1,000 straight to the sink (peak "
        f"{d['peak_requests_per_second']} req/s) vs {per_1000(live['requests'], n):.1f} through the bridge (peak "
        f"{live['peak_requests_per_second']} req/s; {back['peak_requests_per_second']} req/s draining a {m}-message "
        f"backlog; cap {PARTNER_CAP}), {once_live['delivered'] + once_back['delivered']} of {n + m} delivered, "
        f"{once_live['duplicates'] + once_back['duplicates']} duplicates, {once_live['lost'] + once_back['lost']} lost"
    )


def bridge_peak(result: dict[str, Any]) -> int:
    return max(result[arm]["sink"]["peak_requests_per_second"] for arm in ("live", "backlog"))


def reduction(result: dict[str, Any]) -> float:
    """How many times fewer requests reach the sink through the bridge than straight from the library."""
    return result["direct"]["sink"]["requests"] / max(result["live"]["sink"]["requests"], 1)


def passes(result: dict[str, Any]) -> bool:
    n, m = result["messages"], result["backlog_messages"]
    return (
        outcome(result["live"], n)["exactly_once"]
        and outcome(result["backlog"], m)["exactly_once"]
        and bridge_peak(result) <= PARTNER_CAP
        and reduction(result) >= MIN_REQUEST_REDUCTION
    )


def section(size: str, log: Any) -> Section:
    n = SIZES[size]
    started = time.perf_counter()
    result = run(n, log)
    wall = time.perf_counter() - started
    line = summary_line(result)
    print(line, flush=True)  # the line the closing note can quote (the table has the details)
    k, m = result["clients"], result["backlog_messages"]
    direct, live, back = result["direct"], result["live"], result["backlog"]
    d, b, q = direct["sink"], live["sink"], back["sink"]
    stack, after = live["stack"], back["stack"]
    version = package_version("segment-analytics-python")
    section = Section(
        f"8. Segment libraries through the bridge: analytics-python {version}, {n:,} messages from {k} clients "
        "at once (bench/bench_libraries.py)"
    )
    direct_k, live_k, back_k = per_1000(d["requests"], n), per_1000(b["requests"], n), per_1000(q["requests"], m)
    section.add(
        "Requests at the sink per 1,000 messages: library straight to it / through the bridge (fewer); "
        f"from a {m:,}-message backlog",
        f"{direct_k:.2f} / {live_k:.2f} ({reduction(result):.2f}x); {back_k:.2f}",
        f">= {MIN_REQUEST_REDUCTION:g}x fewer",
        reduction(result) >= MIN_REQUEST_REDUCTION,
    )
    section.add(
        f"Most requests at the sink in any 1 s, {k} clients at once: straight / through the bridge; draining "
        f"the backlog (partner cap {PARTNER_CAP})",
        f"{d['peak_requests_per_second']} / {b['peak_requests_per_second']}; {q['peak_requests_per_second']}",
        f"bridge <= {PARTNER_CAP}",
        bridge_peak(result) <= PARTNER_CAP,
    )
    went_live, went_back, went_direct = outcome(live, n), outcome(back, m), outcome(direct, n)
    section.add(
        "Through the bridge: delivered / duplicates / lost (by messageId); the backlog",
        f"{went_live['delivered']:,} / {went_live['duplicates']} / {went_live['lost']} of {n:,}; "
        f"{went_back['delivered']:,} / {went_back['duplicates']} / {went_back['lost']} of {m:,}",
        "exactly once",
        went_live["exactly_once"] and went_back["exactly_once"],
    )
    section.add(
        "Straight to the sink: delivered / duplicates / lost (the baseline)",
        f"{went_direct['delivered']:,} / {went_direct['duplicates']} / {went_direct['lost']} of {n:,}",
        "exactly once",
        went_direct["exactly_once"],
    )
    section.add(
        "The library's requests to the bridge per 1,000 messages (answered 200; messages accepted / refused)",
        f"{per_1000(stack['ingest_requests'], n):.2f} ({stack['ingest_statuses'].get('200', 0):,} of "
        f"{stack['ingest_requests']:,}; {stack['accepted']:,} / {stack['refused']})",
    )
    section.add(
        "Bytes per request at the sink, JSON body: straight / through the bridge",
        f"{d['body_bytes'] / max(d['requests'], 1):,.0f} / {b['body_bytes'] / max(b['requests'], 1):,.0f}",
    )
    section.add(
        "Bytes per message on the wire to Segment: straight (library, no gzip) / through the bridge (gzip)",
        f"{d['wire_bytes'] / max(d['messages'], 1):,.0f} / {b['wire_bytes'] / max(b['messages'], 1):,.0f}",
    )
    back_invocations = after["invocations"] - stack["invocations"]
    section.add(
        "Forward invocations / SQS records / most records and event bytes in one: live; the backlog",
        f"{stack['invocations']} / {stack['records']:,} / {stack['max_records']}, "
        f"{stack['max_event_bytes'] / 1e6:.1f} MB; {back_invocations} / {after['records'] - stack['records']:,}",
    )
    section.add(
        "Backlog: records queued while paused; drained in (requests/s on average; invocations running, "
        "summed over the 2 instances)",
        f"{back['queued']['queue_depth']:,}; {back['drain_seconds']} s "
        f"({q['requests'] / max(back['drain_seconds'], 1e-9):.0f}/s; "
        f"{after['invoke_seconds'] - stack['invoke_seconds']:.1f} s)",
    )
    section.add(
        "Library calls made again because its queue was full (max_queue_size 10,000): straight / bridge",
        f"{direct['clients']['queue_full_retries']:,} / {live['clients']['queue_full_retries']:,}",
    )
    section.add(
        "CPU s per 1,000 messages (orientation): library clients straight / through the bridge; the bridge "
        "process (ingest, moto, forwarder)",
        f"{per_1000(direct['clients']['cpu_seconds'], n):.3f} / {per_1000(live['clients']['cpu_seconds'], n):.3f}; "
        f"{per_1000(after['cpu_seconds'], n + m):.3f}",
    )
    section.add(
        "Wall time (orientation): straight; through the bridge, calls done / all delivered; section",
        f"{direct['clients']['wall_seconds']:.1f} s; {live['send_seconds']} s / {live['delivered_seconds']} s; "
        f"{wall:.0f} s",
    )
    errors = direct["clients"]["first_errors"] + live["clients"]["first_errors"] + back["clients"]["first_errors"]
    trouble = errors or after["failed_records"] or after["dlq_depth"] or after["records_received_again"]
    if trouble or not (live["drained"] and back["drained"]):
        section.add(
            "Library upload errors (straight / bridge); failed forward records; DLQ; copies received; drained",
            f"{direct['clients']['errors']} / {live['clients']['errors'] + back['clients']['errors']}; "
            f"{after['failed_records']}; {after['dlq_depth']}; {after['records_received_again']}; "
            f"{live['drained'] and back['drained']}" + (f" ({errors[0]})" if errors else ""),
        )
    section.notes += [
        line,
        f"The partner's backend: {k} analytics-python clients at once, one thread and one `Client` per customer "
        f"(tenant), every option at its default (upload_size 100, upload_interval 0.5 s, no gzip, one consumer "
        f"thread, max_queue_size 10,000), {n // k:,} `track`/`identify` calls each (bench/messages.py, ~1 KB, 85 % "
        "track). A call that finds the queue full (the library drops it and returns False) is made again after "
        f"{QUEUE_FULL_WAIT_SECONDS * 1000:g} ms. Straight: `host=` the sink, the customer's writeKey. Through the "
        "bridge: `host=` the bridge, the customer's bridge key; the same calls, the same library defaults.",
        "The bridge is the local stack in its own process (ingest handler behind the API stand-in, SQS on moto, the "
        f"forward handler), sending to the same sink. The forwarder as deployed: BatchSize {BATCH_SIZE}, batching "
        f"window {BATCHING_WINDOW_SECONDS:g} s, 6 MB per invocation, MaximumConcurrency {CONCURRENCY} (a forwarder "
        f"instance per poller, each paced to its share of PartnerRequestsPerSecond {PARTNER_CAP}), visibility "
        f"{VISIBILITY_SECONDS} s. The stack's own poller invokes as soon as a receive comes back empty and its "
        "pollers share one forwarder, so here both are replaced by what the event source mapping and two Lambda "
        "instances do (receives are serialized: moto's ReceiveMessage can hand one message to two concurrent "
        "callers).",
        "Live, the forwarder keeps up with what the one local ingest instance accepts (the stack runs ingest, moto "
        "and the forwarder in one Python process, about a core), so its rate stays far under the cap. The cap is "
        f"therefore also judged where it binds: {m:,} more calls (new messageIds) are queued with the pollers "
        "paused, then the pollers are released and the backlog goes out as fast as the two limiters allow.",
        "Exactly once: the sink counts every delivered message and the unique messageIds, and a digest of the set "
        "of ids is compared with the one of the ids the library was given. The most requests in any 1 s is a "
        "sliding window over the requests' arrival times at the sink.",
    ]
    section.data = {**result, "section_seconds": round(wall, 1)}
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=MODULE, description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    worker = sub.add_parser("worker")
    worker.add_argument("mode", choices=["clients"])
    worker.add_argument("--calls", required=True)
    worker.add_argument("--n", type=int, required=True)
    worker.add_argument("--host", required=True)
    worker.add_argument("--keys", required=True)
    worker.add_argument("--id-suffix", default="")
    worker.add_argument("--out", required=True)
    stack = sub.add_parser("stack")
    stack.add_argument("--sink", required=True, help="the sink's /v1/batch URL")
    stack.add_argument("--drain-timeout", type=float, default=120.0)
    parser.add_argument("--messages", type=int, default=SIZES["full"])
    args = parser.parse_args(argv)
    if args.command == "worker":
        write_result(args.out, clients_worker(args))
        return 0
    if args.command == "stack":
        stack_worker(args)
        return 0

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    result = run(args.messages, log)
    print(json.dumps(result, indent=1, default=str))
    print(summary_line(result))
    return 0 if passes(result) else 1


if __name__ == "__main__":
    sys.exit(main())
