"""Property-based fuzzing of Segment's Tracking API routes (`/v1/batch`, `/v1/import`, `/v1/track`...).

`FUZZ_EXAMPLES` examples per property (200 in `make test`, 2000 in `make fuzz`), each a full API
Gateway event through the real `ingest_handler.lambda_handler`, on moto. Requests are drawn by
`strategies.tracking_requests`: any route (and near-misses of the paths), any body (library-shaped
batches and single calls, Spec messages with hostile fields, any JSON, the webhook fuzzers' raw
bodies), the bridge key as Basic username or body `writeKey` (valid, another tenant's, wrong,
unknown tenant, malformed, both places at once), any Content-Type, and gzip in every form (valid,
members, empty members, truncated, trailing bytes, nested, bombs, zlib labelled gzip).
"""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from segment_bridge.ingest import tracking_api
from segment_bridge.queue_format import read_body
from segment_bridge_tools.lambda_events import api_gateway_event

from .conftest import HARDENING
from .strategies import (
    TRACKING_ROUTES,
    VALID_KEYS,
    DrawnTracking,
    bodies,
    encode_json,
    gzip_bomb,
    gzip_members,
    json_payloads,
    tracking_payloads,
    tracking_requests,
)
from .support import (
    FUZZ_EXAMPLES,
    HOST,
    STAGE,
    TENANTS,
    Call,
    Harness,
    assert_invariants,
    basic,
    bridge_key,
)

pytestmark = pytest.mark.fuzz

#: Properties whose every example is an authenticated pipeline run: half as many (as test_fuzz_ingest.py).
HEAVY = settings(HARDENING, max_examples=max(10, FUZZ_EXAMPLES // 2))
#: What a POST to a Tracking API route may answer (docs/openapi.yaml, tag `tracking`; 503 only when a
#: dependency is made to fail, which these properties do not do).
STATUSES = {200, 400, 401, 413, 415}
#: Every bridge key of every tenant, whole and as its secret part.
KEYS = sorted({*VALID_KEYS, *(key.partition(".")[2] for key in VALID_KEYS)})


def post(
    harness: Harness, route: str, body: bytes, *, key: str | None = None, headers: dict[str, str] | None = None
) -> Call:
    sent = {"Content-Type": "application/json", **({"Authorization": basic(key)} if key else {}), **(headers or {})}
    path = f"/v1/{route}"
    event = api_gateway_event("POST", path, body, sent, stage=STAGE, domain=HOST, resource=path, path_parameters={})
    return harness.invoke(event, kind="hypothesis (tracking)")


def assert_no_key_leaves(harness: Harness, call: Call, credential: str | None = None) -> None:
    """No bridge key (whole or its secret) in the response (body, headers) or on the queue."""
    secrets = list(KEYS)
    if credential and "sbk_" in credential and len(credential) >= 20:
        # A key without the `{tenant}.` prefix is all secret: partition would give "", found in any text.
        secrets += [part for part in (credential, credential.partition(".")[2]) if len(part) >= 20]
    said = {
        "response": call.text,
        "headers": json.dumps(call.headers),
        "queue": json.dumps(harness.drained, ensure_ascii=False),
    }
    for where, text in said.items():
        for secret in secrets:
            assert secret not in text, f"a bridge key in the {where}: {text[:300]!r}"


def assert_queued_for(harness: Harness, tenant: str) -> list[dict[str, Any]]:
    """Everything the call enqueued is the tenant's, under the `tracking` source, without writeKey or sentAt."""
    messages: list[dict[str, Any]] = []
    for body, attributes in harness.drained:
        batch = read_body(body)
        assert (batch.tenant, batch.source) == (tenant, tracking_api.SOURCE_NAME)
        assert attributes["tenant"]["StringValue"] == tenant
        for message in batch.messages:
            assert "writeKey" not in message and "sentAt" not in message, message
            assert isinstance(message.get("timestamp"), str), message
            messages.append(message)
    return messages


@HARDENING
@given(drawn=tracking_requests())
def test_any_tracking_request_keeps_the_invariants(harness: Harness, drawn: DrawnTracking) -> None:
    call = harness.invoke(drawn.event, kind="hypothesis (tracking)")
    assert_invariants(call)
    if drawn.event["httpMethod"].upper() == "POST" and drawn.event["path"] == f"/v1/{drawn.route}":
        assert call.status in STATUSES, (call.status, call.text[:300])
    # Only a tenant's own key, as the credential, gets anything accepted, and only for that tenant.
    if drawn.tenant is None:
        assert call.status != 200 and call.enqueued == 0, (drawn.credential_mode, drawn.credential, call.text[:300])
    if call.status == 200:
        assert drawn.tenant is not None
        assert_queued_for(harness, drawn.tenant)
    if call.status == 401:
        assert call.body == {"code": "unauthorized", "message": tracking_api.UNAUTHORIZED_MESSAGE}, call.text
        assert not (set(call.headers) - {"content-type"}), call.headers  # nothing that differs per cause
    assert_no_key_leaves(harness, call, drawn.credential)


@HEAVY
@given(
    route=st.sampled_from(TRACKING_ROUTES),
    key=st.sampled_from(sorted(VALID_KEYS)),
    data=st.data(),
)
@example(route="batch", key=bridge_key("acme"), data=None)
def test_authenticated_bodies_of_any_shape(harness: Harness, route: str, key: str, data: Any) -> None:
    """Behind a valid key every body reaches reading, review, identity, normalization and the queue."""
    if data is None:  # the explicit example: a library's batch with a key in an item, gzipped in two members
        items = [{"type": "track", "userId": f"u{i}", "event": "Order Completed", "writeKey": key} for i in range(3)]
        payload: Any = {"batch": items, "writeKey": key, "sentAt": "2026-01-01T00:00:00Z"}
        raw = gzip_members(json.dumps(payload).encode(), [10])
        call = post(harness, route, raw, key=key, headers={"Content-Encoding": "gzip"})
    else:
        raw = data.draw(
            st.one_of(
                tracking_payloads(route).flatmap(lambda p: st.booleans().map(lambda a: encode_json(p, a))),
                bodies("spec"),
                json_payloads().map(lambda p: encode_json(p, True)),
            )
        )
        call = post(harness, route, raw, key=key)
    assert_invariants(call)
    assert call.status in (200, 400, 413), call.text[:300]
    assert_no_key_leaves(harness, call)
    if call.status == 200:
        assert_queued_for(harness, VALID_KEYS[key])


@HARDENING
@given(
    route=st.sampled_from(TRACKING_ROUTES),
    payload=st.data(),
    cuts=st.lists(st.floats(0, 1), max_size=5),
    level=st.integers(0, 9),
    empty_members=st.integers(0, 3),
)
def test_gzip_is_transparent(
    harness: Harness, route: str, payload: Any, cuts: list[float], level: int, empty_members: int
) -> None:
    """A body gzipped (in any number of members, empty ones included, at any level) is answered exactly
    as the same body sent plain: the same status, counts and refusals."""
    raw = encode_json(payload.draw(tracking_payloads(route)), True)
    plain = post(harness, route, raw, key=bridge_key("acme"))
    members = gzip_members(raw, [int(c * len(raw)) for c in cuts], level)
    empty = gzip.compress(b"", mtime=0) * empty_members
    zipped = post(harness, route, empty + members + empty, key=bridge_key("acme"), headers={"Content-Encoding": "gzip"})
    for call in (plain, zipped):
        assert_invariants(call)
    assert zipped.status == plain.status, (plain.text[:300], zipped.text[:300])
    assert zipped.enqueued == plain.enqueued
    assert {k: v for k, v in zipped.headers.items() if k.startswith("x-bridge")} == {
        k: v for k, v in plain.headers.items() if k.startswith("x-bridge")
    }
    if plain.status != 200:  # a 200's rejected list may differ only in timestamps filled at receipt
        assert zipped.body == plain.body


@HARDENING
@given(
    route=st.sampled_from(TRACKING_ROUTES),
    mutation=st.sampled_from(["truncate", "trailing", "flip", "bomb", "bomb-members", "nested-bomb", "header-only"]),
    position=st.floats(0, 1),
    size=st.sampled_from([1, 2, 16, 60]),
    authenticated=st.booleans(),
)
@example(route="batch", mutation="trailing", position=1.0, size=1, authenticated=True)
@example(route="track", mutation="truncate", position=0.0, size=1, authenticated=False)
def test_hostile_gzip_is_a_400(
    harness: Harness, route: str, mutation: str, position: float, size: int, authenticated: bool
) -> None:
    """Truncated or corrupted gzip, bytes after the last member, and bombs (a 1 KiB member per MiB of
    zeros, many members, a bomb inside gzip) are a 400, never inflated past 512 KiB, with or without
    a valid key (gzip is undone before the key is checked), in bounded time."""
    message = {"type": "track", "userId": "u1", "event": "Order Completed", "messageId": "m-1"}
    whole = gzip_members(
        json.dumps({"batch": [message]} if tracking_api.ROUTES[route] is None else message).encode(), []
    )
    cut = int(position * (len(whole) - 1))
    body = {
        "truncate": whole[:cut],
        "trailing": whole + whole[: min(cut + 1, len(whole) - 1)],  # a partial second member
        "flip": whole[:cut] + bytes([whole[cut] ^ 0xFF]) + whole[cut + 1 :],
        "bomb": gzip_bomb(size, valid_trailer=False),
        "bomb-members": gzip_bomb(1) * (size + 1),
        "nested-bomb": gzip_members(gzip_bomb(size, valid_trailer=False), []),
        "header-only": whole[:10],
    }[mutation]
    call = post(
        harness, route, body, key=bridge_key("acme") if authenticated else None, headers={"Content-Encoding": "gzip"}
    )
    assert_invariants(call)
    if mutation == "flip" and call.status != 400:
        # A flipped byte in the header's flags/mtime/OS fields, or in the deflate data, can still inflate
        # (the CRC catches the data): anything else is refused like a plain body would be.
        assert call.status in (200, 401), call.text
        return
    assert call.status == 400, (mutation, cut, call.text[:300])
    assert call.enqueued == 0  # and the CPU bound: assert_invariants (test_tracking_api.py counts the bytes)


@pytest.mark.parametrize("tenant", TENANTS)
def test_each_key_of_each_tenant_is_accepted_for_that_tenant_only(harness: Harness, tenant: str) -> None:
    """The fuzzers' valid keys are valid (otherwise every 'basic' example would be a 401)."""
    for number in (1, 2):
        key = bridge_key(tenant, number)
        for route in TRACKING_ROUTES:
            message = {"type": tracking_api.ROUTES[route] or "track", "userId": "u1", "event": "Order Completed"}
            message |= {"groupId": "g1", "previousId": "p1"}
            body = {"batch": [message]} if tracking_api.ROUTES[route] is None else message
            call = post(harness, route, json.dumps(body).encode(), key=key)
            assert_invariants(call)
            assert call.status == 200 and call.enqueued == 1, (route, call.text)
            assert_queued_for(harness, tenant)
