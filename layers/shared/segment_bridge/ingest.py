"""Ingest: one verified webhook in, normalized Spec messages on the queue, a per-event report out.

Order of checks is cheap-first and never reveals whether a tenant exists: route and tenant-id
syntax, size, media type, then the tenant's secret and the tool's signature (unknown tenant and
bad signature are the same 401), then parsing and per-event normalization.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from .aws import MessageQueue
from .config import Settings
from .errors import (
    MalformedRequest,
    NothingAccepted,
    PayloadTooLarge,
    UnknownSource,
    UnsupportedMediaType,
)
from .identity import Resolution
from .limits import MAX_EVENTS_PER_REQUEST
from .normalize import Integration, NormalizedMessage, normalize
from .queue_format import pack_queue_bodies
from .review import Review
from .sources import MappedEvent, Rejected, Skipped, Source, SourceSettings, VerifyContext, WebhookRequest, get_source
from .tenants import TENANT_ID_RULE, TenantConfig, TenantDirectory, is_valid_tenant_id, load_tenant


class MessageReviewer(Protocol):
    """Hook for Spec conformance (`review.ConformanceReviewer`): may repair `mapped.message` in place.

    Returns one decision per finding (all shown in the response); an event with a refusal is
    rejected with it as the reason and not normalized.
    """

    def review(self, mapped: MappedEvent, *, source: str, tenant_id: str, tenant: TenantConfig) -> Review: ...


class IdentityResolver(Protocol):
    """Hook for the identity loop (`identity.TableIdentityResolver`): fills in missing userIds in one batch."""

    def resolve(self, tenant_id: str, tenant: TenantConfig, events: list[MappedEvent]) -> Resolution: ...


@dataclass
class IngestResult:
    accepted: list[str] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    #: Conformance decisions: {"index", "code", "severity", "action", "path", "message", "fix"}.
    conformance: list[dict[str, Any]] = field(default_factory=list)
    resolved: int = 0
    #: Events without a userId whose recipient the identity table did not know (the policy applied).
    unresolved: int = 0
    sqs_calls: int = 0

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"accepted": len(self.accepted), "messageIds": self.accepted, "rejected": self.rejected}
        if self.skipped:
            body["skipped"] = self.skipped
        if self.conformance:
            body["conformance"] = self.conformance
        if self.resolved:
            body["resolvedUserIds"] = self.resolved
        if self.unresolved:
            body["unresolvedUserIds"] = self.unresolved
        return body


class Ingestor:
    def __init__(
        self,
        settings: Settings,
        tenants: TenantDirectory,
        queue: MessageQueue,
        *,
        clock: Callable[[], float] = time.time,
        reviewer: MessageReviewer | None = None,
        identity: IdentityResolver | None = None,
    ) -> None:
        self.settings = settings
        self.tenants = tenants
        self.queue = queue
        self.clock = clock
        self.reviewer = reviewer
        self.identity = identity
        self.integration = Integration(settings.integration_name, settings.integration_version)

    # -- request-level checks -------------------------------------------------------------
    def source_for(self, request: WebhookRequest) -> Source:
        source = get_source(request.source)
        if source is None:
            raise UnknownSource(f"unknown source {request.source[:64]!r}; use one of the documented sources")
        if not is_valid_tenant_id(request.tenant):
            raise MalformedRequest(TENANT_ID_RULE)
        return source

    def authenticate(self, request: WebhookRequest, source: Source) -> tuple[TenantConfig, SourceSettings]:
        if len(request.body) > self.settings.max_body_bytes:
            raise PayloadTooLarge(f"body exceeds {self.settings.max_body_bytes} bytes; send smaller batches")
        if request.media_type not in source.media_types:
            expected = " or ".join(sorted(source.media_types))
            raise UnsupportedMediaType(f"Content-Type must be {expected} for source {source.name!r}")
        if (request.header("content-encoding") or "identity").strip().lower() != "identity":
            # Signatures cover the bytes as sent, and no tool compresses its webhooks: refuse
            # instead of failing later with an unreadable body (and never inflate a zip bomb).
            raise UnsupportedMediaType("Content-Encoding is not supported; send the body uncompressed")
        tenant = load_tenant(self.tenants, request.tenant)
        settings = source.settings_for(tenant)
        source.verify(request, settings, VerifyContext(self.settings.signature_tolerance_seconds, self.clock))
        return tenant, settings

    # -- the pipeline ---------------------------------------------------------------------
    def handle(self, request: WebhookRequest) -> IngestResult:
        source = self.source_for(request)
        tenant, settings = self.authenticate(request, source)
        result, normalized = map_and_normalize(
            request, source, settings, tenant, self.integration, reviewer=self.reviewer, identity=self.identity
        )
        if not normalized:
            if result.rejected:
                conformance = {"conformance": result.conformance} if result.conformance else {}
                identity = {"unresolvedUserIds": result.unresolved} if result.unresolved else {}
                raise NothingAccepted("no event in the request was accepted", rejected=result.rejected, **conformance,
                                      **identity)
            return result  # only skipped events: a success for the tool, nothing to send

        bodies = pack_queue_bodies(request.tenant, source.name, [(m.json, m.size) for m in normalized])
        result.sqs_calls = self.queue.send_bodies(bodies, {"tenant": request.tenant, "source": source.name})
        return result


def map_and_normalize(
    request: WebhookRequest,
    source: Source,
    settings: SourceSettings,
    tenant: TenantConfig,
    integration: Integration,
    *,
    reviewer: MessageReviewer | None = None,
    identity: IdentityResolver | None = None,
) -> tuple[IngestResult, list[NormalizedMessage]]:
    """Parse an already verified request and finish each event; no signature check, no queue.

    Shared by `Ingestor.handle` and the `segment-bridge normalize` dry run, so a dry run shows
    exactly what ingest would enqueue. Raises `MalformedRequest` for a body the source cannot read.
    """
    result = IngestResult()
    mapped: list[tuple[int, MappedEvent]] = []
    events = source.parse(request)
    if len(events) > MAX_EVENTS_PER_REQUEST:  # bounds the per-request work (and the response) up front
        raise PayloadTooLarge(f"{len(events)} events in one request; send at most {MAX_EVENTS_PER_REQUEST}")
    for index, event in enumerate(events):
        try:
            outcome = source.map_event(event, settings)
        except Rejected as exc:
            result.rejected.append({"index": index, "message": str(exc)})
            continue
        if isinstance(outcome, Skipped):
            result.skipped.append({"index": index, "reason": outcome.reason})
        else:
            mapped.append((index, outcome))

    if identity is not None and mapped:
        resolution = identity.resolve(request.tenant, tenant, [event for _, event in mapped])
        result.resolved, result.unresolved = resolution.resolved, resolution.missed

    # Every review, then every normalization: the same results as one event at a time (each step
    # only looks at its own event), and each loop keeps its own code hot (bench/ingest.py).
    if reviewer is not None:
        reviewed: list[tuple[int, MappedEvent]] = []
        for index, event in mapped:
            try:
                review = reviewer.review(event, source=source.name, tenant_id=request.tenant, tenant=tenant)
                if review.decisions:
                    result.conformance.extend({"index": index, **d.as_dict()} for d in review.decisions)
                    if review.refusal:
                        raise Rejected(review.refusal)
            except Rejected as exc:
                result.rejected.append({"index": index, "message": str(exc)})
                continue
            reviewed.append((index, event))
        mapped = reviewed

    normalized: list[NormalizedMessage] = []
    for index, event in mapped:
        try:
            message = normalize(event, tenant_id=request.tenant, tenant=tenant, source=source.name, integration=integration)
        except Rejected as exc:
            result.rejected.append({"index": index, "message": str(exc)})
            continue
        normalized.append(message)
        result.accepted.append(message.message_id)

    result.rejected.sort(key=lambda r: r["index"])
    return result, normalized
