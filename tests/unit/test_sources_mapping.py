"""The pieces every tool adapter shares: conversions, event tables, replay guards, URL signing,
and the property that no payload, however odd, crashes a mapping."""

from __future__ import annotations

import base64
import random
from datetime import UTC
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from twilio.request_validator import RequestValidator

from segment_bridge.events import MappedEvent, Rejected, Skipped
from segment_bridge.ingest.normalize import Integration, normalize
from segment_bridge.ingest.replay import DynamoDBReplayGuard, InMemoryReplayGuard
from segment_bridge.ingest.signatures import hmac_digest, url_params_payload, url_port_variants
from segment_bridge.ingest.sources import SOURCES, SourceSettings
from segment_bridge.ingest.sources.mapping import (
    SOURCE_EVENT_CONTEXT_KEY,
    EventTable,
    ToolEvent,
    compact,
    from_minor_units,
    from_unix,
    proper_case,
)
from segment_bridge.tenants import TenantConfig

SKIP = SourceSettings()
PASSTHROUGH = SourceSettings(unmapped_events="passthrough")


def test_unix_times_become_iso_utc_and_nonsense_becomes_none() -> None:
    assert from_unix(1513299569) == "2017-12-15T00:59:29Z"
    assert from_unix("1377075564.094891") == "2013-08-21T08:59:24.094891Z"
    for value in (None, "soon", True, float("nan"), 1e20, [1]):
        assert from_unix(value) is None


@settings(max_examples=500, deadline=None)
@given(
    st.integers(-(10**12), 10**13)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(0, 2 * 10**9).map(str)
    | st.floats(0, 2e9).map(repr)
)
def test_unix_times_of_whole_seconds_format_as_the_datetime_would(value: Any) -> None:
    """from_unix formats whole seconds with time.strftime; it must equal the datetime formatting."""
    from datetime import datetime

    try:
        expected = datetime.fromtimestamp(float(value), tz=UTC).isoformat().replace("+00:00", "Z")
    except (TypeError, ValueError, OverflowError, OSError):
        expected = None
    assert from_unix(value) == expected


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 253402300799), st.lists(st.integers(-130, 130), min_size=1, max_size=8))
def test_unix_times_close_together_format_as_the_datetime_would(start: int, offsets: list[int]) -> None:
    """Nearby times share a cached minute (a webhook's events do): hits, misses and minute, hour or
    day boundaries all give the datetime formatting."""
    from datetime import datetime

    for value in [start, *(start + offset for offset in offsets)]:
        try:
            expected = datetime.fromtimestamp(value, tz=UTC).isoformat().replace("+00:00", "Z")
        except (ValueError, OverflowError, OSError):
            expected = None
        assert from_unix(value) == expected
        assert from_unix(str(value)) == expected


def compact_by_definition(values: dict[str, Any]) -> dict[str, Any]:
    """What `compact` promises: None, "", [] and {} are missing; every other value (0, False) is kept."""
    return {k: v for k, v in values.items() if not (v is None or (isinstance(v, (str, list, dict)) and len(v) == 0))}


@settings(max_examples=500, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=3),
        st.none()
        | st.booleans()
        | st.integers(-1, 1)
        | st.floats(-1, 1)
        | st.text(max_size=2)
        | st.lists(st.integers(), max_size=1)
        | st.dictionaries(st.text(max_size=1), st.integers(), max_size=1),
        max_size=6,
    )
)
def test_compact_drops_exactly_the_missing_values_in_order(values: dict[str, Any]) -> None:
    """Both of compact's paths (a copy when every value is truthy, the filter otherwise)."""
    result = compact(values)
    assert result == compact_by_definition(values)
    assert list(result) == list(compact_by_definition(values))
    assert result is not values


def compact_tool_message(
    body: dict[str, Any],
    tool: str,
    kind: str,
    tool_id: str | None,
    key: str | None,
    timestamp: str | None,
    user_id: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
) -> MappedEvent:
    """The message shape as `compact` defines it (what `ToolEvent.message` spells out field by field)."""
    recipient = compact({"email": email, "phone": phone})
    context = compact(
        {
            "traits": recipient,
            "ip": ip,
            "userAgent": user_agent,
            SOURCE_EVENT_CONTEXT_KEY: compact({"tool": tool, "type": kind, "id": tool_id}),
        }
    )
    message = compact({**body, "userId": user_id, "timestamp": timestamp, "context": context})
    return MappedEvent(message, key, dict(recipient))


optional_text = st.none() | st.sampled_from(["", "x", "a@b.co", "0", " "])


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["track", "identify"])},
        optional={
            "event": st.sampled_from(["E", ""]),
            "properties": st.dictionaries(st.sampled_from("abc"), optional_text),
            "traits": st.dictionaries(st.sampled_from("abc"), optional_text),
        },
    ),
    st.lists(optional_text, min_size=10, max_size=10),
)
def test_tool_event_message_is_the_compacted_shape(body: dict[str, Any], fields: list[str | None]) -> None:
    tool, kind = fields[0] or "tool", fields[1] or "kind"
    args = (tool, kind, *fields[2:])
    assert ToolEvent(*args).message(dict(body)) == compact_tool_message(dict(body), *args)


@pytest.mark.parametrize(
    "amount,currency,expected",
    [
        (3000, "usd", 30.0),
        (1999, "EUR", 19.99),
        (500, "jpy", 500),
        (1000, "KRW", 1000),
        (5120, "kwd", 5.12),
        (100, "isk", 1.0),
        (7, None, 0.07),
        ("100", "usd", None),
        (True, "usd", None),
    ],
)
def test_minor_units(amount: Any, currency: str | None, expected: Any) -> None:
    assert from_minor_units(amount, currency) == expected


def test_proper_case_names() -> None:
    assert proper_case("Email", "group_resubscribe") == "Email Group Resubscribe"
    assert proper_case("", "setup_intent.created") == "Setup Intent Created"
    assert proper_case("SMS", "partially_delivered") == "SMS Partially Delivered"


def test_event_table_maps_skips_or_passes_through() -> None:
    table = EventTable(tool="tool", noun="Email", mapped={"open": "Email Opened"}, unmapped={"later": "Email Deferred"})
    assert table.resolve("open", SKIP) == "Email Opened"
    skipped = table.resolve("later", SKIP)
    assert isinstance(skipped, Skipped) and "'Email Deferred'" in skipped.reason
    assert table.resolve("later", PASSTHROUGH) == "Email Deferred"
    assert table.resolve("brand_new", PASSTHROUGH) == "Email Brand New"
    event = ToolEvent(tool="tool", kind="open", tool_id="1", key="1", timestamp=None, email="a@example.com")
    mapped = table.track(event, {"email_id": "m", "empty": None}, SKIP)
    assert isinstance(mapped, MappedEvent)
    assert mapped.message == {
        "type": "track",
        "event": "Email Opened",
        "properties": {"email_id": "m"},
        "context": {"traits": {"email": "a@example.com"}, "source_event": {"tool": "tool", "type": "open", "id": "1"}},
    }
    assert mapped.identity_hints == {"email": "a@example.com"} and mapped.event_key == "1"


# -- replay guards -----------------------------------------------------------------------------
def test_in_memory_guard_binds_a_token_to_its_first_body_until_it_expires() -> None:
    guard = InMemoryReplayGuard(max_entries=3)
    assert guard.claim("t1", "body-a", now=100, expires_at=400)
    assert guard.claim("t1", "body-a", now=200, expires_at=400)
    assert not guard.claim("t1", "body-b", now=200, expires_at=400)
    assert guard.claim("t1", "body-b", now=401, expires_at=700)  # expired: the window check guards it now
    for i in range(10):
        guard.claim(f"x{i}", "b", now=500, expires_at=800)
    assert len(guard) == 3  # bounded: the oldest go first


def test_dynamodb_guard_is_a_conditional_put() -> None:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName="replay",
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "key", "AttributeType": "S"}],
        )
        guard = DynamoDBReplayGuard("replay", dynamodb)
        assert guard.claim("t1", "body-a", now=100, expires_at=400)
        assert guard.claim("t1", "body-a", now=150, expires_at=400)
        assert not guard.claim("t1", "body-b", now=200, expires_at=400)
        assert guard.claim("t1", "body-b", now=401, expires_at=700)
        item = dynamodb.get_item(TableName="replay", Key={"key": {"S": "t1"}})["Item"]
        assert item["fingerprint"]["S"] == "body-b" and item["expires_at"]["N"] == "700"


# -- URL + params signing (Mandrill, Twilio) -----------------------------------------------------
params_strategy = st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=12), max_size=8)


@given(params=params_strategy, seed=st.integers())
def test_url_params_payload_ignores_param_order_and_matches_twilios_validator(
    params: dict[str, str], seed: int
) -> None:
    pairs = list(params.items())
    shuffled = pairs[:]
    random.Random(seed).shuffle(shuffled)
    url = "https://hooks.example.com/v1/webhooks/twilio/acme?x=1"
    assert url_params_payload(url, pairs) == url_params_payload(url, shuffled)
    ours = base64.b64encode(hmac_digest("token", url_params_payload(url, shuffled), "sha1")).decode()
    assert ours == RequestValidator("token").compute_signature(url, params)


def test_url_port_variants() -> None:
    assert url_port_variants("https://a.example/x?q=1") == ["https://a.example/x?q=1", "https://a.example:443/x?q=1"]
    assert url_port_variants("http://a.example:80/x") == ["http://a.example/x", "http://a.example:80/x"]


# -- no payload crashes a mapping ----------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)

#: The fields each adapter reads, so generated events reach past the first type check.
FIELDS = {
    "sendgrid": [
        "event",
        "email",
        "timestamp",
        "sg_event_id",
        "sg_message_id",
        "type",
        "ip",
        "useragent",
        "url",
        "asm_group_id",
        "category",
        "sg_machine_open",
        "user_id",
        "marketing_campaign_id",
    ],
    "mailgun": [
        "event",
        "id",
        "timestamp",
        "recipient",
        "severity",
        "reason",
        "delivery-status",
        "message",
        "campaigns",
        "tags",
        "user-variables",
        "ip",
        "client-info",
        "url",
        "mailing-list",
    ],
    "postmark": [
        "RecordType",
        "Type",
        "MessageID",
        "ID",
        "Recipient",
        "Email",
        "DeliveredAt",
        "ReceivedAt",
        "BouncedAt",
        "ChangedAt",
        "Metadata",
        "Geo",
        "UserAgent",
        "OriginalLink",
        "SuppressSending",
        "SuppressionReason",
        "Tag",
        "Subject",
        "Details",
    ],
    "mandrill": ["event", "_id", "ts", "msg", "ip", "user_agent", "url", "type", "action", "reject", "entry"],
    "stripe": ["id", "type", "created", "data"],
    "spec": ["type", "event", "userId", "anonymousId", "properties", "timestamp"],
}
KNOWN_VALUES = st.sampled_from(
    [
        "open",
        "click",
        "bounce",
        "failed",
        "Bounce",
        "SubscriptionChange",
        "delivered",
        "checkout.session.completed",
        "charge.refunded",
        "customer.created",
        "blacklist",
        "add",
        "track",
        "blocked",
        "permanent",
        "suppress-bounce",
        "paid",
    ]
)


def events_for(source: str) -> st.SearchStrategy[Any]:
    if source == "twilio":
        params = st.dictionaries(
            st.sampled_from(["MessageStatus", "MessageSid", "To", "From", "ErrorCode"]),
            st.text(max_size=12) | KNOWN_VALUES,
        )
        return (
            st.fixed_dictionaries(
                {
                    "params": params | json_values,
                    "query": json_values,
                    "received_at": st.floats() | st.integers() | st.none(),
                }
            )
            | json_values
        )
    fields = st.dictionaries(st.sampled_from(FIELDS[source]), json_values | KNOWN_VALUES, max_size=8)
    nested = st.fixed_dictionaries(
        {"data": st.fixed_dictionaries({"object": json_values}), "type": KNOWN_VALUES, "id": st.text(max_size=5)}
    )
    return fields | nested | json_values


@pytest.mark.parametrize("source", sorted(SOURCES))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_event_maps_skips_or_is_rejected_never_crashes(source: str, data: st.DataObject) -> None:
    event = data.draw(events_for(source))
    settings_ = data.draw(st.sampled_from([SKIP, PASSTHROUGH]))
    tenant = TenantConfig.model_validate({"write_key": "wk", "identity": {"missing_user_id": "anonymous"}})
    try:
        outcome = SOURCES[source].map_event(event, settings_)
        if isinstance(outcome, MappedEvent):
            normalize(outcome, tenant_id="acme", tenant=tenant, source=source, integration=Integration("t", "1.0.0"))
        else:
            assert isinstance(outcome, Skipped) and outcome.reason
    except Rejected as exc:
        assert str(exc)


def test_registry_loads_each_source_once_under_its_own_name() -> None:
    # Sources are imported on first use (cold start); every name must resolve, to one instance.
    from segment_bridge.ingest.sources import REGISTRY, get_source

    assert list(SOURCES) == list(REGISTRY) and len(SOURCES) == len(REGISTRY)
    for name in REGISTRY:
        assert SOURCES[name].name == name
        assert get_source(name) is SOURCES[name]
    assert get_source("nope") is None and "nope" not in SOURCES
