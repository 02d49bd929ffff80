"""One webhook body through the ingest pipeline's mapping, with no AWS and no signature check.

Shared by `segment-bridge normalize` and `segment-bridge lint --source`, so both show exactly what
`Ingestor.handle` would enqueue for the same body (it calls the same `map_and_normalize`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import click

from segment_bridge.config import get_settings
from segment_bridge.errors import MalformedRequest
from segment_bridge.events import WebhookRequest
from segment_bridge.ingest.normalize import Integration, NormalizedMessage
from segment_bridge.ingest.pipeline import IngestResult, MessageReviewer, map_and_normalize
from segment_bridge.ingest.sources import SOURCES, SourceSettings
from segment_bridge.tenants import TenantConfig

FORM = "application/x-www-form-urlencoded"


def dry_run(
    source: str,
    body: bytes,
    *,
    content_type: str | None = None,
    tenant_document: dict[str, Any] | None = None,
    user_id_policy: str | None = None,
    tenant: str = "dry-run",
    query: dict[str, str] | None = None,
    reviewer: MessageReviewer | None = None,
) -> tuple[IngestResult, list[NormalizedMessage]]:
    """Map `body` as `source` would for a tenant described by `tenant_document` (secrets ignored).

    `tenant_document` is this source's settings or a whole tenant document; only the settings that
    steer mapping are used. Raises `click.UsageError`/`ClickException` for input it cannot read.
    """
    adapter = SOURCES[source]
    document = tenant_document or {}
    values = document.get("sources", {}).get(source, {}) if "sources" in document else document
    policy = user_id_policy or document.get("identity", {}).get("missing_user_id", "reject")
    settings = SourceSettings.model_validate({k: v for k, v in values.items() if k in SourceSettings.model_fields})
    conformance = {"conformance": document["conformance"]} if "conformance" in document else {}
    config = TenantConfig.model_validate(
        {"write_key": "dry-run", "identity": {"missing_user_id": policy}, **conformance}
    )
    request = WebhookRequest(
        source=source,
        tenant=tenant,
        method="POST",
        body=body,
        query=query or {},
        headers={"content-type": content_type or sorted(adapter.media_types)[0]},
    )
    if request.media_type not in adapter.media_types:
        raise click.UsageError(f"{source} takes {' or '.join(sorted(adapter.media_types))}, not {request.media_type!r}")
    if request.media_type == FORM:  # a saved form body ends in a newline no tool would have sent
        request = replace(request, body=body.rstrip(b"\r\n"))
    app = get_settings()
    try:
        return map_and_normalize(
            request,
            adapter,
            settings,
            config,
            Integration(app.integration_name, app.integration_version),
            reviewer=reviewer,
        )
    except MalformedRequest as exc:
        raise click.ClickException(exc.message) from None
