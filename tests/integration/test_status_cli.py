"""`segment-bridge status` against moto: queue depth, oldest message, the breakers from their
metrics, dead letters by tenant and reason; and nothing on the DLQ is removed by looking."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from click.testing import CliRunner

from segment_bridge.forward import BREAKER_OPEN_METRIC, OLDEST_AGE_METRIC
from segment_bridge.forward.dead_letters import SqsDeadLetterQueue
from segment_bridge.observability import NAMESPACE, SERVICE
from segment_bridge_tools import cli_dlq
from segment_bridge_tools.cli import main
from tests.conftest import TENANT, queued_body


@pytest.fixture(autouse=True)
def no_long_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_dlq, "RECEIVE_WAIT_SECONDS", 0)


def put_metric(name: str, value: float, minutes_ago: float, **dimensions: str) -> None:
    boto3.client("cloudwatch").put_metric_data(
        Namespace=NAMESPACE,
        MetricData=[
            {
                "MetricName": name,
                "Value": value,
                "Timestamp": datetime.now(UTC) - timedelta(minutes=minutes_ago),
                "Dimensions": [{"Name": k, "Value": v} for k, v in {**dimensions, "service": SERVICE}.items()],
            }
        ],
    )


def status(*args: str) -> Any:
    result = CliRunner().invoke(main, ["status", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_status_during_an_eu_outage(aws: dict[str, str]) -> None:
    sqs = boto3.client("sqs")
    message = {"type": "track", "userId": "u", "event": "E", "messageId": "m1"}
    for _ in range(3):
        sqs.send_message(QueueUrl=aws["queue_url"], MessageBody=queued_body(TENANT, [message]))
    dlq = SqsDeadLetterQueue(aws["dlq_url"])
    for tenant, reason, status_code in (
        ("acme", "Segment answered 400: invalid", "400"),
        ("acme", "Segment answered 400: invalid", "400"),
        ("beta", "Segment answered 401: bad key; given up after 168.0 h in the queue (MaxDeliveryAgeHours)", "401"),
    ):
        dlq.dead_letter(queued_body(tenant, [message]), reason, {"tenant": tenant, "status": status_code})
    put_metric(BREAKER_OPEN_METRIC, 1, 2, region="eu")
    put_metric(BREAKER_OPEN_METRIC, 0, 9, region="us")
    put_metric(BREAKER_OPEN_METRIC, 1, 30, region="us")  # outside the 15 min window: an old open state
    put_metric(OLDEST_AGE_METRIC, 5400, 3)

    report = json.loads(status("--json"))
    assert report["queue"] == {"visible": 3, "in_flight": 0, "delayed": 0, "total": 3}
    assert report["breakers"]["eu"]["state"] == "open" and report["breakers"]["us"]["state"] == "closed"
    assert report["oldest_message_seconds"] == 5400
    dead = report["dead_letters"]
    assert dead["depth"] == 3 and dead["by_tenant"] == {
        "acme": {"dead_letters": 2, "messages": 2},
        "beta": {"dead_letters": 1, "messages": 1},
    }
    assert dead["by_reason"][0] == {"status": "400", "reason": "Segment answered 400: invalid", "dead_letters": 2}

    text = status()
    assert "main queue     3 waiting, 0 in flight or backing off, 0 delayed" in text
    assert "oldest message 1.5 h" in text
    assert "eu: unreachable, circuit open" in text and "us: reachable, circuit closed" in text
    assert "3 on the DLQ" in text and "2 x [400] Segment answered 400: invalid" in text
    assert "MaxDeliveryAgeHours" in text
    # Looking removed nothing, and hid nothing for long.
    assert json.loads(status("--json"))["dead_letters"]["depth"] == 3


def test_status_without_reports_says_so(aws: dict[str, str]) -> None:
    text = status("--minutes", "5")
    assert "us: no report in the last 5 min" in text and "eu: no report in the last 5 min" in text
    assert "oldest message no report" in text and "0 on the DLQ" in text


def test_status_needs_a_dlq(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEAD_LETTER_QUEUE_URL", raising=False)
    result = CliRunner().invoke(main, ["status"])
    assert result.exit_code != 0 and "no dead-letter queue" in result.output
