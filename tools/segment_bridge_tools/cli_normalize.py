"""`segment-bridge normalize SOURCE [FILE]`: what a webhook body would become, without AWS.

Runs the ingest pipeline's own parse/map/review/normalize (`dry_run`, i.e. `ingest.map_and_normalize` with the
conformance reviewer the handler uses) on a body from a file or stdin, with no signature check,
no identity table and no queue. Output is split by audience:

- stdout: one Spec message per line, exactly as it would be enqueued (pipe it to `jq`);
- stderr: one JSON line per event that would not be sent, `{"status": "skipped"|"rejected",
  "index": i, "reason": ...}`, and one per conformance decision, `{"status": "conformance", ...}`.

Exit status: 0 if nothing was rejected, 1 if an event was rejected or the body is unreadable.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import click

from segment_bridge.conformance.review import ConformanceReviewer
from segment_bridge.ingest.sources import SOURCES

from .dry_run import dry_run


def _load_settings(value: str | None) -> dict[str, Any]:
    if not value:
        return {}
    raw = value if value.lstrip().startswith("{") else Path(value).read_text(encoding="utf-8")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--tenant-settings") from None
    if not isinstance(data, dict):
        raise click.BadParameter("must be a JSON object", param_hint="--tenant-settings")
    return data


@click.command("normalize")
@click.argument("source", type=click.Choice(sorted(SOURCES)))
@click.argument("file", type=click.File("rb"), default="-")
@click.option("--content-type", help="Content-Type of the body (default: the source's own, e.g. form for mandrill).")
@click.option(
    "--tenant-settings",
    metavar="JSON|FILE",
    help="This source's settings (unmapped_events, user_id_field), or a whole tenant document "
    "whose sources.SOURCE, identity and conformance are used. Secrets are ignored.",
)
@click.option(
    "--user-id-policy",
    type=click.Choice(["reject", "anonymous"]),
    help="Events without userId: reject, or anonymousId from email/phone (default: the tenant's, else reject).",
)
@click.option(
    "--tenant",
    default="dry-run",
    show_default=True,
    help="Tenant id; derived messageIds and anonymousIds depend on it.",
)
@click.option(
    "--query", default="", metavar="QUERY", help="Query string the webhook URL carried (twilio: user_id=...)."
)
def normalize_command(
    source: str,
    file: Any,
    content_type: str | None,
    tenant_settings: str | None,
    user_id_policy: str | None,
    tenant: str,
    query: str,
) -> None:
    """Print the Spec messages a SOURCE webhook body (FILE, or stdin) maps to. No AWS, no signature check."""
    result, messages = dry_run(
        source,
        file.read(),
        content_type=content_type,
        tenant_document=_load_settings(tenant_settings),
        user_id_policy=user_id_policy,
        tenant=tenant,
        query=dict(parse_qsl(query, keep_blank_values=True)),
        reviewer=ConformanceReviewer(),
    )

    for message in messages:
        click.echo(message.json)
    for status, entries, text_key in (("skipped", result.skipped, "reason"), ("rejected", result.rejected, "message")):
        for entry in entries:
            click.echo(json.dumps({"status": status, "index": entry["index"], "reason": entry[text_key]}), err=True)
    for decision in result.conformance:
        click.echo(json.dumps({"status": "conformance", **decision}), err=True)
    sys.exit(1 if result.rejected else 0)
