"""Every number Segment and AWS impose on us, named once.

Sources: ../shared/reference/segment-facts.md (sections 1.6, 1.7, 1.10) and aws-facts.md (section 2).
Keeping them here, the way analytics-python keeps MAX_MSG_SIZE and BATCH_SIZE_LIMIT in one place,
means a reviewer can check every limit against Segment's docs in one read.
"""

from __future__ import annotations

# --- Segment HTTP Tracking API -------------------------------------------------------------
#: Largest serialized message Segment accepts (per event, also inside /v1/batch).
MAX_MESSAGE_BYTES = 32 * 1024
#: Hard ceiling of a /v1/batch request body; above it Segment answers 400.
MAX_BATCH_REQUEST_BYTES = 500 * 1000
#: What we pack up to, like analytics-python's BATCH_SIZE_LIMIT: room for the envelope and sentAt.
BATCH_TARGET_BYTES = 475 * 1000
#: More events than this in one batch get a silent 200 and are dropped by Segment.
MAX_BATCH_MESSAGES = 2500
#: messageId is the global dedupe key; Segment caps its length.
MAX_MESSAGE_ID_LENGTH = 100
#: Partner guidance: at most this many requests per second in total, batch requests included.
PARTNER_MAX_REQUESTS_PER_SECOND = 50

#: Regional ingestion endpoints (raw HTTP needs the /v1 path).
SEGMENT_BATCH_URLS = {
    "us": "https://api.segment.io/v1/batch",
    "eu": "https://events.eu1.segmentapis.com/v1/batch",
}

# --- Segment OAuth 2.0 (segment-facts.md 1.3.1) -------------------------------------------
#: Regional token servers. Each is also the `aud` of the client assertion, and tokens are requested
#: from `{server}/token`: what analytics-python's and analytics-node's token managers do.
SEGMENT_OAUTH_SERVERS = {
    "us": "https://oauth2.segment.io",
    "eu": "https://oauth2.eu1.segmentapis.com",
}
#: Segment: the assertion's `exp` must be under a minute away. We sign for 55 s ahead of the
#: (skew-corrected) clock, dated 4 s back, so `exp - iat` is 59 s: under 60 s by either reading.
OAUTH_ASSERTION_LIFETIME_SECONDS = 55
OAUTH_ASSERTION_BACKDATE_SECONDS = 4
#: Smallest RSA key accepted for an OAuth app (NIST SP 800-57: 2048 bits through 2030).
OAUTH_MIN_RSA_BITS = 2048
#: Longest token we take from a token server (a header of ours carries it).
OAUTH_MAX_TOKEN_CHARS = 8192
#: Segment lets the customer pick a token lifetime of 1 to 30 days; anything claimed past that is
#: read as this (a token is renewed at half its lifetime anyway).
OAUTH_MAX_TOKEN_LIFETIME_SECONDS = 30 * 24 * 3600

# --- Amazon SQS ----------------------------------------------------------------------------
#: Entries per SendMessageBatch call.
SQS_MAX_BATCH_ENTRIES = 10
#: Total payload of one SendMessageBatch call (1 MiB since 2025).
SQS_MAX_BATCH_BYTES = 1024 * 1024
#: What one SQS message of ours may hold. 256 KiB is the pre-2025 message limit: it keeps the
#: bundle valid on queues created with the old default and still packs hundreds of events each.
SQS_MESSAGE_TARGET_BYTES = 256 * 1024
#: Longest a queue keeps a message (MessageRetentionPeriod's maximum, 14 days).
SQS_MAX_RETENTION_SECONDS = 14 * 24 * 3600
#: Largest RedrivePolicy maxReceiveCount.
SQS_MAX_RECEIVE_COUNT = 1000
#: Longest visibility one receive may have in all, counted from the receive (ChangeMessageVisibility).
SQS_MAX_VISIBILITY_SECONDS = 12 * 3600
#: Entries per ChangeMessageVisibilityBatch call (as for every SQS batch call).
SQS_MAX_VISIBILITY_BATCH_ENTRIES = 10

# --- Segment as the caller (destination side, segment-facts.md section 5) ---------------------
#: Segment gives a destination this long to answer before it times out and retries.
SEGMENT_DESTINATION_TIMEOUT_SECONDS = 5

# --- AWS Secrets Manager -------------------------------------------------------------------
#: Largest SecretString: a tenant document (with its OAuth private key) must fit in one secret.
SECRETS_MANAGER_MAX_SECRET_BYTES = 65536

# --- Amazon DynamoDB -----------------------------------------------------------------------
#: Keys one BatchGetItem call may ask for.
DYNAMODB_BATCH_GET_MAX_KEYS = 100

# --- Our own caps on untrusted input (docs/security.md) ------------------------------------
#: Deepest nesting of arrays/objects accepted in a JSON body. Spec messages need a handful of
#: levels; the cap keeps Python's recursive parser and encoders (json, pydantic) far from their
#: recursion limits, so a hostile `[[[[...` is a 400, never a RecursionError.
MAX_JSON_DEPTH = 64
#: Most events one webhook request may carry (413 above). SendGrid posts ~768 KB batches (a few
#: thousand events), Mandrill at most 1,000; the cap bounds per-request work inside the Lambda timeout.
MAX_EVENTS_PER_REQUEST = 10_000
#: Largest JSON response body we build. Per-event reports (rejected, skipped, conformance) are
#: trimmed to fit, with a count of what was left out: Lambda refuses responses over 6 MB, which
#: API Gateway would turn into a 502.
MAX_RESPONSE_BYTES = 512 * 1024
#: Longest text of one report entry in a response (reasons can quote the sender's own input).
MAX_REPORT_TEXT_CHARS = 500
