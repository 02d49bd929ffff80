"""The caps on untrusted input, at their edges, with the deployment's default limits (4 MiB bodies).

Each test here pins one invariant violation found while hardening (they were 500s or 502s before
the fix; docs/security.md lists them) or one cap's exact edge.
"""

from __future__ import annotations

import base64
import gzip
import json
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segment_bridge.apigw import encode_bounded
from segment_bridge.ingest.signatures import sign_timestamped
from segment_bridge.ingest.sources import SOURCES
from segment_bridge.limits import MAX_EVENTS_PER_REQUEST, MAX_JSON_DEPTH, MAX_REPORT_TEXT_CHARS, MAX_RESPONSE_BYTES
from segment_bridge.safe_json import nesting_exceeds
from segment_bridge_tools.lambda_events import api_gateway_event
from tests.conftest import SIGNING_SECRET, TENANT

from .conftest import HARDENING
from .support import LONG_RUN, STAGE, Harness, assert_invariants, signed

MAX_BODY = 4 * 1024 * 1024


@pytest.fixture
def full(aws: dict[str, str]) -> Harness:
    """The handler with the default MAX_BODY_BYTES and the plain `acme` tenant (spec only)."""
    return Harness(aws["queue_url"])


def spec_event(body: bytes, headers: dict[str, str] | None = None, **kwargs: Any) -> dict[str, Any]:
    all_headers = {
        "Content-Type": "application/json",
        "X-Signature": sign_timestamped(SIGNING_SECRET, body),
        **(headers or {}),
    }
    return api_gateway_event("POST", f"/v1/webhooks/spec/{TENANT}", body, all_headers, **kwargs)


def track(i: int = 0, **extra: Any) -> dict[str, Any]:
    return {"type": "track", "userId": f"u{i}", "event": "Order Completed", **extra}


# -- nesting depth ------------------------------------------------------------------------------------
def depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


brackety_text = st.text(alphabet=st.sampled_from('[]{}"\\ab,:'), max_size=8)
nested_values = st.recursive(
    st.none() | st.integers() | brackety_text,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(brackety_text, c, max_size=3),
    max_leaves=40,
)


@pytest.mark.fuzz
@HARDENING
@given(value=nested_values, limit=st.integers(0, 12), ensure_ascii=st.booleans())
def test_nesting_check_agrees_with_the_real_depth(value: Any, limit: int, ensure_ascii: bool) -> None:
    """Strings full of brackets, quotes and escapes never fool the byte-level depth check."""
    text = json.dumps(value, ensure_ascii=ensure_ascii)
    assert nesting_exceeds(text.encode("utf-8", "surrogatepass"), limit) == (depth(value) > limit)


def test_nesting_up_to_the_cap_is_accepted_and_one_more_level_is_not(full: Harness) -> None:
    for levels, status in ((MAX_JSON_DEPTH - 3, 202), (MAX_JSON_DEPTH - 2, 202), (MAX_JSON_DEPTH - 1, 400)):
        inner = "[" * levels + "]" * levels  # plus 2: the message and its properties
        body = json.dumps(track(properties={"x": "INNER"})).replace('"INNER"', inner).encode()
        call = full.invoke(spec_event(body))
        assert_invariants(call)
        assert call.status == status, (levels, call.text[:200])


def test_hostile_nesting_is_a_400_not_a_recursion_error(full: Harness) -> None:
    """Found: 100k nested arrays raised RecursionError in json.loads -> 500 (and ~990 levels parsed,
    then blew up in json.dumps during normalization). Fixed by safe_json's depth cap."""
    for levels in (MAX_JSON_DEPTH + 1, 999, 5_000, 100_000):
        for inner in ("[" * levels + "]" * levels, '{"a":' * levels + "0" + "}" * levels):
            for body in (inner.encode(), f'{{"batch":{inner}}}'.encode()):
                call = full.invoke(spec_event(body))
                assert_invariants(call)
                assert call.status == 400 and "deeper than" in call.body["message"], (levels, inner[:8])


def test_hostile_nesting_in_every_source_and_the_destination(harness: Harness) -> None:
    deep = "[" * 50_000 + "]" * 50_000
    for source in sorted(SOURCES):
        path = f"/v1/webhooks/{source}/acme"
        if source in ("mandrill", "twilio"):
            raw = ("mandrill_events=" + deep).encode()
        elif source == "mailgun":
            raw = ('{"event-data":' + deep + "}").encode()
        else:
            raw = deep.encode()
        try:
            headers, body = signed(source, "acme", raw, path)
        except RecursionError:  # Mailgun's signer parses the body itself: sign a shallow body, send the deep one
            headers, shallow = signed(source, "acme", b'{"event-data":{}}', path)
            body = shallow.replace(b'"event-data": {}', ('"event-data": ' + deep).encode())
        call = harness.invoke(api_gateway_event("POST", path, body, headers, stage=STAGE, domain="localhost"))
        assert_invariants(call)
        assert call.status in (400, 401, 413) and call.status != 202, (source, call.text[:200])


# -- sizes and counts ---------------------------------------------------------------------------------
def test_the_event_cap_is_a_413_and_nothing_is_enqueued(full: Harness) -> None:
    over = json.dumps({"batch": [track(i) for i in range(MAX_EVENTS_PER_REQUEST + 1)]}).encode()
    call = full.invoke(spec_event(over))
    assert_invariants(call)
    assert call.status == 413 and str(MAX_EVENTS_PER_REQUEST) in call.body["message"]


def test_the_largest_allowed_batch_is_accepted_in_bounded_time(full: Harness) -> None:
    body = json.dumps(
        {"batch": [track(i, properties={"order_id": str(i), "total": 9.99}) for i in range(MAX_EVENTS_PER_REQUEST)]}
    ).encode()
    call = full.invoke(spec_event(body))
    assert_invariants(call, max_seconds=10)
    assert call.status == 202 and call.enqueued == MAX_EVENTS_PER_REQUEST


def test_a_body_over_max_body_bytes_is_a_413_before_any_parsing(full: Harness) -> None:
    body = b'{"type":"track","userId":"u","event":"E","properties":{"p":"' + b"x" * MAX_BODY + b'"}}'
    call = full.invoke(spec_event(body))
    assert_invariants(call)
    assert call.status == 413


def test_reports_that_quote_the_input_are_trimmed_to_a_bounded_response(full: Harness) -> None:
    """Found: conformance reports quote event names and keys, so a 4 MiB body made a 10-20 MB
    response, over Lambda's 6 MB limit (API Gateway answers 502). Fixed: apigw.encode_bounded."""
    long_names = json.dumps(
        {"batch": [{"type": "track", "userId": "u", "event": "eventName" + "Ab" * 150 + str(i)} for i in range(10_000)]}
    ).encode()
    many_keys = json.dumps(track(properties={f"{'AbC' * 100}{i}": 1 for i in range(4_000)})).encode()
    for body in (long_names, many_keys):
        assert len(body) < MAX_BODY
        call = full.invoke(spec_event(body))
        assert_invariants(call, max_seconds=15)
        assert call.body["truncated"] is True and sum(call.body["omitted"].values()) > 0
        assert len(call.text) <= MAX_RESPONSE_BYTES


def test_bounded_encoding_keeps_small_bodies_and_trims_lists_in_order() -> None:
    small = {"accepted": 1, "messageIds": ["a"], "rejected": []}
    assert json.loads(encode_bounded(small)) == small
    big = {
        "message": "m" * 2000,
        "accepted": 3,
        "messageIds": ["a", "b", "c"],
        "rejected": [{"index": i, "message": "r" * 5000} for i in range(100)],
    }
    trimmed = json.loads(encode_bounded(big, max_bytes=20_000))
    assert trimmed["messageIds"] == ["a", "b", "c"] and trimmed["truncated"] is True
    assert len(trimmed["message"]) == MAX_REPORT_TEXT_CHARS
    assert [r["index"] for r in trimmed["rejected"]] == list(range(len(trimmed["rejected"])))
    assert trimmed["omitted"] == {"rejected": 100 - len(trimmed["rejected"])}
    assert len(encode_bounded(big, max_bytes=20_000)) <= 20_000


# -- encodings ----------------------------------------------------------------------------------------
def test_a_lone_surrogate_in_a_text_body_is_a_400(full: Harness) -> None:
    """Found: a non-base64 body holding a lone surrogate (\\ud800) made str.encode raise -> 500."""
    event = spec_event(b"{}")
    event["body"], event["isBase64Encoded"] = '{"type":"track","x":"\ud800"}', False
    call = full.invoke(event)
    assert_invariants(call)
    assert call.status == 400


def test_compressed_bodies_are_refused_with_415(full: Harness) -> None:
    body = gzip.compress(json.dumps(track()).encode())
    for encoding in ("gzip", "GZIP", "br", "deflate", "gzip, identity"):
        call = full.invoke(spec_event(body, {"Content-Encoding": encoding}))
        assert_invariants(call)
        assert call.status == 415 and "Content-Encoding" in call.body["message"]


def test_media_type_parameters_and_case_are_accepted(full: Harness) -> None:
    body = json.dumps(track(), ensure_ascii=False).encode()
    for content_type in (
        "application/json; charset=utf-8",
        "Application/JSON;charset=UTF-8",
        " application/json ",
        "application/json; foo=bar",
    ):
        call = full.invoke(spec_event(body, {"Content-Type": content_type, "Content-Encoding": "identity"}))
        assert_invariants(call)
        assert call.status == 202, content_type


def test_invalid_base64_is_a_400(full: Harness) -> None:
    for raw in ("%%%", "YQ", "é", "YWJj\n", "====", "Y" * 5):
        event = spec_event(b"{}")
        event["body"] = raw
        call = full.invoke(event)
        assert_invariants(call)
        assert call.status == 400, raw


def test_odd_json_is_refused_cleanly(full: Harness) -> None:
    for body in (
        b"\xef\xbb\xbf{}",
        b"\xff\xfe{\x00}\x00",
        b'{"type":"track","event":"\xff"}',
        b'{"a":NaN}',
        b"9" * 5000,
        b"[" + b"1," * 100_000 + b"1]",
        b"\x00",
    ):
        call = full.invoke(spec_event(body))
        assert_invariants(call)
        assert call.status in (400, 413, 422), body[:20]


@pytest.mark.fuzz
@pytest.mark.skipif(not LONG_RUN, reason="several seconds: runs in `make fuzz`")
def test_worst_shapes_at_the_size_limit_finish_within_the_lambda_timeout(full: Harness) -> None:
    """Linear, but with a constant: the heaviest shapes found (camelCase keys the reviewer renames
    and values it converts, in 32 KB events). Measured locally ~5 s; the ingest function has 20 s
    at 512 MB (about 0.3 vCPU), see docs/security.md "Known limits"."""
    event = {
        "type": "track",
        "userId": "u",
        "event": "Order Completed",
        "properties": {f"camelKey{j}Name": "12.5" for j in range(900)},
    }
    one = json.dumps(event)
    body = ('{"batch":[' + ",".join([one] * (MAX_BODY // (len(one) + 1) - 1)) + "]}").encode()
    started = time.thread_time()
    call = full.invoke(spec_event(body))
    assert_invariants(call, max_seconds=15)
    assert call.status == 202, call.text[:200]
    assert time.thread_time() - started < 15


def test_base64_body_is_decoded_once(full: Harness) -> None:
    body = json.dumps(track()).encode()
    event = spec_event(body)
    event["body"] = base64.b64encode(base64.b64encode(body)).decode()  # doubly encoded: not the signed bytes
    call = full.invoke(event)
    assert_invariants(call)
    assert call.status == 401


def test_a_duplicated_signature_header_is_read_as_api_gateway_delivers_it(full: Harness) -> None:
    """Two X-Signature values: API Gateway puts both in multiValueHeaders and the last in headers,
    which is the one the handler reads. A good signature followed by garbage is refused; the other
    order is the good signature alone. Either way, one value is checked, never a mix."""
    body = json.dumps(track()).encode()
    good = sign_timestamped(SIGNING_SECRET, body)
    for values, status in (([good, "t=1,v1=00"], 401), (["t=1,v1=00", good], 202)):
        event = spec_event(body)
        event["multiValueHeaders"]["X-Signature"] = values
        event["headers"]["X-Signature"] = values[-1]
        call = full.invoke(event)
        assert_invariants(call)
        assert call.status == status, values


def test_missing_headers_are_a_clean_refusal(full: Harness) -> None:
    body = json.dumps(track()).encode()
    for drop in ("Content-Type", "X-Signature"):
        event = spec_event(body)
        del event["headers"][drop]
        del event["multiValueHeaders"][drop]
        call = full.invoke(event)
        assert_invariants(call)
        assert call.status == {"Content-Type": 415, "X-Signature": 401}[drop]
    event = spec_event(body)
    event["headers"] = event["multiValueHeaders"] = None  # API Gateway sends null for no headers
    call = full.invoke(event)
    assert_invariants(call)
    assert call.status == 415
