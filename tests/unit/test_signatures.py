"""The shared signature primitives: constant-time checks and the replay window."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segment_bridge.errors import Unauthorized
from segment_bridge.ingest.signatures import (
    check_timestamp,
    check_timestamped_hmac,
    parse_timestamped_header,
    sign_timestamped,
)

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


# -- the signed timestamp itself (issue #13: `inf` was an OverflowError, a 500) -------------------
@pytest.mark.parametrize(
    "timestamp",
    [
        "inf",
        "-inf",
        "Infinity",
        "nan",
        "1e400",
        "9" * 400,
        "1800000000.0",
        "1.8e9",
        "-1800000000",
        "+1800000000",
        "1_800_000_000",
        "0x6b49d200",
        "١٨٠٠٠٠٠٠٠٠",  # Arabic-Indic digits: int() takes them, a tool never sends them
        "",
        " ",
        None,
        1.8e9,
        True,
    ],
)
def test_a_timestamp_that_is_not_whole_ascii_seconds_is_unauthorized(timestamp: object) -> None:
    with pytest.raises(Unauthorized) as refused:
        check_timestamp(timestamp, 300, clock)  # type: ignore[arg-type]
    assert refused.value.message == Unauthorized().message  # the bad-signature text, not the window's


def test_whole_seconds_in_the_window_pass_and_return_the_time() -> None:
    assert check_timestamp(str(NOW), 300, clock) == NOW
    assert check_timestamp(f" {NOW - 299}\n", 300, clock) == NOW - 299
    assert check_timestamp(NOW + 10, 300, clock) == NOW + 10
    with pytest.raises(Unauthorized, match="window"):
        check_timestamp("0", 300, clock)
    with pytest.raises(Unauthorized, match="window"):
        check_timestamp("9" * 12, 300, clock)


@given(st.text(max_size=40) | st.floats().map(repr) | st.integers().map(str))
def test_any_text_is_a_time_or_a_401_never_a_crash(timestamp: str) -> None:
    try:
        value = check_timestamp(timestamp, 300, clock)
    except Unauthorized:
        return
    assert value == int(timestamp.strip()) and abs(value - NOW) <= 300
