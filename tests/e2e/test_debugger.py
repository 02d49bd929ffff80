"""The debugger over HTTP against the whole local stack, and `make run`'s terminal tail.

Each test starts its own stack: the demo starts one too, and every stack resets the process's moto.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from click.testing import CliRunner

from segment_bridge.ingest.signatures import sign_timestamped
from segment_bridge_tools.faults import REJECT_MARKER, FaultPlan
from segment_bridge_tools.local_stack import LocalStack, StackConfig

pytestmark = pytest.mark.e2e

EU_SECRET = "eu-tenant-PLANTED-signing-secret"
EU_WRITE_KEY = "eu-PLANTED-write-key-0123456789-EUEU"


def post(stack: LocalStack, tenant: str, secret: str, message: dict[str, Any]) -> requests.Response:
    raw = json.dumps(message).encode()
    headers = {"Content-Type": "application/json", "X-Signature": sign_timestamped(secret, raw)}
    return requests.post(stack.webhook_url("spec", tenant), data=raw, headers=headers, timeout=10)


def feed(stack: LocalStack) -> dict[str, Any]:
    return requests.get(stack.debugger_url + "/api/feed", timeout=10).json()


def wait_for(check: Any, what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_each_request_shows_the_region_it_was_sent_to_and_no_tenant_secret() -> None:
    config = StackConfig(tenant="usco", debugger=True, batching_window_seconds=0.2)
    with LocalStack(config) as stack:
        stack.put_tenant(
            "euco", {"write_key": EU_WRITE_KEY, "region": "eu", "sources": {"spec": {"signing_secret": EU_SECRET}}}
        )
        track = {"type": "track", "userId": "u-1", "event": "Report Exported"}
        assert post(stack, "usco", config.signing_secret, track).status_code == 202
        assert post(stack, "euco", EU_SECRET, track).status_code == 202
        assert stack.wait_until_drained(timeout=20)
        requests_seen = wait_for(lambda: len(feed(stack)["requests"]) == 2 and feed(stack)["requests"], "two requests")
        assert {(r["tenants"][0], r["region"]) for r in requests_seen} == {("usco", "us"), ("euco", "eu")}
        assert {r["writeKey"] for r in requests_seen} == {"••••" + config.write_key[-4:], "••••EUEU"}
        texts = [json.dumps(feed(stack))]
        for webhook in feed(stack)["webhooks"]:
            texts.append(requests.get(f"{stack.debugger_url}/api/webhooks/{webhook['id']}", timeout=10).text)
        for text in texts:
            for secret in (EU_SECRET, config.signing_secret, config.destination_api_key):
                assert secret not in text and base64.b64encode(secret.encode()).decode() not in text
            assert EU_WRITE_KEY[:-4] not in text and config.write_key[:-4] not in text


def test_a_dead_letter_shows_with_its_reason_and_is_still_there_for_the_dlq_cli() -> None:
    config = StackConfig(
        tenant="acme",
        debugger=True,
        batching_window_seconds=0.2,
        visibility_timeout_seconds=1,
        max_receive_count=2,
        sink_responder=FaultPlan(),
    )
    with LocalStack(config) as stack:
        answer = post(
            stack,
            "acme",
            config.signing_secret,
            {"type": "track", "userId": "u-1", "event": "Bad", "properties": {REJECT_MARKER: 1}},
        )
        (message_id,) = answer.json()["messageIds"]
        (dead,) = wait_for(lambda: feed(stack)["deadLetters"], "the dead letter")
        assert dead["tenant"] == "acme" and dead["status"] == "400" and "rejected" in dead["reason"]
        webhook = feed(stack)["webhooks"][0]
        assert webhook["delivery"] == {"dead-lettered": 1} and dead["webhooks"] == [webhook["id"]]
        detail = requests.get(f"{stack.debugger_url}/api/dead-letters/{dead['id']}", timeout=10).json()
        assert [m["messageId"] for m in detail["batch"]] == [message_id]
        # The debugger only looked: the DLQ message was never received, so the CLI finds it untouched.
        received = boto3.client("sqs").receive_message(
            QueueUrl=stack.dlq_url, AttributeNames=["ApproximateReceiveCount"], MessageAttributeNames=["All"]
        )["Messages"]
        assert [m["Attributes"]["ApproximateReceiveCount"] for m in received] == ["1"]


def test_make_run_tails_what_happens_and_keeps_logs_and_metrics_in_the_log_file(tmp_path: Path) -> None:
    from segment_bridge_tools import demo

    log_file = tmp_path / "run.log"
    result = CliRunner().invoke(demo.main, ["--once", "--port", "0", "--log-file", str(log_file)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "/debugger" in out and f"function logs and metrics: {log_file}" in out
    assert "dest     POST /v1/segment/demo" in out
    for source in ("spec", "sendgrid", "stripe"):
        assert f"webhook  POST /v1/webhooks/{source}/demo" in out
    assert "segment  POST /v1/batch us" in out and " 200 " in out
    assert '"_aws"' not in out and '"level"' not in out  # no EMF metrics or JSON logs in the terminal
    logged = log_file.read_text()
    assert '"_aws"' in logged and '"message":"webhook accepted"' in logged
