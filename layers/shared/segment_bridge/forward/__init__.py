"""Forward: queued Spec messages to each tenant's Segment workspace, in its region, within the limits.

`forwarder` groups an SQS batch by tenant and settles each record; `delivery` sends one tenant's
batches (retries by `retry`, pacing by `ratelimit`, 400 isolation); `batching` packs /v1/batch
bodies; `client` is the HTTP client; `oauth` its OAuth 2.0 tokens (assertion, token server, per-tenant cache);
`dead_letters` is the DLQ's format and adapter.
"""

from .batching import Batch, pack_batches
from .client import PreparedRequest, SegmentClient, SendOutcome, Target
from .dead_letters import DeadLetter, DeadLetterView, SqsDeadLetterQueue, read_dead_letter
from .delivery import DeliveryStats, MessageOutcome, TenantDelivery, Verdict
from .forwarder import Forwarder, ForwardReport, QueuedRecord
from .oauth import (
    OAuthCredentials,
    TokenAnswer,
    TokenCache,
    TokenResult,
    TokenServerClient,
    load_private_key,
    make_assertion,
)
from .ports import DeadLetterQueue, Pacer, SegmentSender
from .ratelimit import RateLimiter, paced_rate
from .retry import Deadline, RetryPolicy

__all__ = [
    "Batch",
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
    "RetryPolicy",
    "SegmentClient",
    "SegmentSender",
    "SendOutcome",
    "SqsDeadLetterQueue",
    "Target",
    "TenantDelivery",
    "TokenAnswer",
    "TokenCache",
    "TokenResult",
    "TokenServerClient",
    "Verdict",
    "load_private_key",
    "make_assertion",
    "paced_rate",
    "pack_batches",
    "read_dead_letter",
]
