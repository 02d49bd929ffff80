"""Helpers for the per-tool source tests: run a body through map + normalize, and load samples."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from segment_bridge.events import WebhookRequest
from segment_bridge.ingest.normalize import Integration, derive_anonymous_id
from segment_bridge.ingest.pipeline import IngestResult, map_and_normalize
from segment_bridge.ingest.sources import SOURCES, SourceSettings
from segment_bridge.tenants import TenantConfig
from segment_bridge_tools.make_events import sample_body
from tests.conftest import TENANT, load_fixture

INTEGRATION = Integration("acme-tool", "1.0.0")


def run(
    source: str,
    body: bytes,
    *,
    settings: Mapping[str, Any] | None = None,
    policy: str = "anonymous",
    query: Mapping[str, str] | None = None,
) -> tuple[IngestResult, list[dict[str, Any]]]:
    """What ingest would enqueue for `body` (signature already checked): the report and the messages."""
    adapter = SOURCES[source]
    request = WebhookRequest(
        source=source,
        tenant=TENANT,
        method="POST",
        body=body,
        headers={"content-type": sorted(adapter.media_types)[0]},
        query=dict(query or {}),
    )
    tenant = TenantConfig.model_validate({"write_key": "wk", "identity": {"missing_user_id": policy}})
    result, normalized = map_and_normalize(
        request, adapter, SourceSettings.model_validate(dict(settings or {})), tenant, INTEGRATION
    )
    return result, [m.message for m in normalized]


def run_one(source: str, body: bytes, **kwargs: Any) -> dict[str, Any]:
    result, messages = run(source, body, **kwargs)
    assert len(messages) == 1, (result.skipped, result.rejected)
    return messages[0]


def fixture(name: str) -> bytes:
    return load_fixture(f"webhooks/{name}")


def anonymous_id(kind: str, value: str) -> str:
    return derive_anonymous_id(TENANT, kind, value)


def source_event(message: dict[str, Any]) -> dict[str, Any]:
    return message["context"]["source_event"]


__all__ = ["anonymous_id", "fixture", "run", "run_one", "sample_body", "source_event"]
