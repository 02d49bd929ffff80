"""The debugger's journal: exchanges, Segment requests and dead letters joined by messageId, in any order."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console

from segment_bridge.queue_format import queue_body
from segment_bridge_tools.debugger import Exchange, Journal, Notice, QueuedMessage, Tail
from segment_bridge_tools.debugger.journal import classify
from segment_bridge_tools.sink import ReceivedRequest


def exchange(
    path: str = "/v1/webhooks/spec/acme", status: int = 202, answer: Any = None, body: bytes = b"{}"
) -> Exchange:
    return Exchange(
        "POST",
        path,
        "",
        {"Content-Type": "application/json", "X-Signature": "t=1,v1=" + "ab" * 32},
        body,
        status,
        {"Content-Type": "application/json"},
        json.dumps(answer if answer is not None else {}).encode(),
        1_700_000_000.0,
        3.2,
    )


def segment_request(messages: list[dict[str, Any]], status: int = 200, error: str | None = None) -> ReceivedRequest:
    request = ReceivedRequest(1_700_000_001.0, "/v1/batch", "wk_live_0123456789abcdef", 300, 900, len(messages))
    request.status, request.error, request.messages, request.host = status, error, messages, "127.0.0.1:1"
    return request


def track(message_id: str, event: str = "Order Completed") -> dict[str, Any]:
    return {"type": "track", "event": event, "userId": "u1", "messageId": message_id}


ANSWER = {
    "accepted": 2,
    "messageIds": ["m-a", "m-c"],
    "rejected": [{"index": 1, "message": "each event needs a userId"}],
    "skipped": [{"index": 3, "reason": "event 'queued' has no Spec counterpart"}],
    "conformance": [
        {"index": 2, "code": "spec.event_name", "action": "fixed", "message": "near-miss", "fix": "rename it"},
        {"index": 1, "code": "style.event_name", "action": "warned", "message": "casing", "fix": "Proper Case"},
    ],
}


def test_routes_are_classified_generically() -> None:
    assert classify("/v1/webhooks/stripe/acme") == ("webhook", "stripe", "acme")
    assert classify("/v1/segment/acme") == ("destination", "segment", "acme")
    assert classify("/v1/batch") == ("tracking", "segment", None)  # the tenant is in the bridge key
    assert classify("/v1/other") == ("api", None, None)


def test_a_library_call_shows_its_tenant_and_each_message_traced_by_the_librarys_id() -> None:
    import gzip

    key = "acme.sbk_" + "s" * 43
    body = {"batch": [track("lib-0"), {"type": "track", "event": "X"}, track("lib-2")], "writeKey": key}
    answer = {"success": True, "rejected": [{"index": 1, "message": "userId is required"}]}
    call = Exchange(
        "POST",
        "/v1/batch",
        "",
        {"Content-Type": "application/json", "Content-Encoding": "gzip"},
        gzip.compress(json.dumps(body).encode()),
        200,
        {"X-Bridge-Accepted": "2", "X-Bridge-Refused": "1"},
        json.dumps(answer).encode(),
        1_700_000_000.0,
        2.0,
    )
    journal = Journal()
    entry_id = journal.record_exchange(call)
    journal.record_segment_request(segment_request([track("lib-0"), track("lib-2")]))
    detail = journal.detail("webhooks", entry_id)
    assert detail is not None
    assert (detail["kind"], detail["source"], detail["tenant"]) == ("tracking", "tracking", "acme")
    assert (detail["accepted"], detail["rejected"]) == (2, 1)
    assert [(e["outcome"], e["messageId"]) for e in detail["eventsDetail"]] == [
        ("accepted", "lib-0"),
        ("rejected", None),
        ("accepted", "lib-2"),
    ]
    assert detail["delivery"] == {"delivered": 2}
    assert key not in json.dumps(detail) and "s" * 43 not in json.dumps(detail)  # the key is redacted


def test_an_answer_gives_each_event_its_outcome_messageId_and_findings() -> None:
    journal = Journal()
    entry_id = journal.record_exchange(exchange(answer=ANSWER))
    detail = journal.detail("webhooks", entry_id)
    assert detail is not None
    events = [
        (e["index"], e["outcome"], e["messageId"], [f["code"] for f in e["findings"]]) for e in detail["eventsDetail"]
    ]
    assert events == [
        (0, "accepted", "m-a", []),
        (1, "rejected", None, ["style.event_name"]),
        (2, "accepted", "m-c", ["spec.event_name"]),
        (3, "skipped", None, []),
    ]
    assert detail["headers"]["X-Signature"] != exchange().headers["X-Signature"]


def test_a_request_may_arrive_before_the_answer_that_named_its_messages() -> None:
    journal = Journal()
    request_id = journal.record_segment_request(segment_request([track("m-a"), track("m-c", "Email Opened")]))
    entry_id = journal.record_exchange(exchange(answer=ANSWER))
    summary = journal.feed()["webhooks"][0]
    assert summary["id"] == entry_id
    assert summary["delivery"] == {"delivered": 2} and summary["segmentStatuses"] == [200]
    assert summary["events"] == ["Email Opened", "Order Completed"]
    assert journal.feed()["requests"][0]["tenants"] == ["acme"]
    detail = journal.detail("webhooks", entry_id)
    assert detail is not None and [r["id"] for r in detail["requests"]] == [request_id]
    assert detail["eventsDetail"][2]["trace"]["message"] == track("m-c", "Email Opened")


def test_retries_count_failures_and_a_resent_message_is_a_duplicate_not_a_retry() -> None:
    journal = Journal()
    journal.record_exchange(exchange(answer={"accepted": 1, "messageIds": ["m-1"], "rejected": []}))
    journal.record_segment_request(segment_request([track("m-1")], status=503, error="unavailable"))
    journal.record_segment_request(segment_request([track("m-1")], status=500, error="boom"))
    journal.record_segment_request(segment_request([track("m-1")]))
    journal.record_segment_request(segment_request([track("m-1")]))  # the tool re-sent its webhook
    requests = list(reversed(journal.feed()["requests"]))
    assert [(r["status"], r["attempt"], r["duplicates"]) for r in requests] == [
        (503, 1, 0),
        (500, 2, 0),
        (200, 3, 0),
        (200, 1, 1),
    ]
    assert journal.feed()["webhooks"][0]["delivery"] == {"delivered": 1}


def dead_letter(sqs_id: str, ids: list[str]) -> QueuedMessage:
    body = queue_body("acme", "spec", [json.dumps(track(i)) for i in ids])
    attributes = {"reason": "Segment answered 400: bad", "status": "400", "dead_lettered_at": "1700000005"}
    return QueuedMessage(sqs_id, body, attributes, 1_700_000_005.0)


def test_dead_letters_appear_once_and_are_marked_when_they_leave_the_queue() -> None:
    journal = Journal()
    notices: list[Notice] = []
    journal.subscribe(notices.append)
    journal.record_exchange(exchange(answer={"accepted": 1, "messageIds": ["m-1"], "rejected": []}))
    journal.record_dead_letters([dead_letter("sqs-1", ["m-1"])])
    journal.record_dead_letters([dead_letter("sqs-1", ["m-1"])])  # still there: nothing new
    (dead,) = journal.feed()["deadLetters"]
    assert (dead["tenant"], dead["status"], dead["messages"], dead["present"]) == ("acme", "400", 1, True)
    assert dead["webhooks"] == [journal.feed()["webhooks"][0]["id"]]
    assert journal.feed()["webhooks"][0]["delivery"] == {"dead-lettered": 1}
    journal.record_dead_letters([])  # redriven
    assert journal.feed()["deadLetters"][0]["present"] is False
    assert journal.feed()["webhooks"][0]["delivery"] == {"left DLQ": 1}
    assert [n.kind for n in notices] == ["webhook", "dead_letter", "dead_letter_gone"]


def test_only_the_newest_entries_are_kept_by_count_and_by_bytes() -> None:
    journal = Journal(capacity=3)
    ids = [journal.record_exchange(exchange(answer={"accepted": 1, "messageIds": [f"m-{i}"]})) for i in range(5)]
    assert [w["id"] for w in journal.feed()["webhooks"]] == ids[:1:-1]
    assert journal.detail("webhooks", ids[0]) is None
    small = Journal(max_bytes=10_000)
    for _ in range(5):
        small.record_exchange(exchange(body=b"x" * 4000))
    assert len(small.feed()["webhooks"]) == 2


def test_a_dead_letter_queue_larger_than_the_journal_does_not_repeat_itself() -> None:
    journal = Journal(capacity=2)
    queue = [dead_letter(f"sqs-{i}", [f"m-{i}"]) for i in range(4)]
    journal.record_dead_letters(queue)
    seq = journal.seq
    journal.record_dead_letters(queue)  # the same four: the two evicted ones are not new again
    assert journal.seq == seq and len(journal.feed()["deadLetters"]) == 2


def test_a_broken_listener_never_breaks_recording() -> None:
    journal = Journal()

    def broken(notice: Notice) -> None:
        raise RuntimeError("terminal gone")

    journal.subscribe(broken)
    assert journal.record_exchange(exchange()) == 1
    assert journal.seq == 1


def test_the_tail_prints_one_line_per_webhook_and_finding_and_never_reads_markup() -> None:
    journal = Journal()
    console = Console(record=True, width=300, color_system=None)
    journal.subscribe(Tail(console, journal.detail))
    journal.record_exchange(exchange(path="/v1/webhooks/spec/[bold]acme[/bold]", answer=ANSWER))
    journal.record_segment_request(segment_request([track("m-a")], status=400, error="a message exceeds 32 KB"))
    journal.record_dead_letters([dead_letter("sqs-1", ["m-a"])])
    lines = console.export_text().splitlines()
    assert "webhook  POST /v1/webhooks/spec/[bold]acme[/bold]" in lines[0] and "202" in lines[0]
    assert "accepted 2 · skipped 1 · rejected 1" in lines[0]
    assert "fixed  #2 spec.event_name  near-miss → Fix: rename it" in lines[1]
    assert "warned  #1 style.event_name  casing → Fix: Proper Case" in lines[2]
    assert "rejected  #1 each event needs a userId" in lines[3]
    assert "skipped  event 'queued' has no Spec counterpart" in lines[4]
    assert "segment  POST /v1/batch" in lines[5] and "400" in lines[5] and "a message exceeds 32 KB" in lines[5]
    assert "key ••••cdef" in lines[5] and "0123456789ab" not in lines[5]
    assert "dlq" in lines[6] and "acme/spec" in lines[6] and "Segment answered 400: bad" in lines[6]
