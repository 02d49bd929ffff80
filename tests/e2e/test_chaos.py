"""Chaos, end to end: signed webhooks in, a Segment that drops, stalls, throttles, fails and rejects.

At the end every accepted messageId is at the sink (answered 200) or on the DLQ with a reason; no
request broke Segment's size limits; and the request rate never went over the configured cap.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests

from segment_bridge.forward.dead_letters import read_dead_letter, string_attributes
from segment_bridge.ingest.signatures import sign_timestamped
from segment_bridge.limits import MAX_BATCH_MESSAGES, MAX_BATCH_REQUEST_BYTES
from segment_bridge_tools.faults import REJECT_MARKER, FaultPlan
from segment_bridge_tools.local_stack import LocalStack, StackConfig

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REQUESTS_PER_SECOND = 10
TENANTS = {"chaos": "us", "beta": "us", "gamma": "eu"}
WEBHOOKS_PER_TENANT = 10
MESSAGES_PER_WEBHOOK = 100
#: (tenant, webhook, index) of the messages Segment will refuse with a 400.
BAD = {("chaos", 3, 17), ("beta", 7, 60), ("gamma", 0, 99)}


@pytest.fixture(scope="module")
def plan() -> FaultPlan:
    return FaultPlan(
        error_500=0.06,
        error_503=0.06,
        rate_limited=0.06,
        retry_after_seconds=0.5,
        stall=0.04,
        stall_seconds=0.8,
        drop=0.04,
        seed=7,
    )


@pytest.fixture(scope="module")
def stack(plan: FaultPlan) -> Iterator[LocalStack]:
    config = StackConfig(
        tenant="chaos",
        sink_responder=plan,
        segment_timeout_seconds=0.4,
        forwarder_timeout_seconds=20,
        visibility_timeout_seconds=22,
        max_receive_count=4,
        partner_requests_per_second=REQUESTS_PER_SECOND,
        forwarder_concurrency=1,
        batching_window_seconds=0.3,
    )
    with LocalStack(config) as running:
        for tenant, region in TENANTS.items():
            running.put_tenant(
                tenant,
                {
                    "write_key": f"wk-{tenant}-0123456789",
                    "region": region,
                    "sources": {"spec": {"signing_secret": config.signing_secret}},
                },
            )
        yield running


def webhook(tenant: str, number: int) -> list[dict[str, Any]]:
    return [
        {
            "type": "track",
            "userId": f"user-{i % 37}",
            "event": "Order Completed",
            "messageId": f"{tenant}-{number}-{i}",
            "properties": {
                "order_id": f"o-{number}-{i}",
                "total": i,
                **({REJECT_MARKER: True} if (tenant, number, i) in BAD else {}),
            },
        }
        for i in range(MESSAGES_PER_WEBHOOK)
    ]


def post(stack: LocalStack, tenant: str, messages: list[dict[str, Any]]) -> list[str]:
    raw = json.dumps({"batch": messages}).encode()
    response = requests.post(
        stack.webhook_url("spec", tenant),
        data=raw,
        timeout=30,
        headers={"Content-Type": "application/json", "X-Signature": sign_timestamped(stack.config.signing_secret, raw)},
    )
    assert response.status_code == 202, response.text
    return response.json()["messageIds"]


def dead_letters(queue_url: str) -> list[tuple[str, dict[str, str]]]:
    sqs = boto3.client("sqs")
    found: dict[str, tuple[str, dict[str, str]]] = {}
    while True:
        batch = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not batch:
            return list(found.values())
        for message in batch:
            found[message["MessageId"]] = (message["Body"], string_attributes(message))


def test_nothing_is_lost_and_segments_limits_hold_under_faults(stack: LocalStack, plan: FaultPlan) -> None:
    started = time.monotonic()
    accepted: set[str] = set()
    for number in range(WEBHOOKS_PER_TENANT):
        for tenant in TENANTS:
            accepted.update(post(stack, tenant, webhook(tenant, number)))
    assert len(accepted) == len(TENANTS) * WEBHOOKS_PER_TENANT * MESSAGES_PER_WEBHOOK
    assert stack.wait_until_drained(timeout=50), "the queue did not drain"
    assert stack.sink is not None

    delivered = {m["messageId"] for m in stack.sink.messages()}
    dead: dict[str, dict[str, str]] = {}
    for body, attributes in dead_letters(stack.dlq_url):
        view = read_dead_letter(body, attributes)
        assert view.redrivable and view.reason and attributes.get("tenant") == view.tenant
        dead.update({m["messageId"]: attributes for m in view.messages})

    bad = {f"{tenant}-{number}-{i}" for tenant, number, i in BAD}
    assert accepted - delivered - set(dead) == set(), "messages lost"
    assert bad <= set(dead) and not bad & delivered
    assert {dead[m]["status"] for m in bad} == {"400"}, [dead[m] for m in bad]
    assert len(dead) <= len(bad) + 2 * MESSAGES_PER_WEBHOOK, "far more dead-lettered than the faults explain"

    seen = stack.sink.snapshot()
    statuses = Counter(r.status for r in seen)
    print(
        f"\nchaos: {len(accepted)} accepted, {len(delivered & accepted)} delivered, {len(dead)} dead-lettered, "
        f"{len(seen)} requests {dict(statuses)}, faults {dict(plan.injected)}, "
        f"peak {stack.sink.max_requests_in_window(1.0)}/s, {time.monotonic() - started:.1f} s"
    )
    assert max(r.body_bytes for r in seen) <= MAX_BATCH_REQUEST_BYTES
    assert max(r.message_count for r in seen) <= MAX_BATCH_MESSAGES
    assert stack.sink.max_requests_in_window(1.0) <= REQUESTS_PER_SECOND
    # The faults really happened, and the run stayed short.
    assert {"drop", "stall", "500", "503", "429", "400"} <= set(plan.injected)
    assert time.monotonic() - started < 60


def test_a_redriven_dead_letter_arrives_with_its_message_ids(
    stack: LocalStack, plan: FaultPlan, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Segment refuses a message until it is fixed on Segment's side; `dlq redrive` then delivers it."""
    from click.testing import CliRunner

    from segment_bridge_tools import cli_dlq
    from segment_bridge_tools.cli import main

    assert stack.sink is not None
    refused = "redrive-0-1"
    messages = [
        {"type": "track", "userId": "u", "event": "Refund Issued", "messageId": f"redrive-0-{i}"} for i in range(3)
    ]
    plan.reject_message_ids = frozenset({refused})
    try:
        assert set(post(stack, "chaos", messages)) == {m["messageId"] for m in messages}
        assert stack.wait_until_drained(timeout=30)
        deadline = time.monotonic() + 10
        while stack.queue_depth(stack.dlq_url) == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert refused not in {m["messageId"] for m in stack.sink.messages()}
    finally:
        plan.reject_message_ids = frozenset()
    monkeypatch.setattr(cli_dlq, "RECEIVE_WAIT_SECONDS", 0)
    result = CliRunner().invoke(main, ["dlq", "redrive", "--tenant", "chaos"], catch_exceptions=False)
    assert result.exit_code == 0 and "moved" in result.output, result.output
    deadline = time.monotonic() + 20
    while refused not in {m["messageId"] for m in stack.sink.messages()}:
        assert time.monotonic() < deadline, "the redriven message never reached the sink"
        time.sleep(0.1)
