"""Deterministic benchmark data: Spec messages of realistic size for a few tenants, the SQS records
ingest would have produced from them, and the batches the event source would hand the forwarder.

The same seed gives the same messages in every process, so the bridge and analytics-python send
exactly the same content (analytics-python then adds its own `context.library`).
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from json.encoder import encode_basestring_ascii
from typing import Any

from segment_bridge.queue_format import pack_queue_bodies

SEED = 6
#: (tenant, share of the traffic, region). Uneven on purpose: real deployments have a big tenant.
TENANTS = [("acme", 0.5, "us"), ("globex", 0.3, "us"), ("initech", 0.2, "eu")]
INTEGRATION = {"name": "segment-bridge", "version": "1.0.0"}
#: Serialized sizes are drawn from a triangular distribution: 0.5-2 KB, most near 0.6 KB, mean ~1 KB.
SIZE_MIN, SIZE_MODE, SIZE_MAX = 500, 600, 2000
#: Events per webhook in the simulated traffic; ingest packs each webhook into its own SQS record(s).
WEBHOOK_EVENTS = 100
#: The SQS event source: ForwardBatchSize records per invocation (template default), and the
#: synchronous-invoke payload cap (6 MB) on the serialized event.
FORWARD_BATCH_SIZE = 1000
INVOKE_PAYLOAD_BYTES = 6_000_000

EVENTS = [
    "Email Delivered",
    "Email Opened",
    "Email Link Clicked",
    "Order Completed",
    "Product Viewed",
    "Checkout Started",
    "Subscription Renewed",
    "Payment Failed",
]
WORDS = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore "
    "et dolore magna aliqua ut enim ad minim veniam quis nostrud exercitation ullamco laboris"
).split()


def write_key(tenant: str) -> str:
    return f"wk_bench_{tenant}_0123456789abcdef"


def encode(message: dict[str, Any]) -> str:
    """Compact JSON, as the normalizer serializes every message."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class BenchMessage:
    tenant: str
    message: dict[str, Any]
    json: str

    @property
    def size(self) -> int:
        return len(self.json.encode("utf-8"))


def _filler_source(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(20_000))


def _filler(rng: random.Random, source: str, length: int) -> str:
    """`length` characters of word salad, sliced from `source` at a random offset (fast)."""
    start = rng.randrange(0, len(source) - length - 1) if length > 0 else 0
    return source[start : start + length]


def spec_messages(n: int, seed: int = SEED) -> list[BenchMessage]:
    """`n` normalized Spec messages (track 85 %, identify 15 %) spread over `TENANTS`."""
    rng = random.Random(seed)
    source = _filler_source(rng)
    names = [t for t, _, _ in TENANTS]
    weights = [w for _, w, _ in TENANTS]
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    out: list[BenchMessage] = []
    for i in range(n):
        tenant = rng.choices(names, weights)[0]
        stamp = start + timedelta(milliseconds=i * 37)
        message: dict[str, Any] = {
            "type": "track" if rng.random() < 0.85 else "identify",
            "userId": f"user-{rng.randrange(200_000):06d}",
            "timestamp": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "messageId": f"bench-{uuid.UUID(int=rng.getrandbits(128), version=4)}",
            "context": {
                "integration": dict(INTEGRATION),
                "ip": f"203.0.113.{rng.randrange(1, 255)}",
                "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)",
            },
        }
        if message["type"] == "track":
            message["event"] = rng.choice(EVENTS)
            message["properties"] = {
                "order_id": f"ord-{rng.randrange(10**8)}",
                "revenue": round(rng.uniform(1, 500), 2),
                "currency": "USD",
                "campaign": f"spring-{rng.randrange(40)}",
                "email_id": f"{rng.getrandbits(64):016x}",
                "description": "",
            }
            padded = message["properties"]
        else:
            message["traits"] = {
                "email": f"person{rng.randrange(10**6)}@example.com",
                "plan": rng.choice(["free", "pro", "team"]),
                "name": "Pat Example",
                "company": {"name": "Example Inc", "employees": rng.randrange(5, 5000)},
                "bio": "",
            }
            padded = message["traits"]
        target = int(rng.triangular(SIZE_MIN, SIZE_MAX, SIZE_MODE))
        key = "description" if "description" in padded else "bio"
        empty = encode(message)
        padded[key] = filler = _filler(rng, source, max(0, target - len(empty)))
        # The filler is plain ASCII words, so the padded JSON is the empty one with the value spliced
        # in: one encode per message instead of two (identical output).
        marker = f'"{key}":""'
        at = empty.rindex(marker)
        out.append(BenchMessage(tenant, message, f'{empty[:at]}"{key}":"{filler}"{empty[at + len(marker) :]}'))
    return out


def webhooks(messages: list[BenchMessage], events: int = WEBHOOK_EVENTS) -> Iterator[tuple[str, list[BenchMessage]]]:
    """The traffic as webhooks: each tenant's messages in arrival order, `events` per webhook."""
    pending: dict[str, list[BenchMessage]] = {}
    for message in messages:
        buffer = pending.setdefault(message.tenant, [])
        buffer.append(message)
        if len(buffer) == events:
            yield message.tenant, buffer
            pending[message.tenant] = []
    for tenant, buffer in pending.items():
        if buffer:
            yield tenant, buffer


def sqs_records(messages: list[BenchMessage], events: int = WEBHOOK_EVENTS) -> list[dict[str, Any]]:
    """ReceiveMessage-shaped SQS messages, packed exactly as ingest packs each webhook."""
    records: list[dict[str, Any]] = []
    for tenant, batch in webhooks(messages, events):
        for body in pack_queue_bodies(tenant, "spec", [(m.json, m.size) for m in batch]):
            number = len(records)
            records.append(
                {
                    "MessageId": f"rec-{number:06d}",
                    "ReceiptHandle": f"rh-{number}",
                    "Body": body,
                    "Attributes": {"ApproximateReceiveCount": "1"},
                }
            )
    return records


def invocations(
    records: list[dict[str, Any]], batch_size: int = FORWARD_BATCH_SIZE, payload_bytes: int = INVOKE_PAYLOAD_BYTES
) -> list[list[dict[str, Any]]]:
    """Group records as the SQS event source does under sustained load: up to `batch_size` records
    and at most `payload_bytes` of serialized event per invocation."""
    from segment_bridge_tools.lambda_events import sqs_event

    groups: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = len('{"Records":[]}')
    for record in records:
        # Serialized size of the record in the event: its envelope plus the body as a JSON string.
        envelope = dict(sqs_event([record])["Records"][0], body="")
        record_size = len(json.dumps(envelope)) + len(encode_basestring_ascii(record["Body"])) - 2 + 1
        if current and (len(current) == batch_size or size + record_size > payload_bytes):
            groups.append(current)
            current, size = [], len('{"Records":[]}')
        current.append(record)
        size += record_size
    if current:
        groups.append(current)
    return groups


def analytics_calls(messages: list[BenchMessage]) -> list[tuple[str, str, dict[str, Any]]]:
    """`(tenant, method, kwargs)` for analytics-python's `track`/`identify` with the same content.

    Timestamps become datetimes (the library requires them); dicts are copied because the library
    adds `context.library` in place.
    """
    calls = []
    for item in messages:
        m = item.message
        stamp = datetime.fromisoformat(m["timestamp"].replace("Z", "+00:00"))
        context = {**m["context"], "integration": dict(m["context"]["integration"])}
        common = {"user_id": m["userId"], "context": context, "timestamp": stamp, "message_id": m["messageId"]}
        if m["type"] == "track":
            calls.append((item.tenant, "track", {"event": m["event"], "properties": dict(m["properties"]), **common}))
        else:
            traits = {**m["traits"], "company": dict(m["traits"]["company"])}
            calls.append((item.tenant, "identify", {"traits": traits, **common}))
    return calls


def prepare(n: int, directory: Any, log: Any = lambda line: None) -> dict[str, Any]:
    """The forwarding benchmark's inputs for `n` messages, generated once and cached in `directory`.

    Returns paths of pickles of the SQS records (for the forwarder) and of the analytics-python
    calls, and the messages' mean size. The cache key covers N, the seed, this file's code and
    the queue format's (the records are packed by it).
    """
    import hashlib
    import os
    import pickle
    from pathlib import Path

    from segment_bridge import queue_format

    code = Path(__file__).read_bytes() + Path(queue_format.__file__).read_bytes()
    digest = hashlib.sha256(code).hexdigest()[:12]
    base = Path(directory) / f"forward-{n}-{SEED}-{digest}"
    meta_path = base.with_suffix(".json")
    if meta_path.exists():
        log(f"{n:,} messages: cached in {base.parent}")
        return json.loads(meta_path.read_text())
    log(f"generating {n:,} messages (cached for the next run in {base.parent})")
    base.parent.mkdir(parents=True, exist_ok=True)
    messages = spec_messages(n)
    meta = {
        "n": n,
        "mean_bytes": sum(m.size for m in messages) / len(messages),
        "records": str(base) + ".records.pickle",
        "calls": str(base) + ".calls.pickle",
    }
    for key, value in (("records", sqs_records(messages)), ("calls", analytics_calls(messages))):
        partial = f"{meta[key]}.{os.getpid()}.tmp"
        with open(partial, "wb") as handle:
            pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(partial, meta[key])
    partial = f"{meta_path}.{os.getpid()}.tmp"
    Path(partial).write_text(json.dumps(meta))
    os.replace(partial, meta_path)  # written last: its presence means the pickles are complete
    return meta


def load_pickle(path: str) -> Any:
    import pickle

    with open(path, "rb") as handle:
        return pickle.load(handle)
