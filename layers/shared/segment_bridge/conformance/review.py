"""The ingest reviewer: check each mapped event, then fix, warn or reject as the tenant's policy says.

Runs before the shared `normalize()`, so what it repairs is what gets validated, gets its
messageId and goes to Segment. Every finding becomes a `Decision` the ingest response shows and
the handler counts, so no change to a partner's data is silent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..events import MappedEvent
from ..tenants import Action, TenantConfig
from .checks import Finding, apply_repairs, check_message

Outcome = Literal["fixed", "warned", "rejected"]
OUTCOMES: tuple[Outcome, ...] = ("fixed", "warned", "rejected")
#: Where a fixed message keeps what the bridge changed (original event name, keys and values).
CONTEXT_KEY = "conformance"


@dataclass(frozen=True)
class Decision:
    finding: Finding
    outcome: Outcome

    def as_dict(self) -> dict[str, Any]:
        f = self.finding
        return {
            "code": f.code,
            "severity": f.severity,
            "action": self.outcome,
            "path": f.path,
            "message": f.message,
            "fix": f.fix,
        }


@dataclass(frozen=True)
class Review:
    #: A tuple: immutable, so the one `NOTHING_FOUND` can stand for every clean message.
    decisions: tuple[Decision, ...] = ()

    @property
    def refusal(self) -> str | None:
        """Why the event is refused (every rejecting finding and its fix), or None."""
        reasons = [f"{d.finding.message} (fix: {d.finding.fix})" for d in self.decisions if d.outcome == "rejected"]
        return "breaks Segment's Spec: " + "; ".join(reasons) if reasons else None


#: The review of a message with no findings (nearly all of them): shared, not built per event.
NOTHING_FOUND = Review()


def decide(finding: Finding, action: Action) -> Outcome:
    if action == "reject":
        return "rejected"
    if action == "fix" and finding.repair is not None:
        return "fixed"
    if action == "fix" and finding.severity == "error":
        return "rejected"  # nothing safe to do, and forwarding it would break the Spec
    return "warned"


class ConformanceReviewer:
    """`MessageReviewer` for `Ingestor`: conformance checks under the tenant's per-source policy."""

    def review(self, mapped: MappedEvent, *, source: str, tenant_id: str, tenant: TenantConfig) -> Review:
        message = mapped.message
        policy = tenant.conformance
        findings = check_message(message, policy.allowlist_for(source))
        if not findings:
            return NOTHING_FOUND
        rules = policy.rules_for(source)
        decisions = [Decision(f, decide(f, rules.action_for(f.family))) for f in findings]
        if any(d.outcome == "rejected" for d in decisions):
            # Nothing is changed in a refused event: what would have been fixed is only reported.
            return Review(tuple(d if d.outcome == "rejected" else Decision(d.finding, "warned") for d in decisions))
        repairs = [d.finding.repair for d in decisions if d.outcome == "fixed" and d.finding.repair is not None]
        if repairs:
            record = apply_repairs(message, repairs).as_context()
            context = message.setdefault("context", {})
            if isinstance(context, dict) and record:
                context[CONTEXT_KEY] = record
        return Review(tuple(decisions))
