"""Segment -> bridge: the destination Lambda through its real handler, every status code it answers."""

from __future__ import annotations

import base64
import json
from typing import Any

import boto3
import pytest

from segment_bridge.errors import ServiceUnavailable, Throttled
from segment_bridge.identity.keys import IdentityMatch, lookup_key
from segment_bridge.identity.store import DynamoDBIdentityStore
from segment_bridge_tools.lambda_events import LocalLambdaContext, api_gateway_event
from tests.conftest import DESTINATION_API_KEY, TENANT, put_tenant, tenant_secret

EMAIL_KEY = lookup_key(TENANT, "email", "example@test.com")


def basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


def call(
    body: Any,
    *,
    key: str | None = DESTINATION_API_KEY,
    tenant: str = TENANT,
    raw: bytes | None = None,
    timeout: float = 4.0,
) -> tuple[int, dict[str, Any]]:
    import destination_handler

    headers = {"Content-Type": "application/json", "User-Agent": "Segment.io/1.0"}
    if key is not None:
        headers["Authorization"] = basic(key)
    data = raw if raw is not None else json.dumps(body).encode()
    event = api_gateway_event("POST", f"/v1/segment/{tenant}", data, headers)
    response = destination_handler.lambda_handler(event, LocalLambdaContext(timeout_seconds=timeout))
    assert response["multiValueHeaders"]["Content-Type"] == ["application/json"]  # Segment ignores other answers
    return response["statusCode"], json.loads(response["body"])


def identify(user_id: str = "user-1", message_id: str = "m-1", **extra: Any) -> dict[str, Any]:
    return {
        "type": "identify",
        "userId": user_id,
        "messageId": message_id,
        "timestamp": "2026-11-20T09:00:00Z",
        "traits": {"email": "Example@Test.com"},
        **extra,
    }


def links(table: str) -> dict[str, IdentityMatch]:
    return DynamoDBIdentityStore(table, boto3.client("dynamodb")).lookup([EMAIL_KEY])  # type: ignore[list-item]


# -- 200 ------------------------------------------------------------------------------------------
def test_identify_links_the_email_to_the_user(identity_table: str) -> None:
    status, body = call(identify())
    assert (status, body) == (200, {"received": 1, "applied": 1, "duplicates": 0})
    assert links(identity_table) == {EMAIL_KEY: IdentityMatch("user-1")}


def test_a_redelivered_message_is_applied_once(identity_table: str) -> None:
    assert call(identify())[1]["applied"] == 1
    status, body = call(identify())
    assert status == 200 and (body["applied"], body["duplicates"]) == (0, 1)


def test_a_batch_applies_what_it_can_and_reports_the_rest(identity_table: str) -> None:
    batch = [
        identify("user-1", "m-1"),
        {
            "type": "group",
            "userId": "user-1",
            "groupId": "acct-7",
            "messageId": "g-1",
            "timestamp": "2026-11-20T09:00:01Z",
        },
        {"type": "page", "anonymousId": "a-1"},
        {"type": "screen_view"},
        {"type": "group", "userId": "u"},
    ]
    status, body = call({"batch": batch})
    assert status == 200
    assert (body["received"], body["applied"]) == (5, 2)
    assert body["ignored"] == [{"index": 2, "reason": "page without userId: nothing to link"}]
    assert [(r["index"], r["status"]) for r in body["rejected"]] == [(3, 501), (4, 400)]
    assert links(identity_table) == {EMAIL_KEY: IdentityMatch("user-1", "acct-7")}


def test_delete_removes_the_users_data(identity_table: str) -> None:
    call(identify())
    status, body = call({"type": "delete", "userId": "user-1", "messageId": "d-1", "timestamp": "2026-11-21T00:00:00Z"})
    assert status == 200 and body["deletedUsers"] == 1
    assert links(identity_table) == {}
    # A retry of the identify, sent before the deletion, arriving after it, does not bring the link back.
    status, body = call(identify(message_id="m-0"))
    assert status == 200 and body.get("suppressed") == 1 and links(identity_table) == {}


# -- 4xx -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw", [b"{not json", b'"a string"', b'{"batch": "nope"}'])
def test_malformed_bodies_are_400_with_a_message(identity_table: str, raw: bytes) -> None:
    status, body = call(None, raw=raw)
    assert status == 400 and body["message"]


def test_a_single_message_missing_what_it_needs_is_400(identity_table: str) -> None:
    status, body = call({"type": "group", "userId": "user-1"})
    assert (status, body) == (400, {"message": "group needs a groupId"})


def test_a_batch_with_nothing_usable_is_400(identity_table: str) -> None:
    status, body = call([{"type": "delete"}, "text"])
    assert status == 400 and len(body["rejected"]) == 2


def test_a_batch_larger_than_configured_is_413(identity_table: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import reset_caches

    monkeypatch.setenv("DESTINATION_MAX_BATCH", "2")
    reset_caches()
    status, body = call([identify(message_id=str(i)) for i in range(3)])
    assert status == 413 and "at most 2" in body["message"]


@pytest.mark.parametrize(
    "key, tenant", [(None, TENANT), ("wrong-key-0123456789", TENANT), (DESTINATION_API_KEY, "nobody")]
)
def test_a_missing_or_wrong_key_and_an_unknown_tenant_are_401(
    identity_table: str, key: str | None, tenant: str
) -> None:
    status, body = call(identify(), key=key, tenant=tenant)
    assert status == 401 and body["message"]
    assert links(identity_table) == {}


def test_unknown_tenant_and_wrong_key_read_the_same(identity_table: str) -> None:
    assert call(identify(), key="wrong-key-0123456789") == call(identify(), tenant="nobody")


def test_a_tenant_without_a_destination_key_is_401(identity_table: str) -> None:
    put_tenant("plain", tenant_secret())
    assert call(identify(), tenant="plain")[0] == 401


def test_an_unsupported_call_type_is_501(identity_table: str) -> None:
    status, body = call({"type": "screen_view", "userId": "u"})
    assert status == 501 and "not supported" in body["message"]


def test_an_oversized_body_is_413(identity_table: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import reset_caches

    monkeypatch.setenv("MAX_BODY_BYTES", "100")
    reset_caches()
    assert call(identify(padding="x" * 200))[0] == 413


def test_unknown_routes_are_404(identity_table: str) -> None:
    import destination_handler

    event = api_gateway_event("POST", "/v1/segment/acme/extra", b"{}", {"Authorization": basic(DESTINATION_API_KEY)})
    assert destination_handler.lambda_handler(event, LocalLambdaContext())["statusCode"] == 404


# -- 429 / 503: Segment retries these ------------------------------------------------------------------
class FailingStore:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def link(self, *args: Any) -> Any:
        raise self.error

    join_group = forget = link


@pytest.mark.parametrize(
    "error, status",
    [
        (Throttled("the identity table is throttled; retry later"), 429),
        (ServiceUnavailable("the identity table is unavailable; retry later"), 503),
    ],
)
def test_a_throttled_or_unavailable_table_asks_segment_to_retry(
    identity_table: str, error: Exception, status: int
) -> None:
    import destination_handler

    destination_handler.get_service().store = FailingStore(error)
    assert call(identify()) == (status, {"message": error.message})  # type: ignore[attr-defined]


def test_real_dynamodb_throttling_is_429(identity_table: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import destination_handler
    from botocore.exceptions import ClientError

    store = destination_handler.get_service().store

    def throttled(operation: str, **kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": ""}}, operation)

    monkeypatch.setattr(store.client, "update_item", lambda **kw: throttled("UpdateItem", **kw))
    assert call(identify())[0] == 429


def test_unreachable_tenant_configuration_is_503(identity_table: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import destination_handler

    def unavailable(tenant: str) -> Any:
        raise ConnectionError("secrets manager unreachable")

    monkeypatch.setattr(destination_handler.get_service().tenants, "get", unavailable)
    assert call(identify())[0] == 503


def test_running_out_of_segments_time_is_503_and_the_retry_finishes(identity_table: str) -> None:
    batch = [identify(f"user-{i}", f"m-{i}", traits={"email": f"u{i}@example.com"}) for i in range(3)]
    status, body = call(batch, timeout=0.5)  # less than the margin kept for answering
    assert status == 503 and "retry" in body["message"]
    status, body = call(batch)
    assert status == 200 and body["applied"] == 3


def test_the_tenants_cli_sets_the_key_the_endpoint_checks(identity_table: str) -> None:
    from click.testing import CliRunner

    from segment_bridge_tools.cli import main

    result = CliRunner().invoke(
        main,
        [
            "tenants",
            "put",
            "cli-made",
            "--write-key",
            "wk_0123456789abcdef",  # 16+ characters: the shape tenants put checks
            "--destination-api-key",
            "cli-destination-key-0123",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    shown = CliRunner().invoke(main, ["tenants", "show", "cli-made"]).output
    assert "cli-destination-key-0123" not in shown and json.loads(shown)["destination"] == {"api_key": "**********"}
    assert call(identify(), key="cli-destination-key-0123", tenant="cli-made")[0] == 200
