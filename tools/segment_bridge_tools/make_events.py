"""Write `events/webhook-<source>.json`: one signed API Gateway event per tool, for `sam local invoke`.

    python -m segment_bridge_tools.make_events            # all tool sources, tenant "demo"
    python -m segment_bridge_tools.make_events stripe     # just one

Bodies are the tool samples in tests/fixtures/webhooks, signed with `signing.demo_source_settings()`
for the tenant, as of now. Signatures with a timestamp (sendgrid, mailgun, stripe) go stale after
the replay window (300 s); regenerate right before invoking. See events/README.md.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import click

from .lambda_events import api_gateway_event
from .signing import demo_source_settings, sign

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "tests" / "fixtures" / "webhooks"
EVENTS_DIR = ROOT / "events"
#: The host and stage the events claim; ingest_handler derives the signed URL from them.
DOMAIN = "abc123.execute-api.us-east-1.amazonaws.com"
STAGE = "Prod"


def sample_body(source: str) -> bytes:
    """The request body each tool would send, built from its sample payload."""
    if source == "mandrill":
        events = (SAMPLES / "mandrill-all-events.mandrill_events.json").read_text(encoding="utf-8")
        return urlencode({"mandrill_events": json.dumps(json.loads(events))}).encode("ascii")
    if source == "twilio":
        return (SAMPLES / "twilio-sms-status-delivered.CONSTRUCTED.txt").read_bytes().strip()
    name = {
        "sendgrid": "sendgrid-all-events.json",
        "mailgun": "mailgun-delivered.json",
        "postmark": "postmark-Delivery.json",
        "stripe": "stripe-checkout.session.completed.json",
    }[source]
    return (SAMPLES / name).read_bytes()


def public_url(path: str) -> str:
    """The URL ingest_handler derives from an event of ours: https://{Host}{requestContext.path}."""
    return f"https://{DOMAIN}/{STAGE}{path}"


def build_event(source: str, tenant: str = "demo", now: float | None = None) -> dict[str, Any]:
    path = f"/v1/webhooks/{source}/{tenant}"
    headers, body = sign(source, sample_body(source), demo_source_settings()[source], public_url(path), now)
    return api_gateway_event("POST", path, body, {**headers, "Host": DOMAIN}, stage=STAGE, domain=DOMAIN)


@click.command()
@click.argument("sources", nargs=-1)
@click.option("--tenant", default="demo", show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=EVENTS_DIR, show_default=True)
def main(sources: tuple[str, ...], tenant: str, out: Path) -> None:
    """Write signed sample events for SOURCES (default: every tool source)."""
    now = time.time()
    for source in sources or tuple(demo_source_settings()):
        target = out / f"webhook-{source}.json"
        target.write_text(json.dumps(build_event(source, tenant, now), indent=2) + "\n", encoding="utf-8")
        click.echo(f"wrote {target}")


if __name__ == "__main__":  # pragma: no cover
    main()
