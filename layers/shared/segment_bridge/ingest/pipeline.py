"""Ingest: one verified webhook in, normalized Spec messages on the queue, a per-event report out.

Order of checks is cheap-first and never reveals whether a tenant exists: route and tenant-id
syntax, size, media type, the source's own limits (`Source.precheck`), then the tenant's secret and
the tool's signature (unknown tenant and bad signature are the same 401, at the same cost: an
unknown tenant is verified against decoy secrets and every 401 is held to the `RefusalFloor`),
then parsing and per-event normalization.

Segment's own Tracking API (`/v1/batch`... from Segment's libraries, `tracking_api`) comes in through
`handle_tracking_api`: its own reading and credential (a bridge key naming the tenant), then the same
stages (`finish_events`) and the same queue.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..config import Settings
from ..errors import MalformedRequest, PayloadTooLarge, Unauthorized, UnknownSource, UnsupportedMediaType
from ..events import MappedEvent, Rejected, Skipped, WebhookRequest
from ..limits import MAX_EVENTS_PER_REQUEST
from ..queue_format import pack_queue_bodies
from ..tenants import (
    MAX_BRIDGE_KEY_CHARS,
    TENANT_ID_RULE,
    RefusalFloor,
    TenantConfig,
    TenantDirectory,
    authenticate_tenant,
    bridge_key_matches,
    is_valid_tenant_id,
    split_bridge_key,
)
from . import tracking_api
from .normalize import Integration, NormalizedMessage, normalize
from .ports import IdentityResolver, MessageQueue, MessageReviewer, ReplayGuard
from .replay import InMemoryReplayGuard
from .sources import Source, SourceSettings, VerifyContext, get_source
from .tracking_api import TrackingRequest

#: What a caller is told when every event of its request was refused (422), above the per-event reasons.
NOTHING_ACCEPTED = "no event in the request was accepted; each is listed under rejected with the reason"


@dataclass
class IngestResult:
    """What became of one webhook's events; the handler answers 202 or, when `nothing_accepted`, 422."""

    accepted: list[str] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    #: Conformance decisions: {"index", "code", "severity", "action", "path", "message", "fix"}.
    conformance: list[dict[str, Any]] = field(default_factory=list)
    resolved: int = 0
    #: Events without a userId whose recipient the identity table did not know (the policy applied).
    unresolved: int = 0
    sqs_calls: int = 0

    @property
    def nothing_accepted(self) -> bool:
        """Every event was refused (skipped ones alone are a success: the tool did nothing wrong)."""
        return not self.accepted and bool(self.rejected)

    @property
    def received(self) -> int:
        return len(self.accepted) + len(self.rejected) + len(self.skipped)

    def body(self) -> dict[str, Any]:
        """The response body, the same shape for 202 and 422 (which adds the `message`)."""
        body: dict[str, Any] = {"message": NOTHING_ACCEPTED} if self.nothing_accepted else {}
        body.update(accepted=len(self.accepted), messageIds=self.accepted, rejected=self.rejected)
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
        replay_guard: ReplayGuard | None = None,
        refusal_floor: RefusalFloor | None = None,
    ) -> None:
        self.settings = settings
        self.tenants = tenants
        self.refusal_floor = refusal_floor or RefusalFloor(settings.unauthorized_floor_seconds)
        self.queue = queue
        self.reviewer = reviewer
        self.identity = identity
        self.integration = Integration(settings.integration_name, settings.integration_version)
        # Without a shared guard (the DynamoDB table the template creates), one per instance.
        self.verify_context = VerifyContext(
            settings.signature_tolerance_seconds,
            clock,
            replay_guard if replay_guard is not None else InMemoryReplayGuard(),
        )

    # -- request-level checks -------------------------------------------------------------
    def source_for(self, request: WebhookRequest) -> Source[Any]:
        source = get_source(request.source)
        if source is None:
            raise UnknownSource(f"unknown source {request.source[:64]!r}; use one of the documented sources")
        if not is_valid_tenant_id(request.tenant):
            raise MalformedRequest(TENANT_ID_RULE)
        return source

    def authenticate(self, request: WebhookRequest, source: Source[Any]) -> tuple[TenantConfig, SourceSettings]:
        if len(request.body) > self.settings.max_body_bytes:
            raise PayloadTooLarge(f"body exceeds {self.settings.max_body_bytes} bytes; send smaller batches")
        if request.media_type not in source.media_types:
            expected = " or ".join(sorted(source.media_types))
            raise UnsupportedMediaType(f"Content-Type must be {expected} for source {source.name!r}")
        if (request.header("content-encoding") or "identity").strip().lower() != "identity":
            # Signatures cover the bytes as sent, and no tool compresses its webhooks: refuse
            # instead of failing later with an unreadable body (and never inflate a zip bomb).
            raise UnsupportedMediaType("Content-Encoding is not supported; send the body uncompressed")
        source.precheck(request)  # the tool's own limits: the same answer for every tenant
        return authenticate_tenant(
            self.tenants, request.tenant, lambda tenant: self._verify(request, source, tenant), floor=self.refusal_floor
        )

    def _verify(
        self, request: WebhookRequest, source: Source[Any], tenant: TenantConfig | None
    ) -> tuple[TenantConfig, SourceSettings]:
        """The tool's signature; an unknown tenant, or one without this source, is checked against
        the source's decoy secrets (the same work) and refused whatever that check says."""
        settings = source.settings_or_none(tenant)
        source.verify(request, settings if settings is not None else source.decoy_settings, self.verify_context)
        if tenant is None or settings is None:
            raise Unauthorized()
        return tenant, settings

    # -- the pipeline ---------------------------------------------------------------------
    def handle(self, request: WebhookRequest) -> IngestResult:
        source = self.source_for(request)
        tenant, settings = self.authenticate(request, source)
        result, normalized = map_and_normalize(
            request, source, settings, tenant, self.integration, reviewer=self.reviewer, identity=self.identity
        )
        if not normalized:
            return result  # nothing to send: every event skipped or rejected (`nothing_accepted`)

        result.sqs_calls = self._enqueue(request.tenant, source.name, normalized)
        return result

    def handle_tracking_api(self, request: TrackingRequest) -> tuple[str, IngestResult]:
        """One call of Segment's Tracking API (`tracking_api`): the tenant its bridge key names, and what
        became of each message. Cheap checks first (route, media type, size, gzip bounded); the key
        before the body is parsed when it comes as Basic auth, after when it is the body's writeKey."""
        if request.route not in tracking_api.ROUTES:
            calls = ", ".join(f"/v1/{name}" for name in tracking_api.ROUTES)
            raise UnknownSource(f"unknown Tracking API call {request.route[:32]!r}; use one of {calls}")
        if len(request.body) > self.settings.max_body_bytes:
            raise PayloadTooLarge(f"body exceeds {self.settings.max_body_bytes} bytes; send smaller batches")
        body = tracking_api.decoded_body(request)
        credential = tracking_api.basic_credential(request)
        if credential is not None:
            tenant_id, tenant = self._authenticate_bridge_key(credential)
            call = tracking_api.read_call(request, body)
        else:
            call = tracking_api.read_call(request, body)
            tenant_id, tenant = self._authenticate_bridge_key(call.credential or "")
        result, normalized = finish_events(
            call.messages,
            tracking_api.map_message,
            tenant_id=tenant_id,
            tenant=tenant,
            source_name=tracking_api.SOURCE_NAME,
            integration=self.integration,
            reviewer=self.reviewer,
            identity=self.identity,
        )
        if normalized:
            result.sqs_calls = self._enqueue(tenant_id, tracking_api.SOURCE_NAME, normalized)
        return tenant_id, result

    def _authenticate_bridge_key(self, credential: str) -> tuple[str, TenantConfig]:
        """The tenant a bridge key names, if the key is one of its own: one hash and the same comparisons
        for an unknown tenant, a malformed key and a wrong one, the same 401, held to the refusal floor."""
        parts = split_bridge_key(credential)
        tenant_id, secret = parts if parts is not None else ("", credential[:MAX_BRIDGE_KEY_CHARS])

        def check(config: TenantConfig | None) -> TenantConfig:
            if not bridge_key_matches(config, secret) or config is None or parts is None:
                raise Unauthorized(tracking_api.UNAUTHORIZED_MESSAGE)
            return config

        # An id that is no tenant id (a malformed key) is looked up as "" : unknown, at no Secrets Manager call.
        return tenant_id, authenticate_tenant(self.tenants, tenant_id, check, floor=self.refusal_floor)

    def _enqueue(self, tenant_id: str, source_name: str, normalized: list[NormalizedMessage]) -> int:
        bodies = pack_queue_bodies(tenant_id, source_name, [(m.json, m.size) for m in normalized])
        return self.queue.send_bodies(bodies, {"tenant": tenant_id, "source": source_name})


def map_and_normalize(
    request: WebhookRequest,
    source: Source[Any],
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
    return finish_events(
        source.parse(request),
        lambda event: source.map_event(event, settings),
        tenant_id=request.tenant,
        tenant=tenant,
        source_name=source.name,
        integration=integration,
        reviewer=reviewer,
        identity=identity,
    )


def finish_events(
    events: list[Any],
    map_event: Callable[[Any], MappedEvent | Skipped],
    *,
    tenant_id: str,
    tenant: TenantConfig,
    source_name: str,
    integration: Integration,
    reviewer: MessageReviewer | None = None,
    identity: IdentityResolver | None = None,
) -> tuple[IngestResult, list[NormalizedMessage]]:
    """Map, resolve, review and normalize a request's events: the stages every way in shares
    (a tool's webhook, Segment's Tracking API). Each event's outcome is in the result."""
    result = IngestResult()
    mapped: list[tuple[int, MappedEvent]] = []
    if len(events) > MAX_EVENTS_PER_REQUEST:  # bounds the per-request work (and the response) up front
        raise PayloadTooLarge(f"{len(events)} events in one request; send at most {MAX_EVENTS_PER_REQUEST}")
    for index, event in enumerate(events):
        try:
            outcome = map_event(event)
        except Rejected as exc:
            result.rejected.append({"index": index, "message": str(exc)})
            continue
        if isinstance(outcome, Skipped):
            result.skipped.append({"index": index, "reason": outcome.reason})
        else:
            mapped.append((index, outcome))

    if identity is not None and mapped:
        resolution = identity.resolve(tenant_id, tenant, [event for _, event in mapped])
        result.resolved, result.unresolved = resolution.resolved, resolution.missed

    # Every review, then every normalization: the same results as one event at a time (each step
    # only looks at its own event), and each loop keeps its own code hot (bench/ingest.py).
    if reviewer is not None:
        reviewed: list[tuple[int, MappedEvent]] = []
        for index, event in mapped:
            try:
                review = reviewer.review(event, source=source_name, tenant_id=tenant_id, tenant=tenant)
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
            message = normalize(event, tenant_id=tenant_id, tenant=tenant, source=source_name, integration=integration)
        except Rejected as exc:
            result.rejected.append({"index": index, "message": str(exc)})
            continue
        normalized.append(message)
        result.accepted.append(message.message_id)

    result.rejected.sort(key=lambda r: r["index"])
    return result, normalized
