"""Ingest: one verified webhook in, normalized Spec messages on the queue, a per-event report out.

`pipeline` is the order of checks and stages; `sources/` holds one adapter per tool on a shared
mechanism; `signatures` and `replay` verify requests; `normalize` finishes every message; `queue`
is the SQS adapter; `tracking_api` reads Segment's own Tracking API (what Segment's libraries send).
What the pipeline needs from outside is in `ports`.
"""

from . import tracking_api
from .normalize import Integration, NormalizedMessage, derive_anonymous_id, derive_message_id, normalize
from .pipeline import Ingestor, IngestResult, finish_events, map_and_normalize
from .ports import IdentityResolver, MessageQueue, MessageReviewer, ReplayGuard
from .queue import SqsQueue
from .replay import DynamoDBReplayGuard, InMemoryReplayGuard
from .sources import REGISTRY, SOURCES, Source, SourceSettings, VerifyContext, get_source
from .tracking_api import TrackingAnswer, TrackingRequest

__all__ = [
    "REGISTRY",
    "SOURCES",
    "DynamoDBReplayGuard",
    "IdentityResolver",
    "InMemoryReplayGuard",
    "IngestResult",
    "Ingestor",
    "Integration",
    "MessageQueue",
    "MessageReviewer",
    "NormalizedMessage",
    "ReplayGuard",
    "Source",
    "SourceSettings",
    "SqsQueue",
    "TrackingAnswer",
    "TrackingRequest",
    "VerifyContext",
    "derive_anonymous_id",
    "derive_message_id",
    "finish_events",
    "get_source",
    "map_and_normalize",
    "normalize",
    "tracking_api",
]
