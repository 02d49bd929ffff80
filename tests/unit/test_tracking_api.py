"""Reading Segment's Tracking API (`ingest.tracking_api`) and bridge keys (`tenants`): pure logic."""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segment_bridge.errors import MalformedRequest, UnsupportedMediaType
from segment_bridge.ingest import tracking_api
from segment_bridge.ingest.tracking_api import MAX_REQUEST_BYTES, TrackingRequest, answer, decoded_body, read_call
from segment_bridge.tenants import (
    MAX_BRIDGE_KEYS,
    BridgeKey,
    TenantConfig,
    bridge_key_digest,
    bridge_key_matches,
    new_bridge_key,
    split_bridge_key,
)

JSON = {"content-type": "application/json"}
NOW = 1_796_000_000.0  # 2026-11-30T...Z


def request(route: str, body: Any, headers: dict[str, str] | None = None) -> TrackingRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return TrackingRequest(route=route, body=raw, headers={**JSON, **(headers or {})}, received_at=NOW)


def read(route: str, body: Any) -> tracking_api.TrackingCall:
    req = request(route, body)
    return read_call(req, decoded_body(req))


# -- bodies ------------------------------------------------------------------------------------------
def test_single_call_takes_its_type_from_the_route() -> None:
    call = read("track", {"type": "identify", "userId": "u", "event": "Order Completed"})
    assert call.messages[0]["type"] == "track"


def test_batch_context_and_integrations_are_merged_into_each_item_the_item_winning() -> None:
    call = read(
        "batch",
        {
            "batch": [
                {"type": "track", "userId": "u", "event": "A", "context": {"ip": "1.2.3.4"}},
                {"type": "identify", "userId": "u", "integrations": {"All": True}},
            ],
            "context": {"ip": "9.9.9.9", "library": {"name": "x"}},
            "integrations": {"All": False, "Mixpanel": True},
        },
    )
    first, second = call.messages
    assert first["context"] == {"ip": "1.2.3.4", "library": {"name": "x"}}
    assert first["integrations"] == {"All": False, "Mixpanel": True}
    assert second["context"] == {"ip": "9.9.9.9", "library": {"name": "x"}}
    assert second["integrations"] == {"All": True, "Mixpanel": True}


def test_write_key_and_sent_at_are_removed_and_the_key_returned() -> None:
    call = read("batch", {"batch": [{"type": "track", "sentAt": "x"}], "writeKey": "acme.sbk_x", "sentAt": None})
    assert call.credential == "acme.sbk_x"
    assert "sentAt" not in call.messages[0]
    call = read("track", {"userId": "u", "writeKey": "k", "event": "E"})
    assert call.credential == "k" and "writeKey" not in call.messages[0]


def test_a_non_string_write_key_is_no_credential() -> None:
    assert read("track", {"writeKey": 12345, "event": "E"}).credential is None


@pytest.mark.parametrize(
    ("route", "body", "words"),
    [
        ("batch", [1, 2], "JSON object"),
        ("batch", {"batch": {"type": "track"}}, '"batch" must be an array'),
        ("batch", {"messages": []}, '"batch" must be an array'),
        ("track", "text", "JSON object"),
        ("track", b"{not json", "not valid JSON"),
    ],
)
def test_a_body_that_is_not_segments_format_is_400_saying_what_to_send(route: str, body: Any, words: str) -> None:
    with pytest.raises(MalformedRequest, match=words):
        read(route, body)


def test_items_that_are_not_objects_are_kept_for_a_per_message_refusal() -> None:
    assert read("batch", {"batch": [1, {"type": "track"}]}).messages[0] == 1
    with pytest.raises(Exception, match="JSON object"):
        tracking_api.map_message(1)


# -- clock skew ----------------------------------------------------------------------------------------
def iso(seconds: float) -> str:
    from datetime import UTC, datetime

    value = datetime.fromtimestamp(seconds, UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def test_a_library_clock_an_hour_behind_moves_its_timestamps_as_segment_would() -> None:
    call = read("batch", {"batch": [{"type": "track", "timestamp": iso(NOW - 3600 - 60)}], "sentAt": iso(NOW - 3600)})
    assert call.messages[0]["timestamp"] == iso(NOW - 60)


def test_latency_under_the_tolerance_keeps_timestamps_byte_for_byte() -> None:
    stamp = "2026-11-30T01:02:03.456789+00:00"
    call = read("batch", {"batch": [{"type": "track", "timestamp": stamp}], "sentAt": iso(NOW - 0.4)})
    assert call.messages[0]["timestamp"] == stamp


def test_a_message_without_timestamp_gets_the_time_it_was_received() -> None:
    # Delivery may be hours later (an outage); Segment would have used its own receivedAt.
    assert read("track", {"event": "E"}).messages[0]["timestamp"] == iso(NOW)


def test_an_unreadable_sent_at_or_timestamp_is_left_for_the_spec_checks() -> None:
    call = read("batch", {"batch": [{"type": "track", "timestamp": "yesterday"}], "sentAt": "soon"})
    assert call.messages[0]["timestamp"] == "yesterday"
    call = read("batch", {"batch": [{"type": "track", "timestamp": "yesterday"}], "sentAt": iso(NOW - 999)})
    assert call.messages[0]["timestamp"] == "yesterday"


@pytest.mark.parametrize(
    ("timestamp", "sent_at"),
    [
        ("9999-12-31T00:00:00Z", "1970-01-01T00:00:00Z"),  # the skew would move it past 9999
        ("0001-01-02T00:00:00Z", "9999-12-31T00:00:00Z"),  # ... or before year 1
    ],
)
def test_a_correction_past_the_calendar_is_not_made(timestamp: str, sent_at: str) -> None:
    call = read("batch", {"batch": [{"type": "track", "timestamp": timestamp}], "sentAt": sent_at})
    assert call.messages[0]["timestamp"] == timestamp


@pytest.mark.parametrize("sent_at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_sent_at_whose_utc_form_leaves_the_calendar_is_unreadable(sent_at: str) -> None:
    stamp = iso(NOW - 7200)
    call = read("batch", {"batch": [{"type": "track", "timestamp": stamp}], "sentAt": sent_at})
    assert call.messages[0]["timestamp"] == stamp


# -- encodings and size ----------------------------------------------------------------------------------
def test_gzip_bodies_are_read_and_other_encodings_refused() -> None:
    body = json.dumps({"batch": [{"type": "track"}]}).encode()
    req = request("batch", gzip.compress(body), {"content-encoding": "gzip"})
    assert decoded_body(req) == body
    with pytest.raises(UnsupportedMediaType, match="gzip or absent"):
        decoded_body(request("batch", body, {"content-encoding": "br"}))


def test_concatenated_gzip_members_are_one_body() -> None:
    req = request("batch", gzip.compress(b'{"batch":') + gzip.compress(b"[]}"), {"content-encoding": "gzip"})
    assert decoded_body(req) == b'{"batch":[]}'


def test_members_up_to_the_cap_are_read_one_more_is_400() -> None:
    cap = tracking_api.MAX_GZIP_MEMBERS
    members = [gzip.compress(b"[]"[i % 2 : i % 2 + 1] if i < 2 else b" ") for i in range(cap)]
    assert decoded_body(request("batch", b"".join(members), {"content-encoding": "gzip"})) == b"[]" + b" " * (cap - 2)
    with pytest.raises(MalformedRequest, match=f"more than {cap} members"):
        decoded_body(request("batch", b"".join(members) + gzip.compress(b" "), {"content-encoding": "gzip"}))


@settings(max_examples=60, deadline=None)
@given(
    parts=st.lists(st.binary(max_size=40_000), min_size=1, max_size=6),
    level=st.integers(0, 9),
)
def test_gzip_members_across_chunk_boundaries_inflate_to_their_concatenation(parts: list[bytes], level: int) -> None:
    """Members of any size, ending anywhere in a `GZIP_CHUNK_BYTES` chunk (incompressible ones span several)."""
    body = b"".join(gzip.compress(part, compresslevel=level, mtime=0) for part in parts)
    assert tracking_api.gunzip_bounded(body, MAX_REQUEST_BYTES) == b"".join(parts)


@pytest.mark.parametrize(
    ("data", "words"),
    [(b"not gzip at all", "not valid gzip"), (gzip.compress(b'{"batch": []}')[:-12], "truncated")],
)
def test_broken_gzip_is_400(data: bytes, words: str) -> None:
    with pytest.raises(MalformedRequest, match=words):
        decoded_body(request("batch", data, {"content-encoding": "gzip"}))


def test_a_gzip_bomb_is_never_inflated_past_the_cap() -> None:
    bomb = gzip.compress(b" " * (64 * 1024 * 1024), compresslevel=9)  # 64 MiB of spaces in ~64 KB
    assert len(bomb) < 100_000
    inflated: list[int] = []
    real = zlib.decompressobj

    class Counting:
        def __init__(self, **kwargs: Any) -> None:
            self._inner = real(**kwargs)

        def decompress(self, data: bytes, max_length: int = 0) -> bytes:
            out = self._inner.decompress(data, max_length)
            inflated.append(len(out))
            return out

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

    req = request("batch", bomb, {"content-encoding": "gzip"})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(zlib, "decompressobj", Counting)
        with pytest.raises(MalformedRequest, match="decompressed body is over"):
            decoded_body(req)
    assert sum(inflated) <= MAX_REQUEST_BYTES + 1


def test_an_uncompressed_body_over_the_cap_is_400_not_413() -> None:
    # Segment answers 400 to an oversized request; the libraries do not retry it.
    with pytest.raises(MalformedRequest, match="500 KB"):
        decoded_body(request("batch", b" " * (MAX_REQUEST_BYTES + 1)))


@pytest.mark.parametrize("media", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_only_json_is_taken(media: str) -> None:
    with pytest.raises(UnsupportedMediaType, match="application/json"):
        decoded_body(TrackingRequest("batch", b"{}", {"content-type": media}))


def test_basic_credential_is_the_username() -> None:
    header = "Basic " + base64.b64encode(b"acme.sbk_abc:").decode()
    assert tracking_api.basic_credential(TrackingRequest("batch", b"", {"authorization": header})) == "acme.sbk_abc"
    assert tracking_api.basic_credential(TrackingRequest("batch", b"", {"authorization": "Bearer x"})) is None


# -- answers ---------------------------------------------------------------------------------------------
def test_answers_libraries_understand() -> None:
    ok = answer(3, [{"index": 1, "message": "userId is required"}])
    assert (ok.status, ok.body) == (200, {"success": True, "rejected": [{"index": 1, "message": "userId is required"}]})
    assert answer(2, []).body == {"success": True}
    assert ok.headers == {"X-Bridge-Accepted": "3", "X-Bridge-Refused": "1"}
    refused = answer(0, [{"index": i, "message": f"reason {i}"} for i in range(5)])
    assert refused.status == 400 and refused.body["success"] is False
    assert refused.body["message"].startswith("no message was accepted: [0] reason 0; [1] reason 1; [2] reason 2")
    assert "(and 2 more)" in refused.body["message"]
    assert answer(0, []).status == 200  # an empty batch: nothing to refuse


# -- bridge keys -------------------------------------------------------------------------------------------
def config_with(*keys: BridgeKey) -> TenantConfig:
    return TenantConfig(write_key="w" * 32, bridge_keys=keys)


def test_a_new_key_names_its_tenant_and_only_its_hash_is_kept() -> None:
    key, stored = new_bridge_key("acme", "2026-12-02T00:00:00Z")
    tenant, secret = split_bridge_key(key) or ("", "")
    assert tenant == "acme" and secret.startswith("sbk_") and len(secret) == 4 + 43
    assert stored.sha256 == bridge_key_digest(secret) and stored.id == stored.sha256[:8]
    assert secret not in config_with(stored).to_secret_json()
    assert bridge_key_matches(config_with(stored), secret)


def test_two_keys_both_match_and_a_third_is_refused_by_the_model() -> None:
    (_, a), (kb, b) = new_bridge_key("acme", "t"), new_bridge_key("acme", "t")
    config = config_with(a, b)
    assert bridge_key_matches(config, (split_bridge_key(kb) or ("", ""))[1])
    with pytest.raises(ValueError, match="at most 2"):
        config_with(a, b, new_bridge_key("acme", "t")[1])
    assert MAX_BRIDGE_KEYS == 2


def test_wrong_key_no_keys_and_no_tenant_never_match() -> None:
    key, stored = new_bridge_key("acme", "t")
    secret = (split_bridge_key(key) or ("", ""))[1]
    assert not bridge_key_matches(config_with(stored), secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    assert not bridge_key_matches(config_with(), secret)
    assert not bridge_key_matches(None, secret)


def test_masked_view_shows_ids_not_hashes() -> None:
    _, stored = new_bridge_key("acme", "2026-12-02T00:00:00Z")
    view = config_with(stored).masked()
    assert view["bridge_keys"] == [{"id": stored.id, "created_at": "2026-12-02T00:00:00Z"}]
    assert stored.sha256 not in json.dumps(view)


@pytest.mark.parametrize(
    "credential",
    [
        "",
        "acme",
        "acme.",
        "acme.sbk_",
        "acme.notakey_0123456789abcdefghij",
        "ac/me.sbk_0123456789abcdefghij",
        ".sbk_0123456789abcdefghij",
        "acme.sbk_0123456789abcdefghij" + "x" * 200,
        "acme.sbk_0123456789abcdef:ghij",
    ],
)
def test_credentials_not_shaped_like_a_bridge_key_are_none(credential: str) -> None:
    assert split_bridge_key(credential) is None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_splits_to_a_valid_tenant_or_none(text: str) -> None:
    parts = split_bridge_key(text)
    if parts is not None:
        from segment_bridge.tenants import is_valid_tenant_id

        assert is_valid_tenant_id(parts[0]) and text == f"{parts[0]}.{parts[1]}"


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=20,
    ),
    st.sampled_from(sorted(tracking_api.ROUTES)),
)
def test_any_json_body_is_read_or_refused_with_a_400(body: Any, route: str) -> None:
    try:
        call = read(route, body)
    except MalformedRequest as exc:
        assert exc.status_code == 400 and exc.message
        return
    assert isinstance(call.messages, list)
    for message in call.messages:
        if isinstance(message, dict):
            assert "writeKey" not in message and "sentAt" not in message
