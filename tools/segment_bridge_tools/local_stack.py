"""The whole bridge on one machine: moto server (SQS, Secrets Manager), the ingest handler behind
an HTTP server, a poller that drives the forward handler like the SQS event source mapping, and a
Segment sink. No AWS account, no Docker.

The handlers are the deployed code, imported in-process; only their surroundings are stand-ins:
- API Gateway: `IngestServer` turns each HTTP request into a REST proxy event (base64 body, as
  with BinaryMediaTypes '*/*') and the handler's answer back into HTTP.
- Event source mapping: `QueuePoller` receives up to `batch_size` messages within the batching
  window, invokes the forward handler with a real SQS event, deletes what succeeded and leaves
  the reported failures to reappear after the visibility timeout the forwarder gave them (its
  ChangeMessageVisibilityBatch goes to moto, which applies it and the redrive policy).
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

from .debugger.journal import Exchange, QueuedMessage
from .lambda_events import LocalLambdaContext, api_gateway_event, sqs_event
from .sink import Responder, SegmentSink

if TYPE_CHECKING:
    from .debugger import DebuggerServer, Journal, QueueWatcher, SendResult

ROOT = Path(__file__).resolve().parents[2]
#: The Lambda handlers are deployed from functions/<name>/; import them from there, as Lambda does.
HANDLER_DIRS = [ROOT / "functions" / "ingest", ROOT / "functions" / "forward", ROOT / "functions" / "destination"]
#: The identity loop's table, and the key Segment would send the demo tenant's destination endpoint.
IDENTITY_TABLE = "segment-bridge-identity"
REPLAY_TABLE = "segment-bridge-replay"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class StackConfig:
    tenant: str = "demo"
    write_key: str = "demo-write-key-0123456789abcdef"
    region: str = "us"
    signing_secret: str = "demo-signing-secret-change-me"
    #: Extra per-source settings for the demo tenant (other tools' keys).
    source_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    identity_policy: str = "reject"
    #: Key of the tenant's Segment destination endpoint (POST /v1/segment/{tenant}, Basic auth).
    destination_api_key: str = "demo-destination-api-key-0123456789"
    ingest_port: int = 0
    #: Send to Segment's real regional endpoints instead of the local sink.
    real_segment: bool = False
    batch_size: int = 1000
    batching_window_seconds: float = 0.5
    visibility_timeout_seconds: int = 2
    #: The redrive backstop (the template fixes it at 1,000: the backoff never reaches it).
    max_receive_count: int = 1000
    segment_timeout_seconds: float = 10.0
    #: The forwarder's Lambda timeout (the template's is 60 s); keep it under the visibility timeout.
    forwarder_timeout_seconds: float = 60.0
    partner_requests_per_second: float = 50.0
    forwarder_concurrency: int = 1
    #: The forwarder's backoff across receives (deployed: 30 s doubling to 15 min), short locally.
    redelivery_base_seconds: float = 1.0
    redelivery_cap_seconds: float = 8.0
    #: Probe interval of an open circuit breaker (deployed: 60 s).
    breaker_probe_seconds: float = 5.0
    sink_responder: Responder | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    #: A second demo tenant sent with OAuth 2.0: its source is OAuth-only in the sink (Basic auth is
    #: refused), which issues tokens this short-lived so a demo or test sees them renewed. Empty: none.
    oauth_tenant: str = "demo-oauth"
    oauth_write_key: str = "demoOAuthWriteKey0123456789abcdef"
    oauth_client_id: str = "demo-oauth-app"
    oauth_key_id: str = "demo-oauth-key-1"
    oauth_token_lifetime: int = 6
    #: Serve the live debugger page (`debugger_url`) and record the stack's traffic in `journal`.
    debugger: bool = False
    debugger_port: int = 0


class LocalStack:
    def __init__(self, config: StackConfig | None = None) -> None:
        self.config = config or StackConfig()
        self.moto = None
        self.sink: SegmentSink | None = None
        self.ingest: IngestServer | None = None
        self.pollers: list[QueuePoller] = []
        self.queue_url = ""
        self.dlq_url = ""
        self._saved_env: dict[str, str | None] = {}
        self.journal: Journal | None = None
        self.debugger: DebuggerServer | None = None
        self._dlq_watcher: QueueWatcher | None = None
        #: Host header -> Segment region, as the sink is addressed for each region.
        self._sink_regions: dict[str, str] = {}
        #: The demo tenant's bridge key (Segment's libraries -> /v1/batch), made at start.
        self.bridge_key = ""

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> LocalStack:
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
        cfg = self.config
        moto_port = free_port()
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
        self.moto.start()
        # The in-process moto server shares its backends with every earlier stack (and mock) of this
        # process, so queues and tables of a previous stack would still exist: start from nothing.
        urlopen(Request(f"http://127.0.0.1:{moto_port}/moto-api/reset", method="POST"), timeout=10).close()
        if not cfg.real_segment:
            self.sink = SegmentSink(responder=cfg.sink_responder).start()
        env = {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}",
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
            "SECRETS_PREFIX": "segment-bridge",
            "INTEGRATION_NAME": os.environ.get("INTEGRATION_NAME", "segment-bridge"),
            "MAX_RECEIVE_COUNT": str(cfg.max_receive_count),
            "SEGMENT_TIMEOUT_SECONDS": str(cfg.segment_timeout_seconds),
            "PARTNER_REQUESTS_PER_SECOND": str(cfg.partner_requests_per_second),
            "FORWARDER_MAX_CONCURRENCY": str(max(cfg.forwarder_concurrency, 1)),
            "REDELIVERY_BASE_SECONDS": str(cfg.redelivery_base_seconds),
            "REDELIVERY_CAP_SECONDS": str(cfg.redelivery_cap_seconds),
            "BREAKER_PROBE_SECONDS": str(cfg.breaker_probe_seconds),
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
            **cfg.extra_env,
        }
        if self.sink is not None:
            env["SEGMENT_URL_US"] = self.sink.batch_url
            env["SEGMENT_URL_EU"] = eu_alias(self.sink.batch_url)
            self._sink_regions = sink_regions(env["SEGMENT_URL_US"], env["SEGMENT_URL_EU"])
            # The sink is the token server too (its URL is the assertion's audience).
            env["SEGMENT_OAUTH_URL_US"] = self.sink.url
            env["SEGMENT_OAUTH_URL_EU"] = self.sink.url
        self._set_env(env)
        self._create_resources()
        self._set_env(
            {
                "QUEUE_URL": self.queue_url,
                "DEAD_LETTER_QUEUE_URL": self.dlq_url,
                "IDENTITY_TABLE_NAME": IDENTITY_TABLE,
                "REPLAY_TABLE_NAME": REPLAY_TABLE,
            }
        )
        ingest_handler, forward_handler = _fresh_handlers()
        # Same API, second function: Segment's calls go to the destination handler with its 4 s timeout.
        destination = (importlib.import_module("destination_handler"), 4.0)
        self.ingest = IngestServer(ingest_handler, port=cfg.ingest_port, routes={"/v1/segment/": destination}).start()
        self.pollers = [
            QueuePoller(
                forward_handler,
                self.queue_url,
                cfg.batch_size,
                cfg.batching_window_seconds,
                cfg.forwarder_timeout_seconds,
            ).start()
            for _ in range(max(cfg.forwarder_concurrency, 1))
        ]
        if cfg.debugger:
            self._start_debugger()
        return self

    def stop(self) -> None:
        if self.debugger is not None:
            self.debugger.stop()
        if self._dlq_watcher is not None:
            self._dlq_watcher.stop()
        for poller in self.pollers:
            poller.stop()
        if self.ingest is not None:
            self.ingest.stop()
        if self.sink is not None:
            self.sink.stop()
        if self.moto is not None:
            self.moto.stop()
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        clear_caches()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- setup ----------------------------------------------------------------------------
    def _set_env(self, values: dict[str, str]) -> None:
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value
        clear_caches()

    def _create_resources(self) -> None:
        import boto3

        cfg = self.config
        sqs = boto3.client("sqs")
        self.dlq_url = sqs.create_queue(QueueName="segment-bridge-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=self.dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.queue_url = sqs.create_queue(
            QueueName="segment-bridge",
            Attributes={
                "VisibilityTimeout": str(cfg.visibility_timeout_seconds),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(cfg.max_receive_count)}
                ),
            },
        )["QueueUrl"]
        create_identity_table(boto3.client("dynamodb"), IDENTITY_TABLE)
        create_replay_table(boto3.client("dynamodb"), REPLAY_TABLE)
        sources = {"spec": {"signing_secret": cfg.signing_secret}, **cfg.source_settings}
        self.put_tenant(
            cfg.tenant,
            {
                "write_key": cfg.write_key,
                "region": cfg.region,
                "sources": sources,
                "identity": {"missing_user_id": cfg.identity_policy},
                "destination": {"api_key": cfg.destination_api_key},
            },
        )

        if self.sink is not None and cfg.oauth_tenant:
            self._create_oauth_tenant()
        # A bridge key for the demo tenant, made as `segment-bridge tenants key add` makes it: what a
        # Segment library is given as its writeKey, with `tracking_host` as its host.
        self.bridge_key = self.add_bridge_key(cfg.tenant)

    def _create_oauth_tenant(self) -> None:
        """The OAuth demo tenant: a key pair made as `tenants oauth-keygen` makes it, its public half
        "uploaded" to the sink's token server, the app and key ids put into the tenant's oauth block."""
        from segment_bridge.admin import generate_key_pair

        from .sink import OAuthApp

        cfg = self.config
        assert self.sink is not None
        pair = generate_key_pair()
        self.sink.register_oauth_app(
            OAuthApp(
                cfg.oauth_client_id,
                cfg.oauth_key_id,
                pair.public_pem,
                cfg.oauth_write_key,
                oauth_only=True,
                token_lifetime=cfg.oauth_token_lifetime,
            )
        )
        self.put_tenant(
            cfg.oauth_tenant,
            {
                "write_key": cfg.oauth_write_key,
                "region": cfg.region,
                "sources": {"spec": {"signing_secret": cfg.signing_secret}},
                "oauth": {
                    "client_id": cfg.oauth_client_id,
                    "key_id": cfg.oauth_key_id,
                    "private_key": pair.private_pem,
                },
            },
        )

    def put_tenant(self, tenant: str, document: dict[str, Any]) -> None:
        put_tenant_secret(tenant, document)

    def add_bridge_key(self, tenant: str | None = None) -> str:
        """A new bridge key for `tenant` (the demo tenant by default), through the admin service."""
        import boto3

        from segment_bridge.admin import SecretsManagerStore, TenantAdmin

        admin = TenantAdmin(SecretsManagerStore(boto3.client("secretsmanager")))
        result = admin.add_bridge_key(tenant or self.config.tenant)
        if result.status != 201:
            raise RuntimeError(f"could not add a bridge key: {result.body.get('message')}")
        clear_caches()  # instances reread the tenant at once (deployed: within SECRETS_MAX_AGE_SECONDS)
        return str(result.body["key"])

    # -- helpers --------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        assert self.ingest is not None
        return self.ingest.url

    def webhook_url(self, source: str, tenant: str | None = None) -> str:
        return f"{self.base_url}/v1/webhooks/{source}/{tenant or self.config.tenant}"

    @property
    def tracking_host(self) -> str:
        """What a Segment library is given as `host` (it appends /v1/batch itself)."""
        return self.base_url

    def destination_url(self, tenant: str | None = None) -> str:
        """Where Segment would send the tenant's identify/group/delete calls."""
        return f"{self.base_url}/v1/segment/{tenant or self.config.tenant}"

    def queue_depth(self, url: str | None = None) -> int:
        import boto3

        attrs = boto3.client("sqs").get_queue_attributes(
            QueueUrl=url or self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])

    # -- the live debugger ----------------------------------------------------------------------
    @property
    def debugger_url(self) -> str:
        assert self.debugger is not None, "start the stack with StackConfig(debugger=True)"
        return self.debugger.url

    def _start_debugger(self) -> None:
        """Record at the stack's boundaries: the API stand-in, the sink, the DLQ's content."""
        import boto3

        from segment_bridge.ingest.sources import REGISTRY

        from .debugger import DebuggerServer, Journal, KnownSecrets, QueueWatcher, Redactor, SampleSources
        from .samples import load_samples

        cfg = self.config
        secrets = boto3.client("secretsmanager")
        journal = self.journal = Journal(Redactor(KnownSecrets(lambda: self._tenant_documents(secrets))))
        assert self.ingest is not None
        self.ingest.observer = _safely(journal.record_exchange)
        if self.sink is not None:
            regions = self._sink_regions
            self.sink.observer = _safely(lambda r: journal.record_segment_request(r, regions.get(r.host or "")))
        dlq_url = self.dlq_url
        self._dlq_watcher = QueueWatcher(lambda: peek_queue(dlq_url), journal.record_dead_letters).start()
        sendable = {s.source for s in load_samples()}
        unavailable = {name: f"no sample for {name} in events/" for name in REGISTRY if name not in sendable}
        unavailable |= {
            name: f"tenant {cfg.tenant!r} has no {name} settings"
            for name in REGISTRY
            if name not in unavailable and self.signing_settings(name) is None
        }
        target = "Segment itself (requests are not observed here)" if cfg.real_segment else "the local Segment sink"
        webhooks = f"{self.base_url}/v1/webhooks/{{source}}/{cfg.tenant}"
        info = {"tenant": cfg.tenant, "webhookUrl": webhooks, "target": target}
        samples = SampleSources(tuple(REGISTRY), unavailable, self.send_sample)
        self.debugger = DebuggerServer(journal, samples, info, port=cfg.debugger_port).start()

    def _tenant_documents(self, client: Any) -> list[Any]:
        from segment_bridge.tenants import secret_name

        """Every tenant document in the stack's Secrets Manager, plus the config's own secrets."""
        cfg = self.config
        documents: list[Any] = [
            {
                "write_key": cfg.write_key,
                "signing_secret": cfg.signing_secret,
                "api_key": cfg.destination_api_key,
                "sources": cfg.source_settings,
            }
        ]
        prefix = secret_name("segment-bridge", "x")[: -len("x")]  # "{prefix}/tenants/", as the functions name them
        for page in client.get_paginator("list_secrets").paginate(Filters=[{"Key": "name", "Values": [prefix]}]):
            for listed in page["SecretList"]:
                try:
                    documents.append(json.loads(client.get_secret_value(SecretId=listed["ARN"])["SecretString"]))
                except (ValueError, KeyError, client.exceptions.ResourceNotFoundException):
                    continue  # not JSON, or deleted meanwhile: nothing to hide from it
        return documents

    def signing_settings(self, source: str) -> dict[str, Any] | None:
        """The demo tenant's settings for `source` (what its samples are signed with), if it has any."""
        if source == "spec":
            return {"signing_secret": self.config.signing_secret}
        return self.config.source_settings.get(source)

    def send_sample(self, source: str) -> SendResult:
        """POST `source`'s sample from events/, freshly signed, to the API stand-in over HTTP."""
        import requests

        from .debugger import SendResult
        from .samples import load_samples
        from .signing import sign

        sample = next(s for s in load_samples() if s.source == source)
        settings = self.signing_settings(source)
        if settings is None:
            raise LookupError(f"tenant {self.config.tenant!r} has no {source} settings")
        url = self.webhook_url(source)
        headers, body = sign(source, sample.body, settings, url)
        response = requests.post(url, data=body, headers={**sample.headers, **headers}, timeout=30)
        try:
            answer: Any = response.json()
        except ValueError:
            answer = response.text
        return SendResult(response.status_code, answer)

    def wait_until_drained(self, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.queue_depth() == 0 and not any(p.busy for p in self.pollers):
                return True
            time.sleep(0.1)
        return False


def _fresh_handlers() -> tuple[Any, Any]:
    import sys

    for directory in HANDLER_DIRS:
        if str(directory) not in sys.path:
            sys.path.insert(0, str(directory))
    ingest = importlib.import_module("ingest_handler")
    forward = importlib.import_module("forward_handler")
    clear_caches()
    return ingest, forward


def eu_alias(batch_url: str) -> str:
    """The sink's URL under a second host name, so the debugger can tell which region a request used.

    Segment's regions are different hosts; here both are the one sink, addressed as 127.0.0.1 (US)
    and localhost (EU). Where localhost is not 127.0.0.1, both regions share the URL.
    """
    parts = urlsplit(batch_url)
    try:
        resolved = {info[4][0] for info in socket.getaddrinfo("localhost", parts.port, socket.AF_INET)}
    except OSError:
        return batch_url
    if parts.hostname != "127.0.0.1" or resolved != {"127.0.0.1"}:
        return batch_url
    return parts._replace(netloc=f"localhost:{parts.port}").geturl()


def sink_regions(us_url: str, eu_url: str) -> dict[str, str]:
    """Host header -> region label for the sink's two names (one label when they are the same)."""
    us, eu = urlsplit(us_url).netloc, urlsplit(eu_url).netloc
    return {us: "us/eu"} if us == eu else {us: "us", eu: "eu"}


def peek_queue(queue_url: str) -> list[QueuedMessage]:
    """The messages in a queue of the in-process moto server, read without receiving them.

    A ReceiveMessage would hide them from `segment-bridge dlq` and a redrive for its visibility
    timeout and count as a receive; moto's own backend can be read instead. (moto's internals:
    pinned by requirements-dev.txt, checked by tests/e2e/test_debugger.py.)
    """
    from moto.sqs.models import sqs_backends

    account, name = urlsplit(queue_url).path.strip("/").split("/")[-2:]
    queue = sqs_backends[account][os.environ.get("AWS_DEFAULT_REGION", "us-east-1")].queues.get(name)
    if queue is None:
        return []
    with queue._messages_lock:
        messages = list(queue._messages)
    return [
        QueuedMessage(
            message_id=m.id,
            body=m.body,
            attributes={k: v.get("StringValue", "") for k, v in m.message_attributes.items()},
            sent_at=(m.sent_timestamp or 0) / 1000,
        )
        for m in messages
    ]


def _safely(observe: Callable[[Any], Any]) -> Callable[[Any], None]:
    """An observer that can never break what it watches (its errors are printed, the request goes on)."""

    def call(observed: Any) -> None:
        try:
            observe(observed)
        except Exception as exc:
            print(f"[debugger] {type(exc).__name__}: {exc}")

    return call


def clear_caches() -> None:
    """Forget cached settings, boto3 clients, secrets and handler singletons (after env changes)."""
    import sys

    from aws_lambda_powertools.utilities import parameters

    from segment_bridge import aws, config

    parameters.clear_caches()
    config.get_settings.cache_clear()
    aws.client.cache_clear()
    for module_name, getter in (
        ("ingest_handler", "get_ingestor"),
        ("forward_handler", "get_forwarder"),
        ("destination_handler", "get_service"),
        ("admin_handler", "get_admin"),
    ):
        module = sys.modules.get(module_name)
        if module is not None:
            getattr(module, getter).cache_clear()


def put_tenant_secret(tenant: str, document: dict[str, Any], prefix: str = "segment-bridge") -> None:
    """Create or replace a tenant's secret as written (no validation: tests also store broken ones)."""
    import boto3

    from segment_bridge.tenants import secret_name

    client = boto3.client("secretsmanager")
    name, value = secret_name(prefix, tenant), json.dumps(document)
    try:
        client.create_secret(Name=name, SecretString=value)
    except client.exceptions.ResourceExistsException:
        client.put_secret_value(SecretId=name, SecretString=value)


def create_identity_table(dynamodb: Any, name: str) -> None:
    """The template's IdentityTable, as far as moto emulates it (key, on-demand, TTL attribute)."""
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
    dynamodb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiresAt"}
    )


def create_replay_table(dynamodb: Any, name: str) -> None:
    """The template's ReplayTable (key `key`, TTL on `expires_at`)."""
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "key", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
    )
    dynamodb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )


class IngestServer:
    """API Gateway stand-in: HTTP in, REST proxy event to the handler, its response back out.

    `routes` maps a path prefix to another function's (handler module, timeout), as the template
    puts /v1/segment/{tenant} on the destination function; everything else goes to ingest.
    """

    def __init__(
        self,
        handler_module: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        routes: dict[str, tuple[Any, float]] | None = None,
    ) -> None:
        self.handler_module = handler_module
        self.routes = {**(routes or {}), "/": (handler_module, 20.0)}
        #: Called with every `Exchange` once answered (the local debugger records through it).
        self.observer: Callable[[Exchange], None] | None = None
        # One Lambda instance handles one request at a time; the resolver keeps per-request state.
        self._invoke_locks = {prefix: threading.Lock() for prefix in self.routes}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # answer small responses at once, not after a delayed ACK

            def log_message(self, *args: Any) -> None:
                return

            def _handle(self) -> None:
                started, clock = time.time(), time.perf_counter()
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                event = api_gateway_event(
                    self.command,
                    parts.path,
                    body,
                    headers=dict(self.headers.items()),
                    query=parts.query,
                    domain=self.headers.get("Host", "localhost"),
                    source_ip=self.client_address[0],
                )
                prefix = next(prefix for prefix in server.routes if parts.path.startswith(prefix))
                module, timeout = server.routes[prefix]
                with server._invoke_locks[prefix]:
                    response = module.lambda_handler(event, LocalLambdaContext(timeout_seconds=timeout))
                payload = response.get("body") or ""
                data = base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode()
                headers = dict(response.get("headers") or {})
                for name, values in (response.get("multiValueHeaders") or {}).items():
                    headers[name] = values[-1]
                if server.observer is not None:  # before answering, so it is recorded before what it causes
                    server.observer(
                        Exchange(
                            self.command,
                            parts.path,
                            parts.query,
                            dict(self.headers.items()),
                            body,
                            response["statusCode"],
                            dict(headers),
                            data,
                            started,
                            (time.perf_counter() - clock) * 1000,
                        )
                    )
                self.send_response(response["statusCode"])
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_POST = do_GET = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> IngestServer:
        threading.Thread(target=self.server.serve_forever, name="ingest-api", daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class QueuePoller:
    """Event source mapping stand-in: batch, invoke, delete successes, leave failures to SQS."""

    def __init__(
        self, handler_module: Any, queue_url: str, batch_size: int, window_seconds: float, timeout_seconds: float = 60.0
    ) -> None:
        import boto3

        self.handler_module = handler_module
        self.queue_url = queue_url
        self.batch_size = batch_size
        self.window_seconds = window_seconds
        self.timeout_seconds = timeout_seconds
        self.sqs = boto3.client("sqs")
        self.invocations = 0
        self.busy = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqs-poller", daemon=True)

    def start(self) -> QueuePoller:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _receive(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + self.window_seconds
        while len(messages) < self.batch_size and not self._stop.is_set():
            batch = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, self.batch_size - len(messages)),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            messages.extend(batch)
            if time.monotonic() >= deadline:
                break
            if not batch:
                if messages:
                    break
                time.sleep(0.05)
                deadline = time.monotonic() + self.window_seconds
        return messages

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.busy = False
                messages = self._receive()
                if not messages:
                    continue
                self.busy = True
                self._invoke(messages)
            except Exception as exc:  # keep polling, as the real event source does
                print(f"[poller] {type(exc).__name__}: {exc}")
                time.sleep(0.5)
        self.busy = False

    def _invoke(self, messages: list[dict[str, Any]]) -> None:
        event = sqs_event(messages)
        self.invocations += 1
        try:
            response = self.handler_module.lambda_handler(
                event, LocalLambdaContext(timeout_seconds=self.timeout_seconds)
            )
            failed = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
        except Exception:
            failed = {m["MessageId"] for m in messages}  # whole batch failed: everything comes back
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
