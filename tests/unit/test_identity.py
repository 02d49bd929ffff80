"""The identity loop's pure parts: normalization, keys, Segment calls read tolerantly, and resolution."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence

import pytest

from segment_bridge.auth import parse_basic_authorization
from segment_bridge.errors import MalformedRequest, UnsupportedCallType
from segment_bridge.events import MappedEvent
from segment_bridge.identity.destination import (
    Forget,
    Ignore,
    JoinGroup,
    Link,
    parse_body,
    plan,
    read_call,
)
from segment_bridge.identity.keys import IdentityMatch, Stamp, lookup_key, normalize_email, normalize_phone, user_key
from segment_bridge.identity.resolution import TableIdentityResolver, candidate_keys
from segment_bridge.tenants import TenantConfig

NOW_MS = 1_795_400_000_000
WITH_LOOP = TenantConfig.model_validate({"write_key": "wk", "destination": {"api_key": "k" * 16}})
WITHOUT_LOOP = TenantConfig.model_validate({"write_key": "wk"})


# -- normalization and keys --------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw, expected",
    [
        ("  Example@Test.COM ", "example@test.com"),
        ("first.last+tag@example.org", "first.last+tag@example.org"),
        ("not an address", None),
        ("two@@example.com", None),
    ],
)
def test_emails_are_trimmed_and_lower_cased(raw: str, expected: str | None) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("+1 (415) 555-0100", "+14155550100"),
        ("0044 20 7946 0958", "+442079460958"),
        ("415.555.0100", "4155550100"),
        ("12", None),
    ],
)
def test_phones_are_reduced_to_e164ish_digits(raw: str, expected: str | None) -> None:
    assert normalize_phone(raw) == expected


def test_keys_hold_no_address_and_differ_per_tenant() -> None:
    key = lookup_key("acme", "email", "Example@Test.com")
    assert key is not None and key.startswith("acme#email#") and "example" not in key.lower()
    assert key == lookup_key("acme", "email", " example@test.com")
    assert key.split("#")[2] != lookup_key("globex", "email", "example@test.com").split("#")[2]  # type: ignore[union-attr]
    assert lookup_key("acme", "email", "nope") is None
    assert user_key("acme", "user-1").startswith("acme#user#") and "user-1" not in user_key("acme", "user-1")


# -- reading Segment's calls -------------------------------------------------------------------
def test_field_casing_does_not_matter() -> None:
    call = read_call(
        {
            "Type": "IDENTIFY",
            "user_id": "u-1",
            "AnonymousID": "a-1",
            "MessageId": "m-1",
            "Timestamp": "2026-11-20T09:31:12.5Z",
            "Traits": {"EMAIL": "A@B.co", "phone_number": "+1 415 555 0100"},
        },
        NOW_MS,
    )
    assert (call.type, call.user_id, call.anonymous_id, call.email, call.phone) == (
        "identify",
        "u-1",
        "a-1",
        "A@B.co",
        "+1 415 555 0100",
    )
    assert call.stamp == Stamp(1_795_167_072_500, "m-1")


def test_context_traits_and_numeric_ids_are_used() -> None:
    call = read_call({"type": "identify", "userId": 42, "context": {"traits": {"email": "x@y.z"}}}, NOW_MS)
    assert call.user_id == "42" and call.email == "x@y.z"


def test_missing_message_id_and_timestamp_fall_back_to_content_and_arrival() -> None:
    message = {"type": "identify", "userId": "u", "traits": {"email": "x@y.z"}}
    first, again = read_call(message, NOW_MS), read_call(dict(message), NOW_MS)
    assert first.stamp == again.stamp and first.stamp.at_ms == NOW_MS
    assert first.stamp.message_id.startswith("sha256:")


@pytest.mark.parametrize(
    "raw, error",
    [
        ("a string", MalformedRequest),
        ({"userId": "u"}, MalformedRequest),
        ({"type": "unknown_call", "userId": "u"}, UnsupportedCallType),
        ({"type": "identify", "userId": "u" * 1025}, MalformedRequest),
    ],
)
def test_unreadable_calls_say_why(raw: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        read_call(raw, NOW_MS)


def _plan(message: dict) -> object:
    return plan("acme", read_call({"messageId": "m", "timestamp": "2026-11-20T00:00:00Z", **message}, NOW_MS))


def test_identify_links_email_phone_and_anonymous_id() -> None:
    operation = _plan(
        {"type": "identify", "userId": "u", "anonymousId": "a", "traits": {"email": "x@y.z", "phone": "+14155550100"}}
    )
    assert isinstance(operation, Link) and operation.user_id == "u"
    assert [key.split("#")[1] for key in operation.keys] == ["email", "phone", "anon"]


def test_each_call_type_plans_what_it_teaches() -> None:
    assert isinstance(_plan({"type": "track", "event": "E", "userId": "u", "anonymousId": "a"}), Link)
    assert isinstance(_plan({"type": "alias", "userId": "u", "previousId": "a"}), Link)
    assert isinstance(_plan({"type": "group", "userId": "u", "groupId": "g"}), JoinGroup)
    assert isinstance(_plan({"type": "delete", "userId": "u"}), Forget)
    assert isinstance(_plan({"type": "page", "anonymousId": "a"}), Ignore)
    assert isinstance(_plan({"type": "identify", "userId": "u", "traits": {"name": "No Address"}}), Ignore)
    assert isinstance(_plan({"type": "group", "anonymousId": "a", "groupId": "g"}), Ignore)


@pytest.mark.parametrize(
    "message", [{"type": "delete"}, {"type": "group", "userId": "u"}, {"type": "alias", "userId": "u"}]
)
def test_calls_missing_a_required_id_are_malformed(message: dict) -> None:
    with pytest.raises(MalformedRequest):
        _plan(message)


def test_bodies_can_be_one_message_a_batch_object_or_an_array() -> None:
    assert parse_body(b'{"type": "identify"}') == ([{"type": "identify"}], False)
    assert parse_body(b'{"batch": [{"type": "identify"}]}') == ([{"type": "identify"}], True)
    assert parse_body(b'[{"type": "identify"}]') == ([{"type": "identify"}], True)
    for bad in (b"{", b'"text"', b'{"batch": {}}'):
        with pytest.raises(MalformedRequest):
            parse_body(bad)


def basic(value: str) -> str:
    return "Basic " + base64.b64encode(value.encode()).decode()


def test_basic_auth_carries_the_key_before_the_colon() -> None:
    assert parse_basic_authorization(basic("segment:")) == ("segment", "")
    assert parse_basic_authorization("basic c2VnbWVudDo=") == ("segment", "")  # Segment's own example, any scheme case
    assert parse_basic_authorization(basic("key-without-colon")) == ("key-without-colon", "")
    assert parse_basic_authorization(basic("user:pass:word")) == ("user", "pass:word")  # RFC 7617: user ends at ':'
    for bad in (None, "", "Bearer abc", "Basic !!!", "Basic " + "//79"):  # the last is not UTF-8
        assert parse_basic_authorization(bad) is None
    assert parse_basic_authorization(basic(":")) == ("", "")  # the destination refuses an empty key


# -- resolution on the ingest path ---------------------------------------------------------------
class FakeLookup:
    def __init__(self, links: Mapping[str, IdentityMatch]) -> None:
        self.links = dict(links)
        self.calls: list[list[str]] = []

    def lookup(self, keys: Sequence[str]) -> dict[str, IdentityMatch]:
        self.calls.append(list(keys))
        return {key: self.links[key] for key in keys if key in self.links}


def event(email: str | None = None, **message: object) -> MappedEvent:
    return MappedEvent(
        message={"type": "track", "event": "Email Opened", **message}, identity_hints={"email": email} if email else {}
    )


def test_resolution_fills_user_and_group_ids_in_one_lookup() -> None:
    known = lookup_key("acme", "email", "known@example.com")
    lookup = FakeLookup({known: IdentityMatch("user-1", "acct-7")})  # type: ignore[dict-item]
    events = [
        event("Known@Example.com"),
        event("known@example.com", context={"groupId": "mine"}),
        event("stranger@example.com"),
        event("known@example.com", userId="already"),
    ]
    resolution = TableIdentityResolver(lookup).resolve("acme", WITH_LOOP, events)
    assert (resolution.resolved, resolution.missed) == (2, 1)
    assert len(lookup.calls) == 1 and len(lookup.calls[0]) == 2  # deduplicated, and no key for events with a userId
    assert events[0].message["userId"] == "user-1" and events[0].message["context"] == {"groupId": "acct-7"}
    assert events[1].message["context"] == {"groupId": "mine"}  # what the tool said is kept
    assert "userId" not in events[2].message
    assert events[3].message["userId"] == "already"


def test_an_anonymous_id_is_tried_after_the_recipient() -> None:
    anon = lookup_key("acme", "anon", "anon-9")
    lookup = FakeLookup({anon: IdentityMatch("user-9")})  # type: ignore[dict-item]
    events = [event("unknown@example.com", anonymousId="anon-9")]
    assert candidate_keys("acme", events[0])[-1] == anon
    assert TableIdentityResolver(lookup).resolve("acme", WITH_LOOP, events).resolved == 1
    assert events[0].message["userId"] == "user-9"


def test_tenants_without_the_loop_cost_no_lookup() -> None:
    lookup = FakeLookup({})
    resolution = TableIdentityResolver(lookup).resolve("acme", WITHOUT_LOOP, [event("x@example.com")])
    assert (resolution.resolved, resolution.missed, lookup.calls) == (0, 0, [])
    TableIdentityResolver(lookup).resolve("acme", WITH_LOOP, [event(), event(userId="u")])
    assert lookup.calls == []  # nothing to look up: no read either


def test_secret_json_keeps_the_destination_key_and_masked_hides_it() -> None:
    assert json.loads(WITH_LOOP.to_secret_json())["destination"] == {"api_key": "k" * 16}
    assert WITH_LOOP.masked()["destination"] == {"api_key": "**********"}
