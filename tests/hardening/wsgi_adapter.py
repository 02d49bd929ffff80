"""A WSGI app that is API Gateway: each HTTP request becomes a REST proxy event for the real handler.

Schemathesis drives it in-process (its WSGI transport, no sockets). The path reaches the handler
percent-encoded, as API Gateway REST APIs deliver it. Every call goes through `Harness.invoke`, so
it is counted and the queue is drained; `assert_invariants` runs on every response, and a
violation is raised out of the app (the schemathesis test fails with the request that caused it).

With `sign=True` the adapter signs each webhook with the addressed tenant's real secret (and puts
the tenant's destination key on Segment calls), so schemathesis' bodies get past authentication
and reach parsing and normalization. Admin calls (`/v1/tenants/...`) then carry the IAM identity
API Gateway's AWS_IAM authorizer adds; without `sign` they carry none (403). Segment's Tracking API
calls (`/v1/batch`...) that carry Basic credentials then carry `acme`'s bridge key as the username
instead, as a library sends it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from segment_bridge.errors import MalformedRequest
from segment_bridge.ingest.sources import SOURCES
from segment_bridge_tools.lambda_events import api_gateway_event, iam_identity

from .support import (
    HOST,
    STAGE,
    TENANTS,
    Harness,
    assert_invariants,
    basic,
    bridge_key,
    destination_key,
    is_tracking_path,
    signed,
)

SIGNATURE_HEADERS = {
    "authorization",
    "x-signature",
    "stripe-signature",
    "x-mandrill-signature",
    "x-twilio-signature",
    "x-twilio-email-event-webhook-signature",
    "x-twilio-email-event-webhook-timestamp",
}


class ApiGatewayWsgi:
    def __init__(
        self, ingest: Harness, destination: Harness, admin: Harness | None = None, *, sign: bool = False
    ) -> None:
        self.harnesses = {"ingest": ingest, "destination": destination}
        if admin is not None:
            self.harnesses["admin"] = admin
        self.sign = sign
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        raw_uri = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "/")
        path, _, query = raw_uri.partition("?")
        if path.startswith(f"/{STAGE.lower()}/"):
            path = path[len(STAGE) + 1 :]  # the servers entry's stage prefix
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {
            key[5:].replace("_", "-").title(): value for key, value in environ.items() if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        parts = path.strip("/").split("/")
        identity = None
        if parts[:2] == ["v1", "tenants"] and "admin" in self.harnesses:
            which = "admin"
            resource = "/v1/tenants/{tenant}" + (f"/{parts[3]}" if len(parts) >= 4 else "")
            parameters = {"tenant": unquote(parts[2])} if len(parts) in (3, 4, 5) else {}
            if len(parts) == 5:
                resource += "/{key_id}"
                parameters["key_id"] = unquote(parts[4])
            # API Gateway lets only signed requests through: an identity only with an Authorization header.
            signed_request = any(k.lower() == "authorization" for k in headers)
            identity = iam_identity() if self.sign and signed_request else None
        elif parts[:2] == ["v1", "segment"]:
            which, resource = "destination", "/v1/segment/{tenant}"
            parameters = {"tenant": unquote(parts[2])} if len(parts) == 3 else {}
            if self.sign and len(parts) == 3 and parts[2] in TENANTS:
                headers["Authorization"] = basic(destination_key(parts[2]))
        elif is_tracking_path(path):
            which, resource, parameters = "ingest", path, {}
            # Schemathesis' own (random) Basic credentials are replaced with the key; a request it sent
            # without any (a negative case: the credential missing) stays without.
            if self.sign and any(k.lower() == "authorization" for k in headers):
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
                headers["Authorization"] = basic(bridge_key("acme"))
        else:
            which, resource = "ingest", "/v1/webhooks/{source}/{tenant}"
            parameters = {"source": unquote(parts[2]), "tenant": unquote(parts[3])} if len(parts) == 4 else {}
            if self.sign and len(parts) == 4 and parts[2] in SOURCES and parts[3] in TENANTS:
                headers, body = self._signed(parts[2], parts[3], body, path, headers)
        event = api_gateway_event(
            method,
            path,
            body,
            headers,
            query=query,
            stage=STAGE,
            domain=HOST,
            path_parameters=parameters,
            resource=resource,
            iam_identity=identity,
        )
        self.calls += 1
        call = self.harnesses[which].invoke(event, kind="schemathesis")
        # Making a 4096-bit RSA key takes a second of CPU or more: the admin API's bound is its own.
        assert_invariants(call, **({"max_seconds": 10.0} if which == "admin" else {}))
        reason = HTTPStatus(call.status).phrase if call.status in HTTPStatus._value2member_map_ else "Unknown"
        response_headers = [("Content-Type", call.content_type or "text/plain")] + [
            (name, value) for name, value in call.headers.items() if name != "content-type" and value is not None
        ]
        start_response(f"{call.status} {reason}", response_headers)
        return [call.text.encode("utf-8")]

    @staticmethod
    def _signed(
        source: str, tenant: str, body: bytes, path: str, headers: dict[str, str]
    ) -> tuple[dict[str, str], bytes]:
        try:
            signature_headers, body = signed(source, tenant, body, path)
        except (ValueError, RecursionError, MalformedRequest, KeyError, AttributeError, TypeError):
            return headers, body  # a body the test signer cannot read (Mailgun's must be a JSON object)
        kept = {k: v for k, v in headers.items() if k.lower() not in SIGNATURE_HEADERS}
        kept.update({k: v for k, v in signature_headers.items() if k.lower() != "content-type"})
        kept.setdefault("Content-Type", signature_headers.get("Content-Type", "application/json"))
        return kept, body
