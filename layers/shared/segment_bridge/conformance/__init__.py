"""Spec conformance: what in a message would break Segment's Spec, and what to do about it.

`checks` finds (pure), `review` applies a tenant's policy on the ingest path (fix, warn or reject),
`lint` reports on finished messages (the CLI, tests).
"""

from .checks import Finding, Repair, apply_repairs, check_message
from .lint import lint_message
from .review import CONTEXT_KEY, NOTHING_FOUND, OUTCOMES, ConformanceReviewer, Decision, Outcome, Review, decide

__all__ = [
    "CONTEXT_KEY",
    "NOTHING_FOUND",
    "OUTCOMES",
    "ConformanceReviewer",
    "Decision",
    "Finding",
    "Outcome",
    "Repair",
    "Review",
    "apply_repairs",
    "check_message",
    "decide",
    "lint_message",
]
