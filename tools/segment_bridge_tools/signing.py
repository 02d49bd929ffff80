"""Sign webhook bodies the way each tool does, for tests, `events/` and the local demo.

Every signature is built from the same primitives the sources verify with (`segment_bridge.
signatures`), so signer and verifier cannot drift apart; tests cross-check both against the
tools' own SDKs (stripe, twilio) where those exist.

DEMO ONLY: `demo_source_settings()` holds fixed, public secrets and a SendGrid key pair derived
from a constant. Never put them in a real tenant.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from segment_bridge.ingest.signatures import hmac_digest, sign_timestamped, url_params_payload
from segment_bridge.ingest.sources.form import form_pairs

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"

#: Deterministic demo key pair: the same on every machine, so `events/` and the demo tenant agree.
DEMO_SENDGRID_PRIVATE_KEY = ec.derive_private_key(
    int.from_bytes(hashlib.sha256(b"segment-bridge demo-only SendGrid key").digest(), "big"), ec.SECP256R1()
)


def public_key_base64(private_key: ec.EllipticCurvePrivateKey) -> str:
    """The public half as SendGrid shows it: base64 DER SubjectPublicKeyInfo."""
    der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode("ascii")


def demo_source_settings() -> dict[str, dict[str, Any]]:
    """Settings for every built-in tool source, matching what `sign` produces. Demo secrets only.

    `spec` is not here: the local stack and tests give it their own secret. Mandrill and Twilio
    have no `url`, so they verify against the URL the request arrived on: pass that one to `sign`.
    """
    return {
        "sendgrid": {"public_key": public_key_base64(DEMO_SENDGRID_PRIVATE_KEY)},
        "mailgun": {"signing_key": "demo-mailgun-signing-key"},
        "postmark": {"username": "postmark", "password": "demo-postmark-password"},
        "mandrill": {"webhook_key": "demo-mandrill-webhook-key"},
        "twilio": {"auth_token": "demo-twilio-auth-token"},
        "stripe": {"endpoint_secret": "whsec_demo_stripe_endpoint_secret"},
    }


def sign(
    source: str,
    body: bytes,
    settings: dict[str, Any],
    url: str = "",
    now: float | None = None,
    *,
    sendgrid_private_key: ec.EllipticCurvePrivateKey | None = None,
) -> tuple[dict[str, str], bytes]:
    """Headers (Content-Type included) and body of `body` signed for `source` with `settings`.

    Only Mailgun changes the body: its signature travels inside it. `url` is the public URL the
    tool would sign (Mandrill, Twilio; `settings["url"]` wins when set, as in the sources).
    """
    timestamp = int(time.time() if now is None else now)
    if source in ("spec", "stripe"):
        secret = settings["signing_secret" if source == "spec" else "endpoint_secret"]
        header = "X-Signature" if source == "spec" else "Stripe-Signature"
        return {"Content-Type": JSON, header: sign_timestamped(secret, body, timestamp)}, body
    if source == "sendgrid":
        key = sendgrid_private_key or DEMO_SENDGRID_PRIVATE_KEY
        signature = key.sign(str(timestamp).encode("ascii") + body, ec.ECDSA(hashes.SHA256()))
        return {
            "Content-Type": JSON,
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode("ascii"),
            "X-Twilio-Email-Event-Webhook-Timestamp": str(timestamp),
        }, body
    if source == "mailgun":
        payload = json.loads(body)
        token = secrets.token_hex(25)
        digest = hmac_digest(settings["signing_key"], f"{timestamp}{token}".encode("ascii")).hex()
        payload["signature"] = {"timestamp": str(timestamp), "token": token, "signature": digest}
        return {"Content-Type": JSON}, json.dumps(payload).encode("utf-8")
    if source == "postmark":
        credentials = f"{settings['username']}:{settings['password']}".encode()
        return {"Content-Type": JSON, "Authorization": "Basic " + base64.b64encode(credentials).decode("ascii")}, body
    if source in ("mandrill", "twilio"):
        key = settings["webhook_key" if source == "mandrill" else "auth_token"]
        header = "X-Mandrill-Signature" if source == "mandrill" else "X-Twilio-Signature"
        payload = url_params_payload(settings.get("url") or url, form_pairs(body))
        return {"Content-Type": FORM, header: base64.b64encode(hmac_digest(key, payload, "sha1")).decode("ascii")}, body
    raise ValueError(f"no signer for source {source!r}")


def signed_headers(source: str, body: bytes, settings: dict[str, Any], url: str) -> dict[str, str]:
    """Headers that make `body` verify for `source` (all sources but Mailgun, which signs in the body)."""
    headers, signed_body = sign(source, body, settings, url)
    if signed_body != body:
        raise ValueError(f"{source} carries its signature in the body; use sign() and send the body it returns")
    return headers
