"""The admin (connection) API through its real handler, with moto's Secrets Manager and the sink as
Segment's token server: every route, unauthorized calls, bad documents, the OAuth key and the check."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from segment_bridge.tenants import SecretsManagerTenants
from segment_bridge_tools.lambda_events import LocalLambdaContext, api_gateway_event, iam_identity
from segment_bridge_tools.sink import OAuthApp, SegmentSink
from tests.conftest import reset_caches

WRITE_KEY = "abcdefghijklmnopqrstuvwxyz012345"
PUBLIC_URL = "https://abc123.execute-api.us-east-1.amazonaws.com/prod"
DOCUMENT = {
    "write_key": WRITE_KEY,
    "region": "eu",
    "sources": {"spec": {"signing_secret": "spec-secret-0123456789"}, "stripe": {"endpoint_secret": "whsec_x"}},
    "destination": {"api_key": "destination-key-0123456789"},
}


@pytest.fixture
def sink(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[SegmentSink]:
    sink = SegmentSink().start()
    monkeypatch.setenv("SEGMENT_OAUTH_URL_US", sink.url)
    monkeypatch.setenv("SEGMENT_OAUTH_URL_EU", sink.url)
    monkeypatch.setenv("PUBLIC_API_URL", PUBLIC_URL)
    reset_caches()
    yield sink
    sink.stop()


def call(
    method: str, path: str, body: Any = None, *, signed: bool = True, query: str = "", raw: bytes | None = None
) -> tuple[int, dict[str, Any]]:
    import admin_handler

    data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    parts = path.strip("/").split("/")
    resource = (
        "/v1/tenants/{tenant}" + (f"/{parts[3]}" if len(parts) >= 4 else "") + ("/{key_id}" if len(parts) == 5 else "")
    )
    event = api_gateway_event(
        method,
        path,
        data,
        {"Content-Type": "application/json"},
        query=query,
        resource=resource,
        path_parameters={"tenant": parts[2]},
        iam_identity=iam_identity() if signed else None,
    )
    response = admin_handler.lambda_handler(event, LocalLambdaContext())
    assert response["multiValueHeaders"]["Content-Type"] == ["application/json"]
    return response["statusCode"], json.loads(response["body"])


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/v1/tenants/acme"),
        ("GET", "/v1/tenants/acme"),
        ("DELETE", "/v1/tenants/acme"),
        ("POST", "/v1/tenants/acme/oauth-key"),
        ("POST", "/v1/tenants/acme/check"),
        ("POST", "/v1/tenants/acme/bridge-keys"),
        ("DELETE", "/v1/tenants/acme/bridge-keys/0123abcd"),
    ],
)
def test_every_route_refuses_a_call_without_an_iam_identity(sink: SegmentSink, method: str, path: str) -> None:
    status, body = call(method, path, DOCUMENT, signed=False)
    assert status == 403 and "IAM" in body["message"]
    # ...and it changed nothing: acme (the conftest tenant) is as it was.
    assert SecretsManagerTenants("segment-bridge").get("acme").region == "us"


def test_put_creates_then_replaces_and_get_shows_it_masked_with_the_urls(sink: SegmentSink) -> None:
    status, created = call("PUT", "/v1/tenants/newco", DOCUMENT)
    assert status == 201 and created["created"] is True
    assert SecretsManagerTenants("segment-bridge").get("newco").region == "eu"  # what the Lambdas read
    status, replaced = call("PUT", "/v1/tenants/newco", {**DOCUMENT, "region": "us"})
    assert status == 200 and replaced["created"] is False
    status, view = call("GET", "/v1/tenants/newco")
    assert status == 200 and view["auth"] == "basic" and view["config"]["region"] == "us"
    assert view["webhooks"] == {
        "spec": f"{PUBLIC_URL}/v1/webhooks/spec/newco",
        "stripe": f"{PUBLIC_URL}/v1/webhooks/stripe/newco",
    }
    assert view["destinationUrl"] == f"{PUBLIC_URL}/v1/segment/newco"
    text = json.dumps(view)
    assert WRITE_KEY not in text and "spec-secret" not in text and "destination-key" not in text
    assert view["config"]["write_key"].endswith(WRITE_KEY[-4:])


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({**DOCUMENT, "region": "mars"}, "region"),
        ({**DOCUMENT, "write_key": "short"}, "write_key"),
        ({**DOCUMENT, "write_key": "has spaces in it, 0123456789"}, "write_key"),
        ({k: v for k, v in DOCUMENT.items() if k != "write_key"}, "write_key"),
        ({**DOCUMENT, "surprise": 1}, "surprise"),
        ({**DOCUMENT, "destination": {"api_key": "short"}}, "destination.api_key"),
        ({**DOCUMENT, "oauth": {"client_id": "app", "key_id": "k", "private_key": "not a key"}}, "oauth.private_key"),
        ({**DOCUMENT, "oauth": {"client_id": "app", "key_id": "k"}}, "oauth.private_key"),  # none stored yet
        ({**DOCUMENT, "write_key": "**********"}, "write_key"),  # a GET's mask pasted back
    ],
)
def test_a_bad_document_is_a_422_naming_the_field(sink: SegmentSink, document: dict[str, Any], field: str) -> None:
    status, body = call("PUT", "/v1/tenants/newco", document)
    assert status == 422, body
    assert field in [e["field"] for e in body["errors"]] and field in body["message"]
    for value in ("not a key", "**********", "has spaces"):
        assert value not in json.dumps(body)  # field names and reasons, never the values
    assert call("GET", "/v1/tenants/newco")[0] == 404  # nothing written


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        (b"{not json", "/v1/tenants/newco"),
        (b'["a list"]', "/v1/tenants/newco"),
        (b"", "/v1/tenants/newco"),
        (json.dumps(DOCUMENT).encode(), "/v1/tenants/bad..id"),
        (b'{"bits": 1024}', "/v1/tenants/acme/oauth-key"),
        (b'{"bits": 2048, "other": 1}', "/v1/tenants/acme/oauth-key"),
    ],
)
def test_malformed_requests_are_400(sink: SegmentSink, raw: bytes, path: str) -> None:
    status, body = call("POST" if path.endswith("oauth-key") else "PUT", path, raw=raw)
    assert status == 400 and body["message"]


def test_oversized_bodies_are_413(sink: SegmentSink) -> None:
    status, _ = call("PUT", "/v1/tenants/newco", raw=b'{"write_key": "' + b"x" * 70_000 + b'"}')
    assert status == 413


def test_unknown_tenants_are_404(sink: SegmentSink) -> None:
    for method, path in (
        ("GET", "/v1/tenants/ghost"),
        ("DELETE", "/v1/tenants/ghost"),
        ("POST", "/v1/tenants/ghost/check"),
    ):
        status, body = call(method, path)
        assert status == 404 and "ghost" in body["message"]


def test_delete_keeps_a_recovery_window_and_put_restores(sink: SegmentSink) -> None:
    call("PUT", "/v1/tenants/newco", DOCUMENT)
    status, body = call("DELETE", "/v1/tenants/newco", query="recoveryDays=10")
    assert status == 200 and body["recoverable"] is True and body["deletionDate"]
    status, body = call("GET", "/v1/tenants/newco")
    assert status == 404 and "recoverable until" in body["message"]
    assert call("DELETE", "/v1/tenants/newco")[0] == 200  # already deleted: the same answer
    status, body = call("PUT", "/v1/tenants/newco", DOCUMENT)  # the customer reconnects within the window
    assert status == 200 and call("GET", "/v1/tenants/newco")[0] == 200
    assert call("DELETE", "/v1/tenants/newco", query="recoveryDays=3")[0] == 400
    status, body = call("DELETE", "/v1/tenants/newco", query="force=true")
    assert status == 200 and body["recoverable"] is False
    assert call("GET", "/v1/tenants/newco")[0] == 404


def test_the_oauth_key_flow_ends_in_a_passing_token_round_trip(sink: SegmentSink) -> None:
    call("PUT", "/v1/tenants/newco", DOCUMENT)
    status, key = call("POST", "/v1/tenants/newco/oauth-key")
    assert status == 201 and key["created"] and key["keyBits"] == 2048
    assert key["publicKey"].startswith("-----BEGIN PUBLIC KEY-----") and "PRIVATE" not in json.dumps(key)
    assert any("OAuth app" in step for step in key["steps"])
    again = call("POST", "/v1/tenants/newco/oauth-key")[1]
    assert again["created"] is False and again["publicKey"] == key["publicKey"]  # shown again, not replaced
    assert call("GET", "/v1/tenants/newco")[1]["auth"] == "oauth-pending"
    status, body = call("POST", "/v1/tenants/newco/check")
    assert status == 200 and body["verdict"] == "unverifiable" and "Source Debugger" in body["message"]

    # The customer uploads the public key to their OAuth app and pastes back its ids.
    sink.register_oauth_app(OAuthApp("app-newco", "key-newco", key["publicKey"], WRITE_KEY))
    oauth = {"client_id": "app-newco", "key_id": "key-newco"}  # no private_key: the stored one is kept
    status, saved = call("PUT", "/v1/tenants/newco", {**DOCUMENT, "oauth": oauth})
    assert status == 200 and saved["auth"] == "oauth"
    status, body = call("POST", "/v1/tenants/newco/check")
    assert status == 200 and body["ok"] is True and body["verdict"] == "connected", body
    assert [t.status for t in sink.token_requests] == [200]

    # A wrong key id is what the check is for: refused, and it says what to look at.
    call("PUT", "/v1/tenants/newco", {**DOCUMENT, "oauth": {**oauth, "key_id": "key-typo"}})
    status, body = call("POST", "/v1/tenants/newco/check")
    assert status == 200 and body["ok"] is False and body["verdict"] == "refused" and "key id" in body["message"]

    # Replacing the key clears key_id (the new public key gets a new id in Segment).
    status, replaced = call("POST", "/v1/tenants/newco/oauth-key", {"replace": True})
    assert status == 201 and replaced["publicKey"] != key["publicKey"]
    assert call("GET", "/v1/tenants/newco")[1]["auth"] == "oauth-pending"


def test_the_check_of_an_unreachable_token_server_says_so(sink: SegmentSink, monkeypatch: pytest.MonkeyPatch) -> None:
    from segment_bridge.admin import generate_key_pair

    pair = generate_key_pair()
    oauth = {"client_id": "app", "key_id": "key", "private_key": pair.private_pem}
    call("PUT", "/v1/tenants/newco", {**DOCUMENT, "oauth": oauth})
    sink.token_responder = lambda form: (503, {}, {"error": "temporarily_unavailable"})
    status, body = call("POST", "/v1/tenants/newco/check")
    assert status == 200 and body["verdict"] == "unreachable" and body["ok"] is False
    assert pair.private_pem not in json.dumps(body)


def test_secrets_manager_down_is_a_503(sink: SegmentSink, monkeypatch: pytest.MonkeyPatch) -> None:
    from segment_bridge.admin import SecretsManagerStore

    def broken(self: Any, name: str) -> Any:
        raise ConnectionError("endpoint unreachable")

    monkeypatch.setattr(SecretsManagerStore, "describe", broken)
    status, body = call("PUT", "/v1/tenants/newco", DOCUMENT)
    assert status == 503 and "retry" in body["message"]


def test_bridge_keys_are_shown_once_kept_across_a_put_rotated_and_revoked(sink: SegmentSink) -> None:
    assert call("PUT", "/v1/tenants/newco", DOCUMENT)[0] == 201
    status, first = call("POST", "/v1/tenants/newco/bridge-keys")
    assert status == 201 and first["key"].startswith("newco.sbk_") and first["keys"][0]["id"] == first["id"]
    status, second = call("POST", "/v1/tenants/newco/bridge-keys")
    assert status == 201 and len(second["keys"]) == 2
    status, third = call("POST", "/v1/tenants/newco/bridge-keys")
    assert status == 409 and "revoke one first" in third["message"]

    # A settings page's PUT that does not mention keys keeps them (no partner is cut off by it).
    assert call("PUT", "/v1/tenants/newco", {**DOCUMENT, "region": "us"})[0] == 200
    status, view = call("GET", "/v1/tenants/newco")
    assert [k["id"] for k in view["config"]["bridge_keys"]] == [first["id"], second["id"]]
    text = json.dumps(view)
    assert first["key"] not in text and first["key"].partition(".")[2] not in text and "sha256" not in text
    assert view["trackingApiHost"] == PUBLIC_URL

    status, revoked = call("DELETE", f"/v1/tenants/newco/bridge-keys/{first['id']}")
    assert status == 200 and [k["id"] for k in revoked["keys"]] == [second["id"]]
    assert call("DELETE", f"/v1/tenants/newco/bridge-keys/{first['id']}")[0] == 404
    stored = SecretsManagerTenants("segment-bridge", max_age=0).get("newco")
    assert [k.id for k in stored.bridge_keys] == [second["id"]]
    assert call("POST", "/v1/tenants/nobody/bridge-keys")[0] == 404
