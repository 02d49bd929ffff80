"""A rotated writeKey or moved region reaches the forwarder within the secret cache TTL (moto)."""

from __future__ import annotations

import time
from typing import Any

from segment_bridge.config import Settings
from segment_bridge.forward.batching import Batch
from segment_bridge.forward.client import PreparedRequest, SendOutcome, Target
from segment_bridge.forward.forwarder import Forwarder, QueuedRecord
from segment_bridge.forward.ratelimit import RateLimiter
from segment_bridge.tenants import SecretsManagerTenants
from tests.conftest import TENANT, put_tenant, queued_body, tenant_secret

TTL_SECONDS = 1


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def prepare(self, target: Target, batch: Batch[Any], sent_at: str) -> PreparedRequest:
        return PreparedRequest(target.region, {}, batch.body(sent_at), target.write_key)

    def send(self, request: PreparedRequest, timeout: float | None = None) -> SendOutcome:
        self.seen.append((request.url, request.write_key))
        return SendOutcome(200)


class NoDLQ:
    def dead_letter(self, body: str, reason: str, attributes: dict[str, str]) -> None:
        raise AssertionError("nothing should be dead-lettered")


def record(n: int) -> QueuedRecord:
    message = {"type": "track", "userId": "u", "event": "E", "messageId": f"m{n}"}
    return QueuedRecord(f"r{n}", queued_body(TENANT, [message]))


def test_rotated_key_and_moved_region_are_used_after_the_ttl(aws: dict[str, str]) -> None:
    client = Recorder()
    tenants = SecretsManagerTenants("segment-bridge", max_age=TTL_SECONDS)
    forwarder = Forwarder(Settings(), tenants, client, NoDLQ(), limiter=RateLimiter(1e9))
    forwarder.forward([record(1)])
    put_tenant(TENANT, tenant_secret(write_key="rotated-write-key-0001", region="eu"))
    forwarder.forward([record(2)])  # cached: Segment answers 200 to any key, so nothing signals the change
    time.sleep(TTL_SECONDS + 0.1)
    forwarder.forward([record(3)])
    old = ("us", tenant_secret()["write_key"])
    assert client.seen == [old, old, ("eu", "rotated-write-key-0001")]
