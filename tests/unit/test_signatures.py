"""The shared signature primitives: constant-time checks and the replay window."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segment_bridge.errors import Unauthorized
from segment_bridge.ingest.signatures import check_timestamped_hmac, parse_timestamped_header, sign_timestamped

SECRET = "s3cret"
NOW = 1_800_000_000


def clock() -> float:
    return NOW


def test_valid_signature_passes() -> None:
    body = b'{"type":"track"}'
    check_timestamped_hmac(SECRET, sign_timestamped(SECRET, body, NOW), body, 300, clock)


@pytest.mark.parametrize("header", [None, "", "garbage", "t=1800000000", "v1=abc", "t=abc,v1=00"])
def test_malformed_headers_are_unauthorized(header: str | None) -> None:
    with pytest.raises(Unauthorized):
        check_timestamped_hmac(SECRET, header, b"{}", 300, clock)


def test_tampered_body_wrong_secret_and_stale_timestamp_are_unauthorized() -> None:
    body = b'{"a":1}'
    header = sign_timestamped(SECRET, body, NOW)
    with pytest.raises(Unauthorized):
        check_timestamped_hmac(SECRET, header, b'{"a":2}', 300, clock)
    with pytest.raises(Unauthorized):
        check_timestamped_hmac("other", header, body, 300, clock)
    for skew in (-301, 301):
        with pytest.raises(Unauthorized, match="window"):
            check_timestamped_hmac(SECRET, sign_timestamped(SECRET, body, NOW + skew), body, 300, clock)


def test_any_of_several_v1_signatures_may_match() -> None:
    body = b"{}"
    good = sign_timestamped(SECRET, body, NOW).split("v1=")[1]
    check_timestamped_hmac(SECRET, f"t={NOW},v1=deadbeef,v1={good}", body, 300, clock)


def test_header_parsing_bounds_the_number_of_signatures() -> None:
    _, signatures = parse_timestamped_header("t=1," + ",".join(["v1=00"] * 1000))
    assert len(signatures) == 8


@given(st.binary(max_size=256), st.binary(max_size=256))
def test_signature_binds_the_exact_body(body: bytes, other: bytes) -> None:
    header = sign_timestamped(SECRET, body, NOW)
    if other == body:
        check_timestamped_hmac(SECRET, header, other, 300, clock)
    else:
        with pytest.raises(Unauthorized):
            check_timestamped_hmac(SECRET, header, other, 300, clock)
