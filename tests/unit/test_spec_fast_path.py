"""The plain-message fast path of `spec.message_fields` against the Spec models it stands in for.

`_plain_fields` reads a message without building a model when the models would take it unchanged.
It must never accept what the models refuse, and where it accepts, it must return what the models
would: so every normalized message (bytes, messageId, rejection text) is the same either way.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any, get_args

import pytest
from annotated_types import MaxLen, MinLen
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from segment_bridge.events import MappedEvent, Rejected
from segment_bridge.ingest.normalize import Integration, normalize
from segment_bridge.spec import models as spec
from segment_bridge.spec.models import (
    AnyMessage,
    MessageFields,
    _plain_fields,
    format_timestamp,
    message_adapter,
    message_fields,
    utc_text,
)
from segment_bridge.tenants import TenantConfig

TENANT = TenantConfig(write_key="wk", region="us")
ANON_OK = TenantConfig(write_key="wk", identity={"missing_user_id": "anonymous"})
INTEGRATION = Integration("acme-tool", "1.0.0")
MODELS = get_args(get_args(AnyMessage)[0])


def by_the_models(message: dict[str, Any]) -> MessageFields:
    """`message_fields` with the fast path switched off: what the models alone return."""
    model = message_adapter().validate_python(message)
    timestamp = None if model.timestamp is None else format_timestamp(model.timestamp)
    return MessageFields(model.userId, model.anonymousId, model.messageId, timestamp, dict(model.context))


# -- the rules are the models' rules -------------------------------------------------------------
def constraints(info: FieldInfo) -> list[Any]:
    """A field's constraints, also where they sit inside an Optional (`Identifier | None`)."""
    found = list(info.metadata)
    for arg in get_args(info.annotation):
        for item in getattr(arg, "__metadata__", ()):
            found += item.metadata if isinstance(item, FieldInfo) else [item]
    return found


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_the_fast_path_knows_every_field_of_every_model_with_its_constraints(model: Any) -> None:
    """Adding or changing a field in spec.py without updating `_PLAIN_RULES` fails here."""
    kind = get_args(model.model_fields["type"].annotation)[0]
    rules = spec._PLAIN_RULES[kind]
    texts = {name: (required, low, high) for name, required, low, high in rules.texts}
    objects = dict(rules.objects)
    assert set(model.model_fields) == set(texts) | set(objects) | {"type", "timestamp"}
    assert not set(texts) & set(objects)
    for name, (required, low, high) in texts.items():
        info = model.model_fields[name]
        assert info.is_required() == required, name
        metadata = constraints(info)
        lows = [m.min_length for m in metadata if isinstance(m, MinLen)]
        highs = [m.max_length for m in metadata if isinstance(m, MaxLen)]
        assert (lows or [0])[0] == low and (highs or [sys.maxsize])[0] == high, name
    for name, nullable in objects.items():
        info = model.model_fields[name]
        assert not info.is_required()
        assert nullable == (type(None) in get_args(info.annotation)), name
    assert set(spec._PLAIN_RULES) == set(spec.CALL_TYPES)


def test_mapped_tool_events_take_the_fast_path() -> None:
    # The point of the fast path: a built-in source's output (pinned so a regression shows).
    message = {
        "type": "track",
        "event": "Email Opened",
        "properties": {"email_id": "m1", "tags": ["a"]},
        "userId": "u1",
        "timestamp": "2026-01-05T09:00:00Z",
        "context": {"traits": {"email": "a@b.co"}, "source_event": {"tool": "sendgrid", "type": "open"}},
    }
    fields = _plain_fields(message)
    assert fields == by_the_models(message)
    assert fields is not None and fields.timestamp == "2026-01-05T09:00:00.000Z"


@pytest.mark.parametrize(
    "message",
    [
        {"type": "track", "userId": 111, "event": "E"},  # numeric id: the models convert it
        {"type": "track", "userId": "u", "event": "E", "timestamp": 1767600000},  # unix time
        {"type": "track", "userId": "u", "event": "E", "timestamp": "2026-01-05T10:00:00+01:00"},
        {"type": "track", "userId": "u", "event": "Caf\u00e9 Opened"},  # non-ASCII text
        {"type": "track", "userId": "u", "event": "E", "properties": {"caf\u00e9": 1}},
        {"type": "track", "userId": "u", "event": "E", "properties": {1: 1}},
        {"type": "track", "userId": "u", "event": "E", "context": None},
        {"type": "track", "userId": "u", "event": "E", "timestamp": "2026-02-30T00:00:00Z"},
        {"type": "track", "userId": "u", "event": "E" * 201},
        {"type": "alias", "userId": "u"},
    ],
)
def test_anything_the_models_convert_or_refuse_goes_to_the_models(message: dict[str, Any]) -> None:
    assert _plain_fields(message) is None


# -- generated messages: the fast path agrees with the models ------------------------------------
ascii_text = st.text(st.characters(max_codepoint=127), max_size=6)
any_text = st.text(max_size=6) | st.sampled_from(["", " ", "u\ud800", "caf\u00e9", "x" * 101, "x" * 1025])
ids = st.none() | ascii_text | any_text | st.integers(-5, 5) | st.booleans() | st.floats(allow_nan=False)
keys = ascii_text | any_text | st.integers(0, 3)
leaf = st.none() | st.booleans() | st.integers() | ascii_text
objects = st.none() | st.dictionaries(keys, leaf, max_size=3) | st.lists(leaf, max_size=2) | ascii_text
utc_z = st.builds(
    lambda moment, digits: (
        f"{moment.year:04d}-"
        + moment.strftime("%m-%dT%H:%M:%S")
        + (("." + f"{moment.microsecond:06d}0"[:digits]) if digits else "")
        + "Z"
    ),
    st.datetimes(),
    st.integers(0, 7),
)
timestamps = (
    st.none()
    | utc_z
    | st.sampled_from(
        [
            "2026-02-29T00:00:00Z",
            "2024-02-29T23:59:59.5Z",
            "0000-01-01T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-03-01T10:00:00+02:00",
            "2026-03-01T10:00:00",
            "2026-03-01",
            "2026-03-01T24:00:00Z",
            "yesterday",
            "",
        ]
    )
    | st.integers(0, 2_000_000_000)
    | st.floats(0, 2e9)
)
FIELDS = ["userId", "anonymousId", "messageId", "event", "name", "category", "groupId", "previousId"]
OBJECTS = ["context", "integrations", "properties", "traits"]


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    message: dict[str, Any] = {"type": draw(st.sampled_from([*spec.CALL_TYPES, "bogus", 3]))}
    for name in draw(st.lists(st.sampled_from(FIELDS), unique=True)):
        message[name] = draw(ids)
    for name in draw(st.lists(st.sampled_from(OBJECTS), unique=True)):
        message[name] = draw(objects)
    if draw(st.booleans()):
        message["timestamp"] = draw(timestamps)
    message.update(draw(st.dictionaries(keys, leaf, max_size=2)))
    return message


@settings(max_examples=1500, deadline=None)
@given(messages())
def test_the_fast_path_accepts_only_what_the_models_accept_and_reads_the_same_fields(message: dict[str, Any]) -> None:
    fast = _plain_fields(message)
    try:
        expected = by_the_models(message)
    except ValidationError:
        assert fast is None
        return
    if fast is not None:
        assert fast == expected
        assert [type(v) for v in fast] == [type(v) for v in expected]
    assert message_fields(message) == expected


def normalized(message: dict[str, Any], tenant: TenantConfig) -> str:
    """Everything normalize() decides for a message, as one comparable text."""
    try:
        result = normalize(
            MappedEvent(message, "evt-1", {"email": "a@b.co"}),
            tenant_id="acme",
            tenant=tenant,
            source="spec",
            integration=INTEGRATION,
        )
    except Rejected as exc:
        return f"rejected: {exc}"
    return f"{result.message_id} {result.size} {result.json}"


@settings(max_examples=800, deadline=None)
@given(messages(), st.sampled_from([TENANT, ANON_OK]))
def test_normalize_gives_the_same_bytes_ids_and_rejections_with_and_without_the_fast_path(
    message: dict[str, Any], tenant: TenantConfig
) -> None:
    with_fast_path = normalized(message, tenant)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(spec, "_plain_fields", lambda _: None)
        assert normalized(message, tenant) == with_fast_path


# -- timestamps ----------------------------------------------------------------------------------
@settings(max_examples=500, deadline=None)
@given(utc_z | st.text(st.sampled_from("0123456789-:TZ.+"), max_size=26))
def test_utc_text_is_the_models_formatting_of_the_same_text(raw: str) -> None:
    text = utc_text(raw)
    try:
        parsed = (
            message_adapter()
            .validate_python({"type": "track", "userId": "u", "event": "E", "timestamp": raw})
            .timestamp
        )
    except ValidationError:
        assert text is None
        return
    assert text is None or text == format_timestamp(parsed)


def test_utc_text_cuts_and_pads_the_fraction_to_milliseconds() -> None:
    assert utc_text("2026-03-01T10:00:00Z") == "2026-03-01T10:00:00.000Z"
    assert utc_text("2026-03-01T10:00:00.5Z") == "2026-03-01T10:00:00.500Z"
    assert utc_text("2026-03-01T10:00:00.999999Z") == "2026-03-01T10:00:00.999Z"
    assert utc_text("2026-03-01T10:00:00.1234567Z") is None  # pydantic's own rounding decides
    assert utc_text("2026-02-29T10:00:00Z") is None  # not a day
    assert format_timestamp(datetime(2026, 3, 1, 10, tzinfo=UTC)) == "2026-03-01T10:00:00.000Z"


def test_the_validator_is_built_on_first_use_only() -> None:
    assert message_adapter() is message_adapter()
    assert (
        json.loads(
            json.dumps(message_adapter().validate_python({"type": "identify", "userId": "u"}).model_dump(mode="json"))
        )["userId"]
        == "u"
    )
