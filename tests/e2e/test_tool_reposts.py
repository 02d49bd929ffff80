"""End to end over HTTP: a tool's re-post of one event reaches the Segment sink under one messageId.

sendgrid-nodejs#1435: SendGrid re-posts an event under a new `sg_event_id`. Segment dedupes only on
messageId, so one open must stay one messageId, while each delivery's own id still reaches QA in
`context.source_event.id`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import requests

from segment_bridge_tools.local_stack import LocalStack, StackConfig
from segment_bridge_tools.signing import demo_source_settings, sign

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def aws_env() -> None:
    """The stack sets its own AWS environment (moto server endpoint)."""


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    config = StackConfig(
        tenant="reposts",
        batching_window_seconds=0.2,
        visibility_timeout_seconds=1,
        source_settings={"sendgrid": demo_source_settings()["sendgrid"]},
    )
    with LocalStack(config) as running:
        yield running


#: The open's own time: the same in both deliveries (SendGrid re-posts the event as it was).
OPENED_AT = int(time.time()) - 60


def post_open(stack: LocalStack, sg_event_id: str) -> list[str]:
    event = {
        "email": "repost@example.com",
        "timestamp": OPENED_AT,
        "event": "open",
        "sg_event_id": sg_event_id,
        "sg_message_id": "e2e-repost.filter0001.1.0",
        "user_id": "user-repost",
    }
    body = json.dumps([event]).encode() + b"\r\n"
    url = stack.webhook_url("sendgrid")
    headers, signed = sign("sendgrid", body, stack.config.source_settings["sendgrid"], url)
    response = requests.post(url, data=signed, headers=headers, timeout=10)
    assert response.status_code == 202, response.text
    return list(response.json()["messageIds"])


def test_a_sendgrid_repost_with_a_new_sg_event_id_keeps_the_message_id(stack: LocalStack) -> None:
    first, again = post_open(stack, "Zmlyc3QtZGVsaXZlcnk"), post_open(stack, "cmUtcG9zdGVkLWxhdGVy")
    assert first == again and len(first) == 1
    assert stack.sink is not None
    deadline = time.monotonic() + 20
    delivered: list[dict] = []
    while time.monotonic() < deadline and len(delivered) < 2:
        delivered = [m for m in stack.sink.messages() if m["messageId"] == first[0]]
        time.sleep(0.1)
    # Both deliveries reach Segment under the one messageId (Segment keeps the first), each with its own QA id.
    assert sorted(m["context"]["source_event"]["id"] for m in delivered) == [
        "Zmlyc3QtZGVsaXZlcnk",
        "cmUtcG9zdGVkLWxhdGVy",
    ]
    assert all(m["event"] == "Email Opened" and m["userId"] == "user-repost" for m in delivered)
