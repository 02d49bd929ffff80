"""Secrets never leak: known canary secrets go through every path, and everything observable is scanned.

Tenants `acme` and `other` carry a canary writeKey, destination key and a signing secret for every
source. The test drives ingest (success for every source, every error status, 503s from SQS and
Secrets Manager, an internal error), the forwarder (success, retries, Segment errors that echo the
credentials back, DLQ on a permanent 400 and on the last receive, an unusable tenant), the
destination endpoint and the tenants CLI; then scans stdout/stderr (Powertools JSON logs and EMF
metrics), log records, HTTP responses, exception texts, queue and DLQ bodies and attributes, and
what the Segment stand-in received (except the one legitimate place: its Authorization header).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from click.testing import CliRunner

from segment_bridge.ingest.sources import SOURCES
from segment_bridge_tools.lambda_events import LocalLambdaContext, api_gateway_event, sqs_event
from segment_bridge_tools.make_events import sample_body
from segment_bridge_tools.sink import ReceivedRequest, SegmentSink
from tests.conftest import put_tenant, receive_all, reset_caches

from .support import (
    HOST,
    STAGE,
    TENANTS,
    basic,
    destination_key,
    install_tenants,
    secret_values,
    signed,
    source_settings,
    tenant_document,
    write_key,
)


def canaries() -> dict[str, str]:
    """Each secret in every form it could leak in: raw, base64, as Basic credentials, URL-quoted."""
    forms: dict[str, str] = {}
    for tenant in TENANTS:
        for value in secret_values(tenant):
            forms[value] = value
            forms[f"base64({value})"] = base64.b64encode(value.encode()).decode()
            forms[f"basic({value}:)"] = base64.b64encode(f"{value}:".encode()).decode()
            forms[f"quoted({value})"] = quote(value, safe="")
            forms[f"tail of {value}"] = value[-16:]
        postmark = source_settings(tenant)["postmark"]
        forms[f"basic(postmark {tenant})"] = base64.b64encode(
            f"{postmark['username']}:{postmark['password']}".encode()
        ).decode()
    return forms


class Recorder:
    """Everything the system under test said, to be scanned at the end."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []

    def add(self, where: str, value: Any) -> None:
        self.texts.append((where, value if isinstance(value, str) else json.dumps(value, default=repr)))

    def leaks(self) -> list[str]:
        found = []
        for where, text in self.texts:
            for name, form in canaries().items():
                if form and form in text:
                    found.append(
                        f"{name} in {where}: ...{text[max(0, text.find(form) - 80) : text.find(form) + 40]}..."
                    )
        return found


class Responder:
    """What the Segment stand-in answers: scripted statuses whose error message echoes the
    credentials it received (key and Authorization header), then its own verdict."""

    def __init__(self) -> None:
        self.script: list[tuple[int, dict[str, str]]] = []

    def __call__(self, request: ReceivedRequest) -> Any:
        if not self.script:
            return None
        status, headers = self.script.pop(0)
        key = request.write_key or ""
        return status, headers, {"message": f"invalid write key {key} (Authorization: {basic(key)})"}


@pytest.fixture
def world(aws: dict[str, str], identity_table: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    responder = Responder()
    sink = SegmentSink(responder=responder).start()
    monkeypatch.setenv("SEGMENT_URL_US", sink.batch_url)
    monkeypatch.setenv("SEGMENT_URL_EU", sink.batch_url)
    monkeypatch.setenv("MAX_RECEIVE_COUNT", "2")
    monkeypatch.setenv("SEGMENT_TIMEOUT_SECONDS", "2")
    install_tenants()
    yield {"sink": sink, "responder": responder, **aws}
    sink.stop()


def ingest(event: dict[str, Any], recorder: Recorder) -> dict[str, Any]:
    import ingest_handler

    response = ingest_handler.lambda_handler(event, LocalLambdaContext())
    recorder.add(f"ingest response {event['path']}", response)
    return response


def webhook(
    source: str,
    tenant: str = "acme",
    body: bytes | None = None,
    *,
    secrets_of: str | None = None,
    now: float | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    path = f"/v1/webhooks/{source}/{tenant}"
    raw = (
        body
        if body is not None
        else (
            sample_body(source)
            if source != "spec"
            else json.dumps(
                {"type": "track", "userId": "u1", "event": "Order Completed", "messageId": f"m-{time.time_ns()}"}
            ).encode()
        )
    )
    signed_headers, raw = signed(source, tenant, raw, path, now, secrets_of)
    return api_gateway_event("POST", path, raw, {**signed_headers, **(headers or {})}, stage=STAGE, domain=HOST)


def forward(records: list[dict[str, Any]], recorder: Recorder) -> dict[str, Any]:
    """The forwarder's answer; when every record failed, the handler raises (the whole batch is retried
    and the Lambda error is logged with the exception text, so that text is scanned too)."""
    import forward_handler

    try:
        response = forward_handler.lambda_handler(sqs_event(records), LocalLambdaContext(timeout_seconds=20))
    except forward_handler.BatchNotDelivered as exc:
        recorder.add("forward exception", f"{exc!s} {exc!r}")
        return {"batchItemFailures": [{"itemIdentifier": r["MessageId"]} for r in records]}
    recorder.add("forward response", response)
    return response


def queued_record(tenant: str, record_id: str, receive_count: int = 1, messages: int = 2) -> dict[str, Any]:
    body = json.dumps(
        {
            "v": 1,
            "tenant": tenant,
            "source": "spec",
            "messages": [
                {
                    "type": "track",
                    "userId": f"u{i}",
                    "event": "Order Completed",
                    "messageId": f"{record_id}-{i}",
                    "context": {"integration": {"name": "acme-tool", "version": "1.0.0"}},
                }
                for i in range(messages)
            ],
        }
    )
    return {
        "MessageId": record_id,
        "ReceiptHandle": record_id,
        "Body": body,
        "Attributes": {"ApproximateReceiveCount": str(receive_count)},
    }


def test_no_secret_appears_anywhere(
    world: dict[str, Any],
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level("INFO")  # what the functions log in production (POWERTOOLS_LOG_LEVEL=INFO)
    recorder = Recorder()

    # -- ingest: success for every source, then every refusal -----------------------------------------
    for source in sorted(SOURCES):
        for tenant in TENANTS:
            assert ingest(webhook(source, tenant), recorder)["statusCode"] == 202, source
    queued = receive_all(world["queue_url"])
    recorder.add("queue bodies and attributes", queued)

    refusals = {
        400: [
            api_gateway_event("POST", "/v1/webhooks/spec/bad..id", b"{}", {"Content-Type": "application/json"}),
            webhook("spec", body=b"{not json"),
            webhook("spec", body=b"[" * 5000 + b"]" * 5000),
        ],
        401: [webhook(source, secrets_of="other") for source in sorted(SOURCES)]
        + [
            webhook("spec", "unknown-tenant"),
            webhook("stripe", now=time.time() - 3600),
            webhook("sendgrid", now=time.time() + 3600),
        ],
        404: [api_gateway_event("POST", "/v1/webhooks/nosuch/acme", b"{}", {"Content-Type": "application/json"})],
        413: [webhook("spec", body=b'{"p":"' + b"x" * (5 * 1024 * 1024) + b'"}')],
        415: [
            webhook("spec", headers={"Content-Type": "text/plain"}),
            webhook("spec", headers={"Content-Encoding": "gzip"}),
        ],
        422: [
            webhook(
                "spec",
                body=json.dumps(
                    {"batch": [{"type": "track", "writeKey": write_key("acme")}, {"type": "nope"}]}
                ).encode(),
            )
        ],
    }
    for status, events in refusals.items():
        for event in events:
            assert ingest(event, recorder)["statusCode"] == status, (status, event["path"])

    # Mailgun: the same token with another body is a replay.
    first = webhook("mailgun")
    assert ingest(first, recorder)["statusCode"] == 202
    replay = dict(first)
    payload = json.loads(base64.b64decode(first["body"]))
    payload["event-data"]["recipient"] = "attacker@example.com"
    replay["body"] = base64.b64encode(json.dumps(payload).encode()).decode()
    assert ingest(replay, recorder)["statusCode"] == 401
    receive_all(world["queue_url"])

    # 503: the queue is gone, then the tenant's secret is unusable (it still holds the canaries).
    monkeypatch.setenv("QUEUE_URL", world["queue_url"] + "-missing")
    reset_caches()
    assert ingest(webhook("spec"), recorder)["statusCode"] == 503
    monkeypatch.setenv("QUEUE_URL", world["queue_url"])
    broken = tenant_document("other")
    broken["unexpected"] = write_key("other")
    put_tenant("other", broken)
    reset_caches()
    assert ingest(webhook("spec", "other"), recorder)["statusCode"] == 503
    put_tenant("other", tenant_document("other"))
    reset_caches()

    # 500: a bug whose exception text carries the tenant's settings (their repr must be masked).
    from segment_bridge.ingest.sources.spec_source import SpecSource

    def crash(self: Any, request: Any, settings: Any, ctx: Any) -> None:
        raise RuntimeError(f"bug while verifying with {settings!r} / {settings}")

    with monkeypatch.context() as patched:
        patched.setattr(SpecSource, "verify", crash)
        assert ingest(webhook("spec"), recorder)["statusCode"] == 500

    # -- forward: success, retries, Segment errors echoing the credentials, DLQ -----------------------------
    assert (
        forward([dict(m, Attributes={"ApproximateReceiveCount": "1"}) for m in queued[:3]], recorder)[
            "batchItemFailures"
        ]
        == []
    )
    world["responder"].script = [(500, {}), (503, {"Retry-After": "0"})]
    assert forward([queued_record("acme", "r-retry")], recorder)["batchItemFailures"] == []
    world["responder"].script = [(400, {})] * 4
    forward([queued_record("acme", "r-400", messages=1)], recorder)
    world["responder"].script = [(401, {})] * 4
    forward([queued_record("acme", "r-401-last", receive_count=2)], recorder)
    world["responder"].script = [(401, {})] * 4
    forward([queued_record("other", "r-401-first", receive_count=1)], recorder)
    forward([queued_record("unknown-tenant", "r-unknown", receive_count=2)], recorder)
    # An outage: ten 503s open the us breaker (its logs, metrics and held-back reasons are scanned too).
    world["responder"].script = [(503, {"Retry-After": "0"})] * 10
    for record_id in ("r-outage-1", "r-outage-2", "r-held-back"):
        forward([queued_record("acme", record_id)], recorder)
    forward(
        [
            {
                "MessageId": "r-garbage",
                "ReceiptHandle": "x",
                "Body": "not a batch " + "x" * 10,
                "Attributes": {"ApproximateReceiveCount": "1"},
            }
        ],
        recorder,
    )
    dead = receive_all(world["dlq_url"])
    assert dead, "the 400 and the last-receive 401 should be on the DLQ"
    recorder.add("DLQ bodies and attributes", dead)
    for request in world["sink"].snapshot():
        recorder.add("what Segment received (bodies)", request.messages)

    # -- the destination endpoint and the CLI ---------------------------------------------------------------
    import destination_handler

    for key in (destination_key("acme"), destination_key("other"), "wrong-key-0123456789"):
        event = api_gateway_event(
            "POST",
            "/v1/segment/acme",
            json.dumps({"type": "identify", "userId": "u1", "traits": {"email": "a@example.com"}}).encode(),
            {"Content-Type": "application/json", "Authorization": basic(key)},
            resource="/v1/segment/{tenant}",
            path_parameters={"tenant": "acme"},
        )
        recorder.add("destination response", destination_handler.lambda_handler(event, LocalLambdaContext()))

    from segment_bridge_tools.cli import main as cli

    runner = CliRunner()
    for args in (
        ["tenants", "show", "acme"],
        ["tenants", "list"],
        ["tenants", "put", "other", "--source", f'spec={{"signing_secret": 5, "x": "{write_key("other")}"}}'],
        ["tenants", "put", "bad..id", "--write-key", write_key("acme")],
        ["status"],
        ["status", "--json"],
    ):
        result = runner.invoke(cli, args, catch_exceptions=True)
        recorder.add(f"cli {args[:2]}", result.output + (repr(result.exception) if result.exception else ""))

    out, err = capfd.readouterr()
    # The outage above did open the breaker: its paths were exercised.
    assert "circuit open" in out + json.dumps([r.getMessage() for r in caplog.records])
    recorder.add("stdout (logs, EMF metrics)", out)
    recorder.add("stderr", err)
    recorder.add("log records", [r.getMessage() + " " + json.dumps(r.__dict__, default=repr) for r in caplog.records])
    assert "unhandled error in ingest" in out + json.dumps(
        [r.getMessage() for r in caplog.records]
    )  # the 500 was logged
    leaks = recorder.leaks()
    assert not leaks, "\n".join(leaks[:20])
    assert len(recorder.texts) > 50


# -- OAuth: the tenant's private key, its access tokens and assertions never leak either ----------------
OAUTH_TENANT = "oauthco"
OAUTH_WRITE_KEY = "wkCANARYOAUTHwriteKey0123456789a"


def admin_call(method: str, path: str, body: Any, recorder: Recorder) -> dict[str, Any]:
    import admin_handler

    from segment_bridge_tools.lambda_events import iam_identity

    parts = path.strip("/").split("/")
    event = api_gateway_event(
        method,
        path,
        b"" if body is None else json.dumps(body).encode(),
        {"Content-Type": "application/json"},
        resource="/v1/tenants/{tenant}" + (f"/{parts[3]}" if len(parts) == 4 else ""),
        path_parameters={"tenant": parts[2]},
        iam_identity=iam_identity(),
    )
    response = admin_handler.lambda_handler(event, LocalLambdaContext())
    recorder.add(f"admin response {method} {path}", response)
    return response


def test_no_oauth_key_token_or_assertion_appears_anywhere(
    world: dict[str, Any],
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from segment_bridge.admin import generate_key_pair
    from segment_bridge_tools.cli import main as cli
    from segment_bridge_tools.sink import OAuthApp

    caplog.set_level("INFO")
    recorder = Recorder()
    sink: SegmentSink = world["sink"]
    monkeypatch.setenv("SEGMENT_OAUTH_URL_US", sink.url)
    monkeypatch.setenv("SEGMENT_OAUTH_URL_EU", sink.url)
    pair = generate_key_pair()
    sink.register_oauth_app(OAuthApp("app-canary", "key-canary", pair.public_pem, OAUTH_WRITE_KEY, token_lifetime=3600))
    assertions: list[str] = []

    def token_server(form: dict[str, str]) -> Any:
        """Records each assertion; while `failing`, answers with errors that echo it back."""
        assertions.append(form.get("client_assertion", ""))
        if failing:
            return failing.pop(0)[0], {}, {"error": "invalid_client", "error_description": f"bad {assertions[-1]}"}
        return None

    failing: list[tuple[int]] = []
    sink.token_responder = token_server

    def echo_tokens(request: ReceivedRequest) -> Any:
        """Segment's error page echoing the request's credentials: its token, its header and the writeKey."""
        if not world["responder"].script:
            return None
        status, _ = world["responder"].script.pop(0)
        token = request.bearer or ""
        return status, {}, {"message": f"bad token {token} (Authorization: Bearer {token}) for {request.write_key}"}

    sink.responder = echo_tokens

    # -- the admin API and the CLI make and use the key ---------------------------------------------------
    document = {"write_key": OAUTH_WRITE_KEY, "region": "us", "sources": {"spec": {"signing_secret": "s" * 20}}}
    assert admin_call("PUT", f"/v1/tenants/{OAUTH_TENANT}", document, recorder)["statusCode"] == 201
    made = admin_call("POST", f"/v1/tenants/{OAUTH_TENANT}/oauth-key", None, recorder)
    public_pem = json.loads(made["body"])["publicKey"]
    sink.register_oauth_app(OAuthApp("app-canary", "key-canary", public_pem, OAUTH_WRITE_KEY, token_lifetime=3600))
    oauth = {"client_id": "app-canary", "key_id": "key-canary"}
    assert admin_call("PUT", f"/v1/tenants/{OAUTH_TENANT}", {**document, "oauth": oauth}, recorder)["statusCode"] == 200
    admin_call("GET", f"/v1/tenants/{OAUTH_TENANT}", None, recorder)
    assert json.loads(admin_call("POST", f"/v1/tenants/{OAUTH_TENANT}/check", None, recorder)["body"])["ok"]
    failing.append((401,))
    admin_call("POST", f"/v1/tenants/{OAUTH_TENANT}/check", None, recorder)  # refused, the error echoing
    bad_key = {**oauth, "private_key": pair.private_pem.replace("A", "B", 40)}  # well-formed, not a key
    admin_call("PUT", "/v1/tenants/badkey", {**document, "oauth": bad_key}, recorder)
    runner = CliRunner()
    for args in (["tenants", "show", OAUTH_TENANT], ["tenants", "oauth-keygen", OAUTH_TENANT]):
        result = runner.invoke(cli, args, catch_exceptions=True)
        recorder.add(f"cli {args[:2]}", result.output + (repr(result.exception) if result.exception else ""))
    from segment_bridge.tenants import SecretsManagerTenants

    stored_key = SecretsManagerTenants("segment-bridge").get(OAUTH_TENANT).oauth.private_key.get_secret_value()  # type: ignore[union-attr]

    # -- the forwarder: first token, refused token (refresh), refused twice (DLQ), token server down -------
    assert forward([queued_record(OAUTH_TENANT, "o-ok")], recorder)["batchItemFailures"] == []
    world["responder"].script = [(401, {})]
    assert forward([queued_record(OAUTH_TENANT, "o-refresh")], recorder)["batchItemFailures"] == []
    world["responder"].script = [(403, {})] * 2
    forward([queued_record(OAUTH_TENANT, "o-refused-last", receive_count=2)], recorder)
    sink.expire_tokens()
    world["responder"].script = [(401, {})]
    failing.extend([(400,), (401,)])
    forward([queued_record(OAUTH_TENANT, "o-token-refused-last", receive_count=2)], recorder)
    dead = receive_all(world["dlq_url"])
    assert len(dead) >= 2, "the twice-refused and the token-refused records should be on the DLQ"
    recorder.add("DLQ bodies and attributes", dead)
    for request in sink.snapshot():
        recorder.add("what Segment received (bodies)", request.messages)

    out, err = capfd.readouterr()
    recorder.add("stdout (logs, EMF metrics)", out)
    recorder.add("stderr", err)
    recorder.add("log records", [r.getMessage() + " " + json.dumps(r.__dict__, default=repr) for r in caplog.records])

    secrets: dict[str, str] = {}
    for name, pem in (("private key", stored_key), ("bad private key", bad_key["private_key"])):
        for number, line in enumerate(pem.strip().splitlines()[1:-1]):
            secrets[f"{name} line {number}"] = line
    secrets.update({f"token {token[:4]}": token for token in sink.issued})
    secrets.update({f"assertion {i}": a for i, a in enumerate(assertions) if a})
    assert len(sink.issued) >= 3 and len(assertions) >= 5
    leaks = [
        f"{name} in {where}: ...{text[max(0, text.find(value) - 60) : text.find(value) + 20]}..."
        for where, text in recorder.texts
        for name, value in secrets.items()
        if value in text
    ]
    assert not leaks, "\n".join(leaks[:20])


# -- bridge keys: Segment's libraries -> the Tracking API -------------------------------------------------
def key_forms(name: str, key: str) -> dict[str, str]:
    """A bridge key in every form it could leak in: whole, its secret part, Basic, base64, URL-quoted, tail."""
    secret = key.partition(".")[2]
    return {
        f"{name}": key,
        f"{name} (secret part)": secret,
        f"basic({name}:)": base64.b64encode(f"{key}:".encode()).decode(),
        f"base64({name})": base64.b64encode(key.encode()).decode(),
        f"quoted({name})": quote(key, safe=""),
        f"tail of {name}": secret[-16:],
    }


def tracking(
    route: str,
    body: Any,
    recorder: Recorder,
    *,
    key: str | None = None,
    headers: dict[str, str] | None = None,
) -> int:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8", "surrogatepass")
    sent = {"Content-Type": "application/json", **({"Authorization": basic(key)} if key is not None else {})}
    path = f"/v1/{route}"
    event = api_gateway_event("POST", path, raw, {**sent, **(headers or {})}, resource=path, path_parameters={})
    return int(ingest(event, recorder)["statusCode"])


def test_no_bridge_key_appears_anywhere(
    world: dict[str, Any],
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Keys made through the admin API (whose one answer is the only place a key may appear) and the
    canary tenants' keys, through every Tracking API path: accepted by Basic and by body writeKey, gzip,
    each refusal (wrong, another tenant's, unknown tenant, malformed, revoked; 400 bodies that quote
    nothing, 413, 415, the known timestamp 500, a crash after reading), then delivered to Segment; then
    logs, metrics, responses, the queue, the DLQ, what Segment received, the admin API's and the CLI's
    views are searched for each key in every form."""
    import gzip
    import logging

    import admin_handler
    import forward_handler

    from segment_bridge.ingest import pipeline, tracking_api
    from segment_bridge_tools.cli import main as cli
    from segment_bridge_tools.lambda_events import iam_identity

    from .support import bridge_key

    caplog.set_level("INFO")
    recorder = Recorder()

    class Keep(logging.Handler):
        """Every record of the functions' logger, formatted with its traceback (where the stream goes
        depends on which test imported the handlers first)."""

        def __init__(self) -> None:
            super().__init__(logging.INFO)
            self.texts: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.texts.append(logging.Formatter().format(record) + " " + json.dumps(record.__dict__, default=repr))

    kept = Keep()
    logging.getLogger("segment-bridge").addHandler(kept)
    put_tenant("keyco", tenant_document("acme") | {"bridge_keys": []})
    reset_caches()

    def admin(method: str, path: str, *, record: bool = True) -> dict[str, Any]:
        parts = path.strip("/").split("/")
        event = api_gateway_event(
            method,
            path,
            b"",
            {"Content-Type": "application/json"},
            resource="/v1/tenants/{tenant}" + "".join(f"/{p}" for p in parts[3:4]) + ("/{key_id}" * (len(parts) == 5)),
            path_parameters={"tenant": parts[2], **({"key_id": parts[4]} if len(parts) == 5 else {})},
            iam_identity=iam_identity(),
        )
        response = admin_handler.lambda_handler(event, LocalLambdaContext())
        if record:
            recorder.add(f"admin response {method} {path}", response)
        return json.loads(response["body"])

    # The one answer that holds each key (never recorded), then every view of the tenant.
    made = [admin("POST", "/v1/tenants/keyco/bridge-keys", record=False) for _ in range(2)]
    keys = {f"admin-made key {i}": m["key"] for i, m in enumerate(made)}
    assert all(key.startswith("keyco.sbk_") for key in keys.values())
    admin("POST", "/v1/tenants/keyco/bridge-keys")  # a third: 409, naming the ids
    admin("GET", "/v1/tenants/keyco")
    runner = CliRunner()
    for args in (["tenants", "show", "keyco"], ["tenants", "key", "list", "keyco"], ["tenants", "show", "acme"]):
        result = runner.invoke(cli, args, catch_exceptions=True)
        recorder.add(f"cli {args}", result.output + (repr(result.exception) if result.exception else ""))
    reset_caches()

    # -- accepted: every key, Basic and body writeKey, batch and single calls, gzip ---------------------------
    every_key = [bridge_key("acme", 1), bridge_key("acme", 2), bridge_key("other", 1), *keys.values()]
    message = {"type": "track", "userId": "u1", "event": "Order Completed"}
    for n, key in enumerate(every_key):
        item = {**message, "messageId": f"k{n}-1", "writeKey": key}
        assert tracking("batch", {"batch": [item], "sentAt": "2020-01-01T00:00:00Z"}, recorder, key=key) == 200
        assert tracking("import", {"batch": [{**item, "messageId": f"k{n}-2"}], "writeKey": key}, recorder) == 200
        assert tracking("track", {**item, "messageId": f"k{n}-3"}, recorder, key=key) == 200
        assert tracking("identify", {"userId": "u1", "messageId": f"k{n}-4", "writeKey": key}, recorder) == 200
        zipped = gzip.compress(json.dumps({"batch": [{**item, "messageId": f"k{n}-5"}], "writeKey": key}).encode())
        assert tracking("batch", zipped, recorder, headers={"Content-Encoding": "gzip"}) == 200
        # A 200 with a refusal listed (the message without a userId quotes nothing of the key).
        mixed = {"batch": [{**item, "messageId": f"k{n}-6"}, {"type": "track", "event": "E", "writeKey": key}]}
        assert tracking("batch", mixed, recorder, key=key) == 200

    # -- refused ---------------------------------------------------------------------------------------------
    made_secret = keys["admin-made key 0"].partition(".")[2]
    refusals: list[tuple[int, str, Any, dict[str, Any]]] = []
    for key in every_key:
        tenant, _, secret = key.partition(".")
        for wrong in (
            f"{'other' if tenant != 'other' else 'acme'}.{secret}",  # another tenant's secret
            f"nosuch.{secret}",  # unknown tenant
            key + "x",
            key[:-1],
            key.upper(),
            secret,
            f"{tenant}.{key}",
        ):
            refusals.append((401, "batch", {"batch": [message]}, {"key": wrong}))
            refusals.append((401, "track", {**message, "writeKey": wrong}, {}))
        refusals += [
            (400, "batch", f'{{"writeKey": "{key}", "batch": ['.encode(), {}),  # truncated JSON: no key quoted
            (400, "batch", f'{{"writeKey": "{key}", "batch": '.encode() + b"[" * 100 + b"]" * 100 + b"}", {}),
            (400, "batch", f'{{"writeKey": "{key}", "batch": ["\xff"]}}'.encode("latin-1"), {}),
            (400, "track", {"writeKey": key, "batch": {"not": "a list"}, "event": "E"}, {}),  # no userId
            (400, "batch", {"writeKey": key, "batch": "nope"}, {}),
            (400, "batch", {"batch": [message], "writeKey": key, "p": "x" * (600 * 1024)}, {}),
            (400, "batch", gzip.compress(f'{{"writeKey": "{key}", "batch": ['.encode())[:-4], {"gzip": True}),
            (413, "batch", {"batch": [{}] * 10_001, "writeKey": key}, {}),  # more messages than one request takes
            (415, "batch", {"batch": [message], "writeKey": key}, {"key": key, "type": "text/plain"}),
            (415, "batch", {"batch": [message], "writeKey": key}, {"encoding": "br"}),
            # A sentAt whose UTC form is in year 0 is unreadable, so ignored (it was an OverflowError, a 500).
            (200, "batch", {"batch": [message], "writeKey": key, "sentAt": "0001-01-01T00:00:00+01:00"}, {}),
        ]
    for status, route, body, options in refusals:
        headers = {}
        if "type" in options:
            headers["Content-Type"] = options["type"]
        if "encoding" in options:
            headers["Content-Encoding"] = options["encoding"]
        if options.get("gzip"):
            headers["Content-Encoding"] = "gzip"
        got = tracking(route, body, recorder, key=options.get("key"), headers=headers)
        assert got == status, (status, route, options, str(body)[:200])

    # A revoked key (refused once the instance rereads the tenant).
    admin("DELETE", f"/v1/tenants/keyco/bridge-keys/{made[0]['id']}")
    reset_caches()
    assert tracking("batch", {"batch": [message]}, recorder, key=keys["admin-made key 0"]) == 401
    assert tracking("batch", {"batch": [message], "writeKey": "keyco." + made_secret}, recorder) == 401

    # A bug after reading (its exception text quotes what was read: the key must already be gone).
    def crash(events: Any, *args: Any, **kwargs: Any) -> Any:
        # (Not the TenantConfig's repr: it shows per-source secrets; see test_a_tenant_config_repr_...)
        raise RuntimeError(f"bug while finishing {events!r} for {kwargs['tenant_id']!r} ({kwargs['source_name']})")

    with monkeypatch.context() as patched:
        patched.setattr(pipeline, "finish_events", crash)
        body = {"batch": [{**message, "writeKey": keys["admin-made key 1"]}], "writeKey": keys["admin-made key 1"]}
        assert tracking("batch", body, recorder) == 500

    # A bug while reading, before authentication (its text quotes the messages as read so far).
    def crash_reading(messages: Any, sent_at: Any, received_at: float) -> None:
        raise RuntimeError(f"bug while reading {messages!r} sent at {sent_at!r}")

    with monkeypatch.context() as patched:
        patched.setattr(tracking_api, "correct_clock", crash_reading)
        body = {"batch": [{**message, "writeKey": keys["admin-made key 1"]}], "writeKey": keys["admin-made key 1"]}
        assert tracking("batch", body, recorder) == 500

    # -- the queue, then Segment ------------------------------------------------------------------------------
    queued = receive_all(world["queue_url"])
    assert len(queued) >= 5 * len(every_key)
    recorder.add("queue bodies and attributes", queued)
    for start in range(0, len(queued), 10):
        records = [dict(m, Attributes={"ApproximateReceiveCount": "1"}) for m in queued[start : start + 10]]
        response = forward_handler.lambda_handler(sqs_event(records), LocalLambdaContext(timeout_seconds=20))
        recorder.add("forward response", response)
    delivered = world["sink"].snapshot()
    assert delivered, "the tracking messages should reach Segment"
    for request in delivered:
        recorder.add("what Segment received (bodies)", request.messages)
    recorder.add("DLQ bodies and attributes", receive_all(world["dlq_url"]))

    out, err = capfd.readouterr()
    recorder.add("stdout (logs, EMF metrics)", out)
    recorder.add("stderr", err)
    recorder.add("log records", [r.getMessage() + " " + json.dumps(r.__dict__, default=repr) for r in caplog.records])
    logging.getLogger("segment-bridge").removeHandler(kept)
    recorder.add("log records with tracebacks", kept.texts)
    logged = out + "\n".join(kept.texts)
    assert "unhandled error in ingest" in logged and "bug while finishing" in logged  # the 500s were logged
    assert "bug while reading" in logged  # the 500 while reading too, with its traceback

    forms = dict(canaries())
    for name, key in keys.items():
        forms.update(key_forms(name, key))
    leaks = [
        f"{name} in {where}: ...{text[max(0, text.find(form) - 80) : text.find(form) + 40]}..."
        for where, text in recorder.texts
        for name, form in forms.items()
        if form and form in text
    ]
    assert not leaks, "\n".join(leaks[:20])
    assert len(recorder.texts) > 150


def test_a_tenant_config_repr_shows_no_source_secret() -> None:
    from segment_bridge.tenants import parse_tenant_secret

    config = parse_tenant_secret("acme", tenant_document("acme"))
    text = f"{config!r} {config!s}"
    leaked = [value for value in secret_values("acme") if value in text]
    assert not leaked, leaked
