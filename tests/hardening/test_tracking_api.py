"""Segment's Tracking API routes through the real ingest handler (and the admin API) on moto: equal
answers and equal work for every refused key, gzip bombs, tenant isolation, key rotation and revocation.

Work is counted, not timed, where it can be (as test_bounded_work.py does): the bridge-key hashes and
the bytes hashed, the constant-time comparisons, the bytes gzip inflated (a spy on the module's
inflater), the refusal floor's waits (recorded instead of slept). The figures go to the session's
work table (`WORK`), for docs/security.md.
"""

from __future__ import annotations

import base64
import gzip
import json
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from segment_bridge.ingest import tracking_api
from segment_bridge.queue_format import read_body
from segment_bridge.tenants import MAX_BRIDGE_KEYS, RefusalFloor
from segment_bridge_tools.lambda_events import LocalLambdaContext, api_gateway_event, iam_identity
from tests.conftest import put_tenant, reset_caches, tenant_secret

from .strategies import gzip_bomb, gzip_members
from .support import (
    HOST,
    STAGE,
    WORK,
    Call,
    Harness,
    assert_invariants,
    basic,
    bridge_key,
    destination_key,
    install_tenants,
    signed,
    write_key,
)

MAX_REQUEST = tracking_api.MAX_REQUEST_BYTES
TRACK = {"type": "track", "userId": "u1", "event": "Order Completed", "messageId": "lib-1"}


@pytest.fixture
def ingest(aws: dict[str, str], identity_table: str) -> Iterator[Harness]:
    """The deployment's own limits (4 MiB bodies), tenants `acme` and `other` with two keys each."""
    install_tenants()
    yield Harness(aws["queue_url"])
    reset_caches()


def post(
    ingest: Harness,
    route: str,
    body: bytes | dict[str, Any],
    *,
    key: str | None = None,
    headers: dict[str, str] | None = None,
    kind: str = "tracking",
) -> Call:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {"Content-Type": "application/json", **({"Authorization": basic(key)} if key is not None else {})}
    path = f"/v1/{route}"
    event = api_gateway_event(
        "POST", path, raw, {**sent, **(headers or {})}, stage=STAGE, domain=HOST, resource=path, path_parameters={}
    )
    return ingest.invoke(event, kind=kind)


def queued_tenants(ingest: Harness) -> set[str]:
    return {read_body(body).tenant for body, _ in ingest.drained}


class KeyMeter:
    """Counts what bridge-key checking does: hashes (and bytes hashed), constant-time comparisons,
    tenant lookups; spies on the real functions, changes nothing."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import hmac

        from segment_bridge import tenants

        self.counts: Counter[str] = Counter()
        count = self.counts
        digest = tenants.bridge_key_digest
        find = tenants.find_tenant

        def counted_digest(secret: str) -> str:
            count["hashes"] += 1
            count["bytes hashed"] += len(secret.encode("utf-8", "surrogatepass"))
            return digest(secret)

        def counted_compare(a: Any, b: Any) -> bool:
            count["comparisons"] += 1
            return hmac.compare_digest(a, b)

        def counted_find(directory: Any, tenant: str) -> Any:
            count["lookups"] += 1
            return find(directory, tenant)

        monkeypatch.setattr(tenants, "bridge_key_digest", counted_digest)
        monkeypatch.setattr(tenants, "hmac", SimpleNamespace(compare_digest=counted_compare))
        monkeypatch.setattr(tenants, "find_tenant", counted_find)

    def measure(self, send: Any) -> tuple[Call, dict[str, int]]:
        self.counts.clear()
        call = send()
        return call, dict(self.counts)


def recording_floor() -> tuple[RefusalFloor, list[float]]:
    waits: list[float] = []
    return RefusalFloor(0.25, sleep=waits.append), waits


# -- one answer and one cost for every refused key ---------------------------------------------------
SECRET_OF_OTHER = bridge_key("other").partition(".")[2]
#: Refused credentials of one length (so the bytes hashed are comparable), and the rest.
SAME_LENGTH = {
    "wrong secret for a real tenant": "acme." + "sbk_" + "x" * (len(SECRET_OF_OTHER) - 4),
    "unknown tenant (syntactically valid)": "nope." + SECRET_OF_OTHER,
    "another tenant's secret (A.sbk_<B's secret>)": "acme." + SECRET_OF_OTHER,
    "revoked / never issued": "acme." + "sbk_" + "r" * (len(SECRET_OF_OTHER) - 4),
}
MALFORMED = {
    "malformed: no tenant": SECRET_OF_OTHER,
    "malformed: invalid tenant id": "../cme." + SECRET_OF_OTHER,
    "malformed: short secret": "acme.sbk_short",
    "malformed: over 160 chars": "acme.sbk_" + "x" * 500,
    "malformed: the tenant's Segment writeKey": write_key("acme"),
    "empty": "",
}


@pytest.mark.parametrize("where", ["basic", "body"])
def test_every_refused_key_gets_one_answer_at_one_cost(
    ingest: Harness, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """An unknown tenant, a wrong, revoked or another tenant's secret, a malformed key: the same status,
    body and headers; one hash and MAX_BRIDGE_KEYS constant-time comparisons each (for keys of one
    length, the same bytes hashed); every one held to the refusal floor."""
    import ingest_handler

    meter = KeyMeter(monkeypatch)
    floor, waits = recording_floor()
    ingest_handler.get_ingestor().refusal_floor = floor
    answers: dict[str, tuple[int, Any, dict[str, str]]] = {}
    work: dict[str, dict[str, int]] = {}
    for name, key in {**SAME_LENGTH, **MALFORMED}.items():
        if where == "basic":
            call, counted = meter.measure(
                lambda key=key: post(ingest, "batch", {"batch": [TRACK]}, key=key, kind="bounded-work")
            )
        else:
            body = {"batch": [TRACK], "writeKey": key}
            call, counted = meter.measure(lambda body=body: post(ingest, "batch", body, kind="bounded-work"))
        assert_invariants(call)
        answers[name] = (call.status, call.body, call.headers)
        work[name] = counted
    first = next(iter(answers.values()))
    assert first[0] == 401 and first[1] == {"code": "unauthorized", "message": tracking_api.UNAUTHORIZED_MESSAGE}
    assert all(answer == first for answer in answers.values()), answers
    for name, counted in work.items():
        assert counted["hashes"] == 1 and counted["comparisons"] == MAX_BRIDGE_KEYS, (name, counted)
    same = [work[name] for name in SAME_LENGTH]
    assert all(counted == same[0] for counted in same), dict(zip(SAME_LENGTH, same, strict=True))
    # Every 401 waited out the rest of the floor (its lookup and check took less).
    assert len(waits) == len(answers) and all(0 < wait <= 0.25 for wait in waits), waits
    WORK[f"tracking ({where}): a refused key of {len(SECRET_OF_OTHER) + 5} chars -> 401"] = same[0]
    WORK[f"tracking ({where}): a malformed key of 509 chars -> 401"] = work["malformed: over 160 chars"]
    # A valid key is not held to the floor.
    assert post(ingest, "batch", {"batch": [TRACK]}, key=bridge_key("acme")).status == 200
    assert len(waits) == len(answers)


def test_a_missing_key_and_a_non_basic_header_are_the_same_401(ingest: Harness) -> None:
    """No credential at all, a Bearer token, a Basic header that is not base64 or not UTF-8: each
    falls back to the body's writeKey (none here) and gets the one 401."""
    answers = set()
    for headers in (
        {},
        {"Authorization": "Bearer " + bridge_key("acme")},
        {"Authorization": "Basic !!!"},
        {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:").decode()},
        {"Authorization": "Basic"},
    ):
        call = post(ingest, "track", TRACK, headers=headers)
        assert_invariants(call)
        answers.add((call.status, call.text, json.dumps(call.headers, sort_keys=True)))
    assert len(answers) == 1 and next(iter(answers))[0] == 401, answers


# -- tenant isolation -------------------------------------------------------------------------------
def test_a_key_writes_as_its_own_tenant_only(ingest: Harness) -> None:
    """`A.sbk_<B's secret>` is refused; B's key is B's, whatever tenant or key the body names; a Basic
    key wins over a body writeKey (of another tenant, or valid for the same one)."""
    cross = "acme." + bridge_key("other").partition(".")[2]
    for route in ("batch", "track"):
        body = {"batch": [TRACK]} if route == "batch" else dict(TRACK)
        assert post(ingest, route, body, key=cross).status == 401
        assert post(ingest, route, {**body, "writeKey": cross}).status == 401
        # Basic decides: other's key in the header, acme's in the body (and in each item).
        with_acme = {**body, "writeKey": bridge_key("acme")}
        if route == "batch":
            with_acme["batch"] = [{**TRACK, "writeKey": bridge_key("acme")}]
        call = post(ingest, route, with_acme, key=bridge_key("other", 2))
        assert call.status == 200 and queued_tenants(ingest) == {"other"}, call.text
        assert bridge_key("acme") not in json.dumps(ingest.drained)
        # A wrong Basic key is a 401 even with a valid key in the body.
        assert post(ingest, route, with_acme, key=cross).status == 401
        assert post(ingest, route, with_acme, key="").status == 401


def test_a_tenant_with_two_keys_accepts_both_and_each_tenant_only_its_own(ingest: Harness) -> None:
    for tenant in ("acme", "other"):
        for number in (1, 2):
            for where in ("basic", "body"):
                key = bridge_key(tenant, number)
                call = (
                    post(ingest, "identify", {"userId": "u1", "traits": {"email": "a@b.co"}}, key=key)
                    if where == "basic"
                    else post(ingest, "identify", {"userId": "u1", "writeKey": key})
                )
                assert call.status == 200 and call.enqueued == 1, (tenant, number, where, call.text)
                assert queued_tenants(ingest) == {tenant}


def admin(method: str, path: str) -> tuple[int, dict[str, Any]]:
    import admin_handler

    parts = path.strip("/").split("/")
    resource = "/v1/tenants/{tenant}/bridge-keys" + ("/{key_id}" if len(parts) == 5 else "")
    parameters = {"tenant": parts[2], **({"key_id": parts[4]} if len(parts) == 5 else {})}
    event = api_gateway_event(
        method,
        path,
        b"",
        {"Content-Type": "application/json"},
        resource=resource,
        path_parameters=parameters,
        iam_identity=iam_identity(),
    )
    response = admin_handler.lambda_handler(event, LocalLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def test_keys_made_and_revoked_through_the_admin_api(ingest: Harness) -> None:
    """Add (201, shown once), use, add a second, a third is 409; revoke the first: refused, with the one
    401, once the instance rereads the tenant (SECRETS_MAX_AGE_SECONDS: until then it still works,
    the documented window); the second keeps working; a revoked id is then unknown (404)."""
    put_tenant("rotco", tenant_secret(write_key="wk_rotco_write_key_0123456789"))
    reset_caches()
    status, first = admin("POST", "/v1/tenants/rotco/bridge-keys")
    assert status == 201 and first["key"].startswith("rotco.sbk_"), first
    assert post(ingest, "track", TRACK, key=first["key"]).status == 200
    status, second = admin("POST", "/v1/tenants/rotco/bridge-keys")
    assert status == 201 and len(second["keys"]) == 2
    status, third = admin("POST", "/v1/tenants/rotco/bridge-keys")
    assert status == 409 and first["id"] in third["message"], third
    reset_caches()  # the instance rereads the tenant
    for key in (first["key"], second["key"]):
        assert post(ingest, "track", TRACK, key=key).status == 200
    status, revoked = admin("DELETE", f"/v1/tenants/rotco/bridge-keys/{first['id']}")
    assert status == 200 and [k["id"] for k in revoked["keys"]] == [second["id"]], revoked
    # Until the cached tenant expires, this instance still takes the revoked key (the documented delay).
    assert post(ingest, "track", TRACK, key=first["key"]).status == 200
    reset_caches()  # SECRETS_MAX_AGE_SECONDS later
    refused = post(ingest, "track", TRACK, key=first["key"])
    wrong = post(ingest, "track", TRACK, key="rotco.sbk_" + "z" * 43)
    assert (refused.status, refused.body) == (wrong.status, wrong.body) == (401, wrong.body), refused.text
    assert post(ingest, "track", {**TRACK, "writeKey": first["key"]}).status == 401
    assert post(ingest, "track", TRACK, key=second["key"]).status == 200
    assert admin("DELETE", f"/v1/tenants/rotco/bridge-keys/{first['id']}")[0] == 404
    # A revoked tenant (all keys gone) refuses everything, the same way.
    assert admin("DELETE", f"/v1/tenants/rotco/bridge-keys/{second['id']}")[0] == 200
    reset_caches()
    last = post(ingest, "track", TRACK, key=second["key"])
    assert (last.status, last.body) == (401, wrong.body)


# -- gzip: bounded inflation ------------------------------------------------------------------------
class InflateMeter:
    """Counts the bytes `tracking_api` gets out of zlib (a spy on its inflater), and the members."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.inflated = 0
        self.members = 0
        #: Compressed bytes handed to zlib, summed over calls (each member is handed all that follows it).
        self.handed = 0
        #: CPU seconds in `tracking_api.decoded_body` (reading the Content-Type and inflating).
        self.seconds = 0.0
        meter = self
        decoded_body = tracking_api.decoded_body

        def timed(request: Any) -> bytes:
            started = time.thread_time()
            try:
                return decoded_body(request)
            finally:
                meter.seconds += time.thread_time() - started

        class Counting:
            def __init__(self, **kwargs: Any) -> None:
                meter.members += 1
                self._inner = zlib.decompressobj(**kwargs)

            def decompress(self, data: bytes, max_length: int = 0) -> bytes:
                meter.handed += len(data)
                out = self._inner.decompress(data, max_length)
                meter.inflated += len(out)
                return out

            def __getattr__(self, name: str) -> Any:
                return getattr(self._inner, name)

        monkeypatch.setattr(
            tracking_api,
            "zlib",
            SimpleNamespace(decompressobj=lambda **kw: Counting(**kw), error=zlib.error, MAX_WBITS=zlib.MAX_WBITS),
        )
        monkeypatch.setattr(tracking_api, "decoded_body", timed)


def bombs() -> list[tuple[str, bytes]]:
    one_gib = gzip_bomb(1024, valid_trailer=False)
    return [
        ("1 KiB member -> 1 MiB of zeros", gzip_bomb(1)),
        ("505 KiB (just under the 512 KiB compressed cap) -> 505 MiB", gzip_bomb(505)),
        ("1 MiB -> 1 GiB (over the compressed cap)", one_gib),
        ("just under 4 MiB -> 3.95 GiB (the deployment's body limit)", gzip_bomb(4044, valid_trailer=False)),
        ("just over 4 MiB -> 4 GiB", gzip_bomb(4096, valid_trailer=False)),
        ("gzip of the 1 GiB bomb (inflates to 1 MiB of gzip)", gzip.compress(one_gib, mtime=0)),
        ("400 members of 1 KiB -> 400 MiB", gzip_bomb(1) * 400),
        ("1,000 empty members, then a bomb", gzip.compress(b"", mtime=0) * 1_000 + gzip_bomb(16)),
    ]


@pytest.mark.parametrize("authenticated", [True, False], ids=["with a valid key", "without a key"])
@pytest.mark.parametrize(("what", "body"), bombs(), ids=[name for name, _ in bombs()])
def test_a_gzip_bomb_is_a_400_never_inflated_past_the_cap(
    ingest: Harness, monkeypatch: pytest.MonkeyPatch, what: str, body: bytes, authenticated: bool
) -> None:
    meter = InflateMeter(monkeypatch)
    started = time.perf_counter()
    call = post(
        ingest,
        "batch",
        body,
        key=bridge_key("acme") if authenticated else None,
        headers={"Content-Encoding": "gzip"},
        kind="bounded-work",
    )
    wall = time.perf_counter() - started
    assert_invariants(call, max_seconds=0.5)
    expected = 413 if len(body) > 4 * 1024 * 1024 else 400
    assert call.status == expected and call.enqueued == 0, call.text
    assert meter.inflated <= MAX_REQUEST + 1, meter.inflated  # never past the cap, whatever the bomb
    if len(body) > MAX_REQUEST:
        assert meter.inflated == 0  # larger compressed than allowed inflated: refused before inflating
    assert wall < 2.0, wall  # wall time too, with moto and the handler: nothing inflates to GiBs
    if authenticated:
        WORK[f"tracking gzip: {what} ({len(body):,} bytes) -> {call.status}"] = {
            "bytes inflated": meter.inflated,
            "members opened": meter.members,
            "CPU microseconds inflating": int(meter.seconds * 1e6),
        }


def test_many_gzip_members_cost_linear_work(ingest: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    meter = InflateMeter(monkeypatch)
    empty = gzip.compress(b"", mtime=0)
    body = empty * (MAX_REQUEST // len(empty))
    call = post(
        ingest, "batch", body, key=bridge_key("acme"), headers={"Content-Encoding": "gzip"}, kind="bounded-work"
    )
    assert call.status == 400 and call.enqueued == 0, call.text
    WORK[f"tracking gzip: {len(body) // len(empty):,} empty members ({len(body):,} bytes) -> {call.status}"] = {
        "members opened": meter.members,
        "compressed bytes handed to zlib": meter.handed,
        "CPU microseconds inflating": int(meter.seconds * 1e6),
    }
    assert meter.handed <= 4 * len(body), f"{meter.handed:,} bytes handed to zlib for a {len(body):,}-byte body"


def test_valid_gzip_up_to_the_cap_is_inflated_whole_and_one_byte_more_is_a_400(
    ingest: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cap is on the inflated bytes across all members: exactly 512 KiB (in three members) is
    read; 512 KiB + 1 is a 400 that names the limit."""
    meter = InflateMeter(monkeypatch)

    def body_of(size: int) -> bytes:
        head = json.dumps({"batch": [TRACK], "padding": ""}).encode()[:-2]
        return head + b"x" * (size - len(head) - 2) + b'"}'

    exact = body_of(MAX_REQUEST)
    assert len(exact) == MAX_REQUEST
    gzip_header = {"Content-Encoding": "gzip"}
    call = post(ingest, "batch", gzip_members(exact, [1000, 300_000]), key=bridge_key("acme"), headers=gzip_header)
    assert call.status == 200 and call.enqueued == 1, call.text
    assert meter.inflated == MAX_REQUEST and meter.members == 3
    over = post(
        ingest,
        "batch",
        gzip_members(body_of(MAX_REQUEST + 1), [1000, 300_000]),
        key=bridge_key("acme"),
        headers=gzip_header,
    )
    assert over.status == 400 and str(MAX_REQUEST) in over.body["message"], over.text
    assert meter.inflated <= 2 * MAX_REQUEST + 1
    plain = post(ingest, "batch", body_of(MAX_REQUEST + 1), key=bridge_key("acme"))
    assert plain.status == 400 and str(MAX_REQUEST) in plain.body["message"], plain.text


@pytest.mark.parametrize(
    ("what", "body"),
    [
        ("truncated member", gzip.compress(json.dumps(TRACK).encode(), mtime=0)[:-5]),
        ("header only", gzip.compress(b"{}", mtime=0)[:10]),
        ("trailing zero padding", gzip.compress(json.dumps(TRACK).encode(), mtime=0) + b"\x00" * 8),
        ("bad CRC", gzip.compress(json.dumps(TRACK).encode(), mtime=0)[:-8] + b"\x00" * 8),
        ("zlib stream labelled gzip", zlib.compress(json.dumps(TRACK).encode())),
        ("raw JSON labelled gzip", json.dumps(TRACK).encode()),
        ("gzip inside gzip", gzip.compress(gzip.compress(json.dumps(TRACK).encode(), mtime=0), mtime=0)),
    ],
)
def test_broken_gzip_is_a_400(ingest: Harness, what: str, body: bytes) -> None:
    call = post(ingest, "track", body, key=bridge_key("acme"), headers={"Content-Encoding": "gzip"})
    assert_invariants(call)
    assert call.status == 400 and call.enqueued == 0, (what, call.text)


def test_unauthenticated_work_before_the_key_is_bounded(ingest: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a Basic header the key is in the body, so the body is inflated and parsed first: at most
    512 KiB of JSON, for anyone. Measured (CPU time of the whole invocation) for the session's table."""
    from segment_bridge import safe_json

    parsed: list[int] = []
    loads = safe_json.loads

    def counted(data: Any, *args: Any, **kwargs: Any) -> Any:
        parsed.append(len(data))
        return loads(data, *args, **kwargs)

    monkeypatch.setattr(tracking_api.safe_json, "loads", counted)
    item = json.dumps({"type": "track", "userId": "u", "event": "E", "properties": {"k": 1}})
    count = (MAX_REQUEST - 100) // (len(item) + 1)
    body = ('{"writeKey": "nope.sbk_' + "x" * 43 + '", "batch": [' + ",".join([item] * count) + "]}").encode()
    assert len(body) <= MAX_REQUEST
    best = float("inf")
    for _ in range(3):
        call = post(ingest, "batch", gzip.compress(body), headers={"Content-Encoding": "gzip"}, kind="bounded-work")
        assert call.status == 401 and call.enqueued == 0
        best = min(best, call.seconds)
    assert parsed == [len(body)] * 3
    assert best < 1.0, best
    WORK[f"tracking: unauthenticated {len(body):,}-byte batch of {count:,} messages (gzip, key in body) -> 401"] = {
        "bytes JSON-parsed": len(body),
        "CPU microseconds": int(best * 1e6),
    }


# -- times at the edge of the calendar (were an OverflowError, a 500, before the key was checked) ----
#: (what, fields of the request, where the key is, the answer). A `sentAt` whose UTC form is outside
#: years 1-9999 is unreadable, so ignored; a correction that would move a timestamp out of them is not
#: made; a message's own timestamp outside them in UTC is refused with the reason. With the key in the
#: body (or none), the body is read before the key is checked: the first four are 401s, never a 500.
EDGE = [
    ("sentAt in year 1 with an offset", {"sentAt": "0001-01-01T00:00:00+01:00"}, "none", 401),
    ("sentAt in year 9999 with a negative offset", {"sentAt": "9999-12-31T23:59:59-01:00"}, "none", 401),
    (
        "a timestamp in 9999 and sentAt in 1970 (the skew moves it past 9999)",
        {"timestamp": "9999-12-31T00:00:00Z", "sentAt": "1970-01-01T00:00:00Z"},
        "none",
        401,
    ),
    (
        "a timestamp in year 1 and sentAt in 9999 (the skew moves it before year 1)",
        {"timestamp": "0001-01-02T00:00:00Z", "sentAt": "9999-12-31T00:00:00Z"},
        "none",
        401,
    ),
    ("sentAt in year 1 with an offset", {"sentAt": "0001-01-01T00:00:00+01:00"}, "basic", 200),
    (
        "a timestamp in 9999 and sentAt in 1970 (the skew moves it past 9999)",
        {"timestamp": "9999-12-31T00:00:00Z", "sentAt": "1970-01-01T00:00:00Z"},
        "basic",
        200,
    ),
    ("a timestamp in year 1 with an offset, no sentAt", {"timestamp": "0001-01-01T00:00:00+01:00"}, "basic", 400),
    ("a timestamp in 9999 with a negative offset, no sentAt", {"timestamp": "9999-12-31T23:59:59-01:00"}, "basic", 400),
]


@pytest.mark.parametrize(("what", "fields", "key", "status"), EDGE, ids=[f"{e[2]}: {e[0]}" for e in EDGE])
def test_a_time_at_the_edge_of_the_calendar_is_not_a_500(
    ingest: Harness, what: str, fields: dict[str, str], key: str, status: int
) -> None:
    body: dict[str, Any] = {"batch": [{**TRACK, **{k: v for k, v in fields.items() if k == "timestamp"}}]}
    body |= {k: v for k, v in fields.items() if k == "sentAt"}
    call = post(ingest, "batch", body, key=bridge_key("acme") if key == "basic" else None)
    assert call.status == status, (what, call.text)
    if status == 400:  # the only message, refused with the reason
        assert "outside years 1-9999" in json.dumps(call.body), call.text
    if status == 200 and "timestamp" in fields:  # a correction that cannot be written is not made
        (queued,) = [m for body, _ in ingest.drained for m in read_body(body).messages]
        assert queued["timestamp"].startswith(fields["timestamp"][:10]), queued


@pytest.mark.parametrize("timestamp", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_signed_spec_webhook_with_an_edge_timestamp_is_refused_not_a_500(ingest: Harness, timestamp: str) -> None:
    path = "/v1/webhooks/spec/acme"
    headers, body = signed("spec", "acme", json.dumps({**TRACK, "timestamp": timestamp}).encode(), path)
    call = ingest.invoke(api_gateway_event("POST", path, body, headers, stage=STAGE, domain=HOST))
    assert call.status == 422 and "outside years 1-9999" in call.text, call.text


def test_a_corrected_timestamp_before_year_1000_stays_iso_8601(ingest: Harness) -> None:
    early = {**TRACK, "timestamp": "1000-06-01T00:00:00Z"}
    assert post(ingest, "track", {**early, "timestamp": "0999-06-01T00:00:00Z"}, key=bridge_key("acme")).status == 200
    call = post(ingest, "track", {**early, "sentAt": "2100-01-01T00:00:00Z"}, key=bridge_key("acme"))
    assert call.status == 200, call.text


def test_a_destination_key_or_writekey_is_no_bridge_key(ingest: Harness) -> None:
    """The tenant's other secrets never open the Tracking API (and the bridge key no other door)."""
    for key in (
        write_key("acme"),
        destination_key("acme"),
        "acme." + write_key("acme"),
        "acme.sbk_" + write_key("acme"),
    ):
        assert post(ingest, "batch", {"batch": [TRACK]}, key=key).status == 401
    import destination_handler

    event = api_gateway_event(
        "POST",
        "/v1/segment/acme",
        json.dumps({"type": "identify", "userId": "u1"}).encode(),
        {"Content-Type": "application/json", "Authorization": basic(bridge_key("acme"))},
        resource="/v1/segment/{tenant}",
        path_parameters={"tenant": "acme"},
    )
    assert destination_handler.lambda_handler(event, LocalLambdaContext())["statusCode"] == 401
