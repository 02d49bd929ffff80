"""`segment-bridge dlq inspect|redrive` against moto: counts, masking, byte-for-byte moves, no loss."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from click.testing import CliRunner

from segment_bridge.forward.dead_letters import SqsDeadLetterQueue
from segment_bridge.queue_format import read_body
from segment_bridge_tools import cli_dlq
from segment_bridge_tools.cli import main
from tests.conftest import WRITE_KEY, receive_all


@pytest.fixture(autouse=True)
def no_long_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_dlq, "RECEIVE_WAIT_SECONDS", 0)


def body(tenant: str, *ids: str, **properties: Any) -> str:
    # Not compact on purpose: a redrive must keep the bytes as they are, whitespace included.
    messages = [{"type": "track", "userId": "u", "event": "E", "messageId": i, "properties": properties} for i in ids]
    return json.dumps({"v": 1, "tenant": tenant, "source": "spec", "messages": messages}, indent=1)


def dead_letter(
    dlq_url: str,
    tenant: str,
    *ids: str,
    reason: str = "Segment answered 400: bad",
    status: str = "400",
    **properties: Any,
) -> str:
    raw = body(tenant, *ids, **properties)
    SqsDeadLetterQueue(dlq_url).dead_letter(raw, reason, {"tenant": tenant, "source": "spec", "status": status})
    return raw


def run(*args: str) -> Any:
    result = CliRunner().invoke(main, ["dlq", *args], catch_exceptions=False)
    return result


def test_inspect_counts_by_tenant_and_reason_and_leaves_everything_there(aws: dict[str, str]) -> None:
    dead_letter(aws["dlq_url"], "acme", "m1", "m2")
    dead_letter(aws["dlq_url"], "acme", "m3")
    dead_letter(aws["dlq_url"], "beta", "m4", reason="no answer from Segment (timeout)", status="")
    boto3.client("sqs").send_message(QueueUrl=aws["dlq_url"], MessageBody="{not json")  # moved by SQS itself
    result = run("inspect", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["dead_letters"] == 4 and report["messages"] == 4
    assert report["by_tenant"]["acme"] == {"dead_letters": 2, "messages": 3}
    assert report["by_tenant"]["beta"] == {"dead_letters": 1, "messages": 1}
    reasons = {(r["status"], r["reason"]): r["dead_letters"] for r in report["by_reason"]}
    assert reasons[("400", "Segment answered 400: bad")] == 2
    assert reasons[("", "no answer from Segment (timeout)")] == 1
    assert any("redrive policy" in reason for _, reason in reasons)
    assert len(receive_all(aws["dlq_url"])) == 4  # released at once, nothing removed


def test_inspect_masks_anything_that_looks_like_a_key(aws: dict[str, str]) -> None:
    dead_letter(
        aws["dlq_url"],
        "acme",
        "m1",
        api_key="plain-value",
        token="t",
        stripe="sk_live_abcdef",
        opaque="AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
        order_id="ord_1001",
    )
    result = run("inspect", "--samples", "1")
    assert result.exit_code == 0, result.output
    for secret in ("plain-value", "sk_live_abcdef", "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", WRITE_KEY):
        assert secret not in result.output
    assert "ord_1001" in result.output and '"messageId": "m1"' in result.output
    assert "1 dead letter(s) holding 1 Spec message(s)" in result.output


def test_redrive_moves_bodies_byte_for_byte_and_empties_the_dlq(aws: dict[str, str]) -> None:
    sent = {dead_letter(aws["dlq_url"], "acme", f"m{i}") for i in range(23)}
    result = run("redrive")
    assert result.exit_code == 0, result.output
    assert "moved 23 dead letter(s) (23 messages)" in result.output
    moved = receive_all(aws["queue_url"])
    assert {m["Body"] for m in moved} == sent
    assert all(read_body(m["Body"]).tenant == "acme" for m in moved)
    assert {m["MessageAttributes"]["tenant"]["StringValue"] for m in moved} == {"acme"}
    assert receive_all(aws["dlq_url"]) == []


def test_redrive_one_tenant_at_most_n(aws: dict[str, str]) -> None:
    for i in range(5):
        dead_letter(aws["dlq_url"], "acme", f"a{i}")
        dead_letter(aws["dlq_url"], "beta", f"b{i}")
    result = run("redrive", "--tenant", "beta", "--max", "3")
    assert "moved 3 dead letter(s)" in result.output
    assert {read_body(m["Body"]).tenant for m in receive_all(aws["queue_url"])} == {"beta"}
    left = [read_body(m["Body"]).tenant for m in receive_all(aws["dlq_url"])]
    assert sorted(left) == ["acme"] * 5 + ["beta"] * 2  # the rest released, visible again


def test_dry_run_moves_nothing(aws: dict[str, str]) -> None:
    dead_letter(aws["dlq_url"], "acme", "m1")
    assert "would move 1 dead letter(s)" in run("redrive", "--dry-run").output
    assert receive_all(aws["queue_url"]) == [] and len(receive_all(aws["dlq_url"])) == 1


def test_unreadable_bodies_stay_on_the_dlq(aws: dict[str, str]) -> None:
    boto3.client("sqs").send_message(QueueUrl=aws["dlq_url"], MessageBody="{not json")
    dead_letter(aws["dlq_url"], "acme", "m1")
    result = run("redrive")
    assert "moved 1 dead letter(s)" in result.output and "1 unreadable left" in result.output
    assert [m["Body"] for m in receive_all(aws["dlq_url"])] == ["{not json"]


def test_a_failed_send_is_never_deleted(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(4):
        dead_letter(aws["dlq_url"], "acme", f"m{i}")
    real = boto3.client("sqs")

    class RefusesOne:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
            response = real.send_message_batch(QueueUrl=QueueUrl, Entries=Entries[1:])
            response.setdefault("Failed", []).append(
                {"Id": Entries[0]["Id"], "SenderFault": False, "Code": "InternalError"}
            )
            return response

    monkeypatch.setattr(cli_dlq, "_sqs", lambda: RefusesOne())
    result = CliRunner().invoke(main, ["dlq", "redrive"])
    assert result.exit_code == 1 and "1 could not be sent and stay on the DLQ" in result.output
    assert len(receive_all(aws["queue_url"])) == 3 and len(receive_all(aws["dlq_url"])) == 1


def test_queue_urls_from_stack_outputs(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    cloudformation = boto3.client("cloudformation")
    stubber = Stubber(cloudformation)
    stubber.add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": "bridge",
                    "CreationTime": datetime.now(UTC),
                    "StackStatus": "CREATE_COMPLETE",
                    "Outputs": [
                        {"OutputKey": "QueueUrl", "OutputValue": aws["queue_url"]},
                        {"OutputKey": "DeadLetterQueueUrl", "OutputValue": aws["dlq_url"]},
                    ],
                }
            ]
        },
        {"StackName": "bridge"},
    )
    stubber.activate()
    monkeypatch.setattr(cli_dlq, "_cloudformation", lambda: cloudformation)
    monkeypatch.delenv("QUEUE_URL")
    monkeypatch.delenv("DEAD_LETTER_QUEUE_URL")
    dead_letter(aws["dlq_url"], "acme", "m1")
    result = run("--stack", "bridge", "redrive")
    assert "moved 1 dead letter(s)" in result.output
    assert len(receive_all(aws["queue_url"])) == 1
    stubber.assert_no_pending_responses()


def test_without_a_dlq_url_it_says_what_to_pass(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEAD_LETTER_QUEUE_URL")
    result = CliRunner().invoke(main, ["dlq", "inspect"])
    assert result.exit_code == 2 and "--dlq-url" in result.output
