"""End to end in `make run`'s stack: a tenant whose Segment source is OAuth-only delivers over HTTP,
with tokens from the sink's token server, through an expired token's 401 and its refresh."""

from __future__ import annotations

import json

import pytest
import requests

from segment_bridge.ingest.signatures import sign_timestamped
from segment_bridge_tools.local_stack import LocalStack

from .test_local_stack import signed_post, wait_for

pytestmark = pytest.mark.e2e


def test_an_oauth_only_tenant_delivers_and_walks_the_refresh_path(stack: LocalStack) -> None:
    assert stack.sink is not None
    tenant, write_key = stack.config.oauth_tenant, stack.config.oauth_write_key
    first = signed_post_to(stack, tenant, "before")
    wait_for(stack, set(first))
    stack.sink.expire_tokens()  # the token dies early (revoked, say): Segment answers 401
    second = signed_post_to(stack, tenant, "after")
    wait_for(stack, set(second))
    ours = [r for r in stack.sink.snapshot() if r.write_key == write_key or r.auth == "bearer"]
    assert {r.auth for r in ours} == {"bearer"}  # never Basic auth for this tenant
    assert [r.status for r in ours].count(401) == 1 and ours[-1].status == 200
    assert all(r.write_key == write_key for r in ours if r.status == 200)  # the writeKey rides in the body
    issued = [t for t in stack.sink.token_requests if t.client_id == stack.config.oauth_client_id]
    assert [t.status for t in issued][-2:] == [200, 200]
    # A Basic tenant of the same stack is still sent with its writeKey as Basic auth.
    basic = signed_post(stack, {"type": "track", "userId": "u-basic", "event": "Order Completed"})
    wait_for(stack, set(basic.json()["messageIds"]))
    assert any(r.auth == "basic" and r.write_key == stack.config.write_key for r in stack.sink.snapshot())


def signed_post_to(stack: LocalStack, tenant: str, tag: str) -> list[str]:
    raw = json.dumps({"type": "track", "userId": f"u-{tag}", "event": "Report Exported"}).encode()
    response = requests.post(
        stack.webhook_url("spec", tenant),
        data=raw,
        timeout=10,
        headers={"Content-Type": "application/json", "X-Signature": sign_timestamped(stack.config.signing_secret, raw)},
    )
    assert response.status_code == 202, response.text
    return list(response.json()["messageIds"])
