"""Text the identity table cannot store, and text it can (issue #13, defect 3 and the NUL decision).

Through the real destination handler on moto. A lone surrogate (`"\\ud800"`: valid JSON, not
Unicode) in a Segment call once reached DynamoDB, whose refusal was a 503 (Segment retries those for
4 hours) that also failed the rest of the batch. Now: that message's 400, the others applied; and
anything else the table refuses (a ValidationException) is treated the same, while throttling and
unavailability stay 429/503.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import strategies as st

from segment_bridge.identity.keys import IdentityMatch, lookup_key
from segment_bridge.identity.store import DynamoDBIdentityStore
from segment_bridge_tools.lambda_events import api_gateway_event

from .conftest import HARDENING
from .support import Harness, assert_invariants, basic, destination_key

LONE = "\ud800"


@pytest.fixture
def destination(harness: Harness, identity_table: str) -> Harness:
    from .support import install_tenants

    install_tenants()  # identity_table replaced acme's secret; put the hardening tenants back
    return Harness(harness.queue_url, handler="destination_handler")


def send(destination: Harness, payload: Any = None, *, raw: bytes | None = None, failing: bool = False) -> Any:
    body = raw if raw is not None else json.dumps(payload).encode()  # json escapes a lone surrogate as \ud800
    event = api_gateway_event(
        "POST",
        "/v1/segment/acme",
        body,
        {"Content-Type": "application/json", "Authorization": basic(destination_key("acme"))},
        resource="/v1/segment/{tenant}",
        path_parameters={"tenant": "acme"},
    )
    call = destination.invoke(event, kind="destination")
    assert_invariants(call, allow_unavailable=failing)
    return call


def identify(user_id: str, email: str, message_id: str, **extra: Any) -> dict[str, Any]:
    return {"type": "identify", "userId": user_id, "messageId": message_id, "traits": {"email": email}, **extra}


def linked(table: str, email: str) -> IdentityMatch | None:
    key = lookup_key("acme", "email", email)
    assert key is not None
    return DynamoDBIdentityStore(table, boto3.client("dynamodb")).lookup([key]).get(key)


def test_a_lone_surrogate_is_that_messages_400_and_the_batch_goes_on(destination: Harness, identity_table: str) -> None:
    batch = [
        identify(LONE, "a@example.com", "m-1"),
        identify("user-ok", "ok@example.com", "m-2"),
        {"type": "group", "userId": "user-ok", "groupId": "acct" + LONE, "messageId": "g-1"},
        identify("user-3", "b" + LONE + "@example.com", "m-3"),
        identify("user-4", "c@example.com", "m" + LONE),
        {"type": "alias", "userId": "user-5", "previousId": LONE, "messageId": "a-1"},
    ]
    call = send(destination, {"batch": batch})
    assert call.status == 200, call.text
    assert call.body["applied"] == 1
    assert [(r["index"], r["status"]) for r in call.body["rejected"]] == [
        (0, 400),
        (2, 400),
        (3, 400),
        (4, 400),
        (5, 400),
    ]
    assert all("Unicode" in r["message"] for r in call.body["rejected"])
    assert linked(identity_table, "ok@example.com") == IdentityMatch("user-ok")
    assert linked(identity_table, "a@example.com") is None


def test_a_single_message_with_a_lone_surrogate_is_a_400(destination: Harness) -> None:
    call = send(destination, identify(LONE, "a@example.com", "m-1"))
    assert call.status == 400 and "userId is not valid Unicode" in call.body["message"]


def test_what_the_table_refuses_is_a_400_for_that_message_only(
    destination: Harness, identity_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anything DynamoDB refuses as data (here a ValidationException on one user's link), not only
    lone surrogates, is that message's 400; its neighbours are applied."""
    import destination_handler

    client = destination_handler.get_service().store.client
    put_item = client.put_item

    def refusing(**kwargs: Any) -> Any:
        if kwargs["Item"]["userId"]["S"] == "user-refused":
            raise ClientError({"Error": {"Code": "ValidationException", "Message": "Item size too large"}}, "PutItem")
        return put_item(**kwargs)

    monkeypatch.setattr(client, "put_item", refusing)
    batch = [identify("user-refused", "r@example.com", "m-1"), identify("user-ok", "ok@example.com", "m-2")]
    call = send(destination, batch)
    assert call.status == 200 and call.body["applied"] == 1, call.text
    assert [(r["index"], r["status"]) for r in call.body["rejected"]] == [(0, 400)]
    assert "ValidationException" in call.body["rejected"][0]["message"]
    assert "too large" not in call.text  # the table's own text is not passed on (it can quote the data)
    assert linked(identity_table, "ok@example.com") == IdentityMatch("user-ok")
    # A single refused message is its 400.
    call = send(destination, identify("user-refused", "r@example.com", "m-3"))
    assert call.status == 400 and "ValidationException" in call.body["message"]


@pytest.mark.parametrize(
    "code, status",
    [("ProvisionedThroughputExceededException", 429), ("InternalServerError", 503), ("AccessDeniedException", 503)],
)
def test_only_throttling_and_unavailability_ask_segment_to_retry(
    destination: Harness, monkeypatch: pytest.MonkeyPatch, code: str, status: int
) -> None:
    import destination_handler

    client = destination_handler.get_service().store.client

    def failing(**kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": code, "Message": ""}}, "UpdateItem")

    monkeypatch.setattr(client, "update_item", failing)
    assert send(destination, identify("user-1", "a@example.com", "m-1"), failing=True).status == status


def test_nul_and_control_characters_are_kept_as_sent(destination: Harness, identity_table: str) -> None:
    """Decision (docs/security.md, round 2): valid Unicode is stored as is, NUL included, as
    Segment's own libraries send it; the link resolves to exactly that userId."""
    call = send(destination, identify("user\x00one\x1f", "nul@example.com", "m-nul"))
    assert call.status == 200 and call.body["applied"] == 1
    assert linked(identity_table, "nul@example.com") == IdentityMatch("user\x00one\x1f")


def test_a_huge_integer_is_a_400_about_the_input(destination: Harness) -> None:
    """The message once quoted Python's int-limit text ("use sys.set_int_max_str_digits()")."""
    call = send(destination, raw=b'{"type":"identify","userId":"u","traits":{"n":' + b"9" * 5000 + b"}}")
    assert call.status == 400
    assert "digits" in call.body["message"] and "sys." not in call.body["message"], call.body


# -- fuzz: ids and traits of any text -------------------------------------------------------------------
texts = st.text(max_size=20) | st.sampled_from([LONE, "a\udfffb", "\x00", "x\x00y", "\ud83d\ude00", ""])


@HARDENING
@given(
    calls=st.lists(
        st.fixed_dictionaries(
            {"type": st.sampled_from(["identify", "group", "alias", "track", "delete"])},
            optional={
                "userId": texts,
                "anonymousId": texts,
                "previousId": texts,
                "groupId": texts,
                "messageId": texts,
                "traits": st.fixed_dictionaries({}, optional={"email": texts, "phone": texts}),
                "timestamp": st.sampled_from(["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "2026-01-01T00:00:00Z"]),
                "receivedAt": st.sampled_from(["9999-12-31T23:59:59Z", "2026-01-01T00:00:00Z"]),
            },
        ),
        min_size=1,
        max_size=6,
    )
)
def test_any_text_in_a_segment_call_is_applied_or_refused_never_a_5xx(destination: Harness, calls: list[Any]) -> None:
    call = send(destination, {"batch": calls})
    assert call.status in (200, 400, 501), call.text
    for entry in (call.body or {}).get("rejected", []):
        assert entry["status"] in (400, 501) and entry["message"]
