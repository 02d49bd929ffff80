"""API Gateway -> Lambda for Segment's destination calls, `POST /v1/segment/{tenant}`.

A function of its own rather than a route on ingest: Segment gives it 5 s in all (ingest has 20 s
and waits on SQS), so its timeout and AWS client timeouts are tighter; and it alone may write the
identity table (ingest may only BatchGetItem it, and this function cannot touch the queue).
All decisions live in `segment_bridge.destination`; this module only translates.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from segment_bridge.apigw import install_error_handlers, json_response, raw_body
from segment_bridge.aws import client
from segment_bridge.config import get_settings
from segment_bridge.identity import DestinationRequest, DestinationService, DynamoDBIdentityStore
from segment_bridge.observability import logger, metrics
from segment_bridge.tenants import SecretsManagerTenants

app = APIGatewayRestResolver()
DESTINATION_ROUTE = "/v1/segment/<tenant>"
# Segment shows `message` in its debugger; it retries 429 and 5xx, not 400/401/501.
install_error_handlers(
    app, name="destination", route_hint="Segment calls are POST /v1/segment/{tenant}", retry_hint="retry later"
)
#: Every AWS call must fit, retries included, in Segment's 5 s with room for the rest of the request.
FAST_CLIENT = {"connect_timeout": 0.5, "read_timeout": 1.0, "max_attempts": 2}


@lru_cache(maxsize=1)
def get_service() -> DestinationService:
    settings = get_settings()
    tenants = SecretsManagerTenants(
        settings.secrets_prefix, settings.secrets_max_age_seconds, client=client("secretsmanager", **FAST_CLIENT)
    )
    store = DynamoDBIdentityStore(settings.identity_table_name, client_options=FAST_CLIENT)
    return DestinationService(settings, tenants, store)


@app.post(DESTINATION_ROUTE)
def receive_segment_call(tenant: str) -> Response[str]:
    event = app.current_event
    request = DestinationRequest(tenant=tenant, authorization=event.headers.get("authorization"), body=raw_body(event))
    context = app.lambda_context
    result = get_service().handle(request, remaining_seconds=lambda: context.get_remaining_time_in_millis() / 1000)
    if result.status != 200:
        metrics.add_metric(name=f"DestinationStatus{result.status}", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="SegmentCallsApplied", unit=MetricUnit.Count, value=result.applied)
    metrics.add_metric(name="SegmentCallsDuplicate", unit=MetricUnit.Count, value=result.duplicates)
    metrics.add_metric(name="IdentityUsersDeleted", unit=MetricUnit.Count, value=result.deleted_users)
    logger.info(
        "segment calls applied",
        extra={
            "tenant": tenant,
            "received": result.received,
            "applied": result.applied,
            "duplicates": result.duplicates,
            "ignored": len(result.ignored),
        },
    )
    return json_response(result.status, result.body())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
