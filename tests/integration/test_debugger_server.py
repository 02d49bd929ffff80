"""The debugger's HTTP server over real loopback HTTP: routes, guards, the event stream, last-moment scrubbing."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from segment_bridge_tools.debugger import (
    DebuggerServer,
    Exchange,
    Journal,
    KnownSecrets,
    Redactor,
    SampleSources,
    SendResult,
)

LATE_SECRET = "rotated-PLANTED-signing-secret"


@pytest.fixture
def known() -> list[Any]:
    return []


@pytest.fixture
def sent() -> list[str]:
    return []


@pytest.fixture
def server(known: list[Any], sent: list[str]) -> Iterator[DebuggerServer]:
    journal = Journal(Redactor(KnownSecrets(lambda: known, max_age=0)))

    def send(source: str) -> SendResult:
        sent.append(source)
        return SendResult(202, {"accepted": 1, "messageIds": ["m-1"]})

    samples = SampleSources(("spec", "stripe"), {"stripe": "tenant 'acme' has no stripe settings"}, send)
    running = DebuggerServer(journal, samples, {"tenant": "acme", "webhookUrl": "x", "target": "sink"}).start()
    yield running
    running.stop()


def record(journal: Journal, body: dict[str, Any]) -> int:
    return journal.record_exchange(
        Exchange("POST", "/v1/webhooks/spec/acme", "", {"Content-Type": "application/json"}, json.dumps(body).encode(),
                 202, {}, b'{"accepted": 0, "messageIds": [], "rejected": []}', 1.0, 1.0)
    )  # fmt: skip


def test_the_page_and_its_files_are_served_with_a_strict_policy(server: DebuggerServer) -> None:
    page = requests.get(server.url, timeout=5)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert '<script src="/debugger/static/app.js"' in page.text and "http" not in page.text.split("<body>")[0]
    assert requests.get(server.url + "/static/app.js", timeout=5).headers["Content-Type"].startswith("text/javascript")
    for path in ("/static/../server.py", "/static/redact.py", "/nothing"):
        missing = requests.get(server.url + path, timeout=5)
        assert missing.status_code == 404 and missing.json()["message"]


def test_it_binds_to_loopback_only_and_refuses_other_host_names() -> None:
    with pytest.raises(ValueError, match="loopback"):
        DebuggerServer(Journal(), SampleSources((), {}, lambda s: SendResult(0, None)), {}, host="0.0.0.0")


def test_a_rebinding_host_name_gets_421(server: DebuggerServer) -> None:
    answer = requests.get(server.url + "/api/feed", headers={"Host": "attacker.example"}, timeout=5)
    assert answer.status_code == 421 and "127.0.0.1" in answer.json()["message"]


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({"Content-Type": "text/plain"}, '{"source": "spec"}', 415),
        ({"Content-Type": "application/json"}, "not json", 400),
        ({"Content-Type": "application/json"}, '{"source": 3}', 400),
        ({"Content-Type": "application/json"}, '{"source": "nope"}', 404),
        ({"Content-Type": "application/json"}, '{"source": "stripe"}', 409),
        ({"Content-Type": "application/json", "Origin": "https://attacker.example"}, '{"source": "spec"}', 403),
    ],
)
def test_send_refuses_what_the_page_would_not_send(
    server: DebuggerServer, sent: list[str], headers: dict[str, str], body: str, status: int
) -> None:
    answer = requests.post(server.url + "/api/send", data=body, headers=headers, timeout=5)
    assert answer.status_code == status and answer.json()["message"]
    assert sent == []


def test_send_sends_the_sample_and_answers_with_the_apis_result(server: DebuggerServer, sent: list[str]) -> None:
    origin = server.url.removesuffix("/debugger")
    answer = requests.post(server.url + "/api/send", json={"source": "spec"}, headers={"Origin": origin}, timeout=5)
    assert answer.status_code == 200
    assert answer.json() == {"source": "spec", "status": 202, "response": {"accepted": 1, "messageIds": ["m-1"]}}
    assert sent == ["spec"]
    sources = requests.get(server.url + "/api/feed", timeout=5).json()["sources"]
    assert sources == [
        {"name": "spec", "available": True, "why": None},
        {"name": "stripe", "available": False, "why": "tenant 'acme' has no stripe settings"},
    ]


def test_the_event_stream_announces_each_change(server: DebuggerServer) -> None:
    host, port = server.server.server_address[:2]
    with socket.create_connection((host, port), timeout=5) as stream:
        stream.sendall(f"GET /debugger/api/stream HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        received = b""
        while b"event: update" not in received:  # (not "data:": the CSP header has `img-src data:`)
            received += stream.recv(4096)
        assert b"text/event-stream" in received and b'"seq": 0' in received
        record(server.journal, {"type": "track"})
        while b'"seq": 1' not in received:
            received += stream.recv(4096)
        assert b"event: update" in received


def test_a_secret_learned_after_recording_is_still_cut_when_served(server: DebuggerServer, known: list[Any]) -> None:
    entry = record(server.journal, {"type": "track", "properties": {"note": LATE_SECRET}})
    known.append({"sources": {"spec": {"signing_secret": LATE_SECRET}}})  # e.g. the tenant rotated its secret
    detail = requests.get(f"{server.url}/api/webhooks/{entry}", timeout=5)
    assert detail.status_code == 200 and LATE_SECRET not in detail.text
    assert detail.json()["body"]["content"]["properties"]["note"] == "••••"
    assert requests.get(f"{server.url}/api/webhooks/999", timeout=5).status_code == 404
