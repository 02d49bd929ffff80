"""Forward: queued Spec messages to each tenant's Segment workspace, in its region, within the limits.

`forwarder` groups an SQS batch by tenant and settles each record; `delivery` sends one tenant's
batches (retries by `retry`, pacing by `ratelimit`, 400 isolation, the region's `breaker`);
`policy` classifies failures and decides backoff and dead-lettering; `batching` packs /v1/batch
bodies; `client` is the HTTP client; `oauth` its OAuth 2.0 tokens (assertion, token server,
per-tenant cache); `dead_letters` is the DLQ's format and adapter; `visibility` applies the
backoff on the queue.
"""

from .batching import Batch, pack_batches
from .breaker import (
    BREAKER_OPEN_METRIC,
    FAILURES_TO_OPEN,
    PROBE_INTERVAL_SECONDS,
    Breakers,
    BreakerState,
    CircuitBreaker,
    outage_requests_per_hour,
)
from .client import PreparedRequest, SegmentClient, SendOutcome, Target
from .dead_letters import DeadLetter, DeadLetterView, SqsDeadLetterQueue, read_dead_letter
from .delivery import DeliveryStats, TenantDelivery
from .forwarder import Forwarder, ForwardReport, QueuedRecord, run_in_threads
from .oauth import (
    OAuthCredentials,
    TokenAnswer,
    TokenCache,
    TokenResult,
    TokenServerClient,
    load_private_key,
    make_assertion,
)
from .policy import (
    OLDEST_AGE_METRIC,
    Cause,
    MessageOutcome,
    RedeliverySchedule,
    Verdict,
    classify,
)
from .ports import Concurrency, DeadLetterQueue, Pacer, Redelivery, SegmentSender
from .ratelimit import RateLimiter, paced_rate
from .retry import Deadline, RetryPolicy
from .visibility import SqsVisibility

__all__ = [
    "BREAKER_OPEN_METRIC",
    "FAILURES_TO_OPEN",
    "OLDEST_AGE_METRIC",
    "PROBE_INTERVAL_SECONDS",
    "Batch",
    "BreakerState",
    "Breakers",
    "Cause",
    "CircuitBreaker",
    "Concurrency",
    "DeadLetter",
    "DeadLetterQueue",
    "DeadLetterView",
    "Deadline",
    "DeliveryStats",
    "ForwardReport",
    "Forwarder",
    "MessageOutcome",
    "OAuthCredentials",
    "Pacer",
    "PreparedRequest",
    "QueuedRecord",
    "RateLimiter",
    "Redelivery",
    "RedeliverySchedule",
    "RetryPolicy",
    "SegmentClient",
    "SegmentSender",
    "SendOutcome",
    "SqsDeadLetterQueue",
    "SqsVisibility",
    "Target",
    "TenantDelivery",
    "TokenAnswer",
    "TokenCache",
    "TokenResult",
    "TokenServerClient",
    "Verdict",
    "classify",
    "load_private_key",
    "make_assertion",
    "outage_requests_per_hour",
    "paced_rate",
    "pack_batches",
    "read_dead_letter",
    "run_in_threads",
]
