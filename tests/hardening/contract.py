"""docs/openapi.yaml as a test oracle: which statuses each operation documents, and their schemas."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import yaml
from openapi_schema_validator import OAS30Validator

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
#: Segment's Tracking API calls the ingest function answers (`tracking_api.ROUTES`), `/v1/{call}` each.
TRACKING_CALLS = ("batch", "import", "track", "identify", "page", "screen", "group", "alias")

#: How API Gateway routes a path to an operation (one path segment per parameter).
ROUTES = (
    (re.compile(r"^/v1/webhooks/[^/]+/[^/]+$"), "/v1/webhooks/{source}/{tenant}"),
    (re.compile(r"^/v1/segment/[^/]+$"), "/v1/segment/{tenant}"),
    (re.compile(r"^/v1/tenants/[^/]+$"), "/v1/tenants/{tenant}"),
    (re.compile(r"^/v1/tenants/[^/]+/oauth-key$"), "/v1/tenants/{tenant}/oauth-key"),
    (re.compile(r"^/v1/tenants/[^/]+/check$"), "/v1/tenants/{tenant}/check"),
    (re.compile(r"^/v1/tenants/[^/]+/bridge-keys$"), "/v1/tenants/{tenant}/bridge-keys"),
    (re.compile(r"^/v1/tenants/[^/]+/bridge-keys/[^/]+$"), "/v1/tenants/{tenant}/bridge-keys/{key_id}"),
    # Segment's Tracking API: static routes, one per call.
    *((re.compile(f"^/v1/{call}/?$"), f"/v1/{call}") for call in TRACKING_CALLS),
)


@lru_cache(maxsize=1)
def spec() -> dict[str, Any]:
    return yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = spec()
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def operation_for(method: str, path: str) -> tuple[str, dict[str, Any]] | None:
    """(path template, operation) API Gateway would invoke the function for, or None (it answers itself)."""
    for pattern, template in ROUTES:
        if pattern.match(path):
            operation = spec()["paths"][template].get(method.lower())
            return (template, operation) if operation else None
    return None


@cache
def validator(schema_key: str) -> OAS30Validator:
    import json

    schema = json.loads(schema_key)
    return OAS30Validator({"allOf": [schema], "components": spec()["components"]})


@dataclass(frozen=True)
class Mismatch:
    reason: str

    def __str__(self) -> str:
        return self.reason


def check_response(
    method: str,
    path: str,
    status: int,
    content_type: str | None,
    body: Any,
    headers: dict[str, str] | None = None,
) -> Mismatch | None:
    """None if the response is what docs/openapi.yaml promises for this request, else why not
    (status, media type, body schema; and, when `headers` are given, every documented header that is
    `required` is there, and every documented header that is there matches its schema)."""
    import json

    found = operation_for(method, path)
    if found is None:
        return None  # not routed to us in production: API Gateway answers 403 itself
    template, operation = found
    responses = operation["responses"]
    if str(status) not in responses:
        return Mismatch(f"{method} {template}: status {status} is not documented ({sorted(responses)})")
    response = resolve(responses[str(status)])
    content = response.get("content") or {}
    media = (content_type or "").split(";")[0].strip().lower()
    if media not in content:
        return Mismatch(
            f"{method} {template} {status}: content type {content_type!r} is not documented ({sorted(content)})"
        )
    if headers is not None:
        lowered = {name.lower(): value for name, value in headers.items()}
        for name, documented in (response.get("headers") or {}).items():
            documented = resolve(documented)
            value = lowered.get(name.lower())
            if value is None:
                if documented.get("required"):
                    return Mismatch(f"{method} {template} {status}: required header {name} is missing")
                continue
            if not header_matches(documented.get("schema") or {}, value):
                return Mismatch(f"{method} {template} {status}: header {name}: {value!r} is not its documented schema")
    schema = content[media].get("schema")
    if schema is None:
        return None
    errors = sorted(validator(json.dumps(schema, sort_keys=True)).iter_errors(body), key=str)
    if errors:
        return Mismatch(f"{method} {template} {status}: body does not match the documented schema: {errors[0].message}")
    return None


def header_matches(schema: dict[str, Any], value: str) -> bool:
    """A header value (text on the wire) against its documented schema: integers as decimal digits."""
    import json

    instance: Any = value
    if schema.get("type") == "integer":
        if not re.fullmatch(r"-?[0-9]+", value):
            return False
        instance = int(value)
    return not list(validator(json.dumps(schema, sort_keys=True)).iter_errors(instance))
