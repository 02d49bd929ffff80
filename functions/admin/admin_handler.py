"""API Gateway -> Lambda for the admin (connection) API: what a partner's settings page calls.

Its own REST API in the template, every route `AWS_IAM`-authorized: API Gateway verifies the
caller's SigV4 signature and IAM permission (`execute-api:Invoke`) before this function runs, and
puts the caller's identity in `requestContext.identity`. A request without one did not come
through that authorizer (a misconfigured deployment, or a direct invoke), so it is refused with 403
before anything else. All decisions live in `segment_bridge.admin`, shared with the CLI; this
module only translates.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from segment_bridge import safe_json
from segment_bridge.admin import DEFAULT_KEY_BITS, DEFAULT_RECOVERY_DAYS, AdminResult, SecretsManagerStore, TenantAdmin
from segment_bridge.apigw import install_error_handlers, json_response, raw_body
from segment_bridge.config import get_settings
from segment_bridge.errors import Forbidden, MalformedRequest, PayloadTooLarge
from segment_bridge.observability import logger, metrics

app = APIGatewayRestResolver()
TENANT_ROUTE = "/v1/tenants/<tenant>"
install_error_handlers(
    app,
    name="admin",
    route_hint=(
        "tenants are PUT/GET/DELETE /v1/tenants/{tenant}, POST /v1/tenants/{tenant}/oauth-key, /check and "
        "/bridge-keys, DELETE /v1/tenants/{tenant}/bridge-keys/{id}"
    ),
    retry_hint="retry later",
)
#: Largest admin request body: a tenant document is a few KB, and Secrets Manager holds at most 64 KiB.
MAX_ADMIN_BODY_BYTES = 64 * 1024


@lru_cache(maxsize=1)
def get_admin() -> TenantAdmin:
    settings = get_settings()
    return TenantAdmin(
        SecretsManagerStore(),
        prefix=settings.secrets_prefix,
        public_api_url=settings.public_api_url,
        oauth_servers={"us": settings.segment_oauth_url_us, "eu": settings.segment_oauth_url_eu},
    )


def caller() -> str:
    """The IAM principal API Gateway authenticated; 403 without one."""
    arn = app.current_event.request_context.identity.user_arn
    if not arn:
        raise Forbidden("this API takes only AWS IAM (SigV4-signed) requests; this one carried no IAM identity")
    return arn


def json_body(*, required: bool) -> Any:
    body = raw_body(app.current_event)
    if len(body) > MAX_ADMIN_BODY_BYTES:
        raise PayloadTooLarge(f"the body is over {MAX_ADMIN_BODY_BYTES} bytes; a tenant document is a few KB")
    if not body.strip():
        if required:
            raise MalformedRequest("the body must be the tenant document as JSON")
        return {}
    return safe_json.loads(body)


def answer(action: str, tenant: str, who: str, result: AdminResult) -> Response[str]:
    metrics.add_metric(name=f"Admin{action}{result.status}", unit=MetricUnit.Count, value=1)
    # The audit trail: who did what to which tenant (never a value of the document).
    logger.info("admin request", extra={"action": action, "tenant": tenant, "caller": who, "status": result.status})
    return json_response(result.status, result.body)


def flag(name: str) -> bool:
    value = (app.current_event.query_string_parameters or {}).get(name, "false").lower()
    if value not in ("true", "false"):
        raise MalformedRequest(f"{name} must be true or false")
    return value == "true"


@app.put(TENANT_ROUTE)
def put_tenant(tenant: str) -> Response[str]:
    who = caller()
    return answer("Put", tenant, who, get_admin().put(tenant, json_body(required=True)))


@app.get(TENANT_ROUTE)
def get_tenant(tenant: str) -> Response[str]:
    who = caller()
    return answer("Get", tenant, who, get_admin().get(tenant))


@app.delete(TENANT_ROUTE)
def delete_tenant(tenant: str) -> Response[str]:
    who = caller()
    raw_days = (app.current_event.query_string_parameters or {}).get("recoveryDays", str(DEFAULT_RECOVERY_DAYS))
    if not raw_days.isdigit():
        raise MalformedRequest("recoveryDays must be a whole number of days (7 to 30)")
    result = get_admin().delete(tenant, force=flag("force"), recovery_days=int(raw_days))
    return answer("Delete", tenant, who, result)


@app.post(f"{TENANT_ROUTE}/oauth-key")
def make_oauth_key(tenant: str) -> Response[str]:
    who = caller()
    options = json_body(required=False)
    if not isinstance(options, dict) or set(options) - {"bits", "replace"}:
        raise MalformedRequest('the body, if any, must be a JSON object: {"bits": 2048, "replace": false}')
    bits, replace = options.get("bits", DEFAULT_KEY_BITS), options.get("replace", False)
    if not isinstance(bits, int) or isinstance(bits, bool) or not isinstance(replace, bool):
        raise MalformedRequest("bits must be 2048, 3072 or 4096 and replace true or false")
    return answer("OAuthKey", tenant, who, get_admin().make_oauth_key(tenant, bits=bits, replace=replace))


@app.post(f"{TENANT_ROUTE}/check")
def check_tenant(tenant: str) -> Response[str]:
    who = caller()
    return answer("Check", tenant, who, get_admin().check(tenant))


@app.post(f"{TENANT_ROUTE}/bridge-keys")
def add_bridge_key(tenant: str) -> Response[str]:
    """A new bridge key (Segment's libraries -> the Tracking API routes); the key is in this answer only."""
    who = caller()
    return answer("BridgeKeyAdd", tenant, who, get_admin().add_bridge_key(tenant))


@app.delete(f"{TENANT_ROUTE}/bridge-keys/<key_id>")
def revoke_bridge_key(tenant: str, key_id: str) -> Response[str]:
    who = caller()
    return answer("BridgeKeyRevoke", tenant, who, get_admin().revoke_bridge_key(tenant, key_id))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
