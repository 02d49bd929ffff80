"""Tenant isolation, tenant-id validation before any secret lookup, and replay windows per source."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segment_bridge.ingest.sources import SOURCES
from segment_bridge.ingest.sources.mailgun import MailgunSource
from segment_bridge.tenants import TENANT_ID_PATTERN, SecretsManagerTenants, UnknownTenant, secret_name
from segment_bridge_tools.lambda_events import api_gateway_event
from segment_bridge_tools.make_events import sample_body

from .conftest import HARDENING
from .strategies import HOSTILE_SEGMENTS
from .support import HOST, STAGE, Harness, assert_invariants, basic, destination_key, signed

TOLERANCE = 300  # SIGNATURE_TOLERANCE_SECONDS default


def body_for(source: str, marker: str = "1") -> bytes:
    if source == "spec":
        return json.dumps({"type": "track", "userId": f"u{marker}", "event": "Order Completed"}).encode()
    return sample_body(source)


def post(
    harness: Harness,
    source: str,
    tenant: str,
    *,
    body: bytes | None = None,
    secrets_of: str | None = None,
    now: float | None = None,
) -> Any:
    path = f"/v1/webhooks/{source}/{tenant}"
    headers, raw = signed(source, tenant, body if body is not None else body_for(source), path, now, secrets_of)
    event = api_gateway_event("POST", path, raw, headers, stage=STAGE, domain=HOST)
    call = harness.invoke(event)
    assert_invariants(call)
    return call, event


# -- tenant isolation ---------------------------------------------------------------------------------
def test_a_valid_signature_for_one_tenant_never_admits_a_request_to_another(harness: Harness) -> None:
    for source in sorted(SOURCES):
        own, _ = post(harness, source, "other")
        assert own.status == 202, source  # the signature is good for its own tenant...
        crossed, _ = post(harness, source, "acme", secrets_of="other")
        assert crossed.status == 401 and crossed.enqueued == 0, source  # ...and worthless for another that exists


def test_the_signed_url_binds_form_sources_to_their_tenant(harness: Harness) -> None:
    """Mandrill and Twilio sign the URL, which names the tenant: a request signed for /acme and
    replayed to /other fails even if both tenants had the same key."""
    for source in ("mandrill", "twilio"):
        headers, raw = signed(source, "acme", body_for(source), f"/v1/webhooks/{source}/acme")
        event = api_gateway_event("POST", f"/v1/webhooks/{source}/other", raw, headers, stage=STAGE, domain=HOST)
        call = harness.invoke(event)
        assert_invariants(call)
        assert call.status == 401


def test_the_destination_key_of_one_tenant_does_not_open_another(harness: Harness, identity_table: str) -> None:
    from .support import install_tenants

    install_tenants()  # identity_table replaced acme's secret; put the hardening tenants back
    destination = Harness(harness.queue_url, handler="destination_handler")
    body = json.dumps({"type": "identify", "userId": "u1", "traits": {"email": "a@example.com"}}).encode()
    for key, status in ((destination_key("acme"), 200), (destination_key("other"), 401), ("", 401)):
        event = api_gateway_event(
            "POST",
            "/v1/segment/acme",
            body,
            {"Content-Type": "application/json", "Authorization": basic(key)},
            resource="/v1/segment/{tenant}",
            path_parameters={"tenant": "acme"},
        )
        call = destination.invoke(event)
        assert call.status == status, (key, call.text)


# -- tenant ids are validated before they name a secret ---------------------------------------------
hostile_ids = (
    st.sampled_from(HOSTILE_SEGMENTS) | st.text(max_size=80) | st.from_regex(r"[A-Za-z0-9_-]{65,80}", fullmatch=True)
)


@pytest.mark.fuzz
@HARDENING
@given(tenant=hostile_ids)
def test_invalid_tenant_ids_never_reach_secrets_manager(
    harness: Harness, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked_up: list[str] = []
    original = SecretsManagerTenants.get

    def spy(self: SecretsManagerTenants, name: str) -> Any:
        looked_up.append(name)
        return original(self, name)

    with monkeypatch.context() as patched:
        patched.setattr(SecretsManagerTenants, "get", spy)
        path = f"/v1/webhooks/spec/{tenant}"
        headers, raw = signed("spec", "acme", body_for("spec"), path)
        call = harness.invoke(api_gateway_event("POST", path, raw, headers, stage=STAGE, domain=HOST))
    assert_invariants(call)
    # The invariant: nothing but a valid id ever names a secret. (The router may normalize a path
    # before the id is read: Powertools' `$` ignores one trailing newline, so "acme\n" is "acme".)
    assert all(TENANT_ID_PATTERN.fullmatch(name) for name in looked_up), looked_up
    if not looked_up:
        assert call.status in (400, 404), call.text


def test_secret_names_are_only_ever_built_from_valid_ids() -> None:
    for tenant in ("", "..", "../x", "a/b", "a" * 65, "acme\n", "acme%2F..", "ácme", "-x"):
        with pytest.raises(ValueError):
            secret_name("segment-bridge", tenant)
        with pytest.raises(UnknownTenant):
            SecretsManagerTenants("segment-bridge", client=object()).get(tenant)  # no client call is made


def test_unknown_tenants_are_cached_like_known_ones(aws: dict[str, str]) -> None:
    """A repeated probe of an unknown tenant costs no Secrets Manager call, just like a known tenant
    in the cache: response time does not tell which tenants exist (docs/security.md)."""
    import boto3

    calls: list[str] = []
    client = boto3.client("secretsmanager")
    client.meta.events.register(
        "provide-client-params.secrets-manager.GetSecretValue", lambda params, **_: calls.append(params["SecretId"])
    )
    tenants = SecretsManagerTenants("segment-bridge", max_age=300, client=client)
    for _ in range(3):
        tenants.get("acme")
        with pytest.raises(UnknownTenant):
            tenants.get("nobody")
    assert calls == ["segment-bridge/tenants/acme", "segment-bridge/tenants/nobody"]


# -- replay windows -----------------------------------------------------------------------------------
def test_timestamped_signatures_expire_after_the_window(harness: Harness) -> None:
    for source in ("spec", "stripe", "sendgrid", "mailgun"):
        for offset, accepted in (
            (-(TOLERANCE + 5), False),
            ((TOLERANCE + 5), False),
            (-(TOLERANCE - 5), True),
            (TOLERANCE - 5, True),
        ):
            call, _ = post(harness, source, "acme", now=time.time() + offset, body=body_for(source, marker=str(offset)))
            assert (call.status == 202) is accepted, (source, offset, call.text[:200])


def test_a_replay_inside_the_window_is_a_redelivery_with_the_same_message_ids(harness: Harness) -> None:
    """spec, Stripe and SendGrid sign a timestamp, not a nonce: within the 300 s window the same
    signed request can be sent again. It carries the same events, so it yields the same messageIds
    and Segment drops the copies (its dedupe is by messageId). Documented in docs/security.md."""
    for source in ("spec", "stripe", "sendgrid"):
        first, event = post(harness, source, "acme")
        again = harness.invoke(event)
        assert first.status == again.status == 202, source
        assert first.body["messageIds"] == again.body["messageIds"], source


def test_a_signed_timestamp_cannot_be_moved(harness: Harness) -> None:
    """SendGrid signs timestamp + body: a fresh timestamp on an old signature does not verify."""
    _, event = post(harness, "sendgrid", "acme", now=time.time() - 3600)
    event["headers"]["X-Twilio-Email-Event-Webhook-Timestamp"] = str(int(time.time()))
    call = harness.invoke(event)
    assert call.status == 401


def test_mailgun_tokens_are_single_use_per_body(harness: Harness) -> None:
    """Mailgun signs timestamp + token, not the event: a captured signature could carry any event
    until it expires, so each token is bound to the first body it came with."""
    first, event = post(harness, "mailgun", "acme")
    assert first.status == 202
    same = harness.invoke(event)  # Mailgun's own retry: same token, same body
    assert same.status == 202 and same.body["messageIds"] == first.body["messageIds"]
    payload = json.loads(base64.b64decode(event["body"]))
    payload["event-data"]["recipient"] = "victim@example.com"
    forged = dict(event, body=base64.b64encode(json.dumps(payload).encode()).decode())
    replay = harness.invoke(forged)
    assert_invariants(replay)
    assert replay.status == 401 and replay.enqueued == 0


def forged_mailgun(harness: Harness) -> dict[str, Any]:
    first, event = post(harness, "mailgun", "acme")
    assert first.status == 202
    payload = json.loads(base64.b64decode(event["body"]))
    payload["event-data"]["recipient"] = "victim@example.com"
    return dict(event, body=base64.b64encode(json.dumps(payload).encode()).decode())


def test_mailgun_replays_on_another_instance_are_caught_by_the_shared_table(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With REPLAY_TABLE_NAME (the template sets it) the token claim is a conditional put in
    DynamoDB, so a replay is refused whichever instance it reaches."""
    import boto3

    from tests.conftest import reset_caches

    boto3.client("dynamodb").create_table(
        TableName="replay",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "key", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
    )
    monkeypatch.setenv("REPLAY_TABLE_NAME", "replay")
    reset_caches()
    forged = forged_mailgun(harness)
    mailgun = SOURCES["mailgun"]
    assert isinstance(mailgun, MailgunSource)
    call = harness.invoke(forged)  # every instance shares the table: the same as "another instance"
    assert call.status == 401 and call.enqueued == 0


def test_without_the_table_the_mailgun_guard_is_per_instance(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """Known limit when REPLAY_TABLE_NAME is unset (local runs): the in-memory guard lives in one
    Lambda instance, so a replay landing on another instance inside the window is accepted."""
    from tests.conftest import reset_caches

    forged = forged_mailgun(harness)
    assert harness.invoke(forged).status == 401  # the same instance remembers the token
    reset_caches()  # "another instance": a new ingestor, with an in-memory guard of its own
    assert harness.invoke(forged).status == 202


def test_sources_without_a_timestamp_replay_to_the_same_message_ids(harness: Harness) -> None:
    """Postmark (Basic auth), Mandrill and Twilio (signed URL + params) have no timestamp or nonce
    to check: a replayed request is accepted, and is harmless because the messageIds derive from
    the tool's own event ids (Segment drops the duplicates)."""
    for source in ("postmark", "mandrill", "twilio"):
        first, event = post(harness, source, "acme")
        again = harness.invoke(event)
        assert first.status == again.status == 202, source
        assert first.body["messageIds"] == again.body["messageIds"], source
