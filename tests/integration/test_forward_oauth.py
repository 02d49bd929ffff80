"""The forward Lambda for a tenant sent with OAuth, through its real handler: moto for SQS and Secrets
Manager, the real HTTP sink as Segment's Tracking API *and* its token server (it verifies every
assertion against the tenant's public key). First token, renewal, 401 then refresh, a token server
that is down, clock skew, and a token Segment keeps refusing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest

from segment_bridge.admin import KeyPair, generate_key_pair
from segment_bridge_tools.sink import Drop, OAuthApp, SegmentSink
from tests.conftest import put_tenant, receive_all, reset_caches, tenant_secret

from .test_forward_handler import record

TENANT = "oauthco"
WRITE_KEY = "oauthcoWriteKey0123456789abcdefgh"


@cache
def key_pair() -> KeyPair:
    return generate_key_pair()


@pytest.fixture
def sink(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[SegmentSink]:
    sink = SegmentSink().start()
    for region in ("US", "EU"):
        monkeypatch.setenv(f"SEGMENT_URL_{region}", sink.batch_url)
        monkeypatch.setenv(f"SEGMENT_OAUTH_URL_{region}", sink.url)
    monkeypatch.setenv("MAX_RECEIVE_COUNT", "3")
    monkeypatch.setenv("SEGMENT_TIMEOUT_SECONDS", "2")
    sink.register_oauth_app(OAuthApp("app-oauthco", "key-1", key_pair().public_pem, WRITE_KEY, token_lifetime=3600))
    put_tenant(
        TENANT,
        tenant_secret(
            write_key=WRITE_KEY,
            oauth={"client_id": "app-oauthco", "key_id": "key-1", "private_key": key_pair().private_pem},
        ),
    )
    reset_caches()
    yield sink
    sink.stop()


def invoke(*records: dict[str, Any]) -> set[str]:
    """The record ids the forwarder reported failed (all of them when it raised BatchNotDelivered)."""
    import forward_handler

    from segment_bridge_tools.lambda_events import LocalLambdaContext, sqs_event

    try:
        response = forward_handler.lambda_handler(sqs_event(list(records)), LocalLambdaContext(timeout_seconds=20))
    except forward_handler.BatchNotDelivered:
        return {r["MessageId"] for r in records}
    return {f["itemIdentifier"] for f in response["batchItemFailures"]}


def batch_statuses(sink: SegmentSink) -> list[tuple[int, str]]:
    return [(r.status, r.auth) for r in sink.snapshot()]


def token_statuses(sink: SegmentSink) -> list[int]:
    return [t.status for t in sink.token_requests]


def test_the_first_request_gets_a_token_and_sends_bearer_with_the_write_key_in_the_body(
    sink: SegmentSink, aws: dict[str, str]
) -> None:
    assert invoke(record("r1", TENANT), record("r2", TENANT)) == set()
    [request] = sink.snapshot()
    assert (request.status, request.auth, request.write_key, request.message_count) == (200, "bearer", WRITE_KEY, 4)
    assert token_statuses(sink) == [200]
    assert invoke(record("r3", TENANT)) == set()
    assert token_statuses(sink) == [200]  # the cached token, no second token request
    assert receive_all(aws["dlq_url"]) == []


def test_a_token_is_renewed_at_half_its_lifetime(sink: SegmentSink) -> None:
    sink.oauth_apps["app-oauthco"].token_lifetime = 2
    assert invoke(record("r1", TENANT)) == set()
    time.sleep(1.1)  # past half of 2 s: renewed before it expires, no 401 on the way
    assert invoke(record("r2", TENANT)) == set()
    assert token_statuses(sink) == [200, 200]
    assert batch_statuses(sink) == [(200, "bearer"), (200, "bearer")]


def test_a_401_drops_the_token_and_the_request_goes_again_with_a_new_one(sink: SegmentSink) -> None:
    assert invoke(record("r1", TENANT)) == set()
    sink.expire_tokens()  # the cached token dies early (revoked in the workspace, say)
    assert invoke(record("r2", TENANT)) == set()
    assert batch_statuses(sink) == [(200, "bearer"), (401, "bearer"), (200, "bearer")]
    assert token_statuses(sink) == [200, 200]
    assert {m["messageId"] for m in sink.messages()} == {
        f"{TENANT}-r1-0",
        f"{TENANT}-r1-1",
        f"{TENANT}-r2-0",
        f"{TENANT}-r2-1",
    }


@pytest.mark.parametrize("fault", ["503", "drop", "429"])
def test_a_token_server_that_is_down_fails_the_records_for_a_retry_not_the_dlq(
    sink: SegmentSink, aws: dict[str, str], fault: str
) -> None:
    faults: dict[str, Any] = {
        "503": (503, {}, {"error": "temporarily_unavailable"}),
        "drop": Drop(),
        "429": (429, {"X-RateLimit-Reset": "0"}, {"error": "rate_limited"}),
    }
    sink.token_responder = lambda form: faults[fault]
    assert invoke(record("r1", TENANT)) == {"r1"}
    assert sink.snapshot() == []  # nothing reached the Tracking API without a token
    assert receive_all(aws["dlq_url"]) == []
    sink.token_responder = None  # back up: SQS redelivers, and it goes through
    time.sleep(0.05)
    assert invoke(record("r1", TENANT, receive_count=2)) == set()
    assert batch_statuses(sink) == [(200, "bearer")]


def test_clock_skew_is_corrected_from_the_token_servers_date(sink: SegmentSink) -> None:
    sink.clock_offset = 600  # the token server's clock is 10 minutes ahead of ours
    assert invoke(record("r1", TENANT)) == set()
    errors = [t.error for t in sink.token_requests]
    assert token_statuses(sink) == [400, 200] and errors[0] == "invalid_request"
    assert batch_statuses(sink) == [(200, "bearer")]


def test_basic_auth_to_an_oauth_only_source_is_refused(sink: SegmentSink) -> None:
    put_tenant(TENANT, tenant_secret(write_key=WRITE_KEY))  # the same source, without the oauth block
    reset_caches()
    assert invoke(record("r1", TENANT)) == {"r1"}
    assert batch_statuses(sink) == [(401, "basic")]


def test_a_token_refused_again_after_a_refresh_is_refused_for_the_tenant(
    sink: SegmentSink, aws: dict[str, str]
) -> None:
    sink.responder = lambda request: (403, {}, {"code": "forbidden", "message": "source disconnected from the app"})
    assert invoke(record("r1", TENANT)) == {"r1"}
    assert [s for s, _ in batch_statuses(sink)] == [403, 403]  # once, then once more with a new token
    assert token_statuses(sink) == [200, 200]
    # A refused tenant is retried until the age limit; on the backstop's last receive (MAX_RECEIVE_COUNT,
    # 3 here) the record is dead-lettered with the reason, never left to SQS's silent redrive.
    assert invoke(record("r1", TENANT, receive_count=3)) == set()
    [dead] = receive_all(aws["dlq_url"])
    reason = dead["MessageAttributes"]["reason"]["StringValue"]
    assert "403" in reason and WRITE_KEY not in json.dumps(dead)
