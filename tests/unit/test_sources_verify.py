"""Each tool's signature check, against the tools' SDKs or their documented algorithm."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import pytest
import stripe
from cryptography.hazmat.primitives.asymmetric import ec
from twilio.request_validator import RequestValidator

from segment_bridge.errors import Unauthorized
from segment_bridge.events import WebhookRequest
from segment_bridge.ingest.replay import InMemoryReplayGuard
from segment_bridge.ingest.sources import SOURCES, VerifyContext
from segment_bridge.ingest.sources.mailgun import MailgunSource
from segment_bridge.tenants import TenantConfig
from segment_bridge_tools.signing import public_key_base64, sign
from tests.sources_support import fixture, sample_body

NOW = 1_800_000_000
TOLERANCE = 300


def ctx(now: float = NOW) -> VerifyContext:
    return VerifyContext(TOLERANCE, lambda: now)


def request(
    source: str,
    body: bytes,
    headers: dict[str, str],
    url: str = "",
    query: dict[str, str] | None = None,
    tenant: str = "acme",
) -> WebhookRequest:
    return WebhookRequest(
        source=source,
        tenant=tenant,
        method="POST",
        body=body,
        headers={k.lower(): v for k, v in headers.items()},
        query=query or {},
        url=url,
    )


def verify(source: str, req: WebhookRequest, settings: dict[str, Any], now: float = NOW) -> None:
    adapter = SOURCES[source]
    adapter.verify(req, adapter.settings_model.model_validate(settings), ctx(now))


def without(headers: dict[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() != name.lower()}


Case = tuple[bytes, dict[str, str], dict[str, Any]]


def assert_each_unauthorized(source: str, cases: list[Case]) -> None:
    """Every (body, headers, settings) case is refused, each on its own."""
    for body, headers, settings in cases:
        with pytest.raises(Unauthorized):
            verify(source, request(source, body, headers), settings)


# -- SendGrid ----------------------------------------------------------------------------------
SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())
SENDGRID_SETTINGS = {"public_key": public_key_base64(SENDGRID_KEY)}


def sendgrid_signed(body: bytes, now: float = NOW, key: ec.EllipticCurvePrivateKey = SENDGRID_KEY) -> dict[str, str]:
    return sign("sendgrid", body, SENDGRID_SETTINGS, now=now, sendgrid_private_key=key)[0]


def test_sendgrid_ecdsa_over_timestamp_and_raw_crlf_body() -> None:
    body = fixture("sendgrid-all-events.json").rstrip(b"\n") + b"\r\n"
    headers = sendgrid_signed(body)
    verify("sendgrid", request("sendgrid", body, headers), SENDGRID_SETTINGS)
    # The signature is over the bytes as sent: re-serialized JSON (or the CRLF dropped) does not verify.
    assert_each_unauthorized(
        "sendgrid",
        [
            (other, headers, SENDGRID_SETTINGS)
            for other in (body.rstrip(b"\r\n"), json.dumps(json.loads(body)).encode())
        ],
    )


def test_sendgrid_rejections() -> None:
    body = b'[{"event":"open"}]\r\n'
    headers = sendgrid_signed(body)
    assert_each_unauthorized(
        "sendgrid",
        [
            (body.replace(b"open", b"opex"), headers, SENDGRID_SETTINGS),
            (body, sendgrid_signed(body, key=ec.generate_private_key(ec.SECP256R1())), SENDGRID_SETTINGS),
            (body, without(headers, "X-Twilio-Email-Event-Webhook-Signature"), SENDGRID_SETTINGS),
            (body, without(headers, "X-Twilio-Email-Event-Webhook-Timestamp"), SENDGRID_SETTINGS),
            (body, {**headers, "X-Twilio-Email-Event-Webhook-Signature": "bm90IGEgc2lnbmF0dXJl"}, SENDGRID_SETTINGS),
        ],
    )
    with pytest.raises(Unauthorized, match="window"):
        verify("sendgrid", request("sendgrid", body, sendgrid_signed(body, now=NOW - 301)), SENDGRID_SETTINGS)


def test_sendgrid_settings_refuse_a_key_that_is_not_p256() -> None:
    rsa_like = base64.b64encode(b"not a key").decode()
    tenant = TenantConfig.model_validate({"write_key": "wk", "sources": {"sendgrid": {"public_key": rsa_like}}})
    with pytest.raises(Unauthorized):
        SOURCES["sendgrid"].settings_for(tenant)
    p384 = public_key_base64(ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(Unauthorized):
        SOURCES["sendgrid"].settings_for(
            TenantConfig.model_validate({"write_key": "wk", "sources": {"sendgrid": {"public_key": p384}}})
        )


# -- Mailgun -----------------------------------------------------------------------------------
MAILGUN_SAMPLE_KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
SAMPLE_SIGNED_AT = 1403645220


@dataclass
class Mailgun:
    """The Mailgun source and the replay guard its deployment gives it (one "instance")."""

    source: MailgunSource = field(default_factory=MailgunSource)
    guard: InMemoryReplayGuard = field(default_factory=InMemoryReplayGuard)


def mailgun() -> Mailgun:
    return Mailgun()


def mailgun_verify(
    instance: Mailgun,
    body: bytes,
    key: str = MAILGUN_SAMPLE_KEY,
    now: float = SAMPLE_SIGNED_AT + 5,
    tenant: str = "acme",
) -> None:
    settings = instance.source.settings_model.model_validate({"signing_key": key})
    instance.source.verify(
        request("mailgun", body, {}, tenant=tenant), settings, VerifyContext(TOLERANCE, lambda: now, instance.guard)
    )


@pytest.mark.parametrize(
    "name",
    [
        "mailgun-delivered.json",
        "mailgun-opened.json",
        "mailgun-clicked.json",
        "mailgun-failed-permanent.json",
        "mailgun-complained.json",
        "mailgun-unsubscribed.json",
    ],
)
def test_mailgun_samples_verify_with_the_documented_key(name: str) -> None:
    signature = json.loads(fixture(name))["signature"]
    expected = hmac.new(
        MAILGUN_SAMPLE_KEY.encode(), (signature["timestamp"] + signature["token"]).encode(), hashlib.sha256
    ).hexdigest()
    assert signature["signature"] == expected  # the documented algorithm, by hand
    mailgun_verify(mailgun(), fixture(name))


def test_mailgun_rejects_wrong_key_stale_timestamp_and_missing_signature() -> None:
    body = fixture("mailgun-delivered.json")
    with pytest.raises(Unauthorized):
        mailgun_verify(mailgun(), body, key="key-wrong")
    with pytest.raises(Unauthorized, match="window"):
        mailgun_verify(mailgun(), body, now=SAMPLE_SIGNED_AT + TOLERANCE + 1)
    unsigned = json.loads(body)
    del unsigned["signature"]
    for broken in (json.dumps(unsigned).encode(), b"not json", b"[]"):
        with pytest.raises(Unauthorized):
            mailgun_verify(mailgun(), broken)


def test_mailgun_token_is_single_use_except_for_a_redelivery_of_the_same_body() -> None:
    source = mailgun()
    delivered = fixture("mailgun-delivered.json")
    mailgun_verify(source, delivered)
    mailgun_verify(source, delivered)  # the tool retrying the very same request: same messageIds downstream
    # Same signed token, other event-data (not covered by the signature): a replay.
    with pytest.raises(Unauthorized, match="already used"):
        mailgun_verify(source, fixture("mailgun-opened.json"))
    mailgun_verify(source, fixture("mailgun-opened.json"), tenant="other-tenant")  # guards are per tenant


# -- Postmark ----------------------------------------------------------------------------------
POSTMARK = {"username": "hook", "password": "p@ss:word"}


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_postmark_basic_credentials() -> None:
    body = fixture("postmark-Delivery.json")
    headers, signed_body = sign("postmark", body, POSTMARK)
    assert headers["Authorization"] == basic("hook", "p@ss:word")["Authorization"] and signed_body == body
    verify("postmark", request("postmark", body, headers), POSTMARK)
    assert_each_unauthorized(
        "postmark",
        [
            (body, bad, POSTMARK)
            for bad in (
                basic("hook", "wrong"),
                basic("other", "p@ss:word"),
                {},
                {"Authorization": "Bearer abc"},
                {"Authorization": "Basic !!!"},
            )
        ],
    )


# -- Mandrill ----------------------------------------------------------------------------------
MANDRILL_URL = "https://hooks.example.com/v1/webhooks/mandrill/acme"
MANDRILL = {"webhook_key": "mandrill-key", "url": MANDRILL_URL}


def test_mandrill_signature_follows_the_documented_algorithm() -> None:
    body = sample_body("mandrill")
    headers, _ = sign("mandrill", body, MANDRILL)
    events = json.dumps(json.loads(fixture("mandrill-all-events.mandrill_events.json")))
    # Mandrill's reference: base64(HMAC-SHA1(key, url + "mandrill_events" + <decoded value>)).
    expected = base64.b64encode(
        hmac.new(b"mandrill-key", (MANDRILL_URL + "mandrill_events" + events).encode(), hashlib.sha1).digest()
    ).decode()
    assert headers["X-Mandrill-Signature"] == expected
    verify("mandrill", request("mandrill", body, headers, url="https://internal/Prod/x"), MANDRILL)
    with pytest.raises(Unauthorized):  # without `url`, the request's own URL is what counts
        verify(
            "mandrill",
            request("mandrill", body, headers, url="https://internal/Prod/x"),
            {"webhook_key": "mandrill-key"},
        )
    verify("mandrill", request("mandrill", body, headers, url=MANDRILL_URL), {"webhook_key": "mandrill-key"})
    assert_each_unauthorized(
        "mandrill",
        [
            (body[:-3], headers, MANDRILL),
            (body, without(headers, "X-Mandrill-Signature"), MANDRILL),
            (body, sign("mandrill", body, {**MANDRILL, "webhook_key": "other"})[0], MANDRILL),
        ],
    )


# -- Twilio ------------------------------------------------------------------------------------
TWILIO_URL = "https://example.com/twilio/status"
TWILIO = {"auth_token": "12345", "url": TWILIO_URL}


def test_twilio_published_vector_sdk_and_our_signer_agree() -> None:
    body = sample_body("twilio")
    params = dict(parse_qsl(body.decode()))
    # The samples README's self-computed vector: token 12345, this URL, the delivered sample.
    assert RequestValidator("12345").compute_signature(TWILIO_URL, params) == "IQfvhhHq9auNeoQ7didy8/EPzmE="
    headers, _ = sign("twilio", body, TWILIO)
    assert headers["X-Twilio-Signature"] == "IQfvhhHq9auNeoQ7didy8/EPzmE="
    assert RequestValidator("12345").validate(TWILIO_URL, params, headers["X-Twilio-Signature"])
    verify("twilio", request("twilio", body, headers), TWILIO)


def test_twilio_accepts_the_url_with_or_without_its_default_port_and_signs_the_query() -> None:
    body = sample_body("twilio")
    signed_with_port = sign("twilio", body, {"auth_token": "12345"}, url="https://example.com:443/twilio/status")[0]
    verify("twilio", request("twilio", body, signed_with_port), TWILIO)
    query_url = TWILIO_URL + "?user_id=u-5"
    with_query = sign("twilio", body, {"auth_token": "12345"}, url=query_url)[0]
    verify("twilio", request("twilio", body, with_query, query={"user_id": "u-5"}), TWILIO)
    with pytest.raises(Unauthorized):  # the query is part of what Twilio signed
        verify("twilio", request("twilio", body, with_query), TWILIO)


def test_twilio_rejections() -> None:
    body = sample_body("twilio")
    headers, _ = sign("twilio", body, TWILIO)
    tampered = body.replace(b"delivered", b"failed")
    assert_each_unauthorized(
        "twilio",
        [
            (tampered, headers, TWILIO),
            (body, without(headers, "X-Twilio-Signature"), TWILIO),
            (body, headers, {**TWILIO, "auth_token": "54321"}),
            (body, headers, {**TWILIO, "url": TWILIO_URL + "/other"}),
        ],
    )


# -- Stripe ------------------------------------------------------------------------------------
STRIPE = {"endpoint_secret": "whsec_test_secret"}


def test_stripe_sdk_and_our_scheme_agree() -> None:
    body = fixture("stripe-checkout.session.completed.json")
    ours = sign("stripe", body, STRIPE, now=NOW)[0]["Stripe-Signature"]
    assert stripe.WebhookSignature.verify_header(body.decode(), ours, STRIPE["endpoint_secret"], tolerance=None)
    sdk = stripe.WebhookSignature.generate_signature_header(body.decode(), STRIPE["endpoint_secret"], timestamp=NOW)
    verify("stripe", request("stripe", body, {"Stripe-Signature": sdk}), STRIPE)
    # During secret rotation Stripe sends one v1 per secret; any may match.
    rotated = f"{ours},v1={'0' * 64}"
    verify("stripe", request("stripe", body, {"Stripe-Signature": rotated}), STRIPE)


def test_stripe_rejections() -> None:
    body = fixture("stripe-charge.refunded.json")
    headers = sign("stripe", body, STRIPE, now=NOW)[0]
    assert_each_unauthorized(
        "stripe",
        [
            (body + b" ", headers, STRIPE),
            (body, {}, STRIPE),
            (body, headers, {"endpoint_secret": "whsec_other"}),
        ],
    )
    with pytest.raises(Unauthorized, match="window"):
        verify("stripe", request("stripe", body, headers), STRIPE, now=NOW + 301)
