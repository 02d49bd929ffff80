"""Lint a finished Spec message: what Segment would receive, checked end to end.

Everything `conformance.check_message` checks, plus what only makes sense on a final message:
the ids each call type needs, the partner rules (`userId`, a well-formed `context.integration`)
and the Spec model's own validation. Used by `segment-bridge lint` and by tests that assert a
source's output is clean; not on the ingest path (there `normalize` enforces the same rules).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from ..spec import CALL_TYPES, CATALOG, describe_validation_error, message_adapter
from ..tenants import NO_ALLOWLIST, ConformanceAllowlist
from .checks import Finding, check_message, quote

#: Segment's partner docs: the slugified tool name, and a version starting at 1.0.0.
INTEGRATION_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
INTEGRATION_VERSION = re.compile(r"\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?")


def lint_message(
    message: Any, *, allow_anonymous: bool = False, allow: ConformanceAllowlist = NO_ALLOWLIST
) -> list[Finding]:
    """All findings for one message; any `error` means Segment, or its partner review, would refuse it.

    `allow_anonymous` makes a message with only an anonymousId a warning instead of an error
    (the bridge's `identity.missing_user_id: anonymous` policy); `allow` is the tenant's
    conformance allowlist (names that are custom on purpose).
    """
    if not isinstance(message, dict):
        return [
            Finding("spec.invalid", "error", "", "a Spec message must be a JSON object", "send one object per message")
        ]
    findings = _required(message, allow_anonymous)
    findings += _integration(message)
    findings += check_message(message, allow)
    if not any(f.code == "spec.required" for f in findings):
        try:
            message_adapter().validate_python(message)
        except ValidationError as exc:
            findings.append(
                Finding(
                    "spec.invalid",
                    "error",
                    "",
                    describe_validation_error(exc),
                    "correct the fields named; see Segment's Spec for each call type",
                )
            )
    return findings


def _required(message: dict[str, Any], allow_anonymous: bool) -> list[Finding]:
    kind = message.get("type")
    if kind not in CALL_TYPES:
        return [
            Finding(
                "spec.required",
                "error",
                "type",
                '"type" is missing or not a Spec call type',
                f"set type to one of {', '.join(CALL_TYPES)}",
            )
        ]
    findings = [
        Finding(
            "spec.required",
            "error",
            name,
            f"a {kind} call needs {quote(name)}; Segment drops it otherwise",
            f"set {quote(name)}",
        )
        for name in CATALOG.required_fields.get(kind, ())
        if message.get(name) in (None, "")
    ]
    if kind != "alias" and not message.get("userId"):
        if not message.get("anonymousId"):
            findings.append(
                Finding(
                    "spec.required",
                    "error",
                    "userId",
                    "neither userId nor anonymousId is set; Segment drops the call",
                    "set userId to the customer's own user id",
                )
            )
        else:
            findings.append(
                Finding(
                    "partner.user_id",
                    "warning" if allow_anonymous else "error",
                    "userId",
                    "no userId: Segment asks partners to send the customer's own userId (it drives MTU billing)",
                    "set userId to the id the customer's Segment workspace knows the user by",
                )
            )
    return findings


def _integration(message: dict[str, Any]) -> list[Finding]:
    context = message.get("context")
    integration = context.get("integration") if isinstance(context, dict) else None
    if integration is None:
        problem = "context.integration is missing; Segment uses it to tell which partner tool sent the call"
    elif not isinstance(integration, dict):
        problem = "context.integration must be an object"
    elif not (isinstance(integration.get("name"), str) and INTEGRATION_NAME.fullmatch(integration["name"])):
        problem = "context.integration.name must be the tool's slug (lower case, digits and hyphens)"
    elif not (isinstance(integration.get("version"), str) and INTEGRATION_VERSION.fullmatch(integration["version"])):
        problem = 'context.integration.version must be a semantic version such as "1.0.0"'
    else:
        return []
    return [
        Finding(
            "partner.integration",
            "error",
            "context.integration",
            problem,
            'set context.integration to {"name": "<tool-slug>", "version": "1.0.0"}',
        )
    ]
