"""The identity loop in `make run`: Segment's identify goes in first, the tools' events come out with its userId.

What Segment would send the demo tenant's destination endpoint for the recipient of the SendGrid
samples (example@test.com), and a tally of how many sample email events got a userId back.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from .local_stack import LocalStack

DEMO_USER_ID = "user-1001"
DEMO_GROUP_ID = "account-42"
#: The recipient in every SendGrid sample (tests/fixtures/webhooks/sendgrid-all-events.json).
DEMO_EMAIL = "example@test.com"
EMAIL_TOOLS = ("sendgrid", "mailgun", "postmark", "mandrill")


def segment_calls(now: float | None = None) -> list[dict[str, Any]]:
    """An identify and a group call as Segment forwards them (messageIds stable, so re-runs are duplicates)."""
    sent = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now or time.time()))
    return [
        {
            "type": "identify",
            "userId": DEMO_USER_ID,
            "anonymousId": "anon-demo-1",
            "messageId": "demo-identify-1",
            "timestamp": sent,
            "traits": {"email": DEMO_EMAIL, "name": "Example Recipient"},
        },
        {
            "type": "group",
            "userId": DEMO_USER_ID,
            "groupId": DEMO_GROUP_ID,
            "messageId": "demo-group-1",
            "timestamp": sent,
            "traits": {"name": "Example Account"},
        },
    ]


def basic_auth(api_key: str) -> str:
    """`Authorization` as Segment sends it: Basic base64("<api key>:")."""
    return "Basic " + base64.b64encode(f"{api_key}:".encode()).decode("ascii")


def send_segment_calls(stack: LocalStack, calls: list[dict[str, Any]] | None = None) -> requests.Response:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Segment.io/1.0",
        "Authorization": basic_auth(stack.config.destination_api_key),
    }
    return requests.post(stack.destination_url(), json={"batch": calls or segment_calls()}, headers=headers, timeout=10)


@dataclass
class ResolutionTally:
    """Per email tool: events that arrived without a userId, and how many the identity table resolved."""

    needed: dict[str, int] = field(default_factory=dict)
    resolved: dict[str, int] = field(default_factory=dict)

    def record(self, source: str, body: dict[str, Any]) -> None:
        if source in EMAIL_TOOLS:
            resolved = int(body.get("resolvedUserIds", 0))
            self.resolved[source] = self.resolved.get(source, 0) + resolved
            self.needed[source] = self.needed.get(source, 0) + resolved + int(body.get("unresolvedUserIds", 0))

    def summary(self) -> str:
        total, needed = sum(self.resolved.values()), sum(self.needed.values())
        share = f"{100 * total / needed:.0f}%" if needed else "n/a"
        per_tool = ", ".join(f"{tool} {self.resolved.get(tool, 0)}/{n}" for tool, n in self.needed.items() if n)
        return f"{total} of {needed} sample email events without a userId resolved to one ({share}): {per_tool}"
