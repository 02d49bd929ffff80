"""Twilio SMS status callbacks and Stripe events: sample payloads to Spec messages, field by field."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from tests.sources_support import anonymous_id, fixture, run, run_one, sample_body, source_event

SID = "SMXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"


# -- Twilio ------------------------------------------------------------------------------------
def twilio_body(**changes: str) -> bytes:
    params = {
        "AccountSid": "AC1",
        "ApiVersion": "2010-04-01",
        "From": "+15017122661",
        "MessageSid": SID,
        "MessageStatus": "delivered",
        "SmsSid": SID,
        "SmsStatus": "delivered",
        "To": "+15558675310",
        **changes,
    }
    return urlencode(params).encode()


def test_twilio_delivered_sample() -> None:
    message = run_one("twilio", sample_body("twilio"))
    assert message["type"] == "track" and message["event"] == "SMS Delivered"
    assert message["properties"] == {
        "message_id": SID,
        "to": "+15558675310",
        "from": "+15017122661",
        "status": "delivered",
    }
    assert message["context"]["traits"] == {"phone": "+15558675310"}
    assert message["anonymousId"] == anonymous_id("phone", "+15558675310")
    assert source_event(message) == {"tool": "twilio", "type": "delivered", "id": SID}
    assert message["timestamp"].endswith("Z")  # callbacks carry no time: the time we received it
    again = run_one("twilio", sample_body("twilio"))
    assert again["messageId"] == message["messageId"]


def test_twilio_undelivered_carries_the_error_code_and_each_status_gets_its_own_id() -> None:
    undelivered = run_one(
        "twilio", twilio_body(MessageStatus="undelivered", SmsStatus="undelivered", ErrorCode="30003")
    )
    assert undelivered["event"] == "SMS Undelivered"
    assert undelivered["properties"]["error_code"] == "30003" and undelivered["properties"]["status"] == "undelivered"
    names = {
        status: run_one("twilio", twilio_body(MessageStatus=status))["event"] for status in ("sent", "failed", "read")
    }
    assert names == {"sent": "SMS Sent", "failed": "SMS Failed", "read": "SMS Read"}
    ids = {run_one("twilio", twilio_body(MessageStatus=s))["messageId"] for s in ("sent", "delivered", "failed")}
    assert len(ids) == 3


def test_twilio_intermediate_statuses_are_skipped_or_passed_through() -> None:
    result, messages = run("twilio", twilio_body(MessageStatus="queued"))
    assert messages == [] and "'SMS Queued'" in result.skipped[0]["reason"]
    assert (
        run_one(
            "twilio", twilio_body(MessageStatus="partially_delivered"), settings={"unmapped_events": "passthrough"}
        )["event"]
        == "SMS Partially Delivered"
    )


def test_twilio_user_id_rides_on_the_callback_query_and_whatsapp_numbers_become_phones() -> None:
    message = run_one("twilio", twilio_body(To="whatsapp:+14155550100"), query={"user_id": "u-5"}, policy="reject")
    assert message["userId"] == "u-5"
    assert message["properties"]["to"] == "whatsapp:+14155550100"
    assert message["context"]["traits"] == {"phone": "+14155550100"}


# -- Stripe ------------------------------------------------------------------------------------
def stripe_variant(fixture_name: str, /, **object_changes: Any) -> bytes:
    event = json.loads(fixture(fixture_name))
    event["data"]["object"].update(object_changes)
    return json.dumps(event).encode()


def test_stripe_paid_checkout_is_order_completed() -> None:
    message = run_one("stripe", fixture("stripe-checkout.session.completed.json"))
    assert message["type"] == "track" and message["event"] == "Order Completed"
    assert message["properties"] == {
        "checkout_id": "cs_test_0000000000000000000000000000000000000000000000000000000000",
        "order_id": "pi_000000000000000000000000",
        "subtotal": 30.0,
        "total": 30.0,
        "revenue": 30.0,
        "tax": 0.0,
        "shipping": 0.0,
        "discount": 0.0,
        "currency": "USD",
    }
    assert message["timestamp"] == "2022-03-26T18:39:19.000Z"
    assert message["context"]["traits"] == {"email": "stripe@example.com"}
    assert message["anonymousId"] == anonymous_id("email", "stripe@example.com")  # metadata is {}: no userId
    assert source_event(message) == {
        "tool": "stripe",
        "type": "checkout.session.completed",
        "id": "evt_000000000000000000000000",
    }
    assert run_one("stripe", fixture("stripe-checkout.session.completed.json"))["messageId"] == message["messageId"]


def test_stripe_amounts_respect_zero_and_three_decimal_currencies_and_revenue_excludes_tax_and_shipping() -> None:
    details = {"amount_discount": 0, "amount_shipping": 500, "amount_tax": 250}
    usd = run_one(
        "stripe",
        stripe_variant(
            "stripe-checkout.session.completed.json", amount_subtotal=1999, amount_total=2749, total_details=details
        ),
    )
    assert (usd["properties"]["total"], usd["properties"]["revenue"], usd["properties"]["subtotal"]) == (
        27.49,
        19.99,
        19.99,
    )
    assert (usd["properties"]["shipping"], usd["properties"]["tax"]) == (5.0, 2.5)
    jpy = run_one("stripe", stripe_variant("stripe-checkout.session.completed.json", currency="jpy", amount_total=500))
    assert jpy["properties"]["total"] == 500 and jpy["properties"]["currency"] == "JPY"
    kwd = run_one("stripe", stripe_variant("stripe-checkout.session.completed.json", currency="kwd", amount_total=5120))
    assert kwd["properties"]["total"] == 5.12


def test_stripe_unpaid_checkout_waits_for_async_payment() -> None:
    unpaid = stripe_variant("stripe-checkout.session.completed.json", payment_status="unpaid")
    assert "'checkout.session.completed/unpaid'" in run("stripe", unpaid)[0].skipped[0]["reason"]
    event = json.loads(unpaid)
    event["type"] = "checkout.session.async_payment_succeeded"
    assert run_one("stripe", json.dumps(event).encode())["event"] == "Order Completed"


def test_stripe_metadata_user_id_is_used() -> None:
    body = stripe_variant("stripe-checkout.session.completed.json", metadata={"user_id": "user-42"})
    message = run_one("stripe", body, policy="reject")
    assert message["userId"] == "user-42" and "anonymousId" not in message


def test_stripe_refund_sample_has_no_identity_and_is_rejected_with_a_reason() -> None:
    result, messages = run("stripe", fixture("stripe-charge.refunded.json"))
    assert messages == []
    assert result.rejected == [{"index": 0, "message": "userId or anonymousId is required"}]


def test_stripe_refund_is_order_refunded_for_this_refund_amount() -> None:
    message = run_one("stripe", stripe_variant("stripe-charge.refunded.json", metadata={"user_id": "u-1"}))
    assert message["event"] == "Order Refunded"
    assert message["properties"] == {"order_id": "ch_000000000000000000000000", "total": 1.0, "currency": "USD"}
    assert message["timestamp"] == "2022-03-26T18:39:09.000Z"
    event = json.loads(
        stripe_variant(
            "stripe-charge.refunded.json",
            amount=5000,
            amount_refunded=3000,
            payment_intent="pi_1",
            receipt_email="ada@example.com",
        )
    )
    event["data"]["previous_attributes"]["amount_refunded"] = 1000  # a second, partial refund
    second = run_one("stripe", json.dumps(event).encode())
    assert second["properties"] == {"order_id": "pi_1", "total": 20.0, "currency": "USD"}
    assert second["context"]["traits"] == {"email": "ada@example.com"}


def test_stripe_customer_is_an_identify() -> None:
    result, _ = run("stripe", fixture("stripe-customer.created.json"))  # no email, no metadata
    assert result.rejected == [{"index": 0, "message": "userId or anonymousId is required"}]
    address = {
        "line1": "1 Main St",
        "line2": "Apt 2",
        "city": "Springfield",
        "state": "IL",
        "postal_code": "62701",
        "country": "US",
    }
    body = stripe_variant(
        "stripe-customer.created.json",
        metadata={"user_id": "u-9"},
        email="ada@example.com",
        name="Ada Lovelace",
        phone="+15550100",
        address=address,
    )
    message = run_one("stripe", body, policy="reject")
    assert message["type"] == "identify" and message["userId"] == "u-9"
    assert message["traits"] == {
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "phone": "+15550100",
        "address": {
            "street": "1 Main St, Apt 2",
            "city": "Springfield",
            "state": "IL",
            "postal_code": "62701",
            "country": "US",
        },
        "created_at": "2022-03-26T18:41:47Z",
        "stripe_customer_id": "cus_00000000000000",
    }
    assert message["timestamp"] == "2022-03-26T18:41:47.000Z"
    assert message["context"]["traits"] == {"email": "ada@example.com", "phone": "+15550100"}


def test_other_stripe_types_are_skipped_or_passed_through_with_their_own_name() -> None:
    result, messages = run("stripe", fixture("stripe-event-object.docs.json"))
    assert messages == [] and "'Setup Intent Created'" in result.skipped[0]["reason"]
    body = stripe_variant("stripe-event-object.docs.json", metadata={"user_id": "u"})
    message = run_one("stripe", body, settings={"unmapped_events": "passthrough"})
    assert message["event"] == "Setup Intent Created"
    assert message["properties"] == {"object_type": "setup_intent", "object_id": "seti_1NG8Du2eZvKYlo2C9XMqbR0x"}
