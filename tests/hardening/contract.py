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

#: How API Gateway routes a path to an operation (one path segment per parameter).
ROUTES = (
    (re.compile(r"^/v1/webhooks/[^/]+/[^/]+$"), "/v1/webhooks/{source}/{tenant}"),
    (re.compile(r"^/v1/segment/[^/]+$"), "/v1/segment/{tenant}"),
    (re.compile(r"^/v1/tenants/[^/]+$"), "/v1/tenants/{tenant}"),
    (re.compile(r"^/v1/tenants/[^/]+/oauth-key$"), "/v1/tenants/{tenant}/oauth-key"),
    (re.compile(r"^/v1/tenants/[^/]+/check$"), "/v1/tenants/{tenant}/check"),
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


def check_response(method: str, path: str, status: int, content_type: str | None, body: Any) -> Mismatch | None:
    """None if the response is what docs/openapi.yaml promises for this request, else why not."""
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
    schema = content[media].get("schema")
    if schema is None:
        return None
    errors = sorted(validator(json.dumps(schema, sort_keys=True)).iter_errors(body), key=str)
    if errors:
        return Mismatch(f"{method} {template} {status}: body does not match the documented schema: {errors[0].message}")
    return None
