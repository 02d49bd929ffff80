"""An outage end to end, in seconds: webhooks in while Segment (the sink) answers 503, then Segment back.

Through the local stack: the forwarder opens the breaker, stops sending, gives each failed record
its backoff with ChangeMessageVisibilityBatch on moto's queue (the poller sees them again only
then), and when the sink answers again everything arrives, nothing dead-lettered.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import boto3
import pytest
import requests

from segment_bridge.forward.breaker import FAILURES_TO_OPEN
from segment_bridge.ingest.signatures import sign_timestamped
from segment_bridge_tools.local_stack import LocalStack, StackConfig
from segment_bridge_tools.sink import Answer, ReceivedRequest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


class Outage:
    def __init__(self) -> None:
        self.down = True

    def __call__(self, request: ReceivedRequest) -> Answer | None:
        return (503, {}, {"code": "unavailable", "message": "down for maintenance"}) if self.down else None


@pytest.fixture(scope="module")
def outage() -> Outage:
    return Outage()


@pytest.fixture(scope="module")
def stack(outage: Outage) -> Iterator[LocalStack]:
    config = StackConfig(
        tenant="outage",
        sink_responder=outage,
        segment_timeout_seconds=0.5,
        forwarder_timeout_seconds=10,
        visibility_timeout_seconds=12,
        max_receive_count=1000,
        batching_window_seconds=0.2,
        redelivery_base_seconds=1,
        redelivery_cap_seconds=2,
        breaker_probe_seconds=3,
    )
    with LocalStack(config) as running:
        yield running


def post(stack: LocalStack, number: int) -> list[str]:
    events = [
        {"type": "track", "userId": "u", "event": "Order Completed", "messageId": f"o-{number}-{i}"} for i in range(20)
    ]
    raw = json.dumps({"batch": events}).encode()
    response = requests.post(
        stack.webhook_url("spec"),
        data=raw,
        timeout=10,
        headers={"Content-Type": "application/json", "X-Signature": sign_timestamped(stack.config.signing_secret, raw)},
    )
    assert response.status_code == 202, response.text
    return list(response.json()["messageIds"])


def test_an_outage_costs_few_requests_no_dead_letters_and_drains_when_segment_is_back(
    stack: LocalStack, outage: Outage
) -> None:
    assert stack.sink is not None
    accepted = {i for n in range(3) for i in post(stack, n)}
    deadline = time.monotonic() + 30
    while len(stack.sink.snapshot()) < FAILURES_TO_OPEN:
        assert time.monotonic() < deadline, "the forwarder never tried Segment"
        time.sleep(0.1)
    time.sleep(1.0)  # the breaker opened on the tenth 503: from here on, probes only
    opened = len(stack.sink.snapshot())
    invocations = sum(p.invocations for p in stack.pollers)
    accepted |= {i for n in range(3, 6) for i in post(stack, n)}  # more arrive during the outage
    time.sleep(4.0)
    during = stack.sink.snapshot()[opened:]
    # Probes of one message each, at most one per probe interval (3 s here) from this one instance.
    assert 1 <= len(during) <= 2 and all(r.message_count == 1 for r in during)
    # The records are postponed on the queue, not spinning: few invocations in these 4 s.
    assert sum(p.invocations for p in stack.pollers) - invocations <= 12
    assert stack.queue_depth() == 6 and stack.queue_depth(stack.dlq_url) == 0

    outage.down = False
    assert stack.wait_until_drained(timeout=30), "the backlog did not drain"
    delivered = {m["messageId"] for m in stack.sink.messages()}
    assert accepted <= delivered
    assert stack.queue_depth(stack.dlq_url) == 0
    received = boto3.client("sqs").get_queue_attributes(
        QueueUrl=stack.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert received["ApproximateNumberOfMessages"] == "0"
