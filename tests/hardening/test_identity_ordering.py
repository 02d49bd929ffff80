"""A Segment call's own time cannot outrank what the bridge saw (issue #13, defect 4).

Links were ordered by the message's `timestamp` with no upper bound: an identify dated 9999-12-31
turned every later identify of its address into a "duplicate", a delete of that user answered
`deletedUsers: 1` and left the link (so ingest kept stamping the deleted userId on tool events), and
a delete dated 9999 suppressed the user's identifies forever. Writes are now ordered by
`min(timestamp, receivedAt + MAX_FUTURE_SKEW_MS)` and a delete removes every link of the user.
Through the real destination and ingest handlers, on moto.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from segment_bridge.identity.keys import MAX_FUTURE_SKEW_MS
from segment_bridge.queue_format import read_body
from segment_bridge_tools.lambda_events import LocalLambdaContext, api_gateway_event
from tests.conftest import receive_all

from .support import HOST, STAGE, Harness, assert_invariants, basic, destination_key, signed

EMAIL = "pinned@example.com"
FAR_FUTURE = "9999-12-31T23:59:59Z"


def iso(seconds_from_now: float) -> str:
    return datetime.fromtimestamp(time.time() + seconds_from_now, UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
def destination(harness: Harness, identity_table: str) -> Harness:
    from .support import install_tenants

    install_tenants()  # identity_table replaced acme's secret; put the hardening tenants back
    return Harness(harness.queue_url, handler="destination_handler")


def segment(destination: Harness, *messages: dict[str, Any]) -> dict[str, Any]:
    event = api_gateway_event(
        "POST",
        "/v1/segment/acme",
        json.dumps({"batch": list(messages)}).encode(),
        {"Content-Type": "application/json", "Authorization": basic(destination_key("acme"))},
        resource="/v1/segment/{tenant}",
        path_parameters={"tenant": "acme"},
    )
    call = destination.invoke(event, kind="destination")
    assert_invariants(call)
    assert call.status == 200, call.text
    body: dict[str, Any] = call.body
    return body


def identify(user_id: str, message_id: str, timestamp: str, received_at: str) -> dict[str, Any]:
    return {
        "type": "identify",
        "userId": user_id,
        "messageId": message_id,
        "timestamp": timestamp,
        "receivedAt": received_at,
        "traits": {"email": EMAIL},
    }


def delete(user_id: str, message_id: str, timestamp: str, received_at: str) -> dict[str, Any]:
    return {
        "type": "delete",
        "userId": user_id,
        "messageId": message_id,
        "timestamp": timestamp,
        "receivedAt": received_at,
    }


def tool_event_user_ids(harness: Harness) -> list[Any]:
    """A SendGrid event for EMAIL (no userId of its own) through ingest: the userIds it was forwarded with."""
    import ingest_handler

    path = "/v1/webhooks/sendgrid/acme"
    body = json.dumps(
        [{"email": EMAIL, "event": "delivered", "sg_event_id": f"e-{time.time_ns()}", "timestamp": int(time.time())}]
    ).encode()
    headers, raw = signed("sendgrid", "acme", body, path)
    event = api_gateway_event("POST", path, raw, headers, stage=STAGE, domain=HOST)
    response = ingest_handler.lambda_handler(event, LocalLambdaContext())
    assert response["statusCode"] == 202, response["body"]
    return [m.get("userId") for raw in receive_all(harness.queue_url) for m in read_body(raw["Body"]).messages]


def test_a_future_dated_identify_no_longer_pins_its_address(destination: Harness, harness: Harness) -> None:
    assert segment(destination, identify("user-pinned", "m-future", FAR_FUTURE, iso(-3600)))["applied"] == 1
    later = segment(destination, identify("user-1", "m-later", iso(-1800), iso(-1800)))
    assert (later["applied"], later["duplicates"]) == (1, 0), later  # was: a "duplicate" of the 9999 one
    assert tool_event_user_ids(harness) == ["user-1"]


def test_a_delete_removes_a_future_dated_link_and_the_id_is_never_stamped_again(
    destination: Harness, harness: Harness
) -> None:
    future = identify("user-1", "m-future", FAR_FUTURE, iso(-3600))
    assert segment(destination, future)["applied"] == 1
    assert tool_event_user_ids(harness) == ["user-1"]
    deleted = segment(destination, delete("user-1", "d-1", iso(-1800), iso(-1800)))
    assert deleted["deletedUsers"] == 1
    assert tool_event_user_ids(harness) == [None]  # was: still "user-1" (the link outlived the delete)
    # Segment's late retry of the future-dated identify (same messageId and receivedAt) stays dead.
    retried = segment(destination, future)
    assert retried.get("suppressed") == 1, retried
    assert tool_event_user_ids(harness) == [None]


def test_a_future_dated_delete_does_not_suppress_the_users_later_identifies(
    destination: Harness, harness: Harness
) -> None:
    segment(destination, identify("user-1", "m-0", iso(-7200), iso(-7200)))
    assert segment(destination, delete("user-1", "d-future", FAR_FUTURE, iso(-3600)))["deletedUsers"] == 1
    assert tool_event_user_ids(harness) == [None]
    again = segment(destination, identify("user-1", "m-1", iso(-1800), iso(-1800)))
    assert again["applied"] == 1 and "suppressed" not in again, again  # was: suppressed until 9999
    assert tool_event_user_ids(harness) == ["user-1"]


def test_a_forged_received_at_cannot_lift_the_ceiling(destination: Harness, harness: Harness) -> None:
    """receivedAt is Segment's, but the caller writes the body: it counts no later than the bridge's clock."""
    import destination_handler

    service = destination_handler.get_service()
    now = time.time()
    service.clock = lambda: now
    segment(destination, identify("user-pinned", "m-future", FAR_FUTURE, FAR_FUTURE))
    service.clock = lambda: now + MAX_FUTURE_SKEW_MS / 1000 + 1  # just past the skew the first one got
    later = segment(destination, identify("user-1", "m-later", iso(MAX_FUTURE_SKEW_MS / 1000 + 1), FAR_FUTURE))
    assert later["applied"] == 1, later
    assert tool_event_user_ids(harness) == ["user-1"]


def test_a_delete_older_than_a_later_identify_still_removes_every_link(destination: Harness, harness: Harness) -> None:
    """A deletion is the user's right, not an ordering question: even Segment's late retry of an
    older delete removes the links the user has now (the next identify brings them back)."""
    segment(destination, identify("user-1", "m-1", iso(-600), iso(-600)))
    older = segment(destination, delete("user-1", "d-old", iso(-1200), iso(-1200)))
    assert older["deletedUsers"] == 1
    assert tool_event_user_ids(harness) == [None]
