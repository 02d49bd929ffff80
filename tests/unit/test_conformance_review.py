"""The tenant's conformance policy and the ingest reviewer that applies it."""

from __future__ import annotations

import copy
from dataclasses import FrozenInstanceError
from typing import Any

import pytest
from pydantic import ValidationError

from segment_bridge.conformance.checks import Finding, Repair
from segment_bridge.conformance.review import NOTHING_FOUND, ConformanceReviewer, decide
from segment_bridge.events import MappedEvent
from segment_bridge.tenants import ConformancePolicy, TenantConfig, parse_tenant_secret

REVIEWER = ConformanceReviewer()
FIXABLE_ERROR = Finding("spec.event_name", "error", "event", "m", "f", Repair("set", ("event",), "Order Completed"))
UNFIXABLE_ERROR = Finding("spec.property_type", "error", "properties.total", "m", "f")
UNFIXABLE_WARNING = Finding("spec.missing_context", "warning", "context.groupId", "m", "f")


def tenant(**conformance: Any) -> TenantConfig:
    return TenantConfig.model_validate({"write_key": "wk", "conformance": conformance})


def review(message: dict[str, Any], config: TenantConfig, source: str = "spec") -> tuple[Any, dict[str, Any]]:
    mapped = MappedEvent(message=copy.deepcopy(message))
    return REVIEWER.review(mapped, source=source, tenant_id="acme", tenant=config), mapped.message


PURCHASE = {"type": "track", "userId": "u1", "event": "Purchase", "properties": {"orderId": "o1", "total": "9.5"}}


@pytest.mark.parametrize(
    "finding, action, outcome",
    [
        (FIXABLE_ERROR, "fix", "fixed"),
        (FIXABLE_ERROR, "warn", "warned"),
        (FIXABLE_ERROR, "reject", "rejected"),
        (UNFIXABLE_ERROR, "fix", "rejected"),
        (UNFIXABLE_ERROR, "warn", "warned"),
        (UNFIXABLE_ERROR, "reject", "rejected"),
        (UNFIXABLE_WARNING, "fix", "warned"),
        (UNFIXABLE_WARNING, "warn", "warned"),
        (UNFIXABLE_WARNING, "reject", "rejected"),
    ],
)
def test_decide(finding: Finding, action: str, outcome: str) -> None:
    assert decide(finding, action) == outcome  # type: ignore[arg-type]


def test_policy_defaults_fix_spec_and_warn_on_style() -> None:
    rules = ConformancePolicy().rules_for("spec")
    assert (rules.spec, rules.style, rules.partner) == ("fix", "warn", "fix")


def test_per_source_overrides_replace_only_what_they_name() -> None:
    policy = ConformancePolicy.model_validate({"style": "fix", "sources": {"stripe": {"spec": "reject"}}})
    stripe, other = policy.rules_for("stripe"), policy.rules_for("sendgrid")
    assert (stripe.spec, stripe.style) == ("reject", "fix")
    assert (other.spec, other.style) == ("fix", "fix")


def test_tenant_secrets_validate_the_policy() -> None:
    config = parse_tenant_secret("acme", {"write_key": "wk", "conformance": {"sources": {"spec": {"style": "reject"}}}})
    assert config.conformance.rules_for("spec").style == "reject"
    with pytest.raises(ValidationError):
        TenantConfig.model_validate({"write_key": "wk", "conformance": {"spec": "ignore"}})
    with pytest.raises(ValidationError):
        TenantConfig.model_validate({"write_key": "wk", "conformance": {"names": "fix"}})


def test_fix_repairs_in_place_and_records_the_original_in_context() -> None:
    result, message = review(PURCHASE, tenant())
    assert [d.outcome for d in result.decisions] == ["fixed", "fixed", "fixed"] and result.refusal is None
    assert message["event"] == "Order Completed"
    assert message["properties"] == {"order_id": "o1", "total": 9.5}
    assert message["context"]["conformance"] == {
        "original_event": "Purchase",
        "original_keys": {"properties.order_id": "orderId"},
        "original_values": {"properties.total": "9.5"},
    }


def test_warn_forwards_the_message_unchanged() -> None:
    result, message = review(PURCHASE, tenant(spec="warn"))
    assert {d.outcome for d in result.decisions} == {"warned"} and result.refusal is None
    assert message == PURCHASE


def test_reject_refuses_with_every_reason_and_fix_and_changes_nothing() -> None:
    result, message = review(PURCHASE, tenant(spec="reject"))
    assert {d.outcome for d in result.decisions} == {"rejected"}
    assert result.refusal.startswith("breaks Segment's Spec: ")
    assert 'rename the event to "Order Completed"' in result.refusal and "orderId" in result.refusal
    assert message == PURCHASE


def test_an_unfixable_spec_error_under_fix_refuses_the_event_and_fixes_nothing() -> None:
    message = {**PURCHASE, "properties": {"orderId": "o1", "total": "n/a"}}
    result, after = review(message, tenant())
    assert [d.outcome for d in result.decisions] == ["warned", "warned", "rejected"]
    assert "properties.total" in result.refusal and after == message


def test_style_is_warned_by_default_and_fixed_on_request() -> None:
    message = {"type": "track", "userId": "u1", "event": "report_exported", "properties": {"reportType": "pdf"}}
    result, after = review(message, tenant())
    assert {d.outcome for d in result.decisions} == {"warned"} and after == message
    result, after = review(message, tenant(sources={"spec": {"style": "fix"}}))
    assert after["event"] == "Report Exported" and after["properties"] == {"report_type": "pdf"}
    assert after["context"]["conformance"]["original_event"] == "report_exported"
    _, untouched = review(message, tenant(sources={"spec": {"style": "fix"}}), source="stripe")
    assert untouched == message


def test_a_clean_message_gets_no_decisions_and_no_context_record() -> None:
    message = {"type": "track", "userId": "u1", "event": "Order Completed", "properties": {"total": 1}}
    result, after = review(message, tenant())
    assert result.decisions == () and after == message
    # Every clean message shares one review: it must be immutable and say nothing.
    assert result is NOTHING_FOUND and result.refusal is None
    with pytest.raises(FrozenInstanceError):
        result.decisions = (1,)  # type: ignore[misc]


def test_decisions_serialize_for_the_response() -> None:
    result, _ = review(PURCHASE, tenant())
    assert result.decisions[0].as_dict() == {
        "code": "spec.event_name",
        "severity": "error",
        "action": "fixed",
        "path": "event",
        "message": 'event "Purchase" is a synonym of the Spec event "Order Completed"; '
        "Segment rejects near-miss names of Spec events",
        "fix": 'rename the event to "Order Completed" '
        '(if "Purchase" is custom on purpose: conformance.allow.events in the tenant, or lint --allow)',
    }
