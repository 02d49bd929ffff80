"""Email tools (SendGrid, Mailgun, Postmark, Mandrill): each sample maps to the Email spec, field by field."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.sources_support import anonymous_id, fixture, run, run_one, sample_body, source_event

SPEC_EVENTS = {
    "Email Delivered",
    "Email Opened",
    "Email Link Clicked",
    "Email Bounced",
    "Email Marked as Spam",
    "Unsubscribed",
}


def assert_stable_ids(source: str, body: bytes, **kwargs: Any) -> None:
    """A redelivered webhook gives the same messageIds; distinct events never share one."""
    first = [m["messageId"] for m in run(source, body, **kwargs)[1]]
    second = [m["messageId"] for m in run(source, body, **kwargs)[1]]
    assert first == second
    assert len(set(first)) == len(first)
    assert all(m.startswith(f"{source}-") for m in first)


# -- SendGrid ----------------------------------------------------------------------------------
def sendgrid_event(**fields: Any) -> bytes:
    event = {
        "email": "ada@example.com",
        "timestamp": 1700000000,
        "event": "open",
        "sg_event_id": "evt-1",
        "sg_message_id": "msg-1",
        **fields,
    }
    return json.dumps([event]).encode() + b"\r\n"


def test_sendgrid_sample_batch_maps_spec_events_and_skips_the_rest() -> None:
    result, messages = run("sendgrid", fixture("sendgrid-all-events.json"))
    assert [m["event"] for m in messages] == [
        "Email Delivered",
        "Email Opened",
        "Email Link Clicked",
        "Email Bounced",
        "Email Marked as Spam",
        "Unsubscribed",
        "Unsubscribed",
    ]
    assert [s["index"] for s in result.skipped] == [0, 1, 6, 10]  # processed, deferred, dropped, group_resubscribe
    assert "'Email Processed'" in result.skipped[0]["reason"] and "passthrough" in result.skipped[0]["reason"]
    assert result.rejected == []
    for message in messages:
        assert message["type"] == "track"
        assert message["timestamp"] == "2017-12-15T00:59:29.000Z"
        assert message["context"]["traits"] == {"email": "example@test.com"}
        assert message["anonymousId"] == anonymous_id("email", "example@test.com")
        assert "userId" not in message
        assert message["properties"]["email_id"] == "sg_message_id"
        assert message["properties"]["tags"] == ["cat facts"]
        assert source_event(message)["tool"] == "sendgrid" and source_event(message)["id"] == "sg_event_id"
        assert message["context"]["integration"] == {"name": "acme-tool", "version": "1.0.0"}
    delivered, opened, clicked, bounced, spam, unsubscribed, group_unsubscribed = messages
    assert delivered["properties"] == {"email_id": "sg_message_id", "tags": ["cat facts"]}
    assert "ip" not in delivered["context"] and "userAgent" not in delivered["context"]
    ua = "Mozilla/4.0 (compatible; MSIE 6.1; Windows XP; .NET CLR 1.1.4322; .NET CLR 2.0.50727)"
    for message in (opened, clicked, group_unsubscribed):
        assert message["context"]["ip"] == "255.255.255.255" and message["context"]["userAgent"] == ua
    assert clicked["properties"]["link_url"] == "http://www.sendgrid.com/"
    assert "link_url" not in group_unsubscribed["properties"]
    assert bounced["properties"]["reason"] == "500 unknown recipient" and bounced["properties"]["status"] == "5.0.0"
    assert source_event(spam)["type"] == "spamreport"
    assert "list_id" not in unsubscribed["properties"]
    assert group_unsubscribed["properties"]["list_id"] == "10"
    assert_stable_ids("sendgrid", fixture("sendgrid-all-events.json"))


def test_sendgrid_passthrough_forwards_unmapped_events_as_custom_proper_case_names() -> None:
    result, messages = run("sendgrid", fixture("sendgrid-all-events.json"), settings={"unmapped_events": "passthrough"})
    assert result.skipped == []
    names = [m["event"] for m in messages]
    assert names[0:2] == ["Email Processed", "Email Deferred"]
    assert names[6] == "Email Dropped" and names[10] == "Resubscribed"
    assert messages[6]["properties"]["reason"] == "Bounced Address"


def test_sendgrid_blocked_bounce_is_a_soft_bounce_not_email_bounced() -> None:
    body = sendgrid_event(event="bounce", type="blocked", reason="451 try later")
    result, messages = run("sendgrid", body)
    assert messages == [] and "'bounce/blocked'" in result.skipped[0]["reason"]
    message = run_one("sendgrid", body, settings={"unmapped_events": "passthrough"})
    assert message["event"] == "Email Soft Bounced"
    assert message["properties"]["bounce_type"] == "blocked"


def test_sendgrid_custom_args_carry_the_user_id_and_machine_opens_are_flagged() -> None:
    message = run_one("sendgrid", sendgrid_event(user_id="user-7", sg_machine_open=True, ip="1.2.3.4"), policy="reject")
    assert message["userId"] == "user-7" and "anonymousId" not in message
    assert message["properties"]["machine_open"] is True
    assert message["context"]["ip"] == "1.2.3.4"
    renamed = run_one("sendgrid", sendgrid_event(customer="c-9"), settings={"user_id_field": "customer"})
    assert renamed["userId"] == "c-9"


def test_sendgrid_delivery_ip_is_the_senders_and_stays_out_of_context() -> None:
    message = run_one("sendgrid", sendgrid_event(event="delivered", ip="167.89.0.1"))
    assert "ip" not in message["context"]


def test_sendgrid_without_user_id_under_reject_policy_is_rejected_with_a_reason() -> None:
    result, messages = run("sendgrid", fixture("sendgrid-all-events.json"), policy="reject")
    assert messages == [] and len(result.rejected) == 7
    assert "userId is required" in result.rejected[0]["message"]


# -- Mailgun -----------------------------------------------------------------------------------
MAILGUN_SAMPLES = [
    # file, event, recipient, email_id, subject, timestamp, ip
    (
        "mailgun-delivered.json",
        "Email Delivered",
        "john@example.com",
        "20180622182958.1.48906CB188F1A454@exmple.org",
        "Test Subject",
        "2018-06-22T18:29:59.626Z",
        None,
    ),
    (
        "mailgun-opened.json",
        "Email Opened",
        "recipient@example.com",
        "20130821005614.19826.35976@samples.mailgun.org",
        None,
        "2013-08-21T01:09:03.042Z",
        "111.111.111.111",
    ),
    (
        "mailgun-clicked.json",
        "Email Link Clicked",
        "recipient@example.com",
        "20130821085807.30688.67706@samples.mailgun.org",
        None,
        "2013-08-21T08:59:24.094Z",
        "123.123.123.321",
    ),
    (
        "mailgun-complained.json",
        "Email Marked as Spam",
        "foo@example.com",
        "20130718032413.263EE2E0926@example.com",
        "This is the subject.",
        "2013-08-22T23:31:00.049Z",
        None,
    ),
    (
        "mailgun-unsubscribed.json",
        "Unsubscribed",
        "recipient@example.com",
        "20130822232216.13966.79700@samples.mailgun.org",
        None,
        "2013-08-22T23:23:11.421Z",
        "23.23.23.345",
    ),
]


@pytest.mark.parametrize("name,event,recipient,email_id,subject,timestamp,ip", MAILGUN_SAMPLES)
def test_mailgun_samples(
    name: str, event: str, recipient: str, email_id: str, subject: str | None, timestamp: str, ip: str | None
) -> None:
    body = fixture(name)
    message = run_one("mailgun", body)
    assert message["event"] == event
    assert message["context"]["traits"] == {"email": recipient}
    assert message["anonymousId"] == anonymous_id("email", recipient)
    assert message["properties"]["email_id"] == email_id
    assert message["properties"].get("email_subject") == subject
    assert message["timestamp"] == timestamp
    assert message["context"].get("ip") == ip
    assert source_event(message) == {
        "tool": "mailgun",
        "type": json.loads(body)["event-data"]["event"],
        "id": json.loads(body)["event-data"]["id"],
    }
    assert_stable_ids("mailgun", body)


def test_mailgun_engagement_fields() -> None:
    clicked = run_one("mailgun", fixture("mailgun-clicked.json"))
    assert clicked["properties"]["link_url"] == "http://example.com/signup"
    assert clicked["context"]["userAgent"].startswith("Mozilla/5.0 (X11; Linux i686)")
    opened = run_one("mailgun", fixture("mailgun-opened.json"))
    assert opened["properties"]["machine_open"] is False


def mailgun_event(**fields: Any) -> bytes:
    data = {
        "event": "failed",
        "id": "ev-1",
        "timestamp": 1700000000.5,
        "recipient": "ada@example.com",
        "severity": "permanent",
        "reason": "bounce",
        "user-variables": {},
        "delivery-status": {"code": 550, "description": "No such user"},
        **fields,
    }
    return json.dumps({"signature": {}, "event-data": data}).encode()


def test_mailgun_failures_split_into_bounce_deferral_and_suppression() -> None:
    bounced = run_one("mailgun", mailgun_event())
    assert bounced["event"] == "Email Bounced"
    assert bounced["properties"] == {"reason": "No such user", "status": "550", "bounce_type": "permanent"}
    assert "'failed/temporary'" in run("mailgun", mailgun_event(severity="temporary"))[0].skipped[0]["reason"]
    # The docs sample: "Not delivering to previously bounced address" -- Mailgun did not try.
    result, messages = run("mailgun", fixture("mailgun-failed-permanent.json"))
    assert messages == [] and "'failed/suppressed'" in result.skipped[0]["reason"]
    dropped = run_one("mailgun", fixture("mailgun-failed-permanent.json"), settings={"unmapped_events": "passthrough"})
    assert dropped["event"] == "Email Dropped"
    assert dropped["context"]["traits"] == {"email": "slava@mailgun.com"}  # `recipient`, not headers.to
    assert dropped["properties"]["status"] == "605"


def test_mailgun_user_variables_carry_the_user_id() -> None:
    message = run_one("mailgun", mailgun_event(**{"user-variables": {"user_id": "u-1"}}), policy="reject")
    assert message["userId"] == "u-1"


# -- Postmark ----------------------------------------------------------------------------------
POSTMARK_SAMPLES = [
    ("postmark-Delivery.json", "Email Delivered", None),
    ("postmark-Open.json", "Email Opened", "203.0.113.1"),
    ("postmark-Click.json", "Email Link Clicked", "203.0.113.1"),
    ("postmark-Bounce.json", "Email Bounced", None),
    ("postmark-SpamComplaint.json", "Email Marked as Spam", None),
    ("postmark-SubscriptionChange.json", "Unsubscribed", None),
]


@pytest.mark.parametrize("name,event,ip", POSTMARK_SAMPLES)
def test_postmark_samples(name: str, event: str, ip: str | None) -> None:
    message = run_one("postmark", fixture(name))
    assert message["event"] == event
    assert message["context"]["traits"] == {"email": "john@example.com"}  # Recipient or, on bounces, Email
    assert message["anonymousId"] == anonymous_id("email", "john@example.com")
    assert message["properties"]["email_id"] == "883953f4-6105-42a2-a16a-77a8eac79483"
    assert message["timestamp"] == "2025-04-05T16:33:54.907Z"
    assert message["context"].get("ip") == ip
    assert source_event(message)["tool"] == "postmark"
    assert_stable_ids("postmark", fixture(name))


def test_postmark_fields_and_metadata_user_id() -> None:
    click = run_one(
        "postmark", fixture("postmark-Click.json"), settings={"user_id_field": "customer_id"}, policy="reject"
    )
    assert click["userId"] == "12345"
    assert click["properties"] == {
        "email_id": "883953f4-6105-42a2-a16a-77a8eac79483",
        "link_url": "https://yourdomain.com/pricing",
        "message_stream": "outbound",
        "tags": ["welcome-email"],
    }
    assert click["context"]["userAgent"] == "Mozilla/5.0 ..."
    bounce = run_one("postmark", fixture("postmark-Bounce.json"))
    assert bounce["properties"]["bounce_type"] == "HardBounce"
    assert bounce["properties"]["reason"].startswith("smtp;550 5.1.1")
    assert bounce["properties"]["email_subject"] == "Welcome to our service"
    assert source_event(bounce) == {"tool": "postmark", "type": "Bounce/hard", "id": "42"}


def postmark_variant(name: str, **changes: Any) -> bytes:
    return json.dumps({**json.loads(fixture(name)), **changes}).encode()


def test_postmark_soft_bounces_and_non_unsubscribe_subscription_changes_are_skipped() -> None:
    soft = postmark_variant("postmark-Bounce.json", Type="SoftBounce", TypeCode=4096)
    assert "'Bounce/soft'" in run("postmark", soft)[0].skipped[0]["reason"]
    assert run_one("postmark", soft, settings={"unmapped_events": "passthrough"})["event"] == "Email Soft Bounced"
    resubscribed = postmark_variant("postmark-SubscriptionChange.json", SuppressSending=False, SuppressionReason=None)
    assert run_one("postmark", resubscribed, settings={"unmapped_events": "passthrough"})["event"] == "Resubscribed"
    after_bounce = postmark_variant("postmark-SubscriptionChange.json", SuppressionReason="HardBounce")
    assert "'SubscriptionChange/suppressed'" in run("postmark", after_bounce)[0].skipped[0]["reason"]


def test_postmark_events_of_one_message_get_distinct_ids() -> None:
    ids = {run_one("postmark", fixture(name))["messageId"] for name, _, _ in POSTMARK_SAMPLES}
    assert len(ids) == len(POSTMARK_SAMPLES)


# -- Mandrill ----------------------------------------------------------------------------------
def test_mandrill_sample_batch() -> None:
    body = sample_body("mandrill")
    result, messages = run("mandrill", body)
    assert [m["event"] for m in messages] == [
        "Email Bounced",
        "Email Opened",
        "Email Link Clicked",
        "Email Marked as Spam",
        "Unsubscribed",
    ]
    # send, deferral, soft_bounce, reject and the five deny/allow-list sync events
    assert [s["index"] for s in result.skipped] == [0, 1, 3, 8, 9, 10, 11, 12, 13]
    for message in messages:
        assert message["userId"] == "111"  # msg.metadata.user_id, a number in the payload
        assert "anonymousId" not in message
        assert message["context"]["traits"] == {"email": "example.webhook@mandrillapp.com"}
        assert message["timestamp"] == "2015-01-03T16:43:27.000Z"
        assert message["properties"]["email_id"] == "fa239ebedd0a4831a3eefa59e880d8b2"
        assert message["properties"]["email_subject"] == "This an example webhook message"
        assert message["properties"]["tags"] == ["webhook-example"]
    bounced, opened, clicked, _, _ = messages
    assert bounced["properties"]["bounce_type"] == "bad_mailbox"
    assert bounced["properties"]["reason"].startswith("smtp;550 5.1.1")
    assert opened["context"]["ip"] == "127.0.0.1" and "Postbox" in opened["context"]["userAgent"]
    assert clicked["properties"]["link_url"] == "http://mandrill.com"
    assert source_event(clicked) == {"tool": "mandrill", "type": "click", "id": "fa239ebedd0a4831a3eefa59e880d8b2"}
    assert_stable_ids("mandrill", body)


def test_mandrill_passthrough_names_and_delivered() -> None:
    _, messages = run("mandrill", sample_body("mandrill"), settings={"unmapped_events": "passthrough"})
    names = [m["event"] for m in messages]
    assert names[:4] == ["Email Sent", "Email Deferred", "Email Bounced", "Email Soft Bounced"]
    assert names[8:] == [
        "Email Dropped",
        "Email Denylist Entry Added",
        "Email Denylist Entry Changed",
        "Email Denylist Entry Removed",
        "Email Allowlist Entry Added",
        "Email Allowlist Entry Removed",
    ]
    sync = messages[9]
    assert sync["context"]["traits"] == {"email": "example.webhook@mandrillapp.com"}
    assert sync["properties"] == {"reason": "hard-bounce", "detail": "Example detail"}
    assert len({m["messageId"] for m in messages}) == len(messages)
    events = [
        {
            "event": "delivered",
            "_id": "m1",
            "ts": 1700000000,
            "msg": {"_id": "m1", "email": "ada@example.com", "metadata": {"user_id": "u1"}},
        }
    ]
    delivered = run_one("mandrill", urlencode({"mandrill_events": json.dumps(events)}).encode())
    assert delivered["event"] == "Email Delivered" and delivered["userId"] == "u1"


def test_every_mapped_email_event_uses_a_spec_name() -> None:
    for source, body in (("sendgrid", fixture("sendgrid-all-events.json")), ("mandrill", sample_body("mandrill"))):
        assert {m["event"] for m in run(source, body)[1]} <= SPEC_EVENTS


@pytest.mark.parametrize("tool", ["sendgrid", "mailgun", "postmark", "mandrill"])
def test_email_property_tables_list_the_spec_properties_first_in_spec_order(tool: str) -> None:
    """Every email tool's tables read the Email spec's properties in `email.PROPERTY_ORDER`, then
    the tool's own extras: one order for every tool, so messages read alike whichever tool sent them."""
    import importlib

    from segment_bridge.ingest.sources.email import PROPERTY_ORDER

    module = importlib.import_module(f"segment_bridge.ingest.sources.{tool}")
    tables = [value for name, value in vars(module).items() if name.endswith("PROPERTIES")]
    assert tables, tool
    for table in tables:
        names = [name for name, _ in table]
        spec_names = [name for name in names if name in PROPERTY_ORDER]
        assert spec_names == sorted(spec_names, key=PROPERTY_ORDER.index), (tool, names)
        assert names[: len(spec_names)] == spec_names, (tool, names)  # extras after the spec's own
