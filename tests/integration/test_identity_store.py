"""The identity table adapter on moto DynamoDB: ordered conditional writes, deletion, batched reads, AWS errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError
from moto import mock_aws

from segment_bridge.errors import ServiceUnavailable, Throttled
from segment_bridge.identity.keys import IdentityMatch, Stamp, lookup_key, user_key
from segment_bridge.identity.store import DynamoDBIdentityStore
from segment_bridge_tools.local_stack import create_identity_table

TABLE = "identity-test"
NOW = 1_795_400_000
EXPIRES = NOW + 400 * 86400
EMAIL = lookup_key("acme", "email", "example@test.com")
PHONE = lookup_key("acme", "phone", "+14155550100")
ANON = lookup_key("acme", "anon", "anon-1")


@pytest.fixture
def ddb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb")
        create_identity_table(client, TABLE)
        yield client


@pytest.fixture
def store(ddb: Any) -> DynamoDBIdentityStore:
    return DynamoDBIdentityStore(TABLE, ddb, clock=lambda: NOW)


def item(ddb: Any, key: str) -> dict[str, Any]:
    return ddb.get_item(TableName=TABLE, Key={"pk": {"S": key}}).get("Item", {})


def test_a_link_resolves_and_the_table_holds_no_address(store: DynamoDBIdentityStore, ddb: Any) -> None:
    outcome = store.link("acme", "user-1", [EMAIL, PHONE, ANON], Stamp(1000, "m1"), EXPIRES)
    assert (outcome.written, outcome.stale, outcome.suppressed) == (3, 0, False)
    assert store.lookup([EMAIL, PHONE, ANON, "acme#email#unknown"]) == {
        key: IdentityMatch("user-1") for key in (EMAIL, PHONE, ANON)
    }
    dump = str(ddb.scan(TableName=TABLE)["Items"])
    assert "example@test.com" not in dump and "4155550100" not in dump
    assert set(item(ddb, user_key("acme", "user-1"))["lookupKeys"]["SS"]) == {EMAIL, PHONE, ANON}


def test_a_duplicate_is_applied_once(store: DynamoDBIdentityStore, ddb: Any) -> None:
    store.link("acme", "user-1", [EMAIL], Stamp(1000, "m1"), EXPIRES)
    before = item(ddb, EMAIL)
    again = store.link("acme", "user-1", [EMAIL], Stamp(1000, "m1"), EXPIRES + 50)
    assert (again.written, again.stale) == (0, 1)
    assert item(ddb, EMAIL) == before


def test_a_late_retry_of_an_older_identify_does_not_overwrite_a_newer_one(store: DynamoDBIdentityStore) -> None:
    store.link("acme", "user-new", [EMAIL], Stamp(2000, "m2"), EXPIRES)
    assert store.link("acme", "user-old", [EMAIL], Stamp(1000, "m1"), EXPIRES).stale == 1
    assert store.lookup([EMAIL])[EMAIL].user_id == "user-new"
    # Same millisecond: the messageId breaks the tie the same way every time.
    assert store.link("acme", "user-tie", [EMAIL], Stamp(2000, "m3"), EXPIRES).written == 1
    assert store.link("acme", "user-new", [EMAIL], Stamp(2000, "m2"), EXPIRES).stale == 1


def test_a_group_reaches_existing_and_later_links(store: DynamoDBIdentityStore) -> None:
    store.link("acme", "user-1", [EMAIL], Stamp(1000, "m1"), EXPIRES)
    assert store.join_group("acme", "user-1", "acct-7", Stamp(2000, "g1"), EXPIRES).written == 2
    store.link("acme", "user-1", [PHONE], Stamp(3000, "m2"), EXPIRES)
    assert store.lookup([EMAIL, PHONE]) == {
        EMAIL: IdentityMatch("user-1", "acct-7"),
        PHONE: IdentityMatch("user-1", "acct-7"),
    }
    assert store.join_group("acme", "user-1", "acct-7", Stamp(2000, "g1"), EXPIRES).stale == 1  # duplicate
    assert store.join_group("acme", "user-1", "acct-old", Stamp(1500, "g0"), EXPIRES).stale == 1  # older
    assert store.lookup([EMAIL])[EMAIL].group_id == "acct-7"


def test_a_group_does_not_follow_an_address_that_moved_to_another_user(store: DynamoDBIdentityStore) -> None:
    store.link("acme", "user-1", [EMAIL], Stamp(1000, "m1"), EXPIRES)
    store.link("acme", "user-2", [EMAIL], Stamp(2000, "m2"), EXPIRES)
    store.join_group("acme", "user-1", "acct-1", Stamp(3000, "g1"), EXPIRES)
    assert store.lookup([EMAIL])[EMAIL] == IdentityMatch("user-2")


def test_delete_removes_the_users_links_and_group_and_leaves_others(store: DynamoDBIdentityStore, ddb: Any) -> None:
    store.link("acme", "user-1", [EMAIL, ANON], Stamp(1000, "m1"), EXPIRES)
    store.join_group("acme", "user-1", "acct-7", Stamp(1100, "g1"), EXPIRES)
    store.link("acme", "user-2", [PHONE], Stamp(1000, "m9"), EXPIRES)
    outcome = store.forget("acme", "user-1", Stamp(5000, "d1"), NOW + 3600)
    assert outcome.written == 3  # the user item and two links
    assert store.lookup([EMAIL, ANON, PHONE]) == {PHONE: IdentityMatch("user-2")}
    tombstone = item(ddb, user_key("acme", "user-1"))
    assert set(tombstone) == {"pk", "deletedAt", "expiresAt"} and tombstone["expiresAt"] == {"N": str(NOW + 3600)}
    assert store.forget("acme", "user-1", Stamp(5000, "d1"), NOW + 3600).written == 1  # a redelivery finds nothing more


def test_after_a_delete_only_calls_sent_later_link_again(store: DynamoDBIdentityStore) -> None:
    store.link("acme", "user-1", [EMAIL], Stamp(1000, "m1"), EXPIRES)
    store.forget("acme", "user-1", Stamp(5000, "d1"), NOW + 3600)
    assert store.link("acme", "user-1", [EMAIL], Stamp(4000, "late"), EXPIRES).suppressed  # sent before the deletion
    assert store.join_group("acme", "user-1", "acct", Stamp(4000, "late-g"), EXPIRES).stale == 1
    assert store.lookup([EMAIL]) == {}
    assert store.link("acme", "user-1", [EMAIL], Stamp(6000, "new"), EXPIRES).written == 1  # a new relationship
    assert store.lookup([EMAIL])[EMAIL].user_id == "user-1"


def test_a_link_written_while_a_deletion_ran_is_taken_back(ddb: Any) -> None:
    """The deletion lands between listing the key under the user and writing the link itself."""

    class DeleteMidway:
        def __init__(self) -> None:
            self.fired = False

        def __getattr__(self, name: str) -> Any:
            call = getattr(ddb, name)
            if name != "put_item" or self.fired:
                return call

            def put_item(**kwargs: Any) -> Any:
                self.fired = True
                racing.forget("acme", "user-1", Stamp(5000, "d1"), NOW + 3600)
                return call(**kwargs)

            return put_item

    racing = DynamoDBIdentityStore(TABLE, ddb, clock=lambda: NOW)
    store = DynamoDBIdentityStore(TABLE, DeleteMidway(), clock=lambda: NOW)
    assert store.link("acme", "user-1", [EMAIL], Stamp(4000, "m1"), EXPIRES).suppressed
    assert store.lookup([EMAIL]) == {} and item(ddb, EMAIL) == {}


def test_expired_links_do_not_resolve_before_ttl_removes_them(ddb: Any) -> None:
    DynamoDBIdentityStore(TABLE, ddb, clock=lambda: NOW).link("acme", "user-1", [EMAIL], Stamp(1, "m"), NOW + 10)
    assert DynamoDBIdentityStore(TABLE, ddb, clock=lambda: NOW + 11).lookup([EMAIL]) == {}


def test_lookups_are_chunked_by_100_keys(store: DynamoDBIdentityStore, ddb: Any) -> None:
    keys = [lookup_key("acme", "anon", f"anon-{i}") for i in range(250)]
    store.link("acme", "user-1", [keys[0], keys[249]], Stamp(1, "m"), EXPIRES)
    calls: list[int] = []
    counting = DynamoDBIdentityStore(TABLE, Recorder(ddb, calls), clock=lambda: NOW)
    assert set(counting.lookup(keys + keys[:10])) == {keys[0], keys[249]}  # type: ignore[arg-type]
    assert calls == [100, 100, 50]


class Recorder:
    def __init__(self, ddb: Any, calls: list[int]) -> None:
        self.ddb, self.calls = ddb, calls

    def batch_get_item(self, **kwargs: Any) -> Any:
        self.calls.append(len(next(iter(kwargs["RequestItems"].values()))["Keys"]))
        return self.ddb.batch_get_item(**kwargs)


class Scripted:
    """A client whose batch_get_item answers from a script (UnprocessedKeys, errors)."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)

    def batch_get_item(self, **kwargs: Any) -> Any:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer(kwargs["RequestItems"]) if callable(answer) else answer

    def update_item(self, **kwargs: Any) -> Any:
        return self.batch_get_item(**kwargs)


def found(key: str, user_id: str) -> dict[str, Any]:
    return {"pk": {"S": key}, "userId": {"S": user_id}, "expiresAt": {"N": str(EXPIRES)}}


def test_unprocessed_keys_are_asked_for_again() -> None:
    client = Scripted(
        {"Responses": {TABLE: [found(EMAIL, "u1")]}, "UnprocessedKeys": {TABLE: {"Keys": [{"pk": {"S": PHONE}}]}}},
        lambda request: (
            {"Responses": {TABLE: [found(PHONE, "u2")]}} if request[TABLE]["Keys"] == [{"pk": {"S": PHONE}}] else {}
        ),
    )
    store = DynamoDBIdentityStore(TABLE, client, clock=lambda: NOW, sleep=lambda _: None)
    assert store.lookup([EMAIL, PHONE]) == {EMAIL: IdentityMatch("u1"), PHONE: IdentityMatch("u2")}


def test_keys_left_unprocessed_become_a_503() -> None:
    stuck = {"Responses": {}, "UnprocessedKeys": {TABLE: {"Keys": [{"pk": {"S": EMAIL}}]}}}
    store = DynamoDBIdentityStore(TABLE, Scripted(*[stuck] * 4), clock=lambda: NOW, sleep=lambda _: None)
    with pytest.raises(ServiceUnavailable):
        store.lookup([EMAIL])


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "Operation")


@pytest.mark.parametrize(
    "error, expected",
    [
        (client_error("ProvisionedThroughputExceededException"), Throttled),
        (client_error("ThrottlingException"), Throttled),
        (client_error("InternalServerError"), ServiceUnavailable),
        (client_error("ResourceNotFoundException"), ServiceUnavailable),
        (ConnectTimeoutError(endpoint_url="https://dynamodb"), ServiceUnavailable),
    ],
)
def test_aws_failures_become_429_or_503(error: Exception, expected: type[Exception]) -> None:
    store = DynamoDBIdentityStore(TABLE, Scripted(error, error), clock=lambda: NOW)
    with pytest.raises(expected):
        store.lookup([EMAIL])
    with pytest.raises(expected):
        store.link("acme", "u", [EMAIL], Stamp(1, "m"), EXPIRES)


# -- issue #13: stamps from before the clamp heal, refusals are values ---------------------------------
FAR_FUTURE_MS = 253_402_300_799_000  # 9999-12-31T23:59:59Z, as a pre-clamp write stored it


def test_items_stamped_in_the_far_future_before_the_clamp_are_overwritten(
    store: DynamoDBIdentityStore, ddb: Any
) -> None:
    """Tables written before the clamp may hold `at`/`deletedAt`/`groupAt` in 9999: every write
    treats those as older than itself, so they heal on the next call instead of pinning forever."""
    now_ms = NOW * 1000
    ddb.put_item(
        TableName=TABLE,
        Item={
            "pk": {"S": EMAIL},
            "userId": {"S": "user-pinned"},
            "at": {"N": str(FAR_FUTURE_MS)},
            "mid": {"S": "x"},
            "expiresAt": {"N": str(EXPIRES)},
        },
    )
    assert store.link("acme", "user-1", [EMAIL], Stamp(now_ms, "m1"), EXPIRES).written == 1
    assert store.lookup([EMAIL])[EMAIL].user_id == "user-1"
    # A far-future tombstone no longer suppresses the user's identifies.
    owner = user_key("acme", "user-2")
    ddb.put_item(
        TableName=TABLE,
        Item={"pk": {"S": owner}, "deletedAt": {"N": str(FAR_FUTURE_MS)}, "expiresAt": {"N": str(EXPIRES)}},
    )
    outcome = store.link("acme", "user-2", [PHONE], Stamp(now_ms, "m2"), EXPIRES)
    assert (outcome.written, outcome.suppressed) == (1, False)
    # ...and a far-future group gives way to a current one.
    ddb.update_item(
        TableName=TABLE,
        Key={"pk": {"S": owner}},
        UpdateExpression="SET groupId = :g, groupAt = :t, groupMid = :m",
        ExpressionAttributeValues={":g": {"S": "acct-old"}, ":t": {"N": str(FAR_FUTURE_MS)}, ":m": {"S": "g0"}},
    )
    assert store.join_group("acme", "user-2", "acct-new", Stamp(now_ms, "g1"), EXPIRES).written >= 1
    assert store.lookup([PHONE])[PHONE] == IdentityMatch("user-2", "acct-new")


def test_a_delete_removes_links_whatever_their_stamp(store: DynamoDBIdentityStore, ddb: Any) -> None:
    store.link("acme", "user-1", [EMAIL, ANON], Stamp(9000, "m-newer"), EXPIRES)
    outcome = store.forget("acme", "user-1", Stamp(5000, "d-older"), NOW + 3600)
    assert outcome.written == 3 and store.lookup([EMAIL, ANON]) == {}
    # An even older delete arriving later: the tombstone stays at 5000, and there is nothing left.
    assert store.forget("acme", "user-1", Stamp(1000, "d-oldest"), NOW + 3600).stale == 1
    assert item(ddb, user_key("acme", "user-1"))["deletedAt"] == {"N": "5000"}


def test_data_the_table_refuses_is_a_refused_outcome_not_an_error(ddb: Any) -> None:
    class Refusing:
        def __getattr__(self, name: str) -> Any:
            call = getattr(ddb, name)
            if name != "put_item":
                return call

            def put_item(**kwargs: Any) -> Any:
                raise ClientError({"Error": {"Code": "ValidationException", "Message": "quoted data"}}, "PutItem")

            return put_item

    store = DynamoDBIdentityStore(TABLE, Refusing(), clock=lambda: NOW)
    outcome = store.link("acme", "user-1", [EMAIL], Stamp(1000, "m1"), EXPIRES)
    assert outcome.refused is not None and "ValidationException" in outcome.refused and "quoted" not in outcome.refused
    assert outcome.written == 0 and store.lookup([EMAIL]) == {}
