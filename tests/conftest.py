"""Shared fixtures: moto-backed AWS, a demo tenant, event builders, and handler access.

Every test runs with fake credentials and a fresh moto state; caches that hold boto3 clients
(Powertools parameters, our lazy clients, cached settings and handler singletons) are cleared so
no test sees another's AWS objects.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

FIXTURES = Path(__file__).parent / "fixtures"
TENANT = "acme"
SIGNING_SECRET = "whsec_test_spec_signing_secret_0123456789"
WRITE_KEY = "wk_live_SECRET_abcdefghijklmnopqrstuvwx"
DESTINATION_API_KEY = "dest_SECRET_api_key_0123456789abcdef"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "SegmentBridgeTest")
    monkeypatch.setenv("POWERTOOLS_DEV", "false")
    # Every 401 waits out the refusal floor (0.1 s); the suite makes hundreds of them. The floor's
    # own tests (tests/hardening/test_bounded_work.py) set it back.
    monkeypatch.setenv("UNAUTHORIZED_FLOOR_SECONDS", "0")
    reset_caches()


def reset_caches() -> None:
    from segment_bridge_tools.local_stack import clear_caches

    clear_caches()


def tenant_secret(**overrides: Any) -> dict[str, Any]:
    secret: dict[str, Any] = {
        "write_key": WRITE_KEY,
        "region": "us",
        "sources": {"spec": {"signing_secret": SIGNING_SECRET}},
    }
    secret.update(overrides)
    return secret


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """moto-backed queue, DLQ and one tenant secret; env vars set the way the template sets them."""
    with mock_aws():
        sqs = boto3.client("sqs")
        dlq_url = sqs.create_queue(QueueName="segment-bridge-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue_url = sqs.create_queue(
            QueueName="segment-bridge",
            Attributes={
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
                "VisibilityTimeout": "0",
            },
        )["QueueUrl"]
        boto3.client("secretsmanager").create_secret(
            Name=f"segment-bridge/tenants/{TENANT}", SecretString=json.dumps(tenant_secret())
        )
        monkeypatch.setenv("QUEUE_URL", queue_url)
        monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", dlq_url)
        monkeypatch.setenv("SECRETS_PREFIX", "segment-bridge")
        monkeypatch.setenv("INTEGRATION_NAME", "acme-tool")
        reset_caches()
        yield {"queue_url": queue_url, "dlq_url": dlq_url}
        reset_caches()


@pytest.fixture
def identity_table(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """The identity loop switched on: the moto table, its env var, and the tenant's destination key."""
    from segment_bridge_tools.local_stack import IDENTITY_TABLE, create_identity_table

    create_identity_table(boto3.client("dynamodb"), IDENTITY_TABLE)
    monkeypatch.setenv("IDENTITY_TABLE_NAME", IDENTITY_TABLE)
    put_tenant(TENANT, tenant_secret(destination={"api_key": DESTINATION_API_KEY}))
    reset_caches()
    return IDENTITY_TABLE


def put_tenant(tenant: str, secret: dict[str, Any], prefix: str = "segment-bridge") -> None:
    from segment_bridge_tools.local_stack import put_tenant_secret

    put_tenant_secret(tenant, secret, prefix)


def receive_all(queue_url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not batch:
            return messages
        messages.extend(batch)
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )


def queued_body(tenant: str, messages: list[dict[str, Any]], source: str = "spec") -> str:
    """A queue message as ingest writes it (the current format version)."""
    from segment_bridge.queue_format import queue_body

    return queue_body(tenant, source, [json.dumps(m, ensure_ascii=False, separators=(",", ":")) for m in messages])


def load_fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def emitted_metrics(output: str) -> dict[str, float]:
    """The EMF metrics a handler flushed to stdout (captured with capsys), summed by name."""
    totals: dict[str, float] = {}
    for line in output.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if isinstance(document, dict) and "_aws" in document:
            for definition in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                value = document[definition["Name"]]
                totals[definition["Name"]] = totals.get(definition["Name"], 0) + sum(
                    value if isinstance(value, list) else [value]
                )
    return totals
