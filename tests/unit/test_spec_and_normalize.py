"""Spec models and the shared normalizer: what Segment would refuse is refused here, with a reason."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segment_bridge.limits import MAX_MESSAGE_BYTES
from segment_bridge.normalize import Integration, derive_anonymous_id, derive_message_id, normalize
from segment_bridge.sources import MappedEvent, Rejected
from segment_bridge.tenants import TenantConfig

TENANT = TenantConfig(write_key="wk", region="us")
ANON_OK = TenantConfig(write_key="wk", identity={"missing_user_id": "anonymous"})
INTEGRATION = Integration("acme-tool", "1.0.0")


def run(message: dict, tenant: TenantConfig = TENANT, key: str | None = None, hints: dict | None = None):
    return normalize(MappedEvent(message, key, hints or {}), tenant_id="acme", tenant=tenant, source="spec",
                     integration=INTEGRATION)


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({"type": "track", "userId": "u1"}, "event"),
        ({"type": "track", "userId": "u1", "event": ""}, "event"),
        ({"type": "group", "userId": "u1"}, "groupId"),
        ({"type": "alias", "userId": "u1"}, "previousId"),
        ({"type": "alias", "previousId": "p1"}, "userId"),
        ({"type": "identify"}, "userId is required"),
        ({"type": "bogus", "userId": "u1"}, "type"),
        ({"userId": "u1", "event": "x"}, '"type" is required'),
        ({"type": "track", "userId": "u1", "event": "E", "timestamp": "yesterday"}, "timestamp"),
        ({"type": "track", "userId": "u1", "event": "E", "messageId": "m" * 101}, "messageId"),
        ({"type": "track", "userId": True, "event": "E"}, "userId"),
    ],
)
def test_invalid_messages_are_rejected_with_the_field_to_fix(message: dict, reason: str) -> None:
    with pytest.raises(Rejected, match=reason):
        run(message)


@pytest.mark.parametrize("call", [
    {"type": "track", "event": "Order Completed", "properties": {"total": 1}},
    {"type": "identify", "traits": {"email": "a@b.c"}},
    {"type": "page", "name": "Home"},
    {"type": "screen", "name": "Home"},
    {"type": "group", "groupId": "g1"},
    {"type": "alias", "previousId": "anon-1"},
])
def test_every_call_type_is_accepted_with_a_user_id(call: dict) -> None:
    result = run({**call, "userId": "u1"})
    assert result.message["type"] == call["type"]
    assert result.message["userId"] == "u1"
    assert json.loads(result.json) == result.message
    assert result.size == len(result.json.encode())


def test_integration_context_is_stamped_and_overrides_the_sender() -> None:
    result = run({"type": "track", "userId": "u", "event": "E",
                  "context": {"integration": {"name": "spoof"}, "ip": "1.2.3.4"}})
    assert result.message["context"] == {"ip": "1.2.3.4", "integration": {"name": "acme-tool", "version": "1.0.0"}}


def test_sender_message_id_and_timestamp_are_kept_in_utc() -> None:
    result = run({"type": "track", "userId": "u", "event": "E", "messageId": "mine-1",
                  "timestamp": "2026-03-01T10:00:00+02:00"})
    assert result.message_id == "mine-1"
    assert result.message["timestamp"] == "2026-03-01T08:00:00.000Z"


def test_naive_timestamp_is_taken_as_utc() -> None:
    assert run({"type": "track", "userId": "u", "event": "E", "timestamp": "2026-03-01T10:00:00"}).message[
        "timestamp"] == "2026-03-01T10:00:00.000Z"


def test_numeric_ids_are_stringified() -> None:
    assert run({"type": "identify", "userId": 111}).message["userId"] == "111"


def test_derived_message_id_is_stable_and_scoped() -> None:
    first = run({"type": "track", "userId": "u", "event": "E"}, key="evt-1").message_id
    again = run({"type": "track", "userId": "u", "event": "E", "properties": {"changed": 1}}, key="evt-1").message_id
    assert first == again == derive_message_id("acme", "spec", "evt-1")
    assert first != derive_message_id("other-tenant", "spec", "evt-1")
    assert first != derive_message_id("acme", "stripe", "evt-1")
    assert len(first) <= 100


def test_content_derived_message_id_follows_the_content() -> None:
    a = run({"type": "track", "userId": "u", "event": "E", "properties": {"x": 1}}).message_id
    b = run({"properties": {"x": 1}, "event": "E", "userId": "u", "type": "track"}).message_id
    c = run({"type": "track", "userId": "u", "event": "E", "properties": {"x": 2}}).message_id
    assert a == b != c


def test_anonymous_policy_derives_a_stable_id_from_the_email() -> None:
    result = run({"type": "track", "event": "Email Opened"}, tenant=ANON_OK, hints={"email": " Ada@Example.com "})
    assert result.message["anonymousId"] == derive_anonymous_id("acme", "email", "ada@example.com")
    assert "ada" not in result.message["anonymousId"]


def test_anonymous_policy_keeps_a_sender_anonymous_id() -> None:
    assert run({"type": "page", "anonymousId": "a-1"}, tenant=ANON_OK).message["anonymousId"] == "a-1"


def test_user_id_is_required_by_default_even_with_an_anonymous_id() -> None:
    with pytest.raises(Rejected, match="userId is required"):
        run({"type": "page", "anonymousId": "a-1"})


def test_write_key_in_the_body_is_dropped() -> None:
    assert "writeKey" not in run({"type": "identify", "userId": "u", "writeKey": "leak"}).message


def test_message_over_32kb_is_rejected() -> None:
    big = {"type": "track", "userId": "u", "event": "E", "properties": {"blob": "x" * MAX_MESSAGE_BYTES}}
    with pytest.raises(Rejected, match="32768|at most"):
        run(big)


def test_lone_surrogate_is_rejected_not_crashing() -> None:
    with pytest.raises(Rejected, match="Unicode"):
        run(json.loads('{"type": "track", "userId": "u", "event": "E", "properties": {"s": "\\ud800"}}'))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=12), json_values, max_size=8), st.sampled_from(["track", "identify", "page", "group", "alias", "screen", "x", None]))
def test_any_json_object_is_either_normalized_or_rejected(fields: dict, call_type: str | None) -> None:
    message = dict(fields)
    if call_type is not None:
        message["type"] = call_type
    try:
        result = run(message)
    except Rejected as exc:
        assert str(exc)
        return
    assert result.message["context"]["integration"]["name"] == "acme-tool"
    assert result.size <= MAX_MESSAGE_BYTES
    assert result.message["userId"]
