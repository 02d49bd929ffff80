"""Hypothesis strategies for hostile webhook requests, as API Gateway REST (v1 proxy) events.

A request is drawn in layers: where it goes (method, source, tenant, raw path), what it carries
(body: valid, malformed, wrong types, deep, huge, invalid UTF-8, forms), how it is encoded
(Content-Type, charset, Content-Encoding, base64 flag) and how it is signed (validly, with another
tenant's secret, stale, garbage, duplicated, missing). Valid signatures matter: most parsing happens
only after authentication, so unsigned fuzz would never reach it.
"""

from __future__ import annotations

import base64
import itertools
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlencode

from hypothesis import strategies as st

from segment_bridge.errors import MalformedRequest
from segment_bridge.ingest import tracking_api
from segment_bridge.ingest.sources import SOURCES
from segment_bridge_tools.lambda_events import api_gateway_event
from segment_bridge_tools.make_events import sample_body

from .support import (
    BRIDGE_KEYS_PER_TENANT,
    FUZZ_MAX_BODY_BYTES,
    HOST,
    STAGE,
    TENANTS,
    basic,
    bridge_key,
    destination_key,
    signed,
    write_key,
)

SOURCE_NAMES = sorted(SOURCES)
CALL_TYPES = ["track", "identify", "page", "screen", "group", "alias"]

HOSTILE_SEGMENTS = [
    "",
    ".",
    "..",
    "%2e%2e",
    "%2E%2E",
    "..%2F..",
    "%2F",
    "a%2Fb",
    "../acme",
    "acme/..",
    "acme%00",
    "acme\x00",
    "acme\n",
    " acme",
    "acme ",
    "ACME",
    "%61cme",
    "acme;x",
    "acme?x=1",
    "acme#x",
    "acme%20",
    "ácme",
    "ａｃｍｅ",
    "acme\u202e",
    "\U0001f600",
    "a" * 64,
    "a" * 65,
    "a" * 1000,
    "-acme",
    "_acme",
    "acme.",
    "con",
    "${jndi:x}",
    "'; DROP TABLE--",
    "<script>",
    "*",
    "%",
    "%%",
    "%zz",
    "spec",
    "sendgrid",
]


# -- bodies -------------------------------------------------------------------------------------------
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    # Lone surrogates (JSON escapes them; Unicode has no such text) and NULs (round 2, issue #13).
    | st.sampled_from(["\ud800", "x\udfffy", "\x00", "a\x00b"])
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25,
)
identifiers = (
    st.text(min_size=1, max_size=30)
    | st.integers()
    | st.just("")
    | st.just(" ")
    | st.booleans()
    | st.just("x" * 1025)
    | json_values
)


@st.composite
def spec_messages(draw: st.DrawFn) -> dict[str, Any]:
    """Spec-shaped messages whose every field may be missing, of the wrong type, or hostile."""
    message: dict[str, Any] = {"type": draw(st.sampled_from(CALL_TYPES) | json_values)}
    optional = {
        "userId": identifiers,
        "anonymousId": identifiers,
        "messageId": identifiers | st.just("m" * 101),
        "event": st.sampled_from(["Order Completed", "order_completed", "x" * 201, ""])
        | st.text(max_size=50)
        | json_values,
        "timestamp": st.sampled_from(["2026-01-01T00:00:00Z", "2026-13-45", "0", "9999-12-31T23:59:59+14:00", ""])
        | json_values,
        "properties": st.dictionaries(st.text(max_size=20), json_values, max_size=6) | json_values,
        "traits": st.dictionaries(
            st.sampled_from(["email", "Email", "phone", "firstName"]) | st.text(max_size=10), json_values, max_size=4
        )
        | json_values,
        "context": st.fixed_dictionaries(
            {}, optional={"integration": json_values, "traits": json_values, "ip": json_values}
        )
        | json_values,
        "groupId": identifiers,
        "previousId": identifiers,
        "writeKey": st.text(max_size=20),
        "integrations": json_values,
    }
    for name, strategy in optional.items():
        if draw(st.booleans()):
            message[name] = draw(strategy)
    return message


def nested(depth: int, kind: str) -> str:
    if kind == "array":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


@st.composite
def json_payloads(draw: st.DrawFn) -> Any:
    shape = draw(st.sampled_from(["message", "batch", "batch-wrong", "array", "any"]))
    if shape == "message":
        return draw(spec_messages())
    if shape == "batch":
        return {"batch": draw(st.lists(spec_messages() | json_values, max_size=8))}
    if shape == "batch-wrong":
        return {"batch": draw(json_values)}
    if shape == "array":
        return draw(st.lists(spec_messages() | json_values, max_size=8))
    return draw(json_values)


def encode_json(value: Any, ensure_ascii: bool) -> bytes:
    return json.dumps(value, ensure_ascii=ensure_ascii).encode("utf-8", "surrogatepass")


@st.composite
def bodies(draw: st.DrawFn, source: str) -> bytes:
    kind = draw(
        st.sampled_from(
            ["json"] * 5
            + ["sample"] * 2
            + ["sample-mutated"] * 2
            + ["deep"] * 3
            + ["huge"] * 2
            + ["truncated", "binary", "invalid-utf8", "form", "form-bomb", "empty", "bom", "nan", "bigint"]
        )
    )
    if kind == "json":
        return encode_json(draw(json_payloads()), draw(st.booleans()))
    if kind == "sample":
        return (
            sample_body(source) if source in SOURCES and source != "spec" else encode_json(draw(spec_messages()), True)
        )
    if kind == "sample-mutated":
        raw = bytearray(sample_body(draw(st.sampled_from([s for s in SOURCE_NAMES if s != "spec"]))))
        for _ in range(draw(st.integers(1, 4))):
            position = draw(st.integers(0, len(raw) - 1))
            raw[position] = draw(st.integers(0, 255))
        return bytes(raw)
    if kind == "truncated":
        raw = encode_json(draw(json_payloads()), True)
        return raw[: draw(st.integers(0, max(0, len(raw) - 1)))]
    if kind == "binary":
        return draw(st.binary(max_size=200))
    if kind == "invalid-utf8":
        raw = encode_json(draw(spec_messages()), False)
        cut = draw(st.integers(0, len(raw)))
        return (
            raw[:cut]
            + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80"]))
            + raw[cut:]
        )
    if kind == "deep":
        depth = draw(st.sampled_from([62, 63, 64, 65, 500, 990, 999, 1000, 1001, 3000, 100_000]) | st.integers(1, 2000))
        inner = nested(depth, draw(st.sampled_from(["array", "object"])))
        wrap = draw(st.sampled_from(["bare", "property", "batch"]))
        if wrap == "bare":
            return inner.encode()
        if wrap == "property":
            return f'{{"type":"track","userId":"u","event":"Deep","properties":{{"x":{inner}}}}}'.encode()
        return f'{{"batch":{inner}}}'.encode()
    if kind == "huge":
        size = draw(
            st.sampled_from([FUZZ_MAX_BODY_BYTES - 1, FUZZ_MAX_BODY_BYTES, FUZZ_MAX_BODY_BYTES + 1])
            | st.integers(FUZZ_MAX_BODY_BYTES // 2, FUZZ_MAX_BODY_BYTES * 2)
        )
        shape = draw(st.sampled_from(["string", "many-events", "many-keys"]))
        if shape == "string":
            head = b'{"type":"track","userId":"u","event":"Big","properties":{"p":"'
            return head + b"x" * max(0, size - len(head) - 4) + b'"}}'
        if shape == "many-events":
            one = b'{"type":"track","userId":"u","event":"Order Completed"},'
            return b'{"batch":[' + one * max(1, size // len(one)) + b'{"type":"track"}]}'
        return (
            b'{"type":"track","userId":"u","event":"E","properties":{'
            + b",".join(b'"KeyNumber%d":1' % i for i in range(max(1, size // 16)))
            + b"}}"
        )
    if kind == "form":
        pairs = draw(
            st.lists(
                st.tuples(
                    st.sampled_from(["mandrill_events", "MessageStatus", "MessageSid", "To"]) | st.text(max_size=10),
                    st.text(max_size=40),
                ),
                max_size=6,
            )
        )
        if draw(st.booleans()):
            pairs.append(("mandrill_events", json.dumps(draw(st.lists(json_values | spec_messages(), max_size=4)))))
        if draw(st.booleans()):
            pairs.append(("mandrill_events", nested(draw(st.sampled_from([65, 3000])), "array")))
        return urlencode(pairs).encode()
    if kind == "form-bomb":  # many (empty) parameters: refused before any is decoded (issue #13)
        piece = draw(st.sampled_from([b"&", b"a=&", b"=&", b"mandrill_events=&", b"MessageStatus=x&"]))
        return piece * draw(st.integers(50, FUZZ_MAX_BODY_BYTES // len(piece)))
    if kind == "empty":
        return b""
    if kind == "bom":
        return b"\xef\xbb\xbf" + encode_json(draw(spec_messages()), True)
    if kind == "nan":
        return b'{"type":"track","userId":"u","event":"E","properties":{"a":NaN,"b":Infinity,"c":-Infinity}}'
    return (
        b'{"type":"track","userId":"u","event":"E","properties":{"n":'
        + b"9" * draw(st.sampled_from([20, 4300, 4301, 20000]))
        + b"}}"
    )


# -- headers ------------------------------------------------------------------------------------------
content_types = st.sampled_from(
    [
        None,
        "",
        "application/json",
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        "APPLICATION/JSON",
        " application/json ",
        "application/json; charset=latin-1",
        "application/json; charset=utf-16",
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=utf-8",
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/json, text/plain",
        "application/vnd.api+json",
        ";",
        "*/*",
        "application/json\x00",
        "applicatión/json",
    ]
) | st.text(max_size=30)
content_encodings = st.sampled_from(
    [None, None, None, "identity", "gzip", "GZIP", "br", "deflate", "", "gzip, identity", "x"]
)
signing_modes = st.sampled_from(
    ["valid", "valid", "valid", "other-tenant", "stale", "future", "garbage", "none", "duplicated", "header-case"]
)


@dataclass
class Drawn:
    """What a generated request was meant to be, for assertions beyond the invariants."""

    source: str
    tenant: str
    signing: str
    routed: bool
    event: dict[str, Any]


def garbage_headers(source: str, draw: st.DrawFn) -> dict[str, str]:
    value = draw(
        st.sampled_from(
            [
                "",
                "t=",
                "t=1,v1=",
                "v1=" + "0" * 64,
                "t=abc,v1=zz",
                "t=1" + ",v1=a" * 500,
                "Basic",
                "Basic !!!",
                "Basic " + base64.b64encode(b"a:b").decode(),
                "\x00",
                "t=" + "9" * 400 + ",v1=00",
                "t=inf,v1=00",
                "t=-inf,v1=00",
                "t=1e400,v1=00",
                "t=NaN,v1=00",
            ]
        )
        | st.text(max_size=60)
    )
    return {
        "X-Signature": value,
        "Stripe-Signature": value,
        "X-Twilio-Email-Event-Webhook-Signature": value,
        "X-Twilio-Email-Event-Webhook-Timestamp": value,
        "X-Mandrill-Signature": value,
        "X-Twilio-Signature": value,
        "Authorization": value,
    }


@st.composite
def requests(draw: st.DrawFn, *, method: str | None = None) -> Drawn:
    # Mostly real sources and tenants: the deepest code runs only after a signature checks out.
    source = draw(
        st.sampled_from(SOURCE_NAMES)
        if draw(st.integers(0, 9)) < 7
        else st.sampled_from(HOSTILE_SEGMENTS) | st.text(max_size=20)
    )
    tenant = draw(
        st.sampled_from(TENANTS)
        if draw(st.integers(0, 9)) < 7
        else st.sampled_from(["unknown-tenant", "A" * 64, "z9_-"])
        | st.sampled_from(HOSTILE_SEGMENTS)
        | st.text(max_size=70)
    )
    verb = method or draw(st.sampled_from(["POST"] * 8 + ["HEAD", "GET", "PUT", "OPTIONS", "post"]))
    path = f"/v1/webhooks/{source}/{tenant}"
    body = draw(bodies(source))
    headers: dict[str, str] = {}
    content_type = draw(content_types)
    signing = draw(signing_modes)
    known = source in SOURCES and tenant in TENANTS
    if known and signing in ("valid", "other-tenant", "stale", "future", "duplicated", "header-case"):
        now = time.time() + {"stale": -301, "future": 301}.get(signing, 0)
        secrets_of = next(t for t in TENANTS if t != tenant) if signing == "other-tenant" else None
        if source == "mailgun":  # its signature goes inside a JSON object body
            try:
                payload = json.loads(body)
            except (ValueError, RecursionError):
                payload = None
            if not isinstance(payload, dict):
                body = json.dumps({"event-data": payload}).encode()
        try:
            headers, body = signed(source, tenant, body, path, now, secrets_of)
        except (ValueError, RecursionError, MalformedRequest):  # the test's signer cannot read this body
            headers = {}
        if signing == "header-case":
            headers = {name.upper() if draw(st.booleans()) else name.lower(): value for name, value in headers.items()}
    elif signing != "none":
        headers.update(garbage_headers(source, draw))
    if draw(st.integers(0, 3)) > 0 and content_type is not None:
        # The signer's own Content-Type is what a real tool sends; replace it sometimes.
        headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        headers["Content-Type"] = content_type
    encoding = draw(content_encodings)
    if encoding is not None:
        headers["Content-Encoding"] = encoding
    if draw(st.integers(0, 9)) == 0:
        headers["Host"] = draw(st.sampled_from(["evil.example", "", "localhost:443", "a" * 300]))
    event = api_gateway_event(
        verb,
        path,
        body,
        headers,
        stage=STAGE,
        domain=HOST,
        path_parameters={"source": unquote(source), "tenant": unquote(tenant)},
    )
    if signing == "duplicated":
        # Two values of the signature header: API Gateway puts the last in `headers`, both in multiValueHeaders.
        name = next((k for k in headers if k.lower() not in ("content-type", "content-encoding", "host")), None)
        if name is not None:
            extra = draw(st.sampled_from(["garbage", headers[name]]))
            order = draw(st.booleans())
            values = [extra, headers[name]] if order else [headers[name], extra]
            event["multiValueHeaders"][name] = values
            event["headers"][name] = values[-1]
    encoding_mode = draw(st.sampled_from(["base64"] * 6 + ["text", "text-surrogates", "bad-base64", "null-body"]))
    if encoding_mode == "text":
        event["body"], event["isBase64Encoded"] = body.decode("utf-8", "surrogateescape"), False
    elif encoding_mode == "text-surrogates":
        event["body"], event["isBase64Encoded"] = body.decode("utf-8", "replace") + "\ud800", False
    elif encoding_mode == "bad-base64":
        event["body"], event["isBase64Encoded"] = draw(st.sampled_from(["%%%", "YQ", "é", "YWJj\n", "===="])), True
    elif encoding_mode == "null-body":
        event["body"], event["isBase64Encoded"] = None, draw(st.booleans())
    routed = "/" not in source and "/" not in tenant and bool(source) and bool(tenant)
    return Drawn(source, tenant, signing, routed, event)


def quoted(segment: str) -> str:
    return quote(segment, safe="")


# -- Segment's Tracking API (/v1/batch, /v1/track...) ------------------------------------------------
TRACKING_ROUTES = sorted(tracking_api.ROUTES)
#: Credentials that must get a request accepted (a tenant's own keys), and the tenant they name.
VALID_KEYS = {bridge_key(tenant, n): tenant for tenant in TENANTS for n in range(1, BRIDGE_KEYS_PER_TENANT + 1)}
#: How a generated request carries its credential: the valid ones first, then every way to be refused.
CREDENTIAL_MODES = [
    "basic",
    "basic",
    "body",
    "body",
    "basic-and-body-garbage",
    "basic-wrong-body-valid",
    "cross-tenant",
    "wrong-secret",
    "unknown-tenant",
    "malformed",
    "basic-garbage-body-valid",
    "none",
]
ADMITTED_MODES = ("basic", "body", "basic-and-body-garbage", "basic-garbage-body-valid")
#: Text that looks like a bridge key and is not one of any tenant's (or is a secret of another kind).
MALFORMED_KEYS = [
    "",
    " ",
    "acme",
    "acme.",
    ".",
    "acme.sbk_",
    "acme.sbk_short",
    ".sbk_" + "a" * 40,
    "acme.sbk_" + "a" * 97,
    "acme.sbk_" + "a" * 200,
    "acme.sbk_" + "é" * 20,
    "acme.sbk_" + "a" * 40 + "\x00",
    "acme..sbk_" + "a" * 40,
    "acme.SBK_" + "a" * 40,
    "acme.sbk_" + "a" * 40 + ":",
    "acme.sbk_" + "a" * 40 + " ",
    " acme.sbk_" + "a" * 40,
    "../acme.sbk_" + "a" * 40,
    "a" * 65 + ".sbk_" + "a" * 40,
    "ACME" + bridge_key("acme")[4:],
    bridge_key("acme")[:-1],
    bridge_key("acme") + "x",
    bridge_key("acme").upper(),
    bridge_key("acme").partition(".")[2],  # the secret alone, without the tenant
    "acme." + bridge_key("acme"),
    write_key("acme"),  # the tenant's Segment writeKey is no bridge key
    destination_key("acme"),
    "\ud800",
    "x" * 5000,
]


def gzip_members(data: bytes, cuts: list[int], level: int = 6) -> bytes:
    """`data` as gzip, split into one member per piece (concatenated members are one body)."""
    import gzip

    if not data:
        return gzip.compress(b"", compresslevel=level, mtime=0)
    points = sorted({0, len(data), *(c for c in cuts if 0 < c < len(data))})
    return b"".join(gzip.compress(data[a:b], compresslevel=level, mtime=0) for a, b in itertools.pairwise(points))


_ZEROS_BLOCK: bytes | None = None


def gzip_bomb(mebibytes: int, *, valid_trailer: bool = True) -> bytes:
    """A gzip member that inflates to `mebibytes` MiB of zeros, from about 1 KiB per MiB (deflate's
    best ratio, ~1030:1), built without compressing anything that big: one fully flushed deflate block
    of 1 MiB of zeros repeated (each block stands alone), then an empty final block and the trailer.
    `valid_trailer=False` skips computing the CRC (for bombs nothing may inflate to the end)."""
    import struct
    import zlib

    global _ZEROS_BLOCK
    if _ZEROS_BLOCK is None:
        deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
        _ZEROS_BLOCK = deflater.compress(bytes(1 << 20)) + deflater.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    if valid_trailer:
        zeros = bytes(1 << 20)
        for _ in range(mebibytes):
            crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    final = b"\x03\x00"  # an empty final block (fixed Huffman)
    return header + _ZEROS_BLOCK * mebibytes + final + struct.pack("<II", crc, (mebibytes << 20) & 0xFFFFFFFF)


EDGE_TIMES = [
    "2026-01-01T00:00:00Z",
    "2026-01-01T00:00:00.123456+05:30",
    "2026-01-01T00:00:00",
    "1970-01-01T00:00:00Z",
    "2000-02-30T00:00:00Z",
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-01:00",
    "0999-06-01T00:00:00Z",
    "2026-01-01",
    "",
    "now",
    "x" * 41,
]
times = st.sampled_from(EDGE_TIMES) | st.datetimes().map(lambda d: d.isoformat()) | json_values


@st.composite
def library_messages(draw: st.DrawFn, call: str | None = None) -> dict[str, Any]:
    """Messages a Segment library would send (mostly acceptable), with hostile fields mixed in."""
    kind = call or draw(st.sampled_from(CALL_TYPES))
    message: dict[str, Any] = {"type": kind, "messageId": draw(st.uuids()).hex}
    if draw(st.integers(0, 9)) < 8:
        message["userId"] = draw(st.sampled_from(["u1", "user-1001", 42]) | st.text(min_size=1, max_size=10))
    else:
        message["anonymousId"] = draw(identifiers)
    if kind == "track":
        message["event"] = draw(st.sampled_from(["Order Completed", "Signed Up", "order_completed", ""]))
        message["properties"] = draw(st.dictionaries(st.text(max_size=10), json_values, max_size=3))
    elif kind in ("identify", "group"):
        message["traits"] = draw(st.fixed_dictionaries({}, optional={"email": st.emails(), "name": st.text()}))
    if kind == "group":
        message["groupId"] = draw(identifiers)
    if kind == "alias":
        message["previousId"] = draw(identifiers)
    if draw(st.booleans()):
        message["timestamp"] = draw(times)
    if draw(st.integers(0, 4)) == 0:
        # Never a valid key here: on a single call the message is the body, whose writeKey is the credential.
        message["writeKey"] = draw(st.text(max_size=10))
    if draw(st.integers(0, 4)) == 0:
        message["sentAt"] = draw(times)
    if draw(st.integers(0, 4)) == 0:
        message["context"] = draw(
            st.fixed_dictionaries({}, optional={"library": json_values, "integration": json_values}) | json_values
        )
    return message


@st.composite
def tracking_payloads(draw: st.DrawFn, route: str) -> Any:
    """A body for `route`: library-shaped, Spec-shaped with hostile fields, or any JSON at all."""
    shape = draw(st.sampled_from(["library"] * 4 + ["spec"] * 2 + ["any", "batch-on-single", "single-on-batch"]))
    implied = tracking_api.ROUTES.get(route)
    if shape == "any":
        return draw(json_payloads())
    if shape == "batch-on-single" or (shape in ("library", "spec") and implied is None):
        items = st.lists(library_messages() if shape == "library" else spec_messages() | json_values, max_size=6)
        payload: dict[str, Any] = {"batch": draw(items)}
        for name, strategy in (
            ("context", st.just({"library": {"name": "analytics-python", "version": "2.4.0"}}) | json_values),
            ("integrations", st.just({"All": True}) | json_values),
        ):
            if draw(st.booleans()):
                payload[name] = draw(strategy)
        return payload
    if shape == "single-on-batch":
        return draw(library_messages())
    return draw(library_messages(implied) if shape == "library" else spec_messages())


@dataclass
class DrawnTracking:
    """A generated Tracking API request, and what it was meant to be."""

    route: str
    credential_mode: str
    #: The tenant a valid credential names (None: the credential must be refused).
    tenant: str | None
    #: The credential as sent (Basic username or body writeKey), if any.
    credential: str | None
    event: dict[str, Any]
    encoding: str


def _with_key(body: bytes, key: Any) -> bytes | None:
    """`body` (a JSON object) with `writeKey` set, or None if it is not a JSON object."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(payload, dict):
        return None
    payload["writeKey"] = key
    return json.dumps(payload).encode("utf-8", "surrogatepass")


def encoded(draw: st.DrawFn, body: bytes) -> tuple[str, str | None, bytes]:
    """(what was done, the Content-Encoding header, the bytes sent)."""
    mode = draw(
        st.sampled_from(
            ["none"] * 6
            + ["gzip"] * 3
            + ["identity", "gzip-members", "gzip-truncated", "gzip-trailing", "gzip-nested", "gzip-empty-members"]
            + ["bomb", "bomb-members", "zlib-as-gzip", "not-gzip", "other-coding", "gzip-upper"]
        )
    )
    if mode == "none":
        return mode, None, body
    if mode == "identity":
        return mode, draw(st.sampled_from(["identity", "IDENTITY", " identity "])), body
    if mode in ("gzip", "gzip-upper"):
        return (
            mode,
            "gzip" if mode == "gzip" else draw(st.sampled_from(["GZIP", " gzip", "Gzip"])),
            gzip_members(body, [], draw(st.integers(0, 9))),
        )
    if mode == "gzip-members":
        cuts = draw(st.lists(st.integers(0, max(0, len(body))), max_size=4))
        return mode, "gzip", gzip_members(body, cuts)
    if mode == "gzip-empty-members":
        empty = gzip_members(b"", [])
        return mode, "gzip", empty * draw(st.integers(1, 200)) + gzip_members(body, []) + empty
    if mode == "gzip-truncated":
        whole = gzip_members(body, [])
        return mode, "gzip", whole[: draw(st.integers(0, len(whole) - 1))]
    if mode == "gzip-trailing":
        junk = draw(st.sampled_from([b"\x00", b"\x00" * 8, b"x", b"\x1f", b"\x1f\x8b", b"{}"]) | st.binary(max_size=20))
        return mode, "gzip", gzip_members(body, []) + junk
    if mode == "gzip-nested":
        return mode, "gzip", gzip_members(gzip_members(body, []), [])
    if mode == "bomb":
        return mode, "gzip", gzip_bomb(draw(st.sampled_from([1, 2, 16, 60])), valid_trailer=False)
    if mode == "bomb-members":  # many small members, the sum over the cap
        return mode, "gzip", gzip_bomb(1) * draw(st.integers(1, 40))
    if mode == "zlib-as-gzip":
        import zlib

        return mode, "gzip", zlib.compress(body)
    if mode == "not-gzip":
        return mode, "gzip", body
    return mode, draw(st.sampled_from(["br", "deflate", "compress", "gzip, identity", "x-gzip", ""])), body


@st.composite
def tracking_requests(draw: st.DrawFn) -> DrawnTracking:
    path_kind = draw(st.integers(0, 19))
    route = draw(st.sampled_from(TRACKING_ROUTES))
    if path_kind == 0:
        path = draw(
            st.sampled_from([f"/v1/{route}/", f"/v1/{route.upper()}", f"/v1/{route}%00", "/v1/", f"/v2/{route}"])
        )
    else:
        path = f"/v1/{route}"
    verb = "POST" if draw(st.integers(0, 19)) else draw(st.sampled_from(["GET", "PUT", "HEAD", "OPTIONS", "post"]))
    body = (
        encode_json(draw(tracking_payloads(route)), draw(st.booleans()))
        if draw(st.integers(0, 3))
        else draw(bodies("spec"))
    )
    mode = draw(st.sampled_from(CREDENTIAL_MODES))
    valid = draw(st.sampled_from(sorted(VALID_KEYS)))
    tenant: str | None = VALID_KEYS[valid] if mode in ADMITTED_MODES else None
    other_tenant = next(t for t in TENANTS if t != VALID_KEYS[valid])
    wrong = {
        "cross-tenant": f"{VALID_KEYS[valid]}.{bridge_key(other_tenant).partition('.')[2]}",
        "wrong-secret": f"{VALID_KEYS[valid]}.sbk_{draw(st.text(alphabet='abcXYZ019_-', min_size=16, max_size=96))}",
        "unknown-tenant": f"{draw(st.sampled_from(['nosuch', 'A' * 64, 'z9_-']))}.{valid.partition('.')[2]}",
        "malformed": draw(st.sampled_from(MALFORMED_KEYS) | st.text(max_size=60)),
    }
    headers: dict[str, str] = {}
    credential: str | None = None
    if mode in ("basic", "basic-and-body-garbage"):
        credential = valid
        headers["Authorization"] = basic(valid, draw(st.sampled_from(["", "", "x"])))
        if mode == "basic-and-body-garbage":
            body = _with_key(body, draw(st.sampled_from(MALFORMED_KEYS))) or body
    elif mode in ("body", "basic-garbage-body-valid"):
        # A body that is not a JSON object has no place for the key: a minimal one takes its place.
        body = _with_key(body, valid) or encode_json({"writeKey": valid, "batch": []}, True)
        credential = valid
        if mode == "basic-garbage-body-valid":  # an Authorization header that is no Basic credential
            headers["Authorization"] = draw(
                st.sampled_from(["Bearer " + valid, "Basic", "Basic !!!", "Basic " + "w" * 10, "Digest x", ""])
            )
    elif mode == "basic-wrong-body-valid":  # the Basic credential decides, even with a valid key in the body
        credential = draw(st.sampled_from([wrong["wrong-secret"], wrong["cross-tenant"], ""]))
        headers["Authorization"] = basic(credential)
        body = _with_key(body, valid) or body
    elif mode in wrong:
        credential = wrong[mode]
        if draw(st.booleans()):
            try:
                headers["Authorization"] = basic(credential)
            except UnicodeEncodeError:
                headers["Authorization"] = "Basic " + base64.b64encode(credential.encode("utf-8", "replace")).decode()
        else:
            body = _with_key(body, credential) or body
    how, content_encoding, sent = encoded(draw, body)
    headers["Content-Type"] = draw(
        st.sampled_from(["application/json"] * 6 + ["application/json; charset=utf-8", "APPLICATION/JSON"])
        | content_types
    )
    if content_encoding is not None:
        headers["Content-Encoding"] = content_encoding
    event = api_gateway_event(verb, path, sent, headers, stage=STAGE, domain=HOST, resource=path, path_parameters={})
    base64_mode = draw(st.sampled_from(["base64"] * 8 + ["text", "bad-base64"]))
    if base64_mode == "text" and how == "none":
        event["body"], event["isBase64Encoded"] = sent.decode("utf-8", "surrogateescape"), False
    elif base64_mode == "bad-base64":
        event["body"], event["isBase64Encoded"] = draw(st.sampled_from(["%%%", "YQ", "é"])), True
    # API Gateway ignores a trailing slash; the handler's router, the method's case.
    if path not in (f"/v1/{route}", f"/v1/{route}/") or verb.upper() != "POST":
        tenant = None
    return DrawnTracking(route, mode, tenant, credential, event, how)
