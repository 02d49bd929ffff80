"""`segment-bridge normalize`: the dry run prints what ingest would enqueue, with no AWS."""

from __future__ import annotations

import json

from click.testing import CliRunner

from segment_bridge_tools.cli import main
from tests.conftest import FIXTURES
from tests.sources_support import sample_body

SENDGRID = str(FIXTURES / "webhooks" / "sendgrid-all-events.json")


def lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line]


def test_messages_go_to_stdout_and_skips_to_stderr() -> None:
    result = CliRunner().invoke(main, ["normalize", "sendgrid", SENDGRID, "--user-id-policy", "anonymous"])
    assert result.exit_code == 0, result.output
    messages = lines(result.stdout)
    assert [m["event"] for m in messages][:3] == ["Email Delivered", "Email Opened", "Email Link Clicked"]
    assert len(messages) == 7 and all(m["messageId"].startswith("sendgrid-") for m in messages)
    assert [(s["status"], s["index"]) for s in lines(result.stderr)] == [
        ("skipped", 0),
        ("skipped", 1),
        ("skipped", 6),
        ("skipped", 10),
    ]


def test_tenant_document_settings_and_policy_apply() -> None:
    document = {
        "write_key": "ignored",
        "identity": {"missing_user_id": "anonymous"},
        "sources": {"sendgrid": {"public_key": "ignored", "unmapped_events": "passthrough"}},
    }
    result = CliRunner().invoke(main, ["normalize", "sendgrid", SENDGRID, "--tenant-settings", json.dumps(document)])
    assert result.exit_code == 0 and len(lines(result.stdout)) == 11 and result.stderr == ""


def test_rejections_are_reported_and_set_the_exit_status() -> None:
    result = CliRunner().invoke(main, ["normalize", "sendgrid", SENDGRID])  # default policy: reject
    assert result.exit_code == 1 and result.stdout == ""
    assert {s["status"] for s in lines(result.stderr)} == {"skipped", "rejected"}
    assert "userId is required" in lines(result.stderr)[-1]["reason"]


def test_form_bodies_from_stdin_and_query_user_ids() -> None:
    result = CliRunner().invoke(main, ["normalize", "mandrill"], input=sample_body("mandrill") + b"\n")
    assert result.exit_code == 0 and len(lines(result.stdout)) == 5
    twilio = CliRunner().invoke(main, ["normalize", "twilio", "--query", "user_id=u-1"], input=sample_body("twilio"))
    assert lines(twilio.stdout)[0]["userId"] == "u-1"


def test_unreadable_bodies_and_wrong_media_types_fail_clearly() -> None:
    broken = CliRunner().invoke(main, ["normalize", "stripe"], input=b"{not json")
    assert broken.exit_code == 1 and "not valid JSON" in broken.stderr
    wrong = CliRunner().invoke(main, ["normalize", "twilio", "--content-type", "application/json"], input=b"{}")
    assert wrong.exit_code == 2 and "x-www-form-urlencoded" in wrong.stderr
