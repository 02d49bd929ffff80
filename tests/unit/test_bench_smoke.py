"""The benchmarks must keep running: their building blocks at tiny N (fast), and `python -m bench`
end to end, every section, at its smallest size (marked slow: it starts moto, the sink and worker
processes). A benchmark that no longer matches the code fails here, not in the next `make bench`."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from bench import report, scale
from bench.common import Section
from bench.messages import (
    FORWARD_BATCH_SIZE,
    INVOKE_PAYLOAD_BYTES,
    SIZE_MAX,
    SIZE_MIN,
    analytics_calls,
    invocations,
    spec_messages,
    sqs_records,
)
from bench.sink_process import CountingSink
from segment_bridge.queue_format import FORMAT_VERSION, read_body

ROOT = Path(__file__).resolve().parents[2]


def test_messages_are_deterministic_realistic_and_packed_like_ingest() -> None:
    messages = spec_messages(300)
    assert [m.json for m in messages] == [m.json for m in spec_messages(300)]
    assert all(SIZE_MIN <= m.size <= SIZE_MAX + 5 for m in messages)
    assert all(json.loads(m.json) == m.message for m in messages)
    assert len({m.message["messageId"] for m in messages}) == 300
    records = sqs_records(messages, events=50)
    bodies = [read_body(r["Body"]) for r in records]
    by_id = {m.message["messageId"]: m.message for m in messages}
    queued = [m for b in bodies for m in b.messages]
    assert len(queued) == 300 and all(by_id[m["messageId"]] == m for m in queued)
    assert all(b.v == FORMAT_VERSION and b.source == "spec" for b in bodies)
    groups = invocations(records, batch_size=4)
    assert [r["MessageId"] for g in groups for r in g] == [r["MessageId"] for r in records]
    assert all(len(g) <= 4 and sum(len(json.dumps(r)) for r in g) < INVOKE_PAYLOAD_BYTES for g in groups)
    assert FORWARD_BATCH_SIZE == 1000
    calls = analytics_calls(messages[:10])
    assert {method for _, method, _ in calls} <= {"track", "identify"}
    assert all(
        kwargs["message_id"] == m.message["messageId"] for (_, _, kwargs), m in zip(calls, messages[:10], strict=True)
    )


def test_counting_sink_judges_like_segment_and_counts_unique_ids() -> None:
    import base64

    sink = CountingSink().start()
    try:
        batch = [json.loads(m.json) for m in spec_messages(5)]
        body = json.dumps({"batch": batch + batch[:1]}).encode()
        auth = "Basic " + base64.b64encode(b"wk:").decode()
        for headers in (
            {"Content-Type": "application/json", "Authorization": auth},
            {"Content-Type": "application/json"},
        ):  # the second has no key at all: 401
            request = urllib.request.Request(sink.batch_url, data=body, headers=headers, method="POST")
            try:
                urllib.request.urlopen(request, timeout=10).read()
            except urllib.error.HTTPError as exc:
                assert exc.code == 401
        with urllib.request.urlopen(f"{sink.url}/_sink/stats", timeout=10) as response:
            stats = json.loads(response.read())
        assert stats["requests"] == 2 and stats["statuses"] == {"200": 1, "401": 1}
        assert stats["messages"] == 6 and stats["unique_message_ids"] == 5
        assert stats["body_bytes"] == len(body) and stats["max_messages"] == 6
    finally:
        sink.stop()


def test_report_and_scale_arithmetic_render() -> None:
    forward = Section(
        "forward",
        data={
            "messages_per_request": 400.0,
            "fill_percent": 82.0,
            "mean_message_bytes": 1030.0,
            "cpu_per_1000": 0.06,
            "memory": {"peak_mb": 97.0, "rss_before_mb": 90.0},
        },
    )
    ingest = Section("ingest", data={"per_core_moto": 5000.0})
    section = scale.run(forward, ingest)
    assert section.data["max_rate"] == scale.paced_cap() * 400 and scale.paced_cap() <= 50
    forward.add("a figure", "1", "<= 3", True)
    forward.add("another", "9", ">= 3x", False)
    meta = {
        "command": "make bench",
        "date": "today",
        "elapsed": "1 s",
        "nproc": "2",
        "cpu": "cpu",
        "platform": "linux",
        "python": "3.11",
        "load": "0",
        "load_end": "0",
    }
    text = report.console([forward, section], meta)
    assert "pass" in text and "SHORT" in text and "targets: 1 pass, 1 short" in text
    markdown = report.markdown([forward, section], meta)
    assert markdown.startswith("# Benchmarks") and "`make bench`" in markdown and "How the numbers combine" in markdown


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_python_m_bench_runs_every_section_end_to_end_at_tiny_size() -> None:
    from bench.__main__ import SECTIONS

    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--no-write"], cwd=ROOT, capture_output=True, text=True, timeout=280
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    out = completed.stdout
    # A new section needs its heading here.
    assert SECTIONS == ("forward", "ingest", "coldstart", "chaos", "conformance", "outage", "libraries")
    for heading in (
        "1. Forwarding 300 Spec messages",
        "2. Ingest cost",
        "3. Cold start",
        "4. Scale arithmetic",
        "5. Delivery under faults: 2,000 messages",
        "6. Spec conformance cost",
        "7. Riding out an outage: Segment down 6 h, 3,000 messages",
        "8. Segment libraries through the bridge: analytics-python",
    ):
        assert heading in out, out
    assert "FAILED" not in out and "Traceback" not in completed.stderr, completed.stderr[-3000:]
    assert "300 / 300 / 300 of 300" in out  # every message delivered by every contender
    assert "2,000 / 0 / 0 of 2,000; 500 / 0 / 0 of 500" in out  # the libraries' messages through the bridge, once
    assert "targets:" in out
