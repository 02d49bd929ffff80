"""API Gateway -> Lambda: adapt the REST event into a `WebhookRequest` and the result into HTTP.

All decisions live in `segment_bridge.ingest`; this module wires its adapters and only translates:
the result is a 202, or a 422 when no event was accepted (skipped events reported on both).
Segment's own Tracking API (`POST /v1/batch`, `/v1/track`...) is a `TrackingRequest` and its
answer the one `tracking_api.answer` gives (what Segment's libraries understand).
"""

from __future__ import annotations

import time
from collections import Counter
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from segment_bridge.apigw import error_response, install_error_handlers, json_response, raw_body
from segment_bridge.config import get_settings
from segment_bridge.conformance import OUTCOMES, ConformanceReviewer
from segment_bridge.errors import BridgeError
from segment_bridge.events import WebhookRequest
from segment_bridge.identity import DynamoDBIdentityStore, TableIdentityResolver
from segment_bridge.ingest import (
    DynamoDBReplayGuard,
    Ingestor,
    IngestResult,
    SqsQueue,
    TrackingRequest,
    get_source,
    tracking_api,
)
from segment_bridge.observability import freeze_setup_objects, logger, metrics
from segment_bridge.tenants import TENANT_ID_RULE, SecretsManagerTenants, is_valid_tenant_id

app = APIGatewayRestResolver()
WEBHOOK_ROUTE = "/v1/webhooks/<source>/<tenant>"
install_error_handlers(
    app,
    name="ingest",
    route_hint=(
        "webhooks are POST /v1/webhooks/{source}/{tenant}; Segment's API is POST /v1/batch, /v1/import, "
        "/v1/track, /v1/identify, /v1/page, /v1/screen, /v1/group, /v1/alias"
    ),
    retry_hint="the request was not accepted, retry later",
)


@lru_cache(maxsize=1)
def get_ingestor() -> Ingestor:
    settings = get_settings()
    tenants = SecretsManagerTenants(settings.secrets_prefix, settings.secrets_max_age_seconds)
    # The identity loop is on when the deployment has an identity table (and, per tenant, a destination key).
    identity = None
    if settings.identity_table_name:
        identity = TableIdentityResolver(DynamoDBIdentityStore(settings.identity_table_name))
    # Single-use signature tokens (Mailgun) are claimed in the shared table when there is one, so a
    # replay is refused by every instance; without it, each instance keeps its own.
    replay_guard = DynamoDBReplayGuard(settings.replay_table_name) if settings.replay_table_name else None
    ingestor = Ingestor(
        settings,
        tenants,
        SqsQueue(settings.queue_url),
        reviewer=ConformanceReviewer(),
        identity=identity,
        replay_guard=replay_guard,
    )
    freeze_setup_objects()
    return ingestor


def to_webhook_request(source: str, tenant: str) -> WebhookRequest:
    event = app.current_event
    headers = {k.lower(): v for k, v in (event.headers or {}).items()}
    query = dict(event.query_string_parameters or {})
    ctx = event.request_context
    host = headers.get("host") or ctx.domain_name or "localhost"
    url = f"https://{host}{ctx.path or event.path}"
    return WebhookRequest(
        source=source,
        tenant=tenant,
        method=event.http_method,
        body=raw_body(event),
        headers=headers,
        query=query,
        url=url,
    )


@app.post(WEBHOOK_ROUTE)
def receive_webhook(source: str, tenant: str) -> Response[str]:
    result = get_ingestor().handle(to_webhook_request(source, tenant))
    record_metrics(result, source, tenant)
    if result.nothing_accepted:
        return json_response(422, result.body())
    logger.info(
        "webhook accepted",
        extra={
            "source": source,
            "tenant": tenant,
            "accepted": len(result.accepted),
            "rejected": len(result.rejected),
            "skipped": len(result.skipped),
            "sqs_calls": result.sqs_calls,
        },
    )
    return json_response(202, result.body())


def record_metrics(result: IngestResult, source: str, tenant: str) -> None:
    count_conformance(result.conformance, source, tenant)
    counts = {
        "MessagesReceived": result.received,
        "MessagesAccepted": len(result.accepted),
        "MessagesRejected": len(result.rejected),
        "MessagesSkipped": len(result.skipped),
        "IdentityResolved": result.resolved,
        "IdentityMissed": result.unresolved,
    }
    for name, value in counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def count_conformance(decisions: list[dict[str, Any]], source: str, tenant: str) -> None:
    """ConformanceFixed/Warned/Rejected count findings by what was done; the log line names the codes."""
    outcomes = Counter(d["action"] for d in decisions)
    for outcome in OUTCOMES:
        metrics.add_metric(name=f"Conformance{outcome.capitalize()}", unit=MetricUnit.Count, value=outcomes[outcome])
    if decisions:
        level = logger.warning if outcomes["warned"] or outcomes["rejected"] else logger.info
        level(
            "spec conformance findings",
            extra={
                "source": source,
                "tenant": tenant,
                "findings": dict(Counter(f"{d['code']}:{d['action']}" for d in decisions)),
            },
        )


def receive_tracking_call(call: str) -> Response[str]:
    """Segment's Tracking API, as Segment's libraries send it (the tenant is named by the bridge key)."""
    event = app.current_event
    try:
        request = TrackingRequest(
            route=call,
            body=raw_body(event),
            headers={k.lower(): v for k, v in (event.headers or {}).items()},
            received_at=time.time(),
        )
        tenant, result = get_ingestor().handle_tracking_api(request)
    except BridgeError as error:
        # Segment's own error shape, `{"code", "message"}`: the libraries print `code: message`.
        return error_response("ingest", error, {"code": error.code, "message": error.message})
    record_metrics(result, tracking_api.SOURCE_NAME, tenant)
    answer = tracking_api.answer(len(result.accepted), result.rejected)
    if result.rejected:
        # A library cannot show per-message refusals: the reasons are here (and in the debugger).
        logger.warning(
            "tracking api messages refused",
            extra={"tenant": tenant, "call": call, "refused": result.rejected[:20], "accepted": len(result.accepted)},
        )
    else:
        logger.info(
            "tracking api call accepted", extra={"tenant": tenant, "call": call, "accepted": len(result.accepted)}
        )
    response = json_response(answer.status, answer.body)
    response.headers.update(answer.headers)
    return response


for _call in tracking_api.ROUTES:  # one route per call, as the template declares them
    app.post(f"/v1/{_call}")(lambda _c=_call: receive_tracking_call(_c))


@app.route(WEBHOOK_ROUTE, method="HEAD")
def probe_webhook(source: str, tenant: str) -> Response[str]:
    """Some tools (Mandrill) check a webhook URL with HEAD before they start posting."""
    known = get_source(source)
    if known is None or "HEAD" not in known.probe_methods:
        return json_response(405, {"message": "HEAD is not supported for this source; POST webhooks here"})
    if not is_valid_tenant_id(tenant):  # the same syntax POST enforces; no lookup either way
        return json_response(400, {"message": TENANT_ID_RULE})
    return Response(status_code=200, content_type="text/plain", body="")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
