"""The identity loop over HTTP: Segment's identify -> destination endpoint -> DynamoDB (moto server);
then a SendGrid webhook -> ingest resolves the recipient -> SQS -> forward -> the sink sees the customer's userId."""

from __future__ import annotations

import time

import pytest
import requests

from segment_bridge_tools.identity_demo import (
    DEMO_GROUP_ID,
    DEMO_USER_ID,
    basic_auth,
    segment_calls,
    send_segment_calls,
)
from segment_bridge_tools.local_stack import LocalStack, clear_caches
from segment_bridge_tools.signing import demo_source_settings, sign
from tests.conftest import load_fixture

pytestmark = pytest.mark.e2e

SENDGRID_FORWARDED = 7  # of the 11 sample events; the rest have no Spec counterpart


def test_sendgrid_events_reach_segment_with_the_userid_segment_sent_us(stack: LocalStack) -> None:
    assert stack.sink is not None
    stack.sink.reset()
    calls = segment_calls()
    response = send_segment_calls(stack, calls)
    assert response.status_code == 200 and response.json()["applied"] == 2, response.text
    assert send_segment_calls(stack, calls).json()["duplicates"] == 2  # Segment redelivers: applied once

    headers, body = sign(
        "sendgrid",
        load_fixture("webhooks/sendgrid-all-events.json"),
        demo_source_settings()["sendgrid"],
        stack.webhook_url("sendgrid"),
    )
    stack.put_tenant(
        stack.config.tenant,
        {
            "write_key": stack.config.write_key,
            "identity": {"missing_user_id": "reject"},
            "destination": {"api_key": stack.config.destination_api_key},
            "sources": {"sendgrid": demo_source_settings()["sendgrid"]},
        },
    )
    clear_caches()  # the new sendgrid settings, without waiting for the 300 s secrets cache
    response = requests.post(stack.webhook_url("sendgrid"), data=body, headers=headers, timeout=10)
    assert response.status_code == 202, response.text
    assert response.json()["resolvedUserIds"] == SENDGRID_FORWARDED

    deadline = time.monotonic() + 20
    while len(stack.sink.messages()) < SENDGRID_FORWARDED and time.monotonic() < deadline:
        time.sleep(0.1)
    messages = stack.sink.messages()
    assert len(messages) == SENDGRID_FORWARDED
    assert {(m["userId"], m["context"]["groupId"]) for m in messages} == {(DEMO_USER_ID, DEMO_GROUP_ID)}


def test_the_destination_endpoint_refuses_a_wrong_key_over_http(stack: LocalStack) -> None:
    response = requests.post(
        stack.destination_url(),
        json={"type": "identify", "userId": "u"},
        headers={"Authorization": basic_auth("not-the-key-0123456789")},
        timeout=10,
    )
    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/json" and response.json()["message"]
