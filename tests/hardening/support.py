"""The hardening harness: tenants with every source, real handlers on moto, and the invariants.

Every request the fuzzers make goes through `Harness.invoke`, which calls the real Lambda handler
with a real API Gateway event, times it, drains the queue (so "nothing enqueued" is checked per
request) and counts it. `assert_invariants` is the property every generated input must satisfy.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import boto3
from cryptography.hazmat.primitives.asymmetric import ec

from segment_bridge.ingest import tracking_api
from segment_bridge.limits import MAX_RESPONSE_BYTES
from segment_bridge.queue_format import read_body
from segment_bridge_tools.lambda_events import LocalLambdaContext
from segment_bridge_tools.signing import public_key_base64, sign
from tests.conftest import put_tenant, reset_caches, tenant_secret

from . import contract

#: Examples per property (hypothesis `max_examples`); `make test` keeps it small, `make fuzz` raises it.
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
#: `make fuzz` (FUZZ_EXAMPLES >= 1000) also runs the multi-second worst-case measurements.
LONG_RUN = FUZZ_EXAMPLES >= 1000
#: CPU-time bound per request in the fuzz runs (bodies there are at most FUZZ_MAX_BODY_BYTES).
FUZZ_MAX_SECONDS = float(os.environ.get("FUZZ_MAX_SECONDS", "2.0"))
#: The fuzz deployment's MAX_BODY_BYTES: small, so "over the limit" costs little to generate.
FUZZ_MAX_BODY_BYTES = 64 * 1024

#: Generated inputs, per kind; printed at the end of the session (tests/hardening/conftest.py).
STATS: Counter[str] = Counter()
#: Generated inputs that hit a known, reported bug (tolerated by `assert_invariants`); printed likewise.
#: Work counted per unsigned request, per source and probe (test_bounded_work.py); printed likewise.
WORK: dict[str, dict[str, int]] = {}

TENANTS = ("acme", "other")
#: Stage and host our events carry; Mandrill and Twilio sign the URL built from them.
STAGE = "Prod"
HOST = "localhost"


def sendgrid_key(tenant: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(
        int.from_bytes(hashlib.sha256(f"hardening {tenant}".encode()).digest(), "big"), ec.SECP256R1()
    )


def source_settings(tenant: str) -> dict[str, dict[str, Any]]:
    """Every source configured, with secrets unique to the tenant (and recognizable in a leak scan)."""
    tag = f"CANARY{tenant.upper()}"
    return {
        "spec": {"signing_secret": f"{tag}-spec-signing-secret-7f3a9c"},
        "sendgrid": {"public_key": public_key_base64(sendgrid_key(tenant))},
        "mailgun": {"signing_key": f"{tag}-mailgun-signing-key-51d2e8"},
        "postmark": {"username": f"postmark-{tenant}", "password": f"{tag}-postmark-password-0b4c61"},
        "mandrill": {"webhook_key": f"{tag}-mandrill-webhook-key-9e7d20"},
        "twilio": {"auth_token": f"{tag}-twilio-auth-token-c81f55"},
        "stripe": {"endpoint_secret": f"whsec_{tag}-stripe-endpoint-secret-3a6b"},
    }


def write_key(tenant: str) -> str:
    return f"wk_CANARY{tenant.upper()}_write_key_5e1f0d2c9b"


def destination_key(tenant: str) -> str:
    return f"dk_CANARY{tenant.upper()}_destination_key_8a4d"


#: Bridge keys per tenant (Segment's Tracking API routes): two, the most a tenant may hold.
BRIDGE_KEYS_PER_TENANT = 2
#: The Tracking API routes (`tracking_api.ROUTES`), as API Gateway paths.
TRACKING_PATHS = tuple(f"/v1/{route}" for route in tracking_api.ROUTES)


def bridge_key(tenant: str, number: int = 1) -> str:
    """The tenant's bridge key `number` (1 or 2), as `tenants key add` hands it over: `{tenant}.sbk_...`.
    Deterministic (the canary scan looks for it), and only its SHA-256 is in the tenant document."""
    return f"{tenant}.sbk_CANARY{tenant.upper()}_bridge_key_{number}_4d9e1b7a0c"


def stored_bridge_key(key: str) -> dict[str, str]:
    """What the tenant document keeps of a key (`tenants.BridgeKey`): its hash and id, never the key."""
    from segment_bridge.tenants import bridge_key_digest

    digest = bridge_key_digest(key.partition(".")[2])
    return {"id": digest[:8], "sha256": digest, "created_at": "2026-01-01T00:00:00Z"}


def is_tracking_path(path: str) -> bool:
    """A path API Gateway routes to a Tracking API call (it ignores one trailing slash)."""
    return path.removesuffix("/") in TRACKING_PATHS


def tenant_document(tenant: str) -> dict[str, Any]:
    return tenant_secret(
        write_key=write_key(tenant),
        sources=source_settings(tenant),
        identity={"missing_user_id": "anonymous"},
        destination={"api_key": destination_key(tenant)},
        bridge_keys=[stored_bridge_key(bridge_key(tenant, n)) for n in range(1, BRIDGE_KEYS_PER_TENANT + 1)],
    )


def secret_values(tenant: str) -> list[str]:
    """Every secret of a tenant (the SendGrid key is public by design and not listed); a bridge key
    both whole and as its secret part (what a leak of the part after the tenant id would show)."""
    values = [write_key(tenant), destination_key(tenant)]
    for n in range(1, BRIDGE_KEYS_PER_TENANT + 1):
        values += [bridge_key(tenant, n), bridge_key(tenant, n).partition(".")[2]]
    for settings in source_settings(tenant).values():
        values += [
            v
            for k, v in settings.items()
            if k in ("signing_secret", "signing_key", "password", "webhook_key", "auth_token", "endpoint_secret")
        ]
    return values


def install_tenants() -> None:
    for tenant in TENANTS:
        put_tenant(tenant, tenant_document(tenant))
    reset_caches()


def public_url(path: str) -> str:
    return f"https://{HOST}/{STAGE}{path}"


def signed(
    source: str, tenant: str, body: bytes, path: str, now: float | None = None, secrets_of: str | None = None
) -> tuple[dict[str, str], bytes]:
    """Headers and body signed as `source` would for `tenant` (or with `secrets_of`'s secrets)."""
    owner = secrets_of or tenant
    return sign(
        source, body, source_settings(owner)[source], public_url(path), now, sendgrid_private_key=sendgrid_key(owner)
    )


@dataclass
class Call:
    method: str
    path: str
    status: int
    content_type: str | None
    text: str
    #: CPU seconds the handler spent (thread time).
    seconds: float
    enqueued: int
    body: Any = None
    response: dict[str, Any] = field(default_factory=dict)
    #: Response headers, lower-cased names.
    headers: dict[str, str] = field(default_factory=dict)
    #: The API Gateway event that was sent.
    event: dict[str, Any] = field(default_factory=dict)


class Harness:
    """Invokes a handler module with API Gateway events; the queue is drained after every call."""

    def __init__(self, queue_url: str, handler: str = "ingest_handler") -> None:
        self.queue_url = queue_url
        self.handler = handler
        self.sqs = boto3.client("sqs")
        #: What the last call put on the queue: (SQS body, its message attributes) per SQS message.
        self.drained: list[tuple[str, dict[str, Any]]] = []

    def invoke(self, event: dict[str, Any], kind: str = "hypothesis") -> Call:
        import importlib

        module = importlib.import_module(self.handler)
        # CPU time of this thread (the handler and in-process moto run here): unlike wall-clock
        # time it does not grow when other processes compete for the machine's cores.
        started = time.thread_time()
        response = module.lambda_handler(event, LocalLambdaContext())  # an exception here fails the test
        seconds = time.thread_time() - started
        STATS[kind] += 1
        text = response.get("body") or ""
        headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers.setdefault(name.lower(), values[-1] if values else None)
        try:
            body = json.loads(text) if text else None
        except ValueError:
            body = None
        return Call(
            event["httpMethod"],
            event["path"],
            response["statusCode"],
            headers.get("content-type"),
            text,
            seconds,
            self.drain(),
            body,
            response,
            headers,
            event,
        )

    def drain(self) -> int:
        """Messages (Spec messages, not SQS records) on the queue; deletes them."""
        count = 0
        self.drained = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
            ).get("Messages", [])
            if not batch:
                return count
            for message in batch:
                count += len(read_body(message["Body"]).messages)
                self.drained.append((message["Body"], message.get("MessageAttributes") or {}))
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
            )


def assert_invariants(call: Call, *, allow_unavailable: bool = False, max_seconds: float = FUZZ_MAX_SECONDS) -> None:
    """What must hold for any input at all (docs/security.md, "Invariants")."""
    where = f"{call.method} {call.path[:120]!r} -> {call.status} {call.text[:300]!r}"
    assert 200 <= call.status < 600, where
    # Never a 5xx caused by the input: only 503, and only when a dependency is made to fail.
    assert call.status < 500 or (allow_unavailable and call.status == 503), where
    if call.status >= 400:
        assert call.content_type == "application/json", where
        assert isinstance(call.body, dict), where
        assert isinstance(call.body.get("message"), str) and call.body["message"].strip(), where
    # Nothing enqueued for a refused request; exactly the accepted messages for an accepted one.
    if is_tracking_path(call.path) and call.status in (200, 400) and "x-bridge-accepted" in call.headers:
        # Segment's Tracking API: a library is told only `{"success": true}`; the counts are headers.
        accepted, refused = int(call.headers["x-bridge-accepted"]), int(call.headers["x-bridge-refused"])
        assert accepted == call.enqueued, f"{call.enqueued} enqueued, {accepted} reported accepted: {where}"
        assert isinstance(call.body, dict) and call.body.get("success") is (call.status == 200), where
        listed = len(call.body.get("rejected") or ()) + (call.body.get("omitted") or {}).get("rejected", 0)
        assert refused == listed, f"{refused} reported refused, {listed} listed: {where}"
        assert call.status == 200 or (accepted == 0 and refused > 0), where
    elif call.status == 202:
        assert isinstance(call.body, dict), where
        assert call.body["accepted"] == len(call.body["messageIds"]) == call.enqueued or call.body.get("truncated"), (
            where
        )
    else:
        assert call.enqueued == 0, f"{call.enqueued} messages enqueued for a refused request: {where}"
    assert call.seconds < max_seconds, f"took {call.seconds:.2f} CPU seconds: {where}"
    assert len(call.text.encode("utf-8")) <= MAX_RESPONSE_BYTES, f"response of {len(call.text)} bytes: {where[:200]}"
    if call.body is not None or call.status != 200:
        mismatch = contract.check_response(
            call.method, call.path, call.status, call.content_type, call.body, call.headers
        )
        assert mismatch is None, f"{mismatch}: {where}"


def basic(user: str, password: str = "") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def signed_at(source: str, tenant: str, body: bytes, timestamp: str) -> tuple[dict[str, str], bytes]:
    """`body` validly signed for `tenant` by a timestamped source, with `timestamp` as given (any
    text): the signature checks out, so the timestamp check is what decides."""
    from cryptography.hazmat.primitives import hashes

    from segment_bridge.ingest.signatures import hmac_digest

    settings = source_settings(tenant)[source]
    if source in ("spec", "stripe"):
        secret = settings["signing_secret" if source == "spec" else "endpoint_secret"]
        digest = hmac_digest(secret, timestamp.encode("utf-8", "surrogatepass") + b"." + body).hex()
        header = "X-Signature" if source == "spec" else "Stripe-Signature"
        return {"Content-Type": "application/json", header: f"t={timestamp},v1={digest}"}, body
    if source == "sendgrid":
        raw = timestamp.encode("utf-8", "surrogatepass")
        signature = sendgrid_key(tenant).sign(raw + body, ec.ECDSA(hashes.SHA256()))
        return {
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode("ascii"),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        }, body
    if source == "mailgun":
        token = hashlib.sha256(body + timestamp.encode("utf-8", "surrogatepass")).hexdigest()[:50]
        digest = hmac_digest(settings["signing_key"], (timestamp + token).encode("utf-8", "surrogatepass")).hex()
        payload = {
            "signature": {"timestamp": timestamp, "token": token, "signature": digest},
            "event-data": json.loads(body),
        }
        return {"Content-Type": "application/json"}, json.dumps(payload).encode("utf-8")
    raise ValueError(f"{source} signs no timestamp")
