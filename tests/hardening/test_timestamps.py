"""Signed timestamps of any text, for every source that signs one (issue #13, defect 2).

`check_timestamp` once did `int(float(t))` and caught only TypeError/ValueError: `t=inf`, `-inf`,
`1e400` or a 400-digit value raised OverflowError, an unhandled 500, behind a *valid* signature.
Here every timestamp is validly signed, so the signature passes and the timestamp check decides:
anything but whole seconds inside the window is the same 401 as a bad signature.
"""

from __future__ import annotations

import json
import re
import time

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from segment_bridge.errors import Unauthorized
from segment_bridge_tools.lambda_events import api_gateway_event
from segment_bridge_tools.make_events import sample_body

from .conftest import HARDENING
from .support import HOST, STAGE, Harness, assert_invariants, signed_at

pytestmark = pytest.mark.fuzz

TIMESTAMPED = ("spec", "stripe", "sendgrid", "mailgun")
#: What the probe sent, and its neighbours: none of them is a time.
HOSTILE = ["inf", "-inf", "Infinity", "NaN", "nan", "1e400", "-1e400", "9" * 400, "-" + "9" * 400, "1e9", "1.5"]

hostile_timestamps = (
    st.sampled_from(HOSTILE)
    | st.floats().map(repr)
    | st.integers().map(str)
    | st.from_regex(r"[0-9]{13,400}", fullmatch=True)
    | st.text(max_size=30)
)


def body_for(source: str) -> bytes:
    if source == "spec":
        return b'{"type":"track","userId":"u1","event":"Order Completed"}'
    if source == "mailgun":  # signed_at wraps event-data with its signature
        return json.dumps(json.loads(sample_body("mailgun"))["event-data"]).encode()
    return sample_body(source)


def post(harness: Harness, source: str, timestamp: str) -> tuple[int, str]:
    path = f"/v1/webhooks/{source}/acme"
    headers, body = signed_at(source, "acme", body_for(source), timestamp)
    call = harness.invoke(api_gateway_event("POST", path, body, headers, stage=STAGE, domain=HOST))
    assert_invariants(call)
    return call.status, call.text


@pytest.mark.parametrize("source", TIMESTAMPED)
def test_the_probes_timestamps_are_a_401_in_every_timestamped_source(harness: Harness, source: str) -> None:
    for timestamp in HOSTILE:
        status, text = post(harness, source, timestamp)
        assert status == 401, (source, timestamp[:20], text[:200])
        assert json.loads(text)["message"] == Unauthorized().message, (source, timestamp[:20])
    assert post(harness, source, str(int(time.time())))[0] == 202, source  # the signer is right


@HARDENING
@given(source=st.sampled_from(TIMESTAMPED), timestamp=hostile_timestamps)
@example(source="spec", timestamp="inf")
@example(source="stripe", timestamp="1e400")
@example(source="sendgrid", timestamp="-inf")
@example(source="mailgun", timestamp="9" * 400)
def test_any_signed_timestamp_is_accepted_only_as_whole_seconds_in_the_window(
    harness: Harness, source: str, timestamp: str
) -> None:
    status, text = post(harness, source, timestamp)
    stripped = timestamp.strip()
    in_window = re.fullmatch(r"[0-9]{1,12}", stripped) is not None and abs(int(stripped) - time.time()) < 290
    if source == "stripe" and "," in timestamp:
        in_window = False  # a comma ends `t=` in Stripe's header: another timestamp was signed
    assert status == (202 if in_window else 401), (source, timestamp[:40], text[:200])
