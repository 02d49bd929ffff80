"""What a tenant wants done with conformance findings, per family of checks and per source.

Stored in the tenant secret under `conformance` (see docs/conformance.md):

    {"spec": "fix", "style": "warn", "partner": "fix",
     "sources": {"stripe": {"style": "fix"}}}

- `fix`: apply the finding's safe repair and record the original in `context.conformance`; a
  finding with no safe repair is refused if it is an error and forwarded if it is a warning, so
  under `fix` nothing that breaks the Spec reaches Segment.
- `warn`: forward the event unchanged; the finding is reported, logged and counted.
- `reject`: refuse the event with the finding as the reason.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Action = Literal["fix", "warn", "reject"]


class ConformanceRules(BaseModel):
    """One action per family of checks (see `segment_bridge.conformance`)."""

    model_config = ConfigDict(extra="forbid")

    #: Near-miss Spec event names, other forms of documented keys, wrong types.
    spec: Action = "fix"
    #: Naming conventions: Proper Case events, snake_case properties, documented trait forms.
    style: Action = "warn"
    #: Partner rules the bridge can check before normalizing (a writeKey in the body).
    partner: Action = "fix"

    def action_for(self, family: str) -> Action:
        return getattr(self, family) if family in ConformanceRules.model_fields else "warn"


class RuleOverrides(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spec: Action | None = None
    style: Action | None = None
    partner: Action | None = None


class ConformancePolicy(ConformanceRules):
    #: Per-source overrides of the tenant-wide rules, keyed by source name.
    sources: dict[str, RuleOverrides] = Field(default_factory=dict)

    def rules_for(self, source: str) -> ConformanceRules:
        rules = {name: getattr(self, name) for name in ConformanceRules.model_fields}
        override = self.sources.get(source)
        if override is not None:
            rules.update(override.model_dump(exclude_none=True))
        return ConformanceRules.model_construct(**rules)
