"""The Segment sink as its own process, for benchmarks: `python -m bench.sink_process`.

It is the project's `SegmentSink` (same judging: auth, gzip, 500 KB, 32 KB, 2,500 messages), with
two changes for volume: message bodies are not kept (only their messageIds, to count unique
deliveries), and `GET /_sink/stats` returns aggregates, so 100,000 messages cost the benchmark a
few KB of inspection traffic. Prints `PORT <n>` on stdout once listening; stops on SIGTERM.

Running it in another process keeps its CPU out of the sender's measured process time, as a real
Segment endpoint would be.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import re
import signal
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any

from segment_bridge_tools.sink import ReceivedRequest, SegmentSink

_BODY_WRITE_KEY = re.compile(rb'"writeKey"\s*:\s*"([^"\\]+)"')


class CountingSink(SegmentSink):
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host=host, port=port)
        self._ids: set[str] = set()
        self._digest = 0
        self._delivered = 0
        self._cpu0 = time.process_time()
        sink = self
        base = self.server.RequestHandlerClass

        class Handler(base):  # type: ignore[misc, valid-type]
            def do_GET(self) -> None:
                if self.path == "/_sink/stats":
                    self._send(200, sink.stats())
                else:
                    super().do_GET()

        self.server.RequestHandlerClass = Handler

    def judge(self, path: str, headers: dict[str, str], raw: bytes) -> Any:
        # analytics-python before 2.4 sends the writeKey in the body only (Segment accepts both).
        if not any(k.lower() == "authorization" for k in headers):
            key = _body_write_key(raw, any(k.lower() == "content-encoding" and v == "gzip" for k, v in headers.items()))
            if key:
                headers = {**headers, "Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
        return super().judge(path, headers, raw)

    def _record(self, request: ReceivedRequest) -> None:
        ids = [str(m.get("messageId")) for m in request.messages if isinstance(m, dict)]
        request.messages = []
        with self._lock:
            self.requests.append(request)
            if request.status == 200:
                self._delivered += len(ids)
                for message_id in ids:
                    if message_id not in self._ids:
                        self._ids.add(message_id)
                        self._digest ^= _id_hash(message_id)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._ids.clear()
            self._digest = 0
            self._delivered = 0
            self._cpu0 = time.process_time()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            requests = list(self.requests)
            unique, delivered, digest = len(self._ids), self._delivered, self._digest
        ok = [r for r in requests if r.status == 200]
        statuses: dict[str, int] = {}
        for r in requests:
            statuses[str(r.status)] = statuses.get(str(r.status), 0) + 1
        peak = self.max_requests_in_window(1.0)
        return {
            "requests": len(requests),
            "statuses": statuses,
            "messages": delivered,
            "unique_message_ids": unique,
            #: Order-independent digest of the set of unique messageIds (`ids_digest`): the set, not just its size.
            "unique_ids_digest": f"{digest:016x}",
            "body_bytes": sum(r.body_bytes for r in ok),
            "wire_bytes": sum(r.content_length for r in ok),
            "max_body_bytes": max((r.body_bytes for r in ok), default=0),
            "max_messages": max((r.message_count for r in ok), default=0),
            "errors": sorted({r.error for r in requests if r.error})[:5],
            "peak_requests_per_second": peak,
            #: This process's CPU time since the last reset: is the sink the bottleneck?
            "cpu_seconds": time.process_time() - self._cpu0,
        }


def _id_hash(message_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(message_id.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big")


def ids_digest(message_ids: Iterable[str]) -> str:
    """What the sink's `unique_ids_digest` is once exactly these messageIds were delivered."""
    digest = 0
    for message_id in set(message_ids):
        digest ^= _id_hash(message_id)
    return f"{digest:016x}"


def _body_write_key(raw: bytes, gzipped: bool) -> str | None:
    try:
        data = gzip.decompress(raw) if gzipped else raw
    except OSError:
        return None
    match = _BODY_WRITE_KEY.search(data[-512:])
    return match.group(1).decode("utf-8", "replace") if match else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    sink = CountingSink(args.host, args.port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    sink.start()
    print(f"PORT {sink.server.server_address[1]}", flush=True)
    while not stop.wait(0.5):
        pass
    sink.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
