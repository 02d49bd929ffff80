"""Every tool source through the real ingest handler (API Gateway event in, SQS on moto out):
a correctly signed request is accepted and enqueued; tampered, wrongly keyed, stale or unsigned
requests get 401 with a JSON message."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from segment_bridge.queue_format import read_body
from segment_bridge_tools.lambda_events import LocalLambdaContext, api_gateway_event
from segment_bridge_tools.make_events import EVENTS_DIR, build_event
from segment_bridge_tools.signing import demo_source_settings, sign
from tests.conftest import SIGNING_SECRET, TENANT, emitted_metrics, put_tenant, receive_all, tenant_secret
from tests.sources_support import fixture, sample_body

TOOLS = ["sendgrid", "mailgun", "postmark", "mandrill", "twilio", "stripe"]
#: Mandrill and Twilio sign the public URL as configured on their side (here: a custom domain).
PUBLIC_URL = "https://hooks.example.com/v1/webhooks/{source}/" + TENANT
SETTINGS: dict[str, dict[str, Any]] = {
    source: {**values, **({"url": PUBLIC_URL.format(source=source)} if source in ("mandrill", "twilio") else {})}
    for source, values in demo_source_settings().items()
}
BODIES = {
    "sendgrid": fixture("sendgrid-all-events.json"),
    "mailgun": fixture("mailgun-delivered.json"),
    "postmark": fixture("postmark-Delivery.json"),
    "mandrill": sample_body("mandrill"),
    "twilio": sample_body("twilio"),
    "stripe": fixture("stripe-checkout.session.completed.json"),
}
#: (accepted, skipped) per sample body, with the tenant's anonymousId policy.
OUTCOMES = {
    "sendgrid": (7, 4),
    "mailgun": (1, 0),
    "postmark": (1, 0),
    "mandrill": (5, 9),
    "twilio": (1, 0),
    "stripe": (1, 0),
}
SIGNATURE_HEADERS = {
    "sendgrid": "X-Twilio-Email-Event-Webhook-Signature",
    "postmark": "Authorization",
    "mandrill": "X-Mandrill-Signature",
    "twilio": "X-Twilio-Signature",
    "stripe": "Stripe-Signature",
}
WRONG_SETTINGS = {
    "mailgun": {"signing_key": "other"},
    "postmark": {"username": "postmark", "password": "other"},
    "mandrill": {"webhook_key": "other"},
    "twilio": {"auth_token": "other"},
    "stripe": {"endpoint_secret": "whsec_other"},
}


@pytest.fixture
def tenant(aws: dict[str, str]) -> dict[str, str]:
    sources = {"spec": {"signing_secret": SIGNING_SECRET}, **SETTINGS}
    put_tenant(TENANT, tenant_secret(sources=sources, identity={"missing_user_id": "anonymous"}))
    return aws


def invoke(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    import ingest_handler

    response = ingest_handler.lambda_handler(event, LocalLambdaContext())
    return response["statusCode"], (json.loads(response["body"]) if response.get("body") else {})


def post(source: str, headers: dict[str, str], body: bytes, method: str = "POST") -> tuple[int, dict[str, Any]]:
    return invoke(api_gateway_event(method, f"/v1/webhooks/{source}/{TENANT}", body, headers))


def signed(
    source: str,
    *,
    body: bytes | None = None,
    settings: dict[str, Any] | None = None,
    now: float | None = None,
    **kwargs: Any,
) -> tuple[dict[str, str], bytes]:
    return sign(
        source,
        BODIES[source] if body is None else body,
        settings or SETTINGS[source],
        PUBLIC_URL.format(source=source),
        now,
        **kwargs,
    )


def assert_unauthorized(source: str, headers: dict[str, str], body: bytes) -> None:
    status, response = post(source, headers, body)
    assert status == 401, response
    assert set(response) == {"message"} and "signature" in response["message"]


@pytest.mark.parametrize("source", TOOLS)
def test_signed_webhook_is_accepted_and_enqueued(tenant: dict[str, str], source: str) -> None:
    status, response = post(source, *signed(source))
    accepted, skipped = OUTCOMES[source]
    assert status == 202, response
    assert response["accepted"] == accepted and len(response.get("skipped", [])) == skipped
    assert response["rejected"] == []
    batches = [read_body(m["Body"]) for m in receive_all(tenant["queue_url"])]
    assert {b.source for b in batches} == {source} and {b.tenant for b in batches} == {TENANT}
    queued = [m for b in batches for m in b.messages]
    assert [m["messageId"] for m in queued] == response["messageIds"]
    assert all(m["context"]["source_event"]["tool"] == source for m in queued)


def test_nothing_accepted_is_a_422_that_still_reports_the_skipped_events(
    aws: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The default identity policy refuses SendGrid's sample events (none carries a userId); the
    ones without a Spec counterpart are skipped. The 422 says both, and so do the metrics."""
    put_tenant(TENANT, tenant_secret(sources={"sendgrid": SETTINGS["sendgrid"]}))
    status, response = post("sendgrid", *signed("sendgrid"))
    assert status == 422, response
    assert "no event in the request was accepted" in response["message"]
    assert response["accepted"] == 0 and response["messageIds"] == []
    assert len(response["rejected"]) == 7 and all("userId is required" in r["message"] for r in response["rejected"])
    assert [s["index"] for s in response["skipped"]] == [0, 1, 6, 10]  # processed, deferred, dropped, resubscribe
    counted = emitted_metrics(capsys.readouterr().out)
    assert counted["MessagesReceived"] == 11 and counted["MessagesRejected"] == 7 and counted["MessagesSkipped"] == 4
    assert counted["MessagesAccepted"] == 0
    assert receive_all(aws["queue_url"]) == []


#: How to break each tool's signed material. Postmark's Basic credentials do not cover the body, and
#: Mailgun's signature covers only timestamp + token (see the replay test below).
TAMPER: dict[str, Callable[[bytes], bytes]] = {
    "sendgrid": lambda body: body.replace(b"example@test.com", b"attacker@test.com", 1),
    "stripe": lambda body: body.replace(b'"amount_total": 3000', b'"amount_total": 1', 1),
    "mandrill": lambda body: body.replace(b"hard_bounce", b"open", 1),
    "twilio": lambda body: body.replace(b"delivered", b"failed", 1),
    "mailgun": lambda body: body.replace(b'"token": "', b'"token": "x', 1),
}


@pytest.mark.parametrize("source", sorted(TAMPER))
def test_tampered_body_is_401(tenant: dict[str, str], source: str) -> None:
    headers, body = signed(source)
    tampered = TAMPER[source](body)
    assert tampered != body
    assert_unauthorized(source, headers, tampered)


@pytest.mark.parametrize("source", TOOLS)
def test_wrong_key_is_401(tenant: dict[str, str], source: str) -> None:
    if source == "sendgrid":
        headers, body = signed(source, sendgrid_private_key=ec.generate_private_key(ec.SECP256R1()))
    else:
        headers, body = signed(source, settings={**SETTINGS[source], **WRONG_SETTINGS[source]})
    assert_unauthorized(source, headers, body)


@pytest.mark.parametrize("source", ["sendgrid", "mailgun", "stripe"])
def test_stale_timestamp_is_401(tenant: dict[str, str], source: str) -> None:
    headers, body = signed(source, now=time.time() - 3600)
    status, response = post(source, headers, body)
    assert status == 401 and "window" in response["message"]


@pytest.mark.parametrize("source", TOOLS)
def test_missing_signature_is_401(tenant: dict[str, str], source: str) -> None:
    headers, body = signed(source)
    if source == "mailgun":
        payload = json.loads(body)
        del payload["signature"]
        body = json.dumps(payload).encode()
    else:
        headers = {k: v for k, v in headers.items() if k != SIGNATURE_HEADERS[source]}
    assert_unauthorized(source, headers, body)


def test_mailgun_signature_replayed_with_other_event_data_is_401(tenant: dict[str, str]) -> None:
    headers, body = signed("mailgun")
    assert post("mailgun", headers, body)[0] == 202
    assert post("mailgun", headers, body)[0] == 202  # Mailgun retrying the same request
    forged = json.loads(body)
    forged["event-data"]["recipient"] = "someone-else@example.com"
    status, response = post("mailgun", headers, json.dumps(forged).encode())
    assert status == 401 and "already used" in response["message"]


def test_form_sources_need_a_form_body(tenant: dict[str, str]) -> None:
    headers, body = signed("twilio")
    status, response = post("twilio", {**headers, "Content-Type": "application/json"}, body)
    assert status == 415 and "x-www-form-urlencoded" in response["message"]


def test_mandrill_url_check_with_head_is_answered_200(tenant: dict[str, str]) -> None:
    assert post("mandrill", {}, b"", method="HEAD")[0] == 200
    assert post("stripe", {}, b"", method="HEAD")[0] == 405


# -- events/ for `sam local invoke` ---------------------------------------------------------------
@pytest.mark.parametrize("source", TOOLS)
def test_generated_events_verify_against_the_demo_settings(aws: dict[str, str], source: str) -> None:
    put_tenant(TENANT, tenant_secret(sources=demo_source_settings(), identity={"missing_user_id": "anonymous"}))
    status, response = invoke(build_event(source, TENANT, now=time.time()))
    assert status == 202, response
    assert response["accepted"] == OUTCOMES[source][0]


@pytest.mark.parametrize("source", TOOLS)
def test_committed_events_carry_each_tools_sample(aws: dict[str, str], source: str) -> None:
    event = json.loads((EVENTS_DIR / f"webhook-{source}.json").read_text())
    assert event["pathParameters"] == {"source": source, "tenant": "demo"} and event["isBase64Encoded"]
    body = base64.b64decode(event["body"])
    if source == "mailgun":  # its signature travels in the body
        assert json.loads(body)["event-data"] == json.loads(BODIES["mailgun"])["event-data"]
    else:
        assert body == BODIES[source]
    # Schemes without a timestamp stay valid in the committed files.
    if source in ("postmark", "mandrill", "twilio"):
        put_tenant("demo", tenant_secret(sources=demo_source_settings(), identity={"missing_user_id": "anonymous"}))
        assert invoke(event)[0] == 202


def test_events_readme_explains_stale_signatures() -> None:
    assert "stale" in (Path(EVENTS_DIR) / "README.md").read_text()


def test_mailgun_tokens_are_claimed_in_the_shared_table_across_instances(
    tenant: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    from segment_bridge_tools.local_stack import REPLAY_TABLE, create_replay_table
    from tests.conftest import reset_caches

    create_replay_table(boto3.client("dynamodb"), REPLAY_TABLE)
    monkeypatch.setenv("REPLAY_TABLE_NAME", REPLAY_TABLE)
    reset_caches()
    headers, body = signed("mailgun")
    assert post("mailgun", headers, body)[0] == 202
    claimed = boto3.client("dynamodb").scan(TableName=REPLAY_TABLE)["Items"]
    assert len(claimed) == 1 and int(claimed[0]["expires_at"]["N"]) > time.time()
    reset_caches()  # another instance: nothing in memory, only the table remembers the token
    forged = json.loads(body)
    forged["event-data"]["recipient"] = "someone-else@example.com"
    status, response = post("mailgun", headers, json.dumps(forged).encode())
    assert status == 401 and "already used" in response["message"]
