"""Event keys: a tool's re-delivery of one event gives one messageId; two events never share one.

Segment dedupes only on messageId, so the key each source derives it from must identify the event,
not the delivery attempt (docs/sources.md, "Event keys"). For every built-in source:

- re-deliveries: the same event with everything that varies per delivery attempt changed
  (SendGrid's `sg_event_id`, Mailgun's signature, Stripe's `pending_webhooks` and request, the time a
  Twilio callback arrived, the event's place in a batch) keep their messageId;
- different events (another type, time, recipient, link, message) each get their own;
- where the key did not change with issue 14, the messageId is pinned to the earlier derivation, so
  a deploy does not re-send anything as new.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segment_bridge.events import MappedEvent, Skipped
from segment_bridge.ingest.normalize import derive_message_id, normalize
from segment_bridge.ingest.sources import SOURCES, SourceSettings
from segment_bridge.ingest.sources.mapping import exact_key
from segment_bridge.tenants import TenantConfig
from tests.conftest import TENANT
from tests.sources_support import INTEGRATION, fixture

POLICY = TenantConfig.model_validate({"write_key": "wk", "identity": {"missing_user_id": "anonymous"}})
PASSTHROUGH = SourceSettings(unmapped_events="passthrough")


def message_id(source: str, event: Any) -> str:
    mapped = SOURCES[source].map_event(copy.deepcopy(event), PASSTHROUGH)  # type: ignore[arg-type]
    assert isinstance(mapped, MappedEvent), mapped
    return normalize(mapped, tenant_id=TENANT, tenant=POLICY, source=source, integration=INTEGRATION).message_id


def changed(original: dict[str, Any], /, **fields: Any) -> dict[str, Any]:
    return {**copy.deepcopy(original), **fields}


# -- the sources' events -------------------------------------------------------------------------

SENDGRID = {
    "email": "ada@example.com",
    "timestamp": 1700000000,
    "event": "open",
    "sg_event_id": "ZGVsaXZlcnktMQ",
    "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
    "useragent": "Mozilla/5.0",
    "ip": "203.0.113.9",
}
MAILGUN = json.loads(fixture("mailgun-opened.json"))["event-data"]
POSTMARK = json.loads(fixture("postmark-Open.json"))
MANDRILL = json.loads(fixture("mandrill-all-events.mandrill_events.json"))
MANDRILL_CLICK = next(e for e in MANDRILL if e.get("event") == "click")
STRIPE = json.loads(fixture("stripe-checkout.session.completed.json"))
TWILIO = {
    "params": {"MessageSid": "SM0123456789abcdef0123456789abcdef", "MessageStatus": "delivered", "To": "+15550001111"},
    "query": {},
    "received_at": 1700000000.25,
}

#: source -> (an event, the same event as the tool delivers it again, other events).
CASES: dict[str, tuple[Any, list[Any], list[Any]]] = {
    "sendgrid": (
        SENDGRID,
        # sendgrid-nodejs#1435: a re-post with a new sg_event_id; and the address in other case.
        [changed(SENDGRID, sg_event_id="cmV0cnktMg"), changed(SENDGRID, sg_event_id="x", email="Ada@Example.com")],
        [
            changed(SENDGRID, timestamp=1700000001),  # a second open, a second later
            changed(SENDGRID, event="click", url="https://example.com/a"),
            changed(SENDGRID, event="click", url="https://example.com/b"),  # another link, same second
            changed(SENDGRID, email="grace@example.com"),
            changed(SENDGRID, sg_message_id="other.filter0001.1.0"),
            changed(SENDGRID, event="bounce", type="bounce"),
            changed(SENDGRID, event="bounce", type="blocked"),
            changed(SENDGRID, event="deferred", attempt="1"),
            changed(SENDGRID, event="deferred", attempt="2"),
        ],
    ),
    "mailgun": (
        MAILGUN,
        [copy.deepcopy(MAILGUN)],  # Mailgun retries with new signature fields, the same event-data
        [
            changed(MAILGUN, id="other-event-id"),
            changed(MAILGUN, timestamp=MAILGUN["timestamp"] + 86400),  # its ids are unique within a day only
        ],
    ),
    "postmark": (
        POSTMARK,
        [copy.deepcopy(POSTMARK)],
        [
            changed(POSTMARK, ReceivedAt="2025-04-05T16:40:00.1000000Z"),
            changed(POSTMARK, Recipient="grace@example.com"),
            changed(POSTMARK, RecordType="Click", OriginalLink="https://example.com"),
        ],
    ),
    "mandrill": (
        MANDRILL_CLICK,
        [copy.deepcopy(MANDRILL_CLICK)],
        [
            changed(MANDRILL_CLICK, url="https://example.com/other"),  # link scanners: every link, one second
            changed(MANDRILL_CLICK, ts=MANDRILL_CLICK["ts"] + 1),
            changed(MANDRILL_CLICK, event="open"),
        ],
    ),
    "twilio": (
        TWILIO,
        [changed(TWILIO, received_at=1700000042.0)],  # the callback retried later
        [
            changed(TWILIO, params={**TWILIO["params"], "MessageStatus": "sent"}),
            changed(TWILIO, params={**TWILIO["params"], "MessageSid": "SMffffffffffffffffffffffffffffffff"}),
        ],
    ),
    "stripe": (
        STRIPE,
        [changed(STRIPE, pending_webhooks=3, request={"id": "req_retry", "idempotency_key": None})],
        [changed(STRIPE, id="evt_other")],
    ),
}


@pytest.mark.parametrize("source", sorted(CASES))
def test_a_redelivered_event_keeps_its_message_id(source: str) -> None:
    event, redeliveries, _ = CASES[source]
    first = message_id(source, event)
    assert [message_id(source, again) for again in redeliveries] == [first] * len(redeliveries)


@pytest.mark.parametrize("source", sorted(CASES))
def test_different_events_never_share_a_message_id(source: str) -> None:
    event, _, others = CASES[source]
    ids = [message_id(source, e) for e in (event, *others)]
    assert len(set(ids)) == len(ids)


def test_every_built_in_source_is_covered() -> None:
    assert set(CASES) == set(SOURCES) - {"spec"}  # spec: the sender's own messageId (or the content)


def test_sendgrid_keeps_its_own_delivery_id_for_qa_and_an_event_without_a_message_id_keeps_the_old_key() -> None:
    mapped = SOURCES["sendgrid"].map_event(dict(SENDGRID), PASSTHROUGH)  # type: ignore[arg-type]
    assert isinstance(mapped, MappedEvent)
    assert mapped.message["context"]["source_event"] == {"tool": "sendgrid", "type": "open", "id": "ZGVsaXZlcnktMQ"}
    unsubscribe = {"email": "ada@example.com", "timestamp": 1700000000, "event": "unsubscribe", "sg_event_id": "e-9"}
    assert message_id("sendgrid", unsubscribe) == derive_message_id(TENANT, "sendgrid", "e-9:unsubscribe")


# -- ids that did not change -----------------------------------------------------------------------


def _old_id(source: str, key: str) -> str:
    return derive_message_id(TENANT, source, key)


def test_sources_whose_key_was_right_keep_the_ids_they_always_had() -> None:
    assert message_id("stripe", STRIPE) == _old_id("stripe", STRIPE["id"])
    params = TWILIO["params"]
    assert message_id("twilio", TWILIO) == _old_id("twilio", f"{params['MessageSid']}:delivered")
    p = POSTMARK
    assert message_id("postmark", p) == _old_id("postmark", f"{p['MessageID']}:Open:{p['Recipient']}:{p['ReceivedAt']}")
    opened = next(e for e in MANDRILL if e.get("event") == "open")
    assert message_id("mandrill", opened) == _old_id("mandrill", f"{opened['_id']}:open:{opened['ts']}")
    # Mandrill clicks now also name their link (two links clicked in one second were one id).
    click = MANDRILL_CLICK
    assert message_id("mandrill", click) == _old_id("mandrill", f"{click['_id']}:click:{click['ts']}:{click['url']}")


# -- the key encoding ------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(":\\ab", max_size=4)), min_size=1, max_size=4), st.data())
def test_exact_keys_of_different_parts_differ(parts: list[str | None], data: st.DataObject) -> None:
    other = data.draw(
        st.lists(st.one_of(st.none(), st.text(":\\ab", max_size=4)), min_size=len(parts), max_size=len(parts))
    )
    same = [p or "" for p in parts] == [p or "" for p in other]
    assert (exact_key(*parts) == exact_key(*other)) == same


def test_unmapped_sendgrid_events_are_skipped_before_any_key() -> None:
    skipped = SOURCES["sendgrid"].map_event(changed(SENDGRID, event="processed"), SourceSettings())  # type: ignore[arg-type]
    assert isinstance(skipped, Skipped)
