"""docs/openapi.yaml is true: it matches the handlers' routes, the template, the code's own
constants, and every response the handlers give (schemathesis fuzzes them through the document)."""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from cfnlint.decode import cfn_yaml
from hypothesis import settings
from openapi_spec_validator import validate
from schemathesis.checks import CheckFunction
from schemathesis.config._checks import NegativeDataRejectionConfig
from schemathesis.specs.openapi import checks as openapi_checks

from segment_bridge import errors
from segment_bridge.ingest.sources import SOURCES
from segment_bridge.tenants import TENANT_ID_PATTERN
from tests.template.test_template import TEMPLATE

from . import contract
from .conftest import HARDENING
from .support import FUZZ_EXAMPLES, Harness, install_tenants
from .wsgi_adapter import ApiGatewayWsgi

pytestmark = pytest.mark.fuzz

SCHEMA = schemathesis.openapi.from_path(str(contract.DOCUMENT))
#: 413 is a rejection too (a batch over the event cap is also invalid per the document's maxItems).
SCHEMA.config.checks.negative_data_rejection = NegativeDataRejectionConfig(
    expected_statuses=["400", "401", "403", "404", "405", "409", "413", "415", "422"]
)
#: Per operation and test (every documented operation x 2 tests, each with schemathesis' own phases on top).
SCHEMATHESIS = settings(HARDENING, max_examples=max(10, FUZZ_EXAMPLES // 10))

#: Checks that do not apply, and why:
#: - unsupported_method: API Gateway answers methods it does not route (403) before the function runs.
#: - positive_data_acceptance: a body valid for the document can still be refused by design (unsigned,
#:   or a Spec message Segment would drop, e.g. a track without `event`).
#: - missing_required_header: it wants a 401 for a request without the sigv4 `Authorization` header; the
#:   admin API answers 403, as API Gateway's AWS_IAM authorizer does ("Missing Authentication Token").
#:   `ignored_auth` still checks that an unsigned admin call is refused.
EXCLUDED_CHECKS: list[CheckFunction] = [
    openapi_checks.unsupported_method,
    openapi_checks.positive_data_acceptance,
    openapi_checks.missing_required_header,
]


def test_the_document_is_valid_openapi() -> None:
    validate(contract.spec())


def test_path_patterns_are_the_codes_own() -> None:
    tenant = contract.spec()["components"]["parameters"]["Tenant"]["schema"]
    assert tenant["pattern"] == TENANT_ID_PATTERN.pattern
    assert tenant["maxLength"] == 64
    source = contract.spec()["components"]["parameters"]["Source"]["schema"]
    assert sorted(source["enum"]) == sorted(SOURCES)


def test_the_tracking_api_is_documented_as_the_code_speaks_it() -> None:
    """Every call `tracking_api.ROUTES` takes has its operation; the documented limits, headers and
    security are the code's own."""
    from segment_bridge.ingest import tracking_api
    from segment_bridge.limits import MAX_EVENTS_PER_REQUEST

    assert set(contract.TRACKING_CALLS) == set(tracking_api.ROUTES)
    document = contract.spec()
    for call, implied in tracking_api.ROUTES.items():
        operation = document["paths"][f"/v1/{call}"]["post"]
        assert operation["security"] == [{"bridgeKey": []}], call
        body = contract.resolve(operation["requestBody"])["content"]["application/json"]["schema"]
        assert body["$ref"].endswith("TrackingBatch" if implied is None else f"Tracking{implied.capitalize()}"), call
        accepted = contract.resolve(operation["responses"]["200"])
        assert set(accepted["headers"]) == {tracking_api.ACCEPTED_HEADER, tracking_api.REFUSED_HEADER}
    assert document["components"]["schemas"]["TrackingBatch"]["properties"]["batch"]["maxItems"] == (
        MAX_EVENTS_PER_REQUEST
    )
    assert document["components"]["securitySchemes"]["bridgeKey"] == {
        **document["components"]["securitySchemes"]["bridgeKey"],
        "type": "http",
        "scheme": "basic",
    }
    # Errors in Segment's shape: each status's `code` is the code's own.
    raised = {
        "400": errors.MalformedRequest,
        "401": errors.Unauthorized,
        "413": errors.PayloadTooLarge,
        "415": errors.UnsupportedMediaType,
        "503": errors.ServiceUnavailable,
    }
    codes = document["components"]["schemas"]["TrackingErrorCode"]["properties"]["code"]["enum"]
    assert sorted(codes) == sorted(error.code for error in raised.values())
    for status, error in raised.items():
        schema = contract.resolve(contract.resolve(document["paths"]["/v1/batch"]["post"]["responses"][status]))
        parts = contract.resolve(schema["content"]["application/json"]["schema"])["allOf"]
        assert [p["properties"]["code"]["enum"] for p in parts if "code" in p.get("properties", {})] == [
            [error.code]
        ], status
    encoding = document["components"]["parameters"]["TrackingContentEncoding"]
    assert "512 KiB" in encoding["description"] and tracking_api.MAX_REQUEST_BYTES == 512 * 1024
    assert sorted(encoding["schema"]["enum"]) == ["", "gzip", "identity"]
    # The key a POST .../bridge-keys returns matches the documented pattern (tenant id, then the secret).
    from segment_bridge.tenants import new_bridge_key

    key, stored = new_bridge_key("a" * 64, "2026-01-01T00:00:00Z")
    made = document["components"]["schemas"]["BridgeKeyMade"]["allOf"][1]["properties"]
    assert re.fullmatch(made["key"]["pattern"], key) and re.fullmatch(made["id"]["pattern"], stored.id)


def test_documented_operations_are_the_routes_of_the_handlers_and_the_template() -> None:
    sys.path[:0] = [p for p in ("functions/ingest", "functions/destination", "functions/admin") if p not in sys.path]
    import admin_handler
    import destination_handler
    import ingest_handler

    routed = set()
    for app in (ingest_handler.app, destination_handler.app, admin_handler.app):
        for route in app._static_routes + app._dynamic_routes:
            routed.add((route.method.lower(), route.path.replace("<", "{").replace(">", "}")))
    documented = {
        (method, path)
        for path, item in contract.spec()["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete", "head", "options")
    }
    assert documented == routed
    template = cfn_yaml.load(str(TEMPLATE))
    deployed = set()
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            for event in (resource["Properties"].get("Events") or {}).values():
                if event["Type"] == "Api":
                    deployed.add((event["Properties"]["Method"].lower(), event["Properties"]["Path"]))
    assert documented == deployed


@pytest.mark.parametrize(
    ("path", "method", "raised"),
    [
        (
            "/v1/webhooks/{source}/{tenant}",
            "post",
            [
                errors.MalformedRequest,
                errors.Unauthorized,
                errors.UnknownSource,
                errors.PayloadTooLarge,
                errors.UnsupportedMediaType,
                errors.ServiceUnavailable,
            ],
        ),
        (
            "/v1/segment/{tenant}",
            "post",
            [
                errors.MalformedRequest,
                errors.Unauthorized,
                errors.PayloadTooLarge,
                errors.Throttled,
                errors.UnsupportedCallType,
                errors.ServiceUnavailable,
            ],
        ),
        (
            "/v1/tenants/{tenant}",
            "put",
            [
                errors.MalformedRequest,
                errors.Forbidden,
                errors.NotFound,
                errors.Conflict,
                errors.PayloadTooLarge,
                errors.ServiceUnavailable,
            ],
        ),
        ("/v1/tenants/{tenant}", "get", [errors.MalformedRequest, errors.Forbidden, errors.NotFound, errors.Conflict]),
        ("/v1/tenants/{tenant}", "delete", [errors.MalformedRequest, errors.Forbidden, errors.NotFound]),
        (
            "/v1/tenants/{tenant}/oauth-key",
            "post",
            [errors.MalformedRequest, errors.Forbidden, errors.NotFound, errors.Conflict, errors.PayloadTooLarge],
        ),
        (
            "/v1/tenants/{tenant}/check",
            "post",
            [errors.MalformedRequest, errors.Forbidden, errors.NotFound, errors.Conflict, errors.ServiceUnavailable],
        ),
        (
            "/v1/tenants/{tenant}/bridge-keys",
            "post",
            [errors.MalformedRequest, errors.Forbidden, errors.NotFound, errors.Conflict, errors.ServiceUnavailable],
        ),
        (
            "/v1/tenants/{tenant}/bridge-keys/{key_id}",
            "delete",
            [errors.MalformedRequest, errors.Forbidden, errors.NotFound, errors.Conflict, errors.ServiceUnavailable],
        ),
        *(
            (
                f"/v1/{call}",
                "post",
                [
                    errors.MalformedRequest,
                    errors.Unauthorized,
                    errors.PayloadTooLarge,
                    errors.UnsupportedMediaType,
                    errors.ServiceUnavailable,
                ],
            )
            for call in contract.TRACKING_CALLS
        ),
    ],
)
def test_every_error_the_code_raises_is_documented(
    path: str, method: str, raised: list[type[errors.BridgeError]]
) -> None:
    responses = contract.spec()["paths"][path][method]["responses"]
    for error in raised:
        assert str(error.status_code) in responses, (path, error.__name__)
    error = {"$ref": "#/components/schemas/Error"}
    for status, response in responses.items():
        if int(status) >= 400:  # every error is the {"message"} shape, possibly extended
            schema = contract.resolve(response)["content"]["application/json"]["schema"]
            assert schema == error or error in contract.resolve(schema).get("allOf", []), (path, status)


@pytest.fixture
def apis(aws: dict[str, str], identity_table: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    from .support import FUZZ_MAX_BODY_BYTES

    monkeypatch.setenv("MAX_BODY_BYTES", str(FUZZ_MAX_BODY_BYTES))
    install_tenants()
    install_admin_tenants(monkeypatch)
    ingest, destination = Harness(aws["queue_url"]), Harness(aws["queue_url"], handler="destination_handler")
    admin = Harness(aws["queue_url"], handler="admin_handler")
    yield {
        "plain": ApiGatewayWsgi(ingest, destination, admin),
        "signed": ApiGatewayWsgi(ingest, destination, admin, sign=True),
    }


def install_admin_tenants(monkeypatch: pytest.MonkeyPatch) -> None:
    """The admin API works on tenants of its own prefix (a PUT or DELETE there must not change the
    tenants the webhook fuzzing signs for), seeded with the same documents; its token round trips go to
    a closed local port (refused at once), never to Segment."""
    import admin_handler

    from segment_bridge.admin import SecretsManagerStore, TenantAdmin
    from tests.conftest import put_tenant

    from .support import TENANTS, tenant_document

    for tenant in TENANTS:
        # One bridge key each, so a POST .../bridge-keys can make the second (201) before the 409s.
        document = tenant_document(tenant)
        document["bridge_keys"] = document["bridge_keys"][:1]
        put_tenant(tenant, document, prefix=ADMIN_PREFIX)
    closed = {"us": "http://127.0.0.1:9", "eu": "http://127.0.0.1:9"}
    admin = TenantAdmin(SecretsManagerStore(), prefix=ADMIN_PREFIX, public_api_url=PUBLIC_URL, oauth_servers=closed)
    # lru_cache like the real getter: the harness clears handler caches between calls.
    monkeypatch.setattr(admin_handler, "get_admin", functools.lru_cache(maxsize=1)(lambda: admin))


ADMIN_PREFIX = "segment-bridge-admin-fuzz"
PUBLIC_URL = "https://example.execute-api.us-east-1.amazonaws.com/prod"


@SCHEMA.parametrize()
@SCHEMATHESIS
def test_schemathesis_unsigned(case: schemathesis.Case, apis: dict[str, Any]) -> None:
    """Schemathesis' own generation (valid and invalid per the document) with its checks, including
    `ignored_auth` on the destination, plus our invariants inside the adapter."""
    case.call_and_validate(app=apis["plain"], excluded_checks=EXCLUDED_CHECKS)


@SCHEMA.parametrize()
@SCHEMATHESIS
def test_schemathesis_signed(case: schemathesis.Case, apis: dict[str, Any]) -> None:
    """The same, with every request carrying the addressed tenant's valid credentials: the bodies
    reach parsing, conformance, normalization, the queue and the identity table."""
    case.call_and_validate(app=apis["signed"], excluded_checks=EXCLUDED_CHECKS + [openapi_checks.ignored_auth])
