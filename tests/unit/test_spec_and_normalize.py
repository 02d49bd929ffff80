"""Spec models and the shared normalizer: what Segment would refuse is refused here, with a reason."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from segment_bridge.events import MappedEvent, Rejected
from segment_bridge.ingest.normalize import Integration, derive_anonymous_id, derive_message_id, normalize
from segment_bridge.limits import MAX_MESSAGE_BYTES
from segment_bridge.spec import message_adapter
from segment_bridge.tenants import TenantConfig

TENANT = TenantConfig(write_key="wk", region="us")
ANON_OK = TenantConfig(write_key="wk", identity={"missing_user_id": "anonymous"})
INTEGRATION = Integration("acme-tool", "1.0.0")


def run(message: dict, tenant: TenantConfig = TENANT, key: str | None = None, hints: dict | None = None):
    return normalize(
        MappedEvent(message, key, hints or {}), tenant_id="acme", tenant=tenant, source="spec", integration=INTEGRATION
    )


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


@pytest.mark.parametrize(
    "call",
    [
        {"type": "track", "event": "Order Completed", "properties": {"total": 1}},
        {"type": "identify", "traits": {"email": "a@b.c"}},
        {"type": "page", "name": "Home"},
        {"type": "screen", "name": "Home"},
        {"type": "group", "groupId": "g1"},
        {"type": "alias", "previousId": "anon-1"},
    ],
)
def test_every_call_type_is_accepted_with_a_user_id(call: dict) -> None:
    result = run({**call, "userId": "u1"})
    assert result.message["type"] == call["type"]
    assert result.message["userId"] == "u1"
    assert json.loads(result.json) == result.message
    assert result.size == len(result.json.encode())


def test_integration_context_is_stamped_and_overrides_the_sender() -> None:
    result = run(
        {"type": "track", "userId": "u", "event": "E", "context": {"integration": {"name": "spoof"}, "ip": "1.2.3.4"}}
    )
    assert result.message["context"] == {"ip": "1.2.3.4", "integration": {"name": "acme-tool", "version": "1.0.0"}}


def test_sender_message_id_and_timestamp_are_kept_in_utc() -> None:
    result = run(
        {"type": "track", "userId": "u", "event": "E", "messageId": "mine-1", "timestamp": "2026-03-01T10:00:00+02:00"}
    )
    assert result.message_id == "mine-1"
    assert result.message["timestamp"] == "2026-03-01T08:00:00.000Z"


def test_naive_timestamp_is_taken_as_utc() -> None:
    assert (
        run({"type": "track", "userId": "u", "event": "E", "timestamp": "2026-03-01T10:00:00"}).message["timestamp"]
        == "2026-03-01T10:00:00.000Z"
    )


def test_numeric_ids_are_stringified() -> None:
    assert run({"type": "identify", "userId": 111}).message["userId"] == "111"


def test_derived_message_id_is_stable_and_scoped() -> None:
    first = run({"type": "track", "userId": "u", "event": "E"}, key="evt-1").message_id
    again = run({"type": "track", "userId": "u", "event": "E", "properties": {"changed": 1}}, key="evt-1").message_id
    assert first == again == derive_message_id("acme", "spec", "evt-1")
    assert first != derive_message_id("other-tenant", "spec", "evt-1")
    assert first != derive_message_id("acme", "stripe", "evt-1")
    assert len(first) <= 100


def test_derived_ids_are_pinned() -> None:
    # Exact values: a redelivered webhook must reproduce the messageId of every earlier deployment
    # (Segment dedupes on it), so any change to how ids are derived must fail here.
    assert derive_message_id("acme", "sendgrid", "ihjw4AObPF97zyi1Xhj5nQ:delivered") == (
        "sendgrid-4cf4af7f-d633-58f8-b1d8-1d03760d435d"
    )
    assert derive_message_id("acme", "spec", "caf\u00e9 \U0001f600") == "spec-258e2e33-22c1-5db8-8703-daa5c3aa74ef"
    assert derive_anonymous_id("acme", "email", " Person@Example.com ") == "250c5c4f-5889-5655-bfb9-16c2edc8920c"


def test_an_event_id_with_a_lone_surrogate_gets_a_stable_id_and_no_crash() -> None:
    # A tool event id decoded from JSON "\ud800" (valid JSON, invalid Unicode) used to raise
    # UnicodeEncodeError out of ingest: a 500 for the whole webhook instead of one event's verdict.
    assert derive_message_id("acme", "sendgrid", "evt\ud800") == derive_message_id("acme", "sendgrid", "evt\ud800")
    assert derive_message_id("acme", "sendgrid", "evt\ud800") != derive_message_id("acme", "sendgrid", "evt")
    message = run({"type": "track", "userId": "u1", "event": "Email Opened"}, key="evt\ud800")
    assert message.message_id.startswith("spec-")
    with pytest.raises(Rejected, match="invalid Unicode"):
        run(
            {"type": "track", "userId": "u1", "event": "Email Opened", "properties": {"id": "evt\ud800"}},
            key="evt\ud800",
        )


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
    with pytest.raises(Rejected, match=r"32768|at most"):
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
@given(
    st.dictionaries(st.text(max_size=12), json_values, max_size=8),
    st.sampled_from(["track", "identify", "page", "group", "alias", "screen", "x", None]),
)
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


@pytest.mark.parametrize(
    "raw",
    [
        "2026-03-01T10:00:00Z",
        "2026-03-01T10:00:00.5Z",
        "2026-03-01T10:00:00.12Z",
        "2026-03-01T10:00:00.123Z",
        "2026-03-01T10:00:00.1239Z",
        "2026-03-01T10:00:00.999999Z",
        "2026-03-01T10:00:00.1234567Z",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999Z",
        "2024-02-29T23:59:59Z",
        "2026-03-01T10:00Z",
        "2026-03-01t10:00:00z",
        "2026-03-01T10:00:00+02:00",
        "2026-03-01T10:00:00",
        "2026-03-01",
        1772359200,
        1772359200.25,
        "1772359200",
    ],
)
def test_timestamp_text_matches_formatting_the_parsed_datetime(raw: object) -> None:
    # normalize() copies "...Z" timestamps as text instead of formatting the parsed datetime;
    # both must give the same string for every input pydantic accepts.
    from segment_bridge.spec.models import format_timestamp, message_adapter, message_fields

    message = {"type": "track", "userId": "u", "event": "E", "timestamp": raw}
    parsed = message_adapter().validate_python(message).timestamp
    assert message_fields(message).timestamp == format_timestamp(parsed)
    assert run({"type": "track", "userId": "u", "event": "E", "timestamp": raw}).message["timestamp"] == (
        format_timestamp(parsed)
    )


@settings(max_examples=300, deadline=None)
@given(st.datetimes(), st.integers(min_value=0, max_value=7))
def test_timestamp_text_matches_formatting_for_any_utc_z_timestamp(moment: datetime, digits: int) -> None:
    from segment_bridge.spec.models import format_timestamp, message_adapter, message_fields

    fraction = ("." + f"{moment.microsecond:06d}0"[:digits]) if digits else ""  # 7 digits: more than pydantic keeps
    raw = f"{moment.year:04d}-" + moment.strftime("%m-%dT%H:%M:%S") + fraction + "Z"
    message = {"type": "track", "userId": "u", "event": "E", "timestamp": raw}
    parsed = message_adapter().validate_python(message).timestamp
    assert message_fields(message).timestamp == format_timestamp(parsed)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=8), json_values | st.sampled_from([float("nan"), float("inf"), "\ud800"]), max_size=6
    )
)
def test_the_prebuilt_encoder_is_json_dumps_with_the_same_options(value: dict) -> None:
    from segment_bridge.ingest.normalize import _encode

    def outcome(encode) -> str:
        try:
            return "ok " + encode(value)
        except (TypeError, ValueError) as exc:
            return f"{type(exc).__name__} {exc}"

    assert outcome(_encode) == outcome(
        lambda v: json.dumps(v, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    )


@pytest.mark.parametrize("timestamp", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_the_spec_model_refuses_a_timestamp_whose_utc_form_leaves_the_calendar(timestamp: str) -> None:
    with pytest.raises(ValidationError, match="outside years 1-9999"):
        message_adapter().validate_python({"type": "track", "event": "E", "userId": "u", "timestamp": timestamp})
