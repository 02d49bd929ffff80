"""Segment's own libraries, unmodified, pointed at the bridge: library -> HTTP -> ingest (/v1/batch) -> SQS ->
forward -> the Segment sink, with a bridge key as the library's writeKey and the stack's URL as its host.

- analytics-python (segment-analytics-python, from requirements-dev.txt) in this process, gzip on and off;
- analytics-python 2.3.x, the release line that sends the writeKey only in the body (no Authorization header),
  installed with pip into tests/e2e/.libs/ (gitignored) by the `analytics_python_23` fixture and run in a
  child process by tests/e2e/python23/send.py;
- @segment/analytics-node under Node, installed from npm into tests/e2e/.libs/ (gitignored) by the
  `analytics_node` fixture and driven by tests/e2e/node/send.mjs. No Node or npm is a failure, not a skip.
"""

from __future__ import annotations

import gzip as gzip_module
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from segment.analytics import Client
from segment.analytics.request import APIError
from segment.analytics.version import VERSION as PYTHON_LIBRARY_VERSION

from segment_bridge.config import get_settings
from segment_bridge_tools.debugger.journal import Exchange
from segment_bridge_tools.local_stack import LocalStack, StackConfig

pytestmark = pytest.mark.e2e

HERE = Path(__file__).resolve().parent
LIBS = HERE / ".libs"
SEND_SCRIPT = HERE / "node" / "send.mjs"
PYTHON23_SCRIPT = HERE / "python23" / "send.py"
#: The analytics-node release the test is written against (`npm view @segment/analytics-node version`).
ANALYTICS_NODE_VERSION = "3.1.0"
#: Calls in the big batch: with 100 messages per request (analytics-python's default upload_size, and
#: analytics-node's flushAt as set below) it takes at least three requests.
BIG_BATCH = 250
PER_REQUEST = 100


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    """conftest's stack with a longer visibility timeout: nothing here is meant to be redelivered, so a
    slow forward on a busy machine must not make a second copy (the tests count copies in the sink)."""
    with LocalStack(StackConfig(tenant="e2e", batching_window_seconds=0.2, visibility_timeout_seconds=10)) as running:
        yield running


# -- what the bridge's HTTP front door saw ------------------------------------------------------------
@dataclass
class Recorder:
    """The API stand-in's exchanges, recorded through `IngestServer.observer` (the debugger's hook)."""

    exchanges: list[Exchange] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, exchange: Exchange) -> None:
        with self.lock:
            self.exchanges.append(exchange)

    def batches(self, user_agent: str) -> list[Exchange]:
        """The /v1/batch requests a library sent (told apart by its User-Agent)."""
        with self.lock:
            return [
                e
                for e in self.exchanges
                if e.path == "/v1/batch" and header(e.headers, "user-agent", "").startswith(user_agent)
            ]


def header(headers: Any, name: str, default: str = "") -> str:
    return next((str(v) for k, v in headers.items() if k.lower() == name), default)


@pytest.fixture
def recorder(stack: LocalStack) -> Iterator[Recorder]:
    assert stack.ingest is not None
    recorded, previous = Recorder(), stack.ingest.observer
    stack.ingest.observer = recorded
    yield recorded
    stack.ingest.observer = previous


# -- the assertions both libraries share -------------------------------------------------------------------
def wait_for(stack: LocalStack, message_ids: set[str], timeout: float = 20) -> dict[str, dict[str, Any]]:
    assert stack.sink is not None
    deadline, seen = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        seen = {m["messageId"]: m for m in stack.sink.messages() if m["messageId"] in message_ids}
        if len(seen) == len(message_ids):
            return seen
        time.sleep(0.1)
    raise AssertionError(f"only {len(seen)} of {len(message_ids)} messages reached the sink")


def assert_all_accepted(batches: list[Exchange], count: int) -> None:
    """Each of the library's requests was answered 200 {"success": true}, and the bridge's headers say
    it accepted every message and refused none."""
    assert all(e.status == 200 and json.loads(e.response_body) == {"success": True} for e in batches)
    assert sum(int(header(e.response_headers, "x-bridge-accepted", "0")) for e in batches) == count
    assert {header(e.response_headers, "x-bridge-refused") for e in batches} == {"0"}


def expected_integration() -> dict[str, str]:
    settings = get_settings()  # the stack's environment: what the deployment stamps
    return {"name": settings.integration_name, "version": settings.integration_version}


def assert_delivered_once(stack: LocalStack, sent: dict[str, dict[str, Any]], library: str) -> None:
    """Every message the library sent (by its own messageId) reached the sink exactly once, as the
    library built it, stamped with the deployment's integration, sent with the tenant's writeKey."""
    assert stack.sink is not None
    seen = wait_for(stack, set(sent))
    counts = Counter(m["messageId"] for m in stack.sink.messages())
    assert {mid: counts[mid] for mid in sent if counts[mid] != 1} == {}
    integration = expected_integration()
    for message_id, message in seen.items():
        assert message["context"]["library"]["name"] == library
        assert message["context"]["integration"] == integration
        assert message["type"] == sent[message_id]["type"]
        assert message.get("userId") == sent[message_id].get("userId")
        assert instant(message["timestamp"]) == instant(sent[message_id]["timestamp"])  # the library's time kept
    carrying = [r for r in stack.sink.snapshot() if set(sent) & {m["messageId"] for m in r.messages}]
    assert carrying and all((r.status, r.auth, r.write_key) == (200, "basic", stack.config.write_key) for r in carrying)
    raw = json.dumps(list(seen.values()))
    assert stack.bridge_key not in raw and stack.bridge_key.partition(".")[2] not in raw  # the key never travels on


def instant(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


def assert_none_delivered(stack: LocalStack, message_ids: set[str]) -> None:
    assert stack.sink is not None
    assert stack.wait_until_drained(timeout=10)
    assert message_ids and not message_ids & {m["messageId"] for m in stack.sink.messages()}


def wrong_keys(stack: LocalStack) -> dict[str, str]:
    """The demo tenant's key with its last characters changed, and the same secret for a tenant that
    does not exist (both get the one 401)."""
    tenant, _, secret = stack.bridge_key.partition(".")
    changed = secret[:-3] + ("AAA" if not secret.endswith("AAA") else "BBB")
    return {"changed secret": f"{tenant}.{changed}", "unknown tenant": f"nobody.{secret}"}


# -- analytics-python ------------------------------------------------------------------------------------
def python_call_args(tag: str) -> list[tuple[str, tuple[Any, ...]]]:
    """Every call analytics-python has, then the big batch: (method, positional arguments)."""
    user = f"py-{tag}-1"
    calls: list[tuple[str, tuple[Any, ...]]] = [
        ("track", (user, "Order Completed", {"order_id": f"{tag}-o1", "total": 12.5})),
        ("identify", (user, {"email": f"py-{tag}@example.com", "plan": "pro"})),
        ("page", (user, "Docs", "Pricing", {"url": "https://example.com/pricing"})),
        ("screen", (user, "Onboarding", "Welcome")),
        ("group", (user, f"py-{tag}-team", {"name": "Team"})),
        ("alias", (f"py-{tag}-anon", user)),
    ]
    calls += [
        ("track", (f"py-{tag}-{i % 7}", "Product Viewed", {"product_id": f"p{i}", "position": i}))
        for i in range(BIG_BATCH)
    ]
    return calls


def python_calls(client: Client, tag: str) -> dict[str, dict[str, Any]]:
    """`python_call_args` made on this client; the messages as the library queued them."""
    results = [getattr(client, method)(*args) for method, args in python_call_args(tag)]
    assert all(queued for queued, _ in results)
    return {message["messageId"]: message for _, message in results}


@pytest.mark.parametrize("gzip", [True, False], ids=["gzip", "plain"])
def test_analytics_python_delivers_every_call_once(stack: LocalStack, recorder: Recorder, gzip: bool) -> None:
    errors: list[tuple[Exception, list[Any]]] = []
    client = Client(
        stack.bridge_key,
        host=stack.tracking_host,
        gzip=gzip,
        max_retries=1,
        on_error=lambda error, batch: errors.append((error, batch)),
    )
    sent = python_calls(client, f"gz{int(gzip)}")
    client.flush()
    client.join()
    assert errors == []
    assert all(len(mid) == 36 for mid in sent)  # the library's own uuid4s, which the bridge must keep

    batches = recorder.batches("analytics-python/")
    assert len(batches) >= -(-len(sent) // PER_REQUEST)  # several requests, each its own batch
    assert_all_accepted(batches, len(sent))
    for exchange in batches:
        assert header(exchange.headers, "content-encoding", "identity") == ("gzip" if gzip else "identity")
        assert header(exchange.headers, "authorization").startswith("Basic ")  # 2.4 sends both
        assert header(exchange.headers, "content-length") and not header(exchange.headers, "transfer-encoding")
    assert_delivered_once(stack, sent, "analytics-python")
    assert {m["context"]["library"]["version"] for m in sent.values()} == {PYTHON_LIBRARY_VERSION}


@pytest.mark.parametrize("which", ["changed secret", "unknown tenant"])
def test_analytics_python_reports_a_wrong_key(stack: LocalStack, recorder: Recorder, which: str) -> None:
    key = wrong_keys(stack)[which]
    # A normal client: the error reaches on_error, the batch is not retried (401 is final).
    errors: list[tuple[Exception, list[Any]]] = []
    client = Client(
        key, host=stack.tracking_host, max_retries=3, on_error=lambda error, batch: errors.append((error, batch))
    )
    _, first = client.track("py-wrong", "Order Completed", {"order_id": "w1"})
    _, second = client.identify("py-wrong", {"plan": "free"})
    client.flush()
    client.join()
    assert errors, "analytics-python reported no error for a wrong key"
    assert all(isinstance(error, APIError) and error.status == 401 for error, _ in errors)
    assert {m["messageId"] for _, batch in errors for m in batch} == {first["messageId"], second["messageId"]}
    assert "bridge key" in str(errors[0][0])

    # sync_mode: the call itself raises.
    sync = Client(key, host=stack.tracking_host, sync_mode=True)
    with pytest.raises(APIError) as raised:
        sync.track("py-wrong", "Order Completed", {"order_id": "w2"}, message_id=f"py-wrong-sync-{which[0]}")
    assert raised.value.status == 401

    statuses = [e.status for e in recorder.batches("analytics-python/")]
    assert statuses == [401] * (len(errors) + 1)  # one request per batch: a 401 is not retried
    assert_none_delivered(stack, {first["messageId"], second["messageId"], f"py-wrong-sync-{which[0]}"})


# -- analytics-python 2.3.x: the key in the body only --------------------------------------------------------
#: The newest 2.3.x on PyPI (`pip index versions segment-analytics-python`). Its request.py sets
#: `body["writeKey"]` and no Authorization header (2.4.0 added Basic auth beside it), so the bridge can only
#: find the key in the body.
ANALYTICS_PYTHON_23_VERSION = "2.3.6"
PYTHON23_USER_AGENT = f"analytics-python/{ANALYTICS_PYTHON_23_VERSION}"
#: 2.3.6's requirements, installed into its directory beside it only if this environment lacks them
#: (2.4.0 dropped backoff, so .venv usually has all but that one).
PYTHON23_REQUIREMENTS = {
    "requests": "requests~=2.7",
    "backoff": "backoff==2.2.1",
    "python-dateutil": "python-dateutil~=2.2",
    "PyJWT": "PyJWT~=2.12",
}


def installed_in(path: Path) -> dict[str, str]:
    """The distributions under a `pip install --target` directory: name (lowercase) -> version."""
    return {d.metadata["Name"].lower(): d.version for d in importlib.metadata.distributions(path=[str(path)])}


@pytest.fixture(scope="session")
def analytics_python_23() -> Path:
    """segment-analytics-python 2.3.x, installed from PyPI into tests/e2e/.libs/ once (kept between runs),
    apart from this environment's site-packages, which keep the release the other tests and the bench use."""
    target = LIBS / f"analytics-python-{ANALYTICS_PYTHON_23_VERSION}"
    missing = []
    for name, requirement in PYTHON23_REQUIREMENTS.items():
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append((name, requirement))
    present = installed_in(target) if target.exists() else {}
    if present.get("segment-analytics-python") != ANALYTICS_PYTHON_23_VERSION or any(
        name.lower() not in present for name, _ in missing
    ):
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--upgrade",
            "--target",
            str(target),
            f"segment-analytics-python=={ANALYTICS_PYTHON_23_VERSION}",
            *(requirement for _, requirement in missing),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            pytest.fail(
                f"pip could not install segment-analytics-python {ANALYTICS_PYTHON_23_VERSION} into {target} "
                f"(needs PyPI, or an index pip is configured for): {done.stderr[-2000:]}",
                pytrace=False,
            )
        present = installed_in(target)
    assert present.get("segment-analytics-python") == ANALYTICS_PYTHON_23_VERSION, present
    return target


def run_python23(libs: Path, host: str, write_key: str, calls: list[dict[str, Any]], **client: Any) -> dict[str, Any]:
    """python23/send.py with these calls under analytics-python 2.3.x; what the library reported."""
    payload = {
        "version": ANALYTICS_PYTHON_23_VERSION,
        "host": host,
        "writeKey": write_key,
        "client": client,
        "calls": calls,
    }
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(libs), *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run(
        [sys.executable, str(PYTHON23_SCRIPT)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    assert result["version"] == ANALYTICS_PYTHON_23_VERSION  # checked in the child too, before any call
    assert Path(result["module"]).is_relative_to(libs), result["module"]
    return result


def sent_body(exchange: Exchange) -> dict[str, Any]:
    """A request's JSON body as the library sent it (inflated if it was gzipped)."""
    gzipped = header(exchange.headers, "content-encoding") == "gzip"
    body: dict[str, Any] = json.loads(gzip_module.decompress(exchange.body) if gzipped else exchange.body)
    return body


@pytest.mark.parametrize("gzip", [True, False], ids=["gzip", "plain"])
def test_analytics_python_23_sends_the_key_in_the_body(
    stack: LocalStack, recorder: Recorder, analytics_python_23: Path, gzip: bool
) -> None:
    calls = [{"method": m, "args": list(a)} for m, a in python_call_args(f"v23-gz{int(gzip)}")]
    result = run_python23(analytics_python_23, stack.tracking_host, stack.bridge_key, calls, gzip=gzip, max_retries=1)
    assert result["errors"] == []
    assert all(call["queued"] and call["error"] is None for call in result["calls"])
    sent = {call["message"]["messageId"]: call["message"] for call in result["calls"]}
    assert len(sent) == len(calls) and all(len(mid) == 36 for mid in sent)  # the library's own uuid4s

    batches = recorder.batches(PYTHON23_USER_AGENT)
    assert len(batches) >= -(-len(sent) // PER_REQUEST)  # several requests, each its own batch
    assert_all_accepted(batches, len(sent))
    for exchange in batches:
        # The body path: no Authorization header of any kind, the bridge key as the body's writeKey.
        assert not header(exchange.headers, "authorization"), exchange.headers
        assert sent_body(exchange)["writeKey"] == stack.bridge_key
        assert header(exchange.headers, "content-encoding", "identity") == ("gzip" if gzip else "identity")
        assert header(exchange.headers, "content-length") and not header(exchange.headers, "transfer-encoding")
    assert sum(len(sent_body(e)["batch"]) for e in batches) == len(sent)

    assert_delivered_once(stack, sent, "analytics-python")
    delivered = [m for m in stack.sink.messages() if m["messageId"] in sent]  # type: ignore[union-attr]
    assert {m["context"]["library"]["version"] for m in delivered} == {ANALYTICS_PYTHON_23_VERSION}
    assert all("writeKey" not in m for m in delivered)


@pytest.mark.parametrize("which", ["changed secret", "unknown tenant"])
def test_analytics_python_23_reports_a_wrong_key(
    stack: LocalStack, recorder: Recorder, analytics_python_23: Path, which: str
) -> None:
    key = wrong_keys(stack)[which]
    calls = [{"method": m, "args": list(a)} for m, a in python_call_args(f"v23-wrong-{which[0]}")[:6]]
    # A normal client: the error reaches on_error, the batch is not retried (401 is final).
    result = run_python23(analytics_python_23, stack.tracking_host, key, calls, max_retries=3)
    ids = {call["message"]["messageId"] for call in result["calls"]}
    assert len(ids) == len(calls)
    assert result["errors"], "analytics-python 2.3 reported no error for a wrong key"
    assert {e["status"] for e in result["errors"]} == {401}
    assert {mid for e in result["errors"] for mid in e["messageIds"]} == ids
    assert "bridge key" in result["errors"][0]["message"]

    # sync_mode: the call itself raises.
    sync_id = f"py-v23-wrong-sync-{which[0]}"
    sync_call = {"method": "track", "args": ["py-wrong", "Order Completed", {"order_id": "w2"}]}
    sync = run_python23(
        analytics_python_23,
        stack.tracking_host,
        key,
        [{**sync_call, "kwargs": {"message_id": sync_id}}],
        sync_mode=True,
    )
    assert [c["error"]["status"] for c in sync["calls"]] == [401]

    refused = recorder.batches(PYTHON23_USER_AGENT)
    assert [e.status for e in refused] == [401] * (len(result["errors"]) + 1)  # one request per batch: not retried
    assert all(not header(e.headers, "authorization") and sent_body(e)["writeKey"] == key for e in refused)
    assert_none_delivered(stack, ids | {sync_id})


# -- analytics-node --------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def analytics_node() -> Path:
    """@segment/analytics-node, installed from npm into tests/e2e/.libs/ once (kept between runs)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail(
            "tests/e2e/test_segment_libraries.py needs Node.js (>= 20) and npm on PATH to run "
            "@segment/analytics-node; install them (Debian: apt-get install nodejs npm)",
            pytrace=False,
        )
    installed = LIBS / "node_modules" / "@segment" / "analytics-node" / "package.json"
    if not installed.exists() or json.loads(installed.read_text())["version"] != ANALYTICS_NODE_VERSION:
        command = [
            npm,
            "install",
            "--prefix",
            str(LIBS),
            "--no-audit",
            "--no-fund",
            "--no-save",
            f"@segment/analytics-node@{ANALYTICS_NODE_VERSION}",
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            pytest.fail(f"npm could not install @segment/analytics-node: {done.stderr[-2000:]}", pytrace=False)
    return LIBS


def run_node(
    libs: Path, host: str, write_key: str, calls: list[dict[str, Any]], flush_at: int = PER_REQUEST
) -> dict[str, Any]:
    """send.mjs with these calls; what analytics-node reported (its messageIds, requests, errors)."""
    settings = {"flushAt": flush_at, "flushInterval": 200, "maxRetries": 2, "httpRequestTimeout": 10000}
    payload = {"host": host, "writeKey": write_key, "settings": settings, "calls": calls, "timeout": 20000}
    done = subprocess.run(
        ["node", str(SEND_SCRIPT), str(libs)], input=json.dumps(payload), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    assert result["version"] == ANALYTICS_NODE_VERSION
    assert all(call["messageId"] for call in result["calls"]), "a callback never ran"
    return result


def node_calls(tag: str) -> list[dict[str, Any]]:
    user = f"node-{tag}-1"
    calls = [
        {"method": "track", "params": {"userId": user, "event": "Order Completed", "properties": {"order_id": "n1"}}},
        {"method": "identify", "params": {"userId": user, "traits": {"email": f"node-{tag}@example.com"}}},
        {"method": "page", "params": {"userId": user, "category": "Docs", "name": "Pricing"}},
        {"method": "screen", "params": {"userId": user, "name": "Welcome"}},
        {"method": "group", "params": {"userId": user, "groupId": f"node-{tag}-team", "traits": {"name": "Team"}}},
        {"method": "alias", "params": {"userId": user, "previousId": f"node-{tag}-anon"}},
    ]
    calls += [
        {
            "method": "track",
            "params": {
                "userId": f"node-{tag}-{i % 7}",
                "event": "Product Viewed",
                "properties": {"product_id": f"p{i}"},
            },
        }
        for i in range(BIG_BATCH)
    ]
    return calls


def test_analytics_node_delivers_every_call_once(stack: LocalStack, recorder: Recorder, analytics_node: Path) -> None:
    calls = node_calls("ok")
    result = run_node(analytics_node, stack.tracking_host, stack.bridge_key, calls)
    assert result["errors"] == [] and all(call["error"] is None for call in result["calls"])
    sent = {
        call["messageId"]: {
            "type": call["method"],
            "userId": request["params"]["userId"],
            "timestamp": call["timestamp"],
        }
        for call, request in zip(result["calls"], calls, strict=True)
    }
    assert len(sent) == len(calls) and all(mid.startswith("node-next-") for mid in sent)  # the library's ids

    # The library's side: several requests of at most 100, Basic auth and the writeKey in the body too.
    assert len(result["requests"]) >= -(-len(calls) // PER_REQUEST)
    assert sum(r["events"] for r in result["requests"]) == len(calls)
    assert all(
        r["auth"] == "basic" and r["bodyHasWriteKey"] and r["contentEncoding"] is None for r in result["requests"]
    )
    assert [r["status"] for r in result["responses"]] == [200] * len(result["requests"])
    # The bridge's side: the same requests, each with a Content-Length (no chunked bodies), all accepted.
    batches = recorder.batches("analytics-node")
    assert len(batches) == len(result["requests"])
    assert_all_accepted(batches, len(calls))
    assert all(not header(e.headers, "transfer-encoding") for e in batches)

    assert_delivered_once(stack, sent, "@segment/analytics-node")
    delivered = {m["messageId"]: m for m in stack.sink.messages() if m["messageId"] in sent}  # type: ignore[union-attr]
    assert {m["context"]["library"]["version"] for m in delivered.values()} == {ANALYTICS_NODE_VERSION}


@pytest.mark.parametrize("which", ["changed secret", "unknown tenant"])
def test_analytics_node_reports_a_wrong_key(
    stack: LocalStack, recorder: Recorder, analytics_node: Path, which: str
) -> None:
    calls = node_calls("wrong")[:6]
    result = run_node(analytics_node, stack.tracking_host, wrong_keys(stack)[which], calls)
    ids = {call["messageId"] for call in result["calls"]}
    assert len(ids) == len(calls)
    # Every call's callback got the error, and the library emitted 'error' for each (401 is not retried).
    assert all(call["error"] and "401" in call["error"] for call in result["calls"])
    assert {e["code"] for e in result["errors"]} == {"delivery_failure"}
    assert {e["messageId"] for e in result["errors"]} == ids
    assert {r["status"] for r in result["responses"]} == {401}
    refused = recorder.batches("analytics-node")
    assert len(refused) == len(result["requests"]) and {e.status for e in refused} == {401}  # not retried
    assert "bridge key" in json.loads(refused[0].response_body)["message"]
    assert_none_delivered(stack, ids)


# -- full-size requests ---------------------------------------------------------------------------------
#: Messages just under Segment's 32 KB: analytics-python then splits by bytes, not count (it packs to 475,000
#: bytes and may pass that by one message), so its requests come near 500 KB.
PADDING = 31_000
FULL_SIZE_CALLS = 40


def big_track(user: str, i: int) -> dict[str, Any]:
    return {
        "userId": user,
        "event": "Product Viewed",
        "properties": {"product_id": f"p{i}", "description": "x" * PADDING},
    }


def test_full_size_requests_from_analytics_python(stack: LocalStack, recorder: Recorder) -> None:
    errors: list[Any] = []
    client = Client(stack.bridge_key, host=stack.tracking_host, max_retries=1, on_error=lambda *a: errors.append(a))
    results = [
        client.track(t["userId"], t["event"], t["properties"])
        for t in (big_track(f"py-big-{i}", i) for i in range(FULL_SIZE_CALLS))
    ]
    client.flush()
    client.join()
    assert errors == []
    sent = {message["messageId"]: message for _, message in results}
    batches = recorder.batches("analytics-python/")
    assert len(batches) >= 3 and max(len(e.body) for e in batches) > 450_000  # split by size, near 500 KB
    assert_all_accepted(batches, len(sent))
    assert_delivered_once(stack, sent, "analytics-python")


def test_full_size_requests_from_analytics_node(stack: LocalStack, recorder: Recorder, analytics_node: Path) -> None:
    """With its default flushAt (15) analytics-node's requests stay under 500 KB and all arrive. Its own size
    guard does not work (3.1.0's `ContextBatch.calculateSize` counts `%XX` escapes and the letter "i", not
    bytes: segmentio/analytics-next#1390), so with flushAt 100 it sends all 40 in one 1.2 MB request, which
    the bridge refuses as Segment would (400, over 512 KiB) and the library reports."""
    calls = [{"method": "track", "params": big_track(f"node-big-{i}", i)} for i in range(FULL_SIZE_CALLS)]
    result = run_node(analytics_node, stack.tracking_host, stack.bridge_key, calls, flush_at=15)
    assert result["errors"] == []
    sent = {
        call["messageId"]: {"type": "track", "userId": request["params"]["userId"], "timestamp": call["timestamp"]}
        for call, request in zip(result["calls"], calls, strict=True)
    }
    batches = recorder.batches("analytics-node")
    assert len(batches) == 3 and max(len(e.body) for e in batches) > 450_000
    assert_all_accepted(batches, len(sent))
    assert_delivered_once(stack, sent, "@segment/analytics-node")

    oversized = run_node(analytics_node, stack.tracking_host, stack.bridge_key, calls, flush_at=PER_REQUEST)
    assert [r["events"] for r in oversized["requests"]] == [FULL_SIZE_CALLS]  # the library's size guard missed it
    assert {e["code"] for e in oversized["errors"]} == {"delivery_failure"}
    assert all("400" in call["error"] for call in oversized["calls"])
    refused = recorder.batches("analytics-node")[len(batches) :]
    assert [e.status for e in refused] == [400] and len(refused[0].body) > 1_000_000  # not retried
    assert "500 KB" in json.loads(refused[0].response_body)["message"]
    assert_none_delivered(stack, {call["messageId"] for call in oversized["calls"]})
