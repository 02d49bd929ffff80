"""Deployment configuration, read from the environment once and validated.

Every knob the template sets (and `make run` sets locally) is here with its default, so the
README's configuration reference and this model cannot drift apart silently.
"""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, Field, field_validator

from .limits import SQS_MAX_RECEIVE_COUNT, SQS_MAX_VISIBILITY_SECONDS


class Settings(BaseModel):
    queue_url: str = Field("", alias="QUEUE_URL")
    dead_letter_queue_url: str = Field("", alias="DEAD_LETTER_QUEUE_URL")
    secrets_prefix: str = Field("segment-bridge", alias="SECRETS_PREFIX", pattern=r"^[A-Za-z0-9/_+=.@-]{1,128}$")
    integration_name: str = Field("segment-bridge", alias="INTEGRATION_NAME", pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    integration_version: str = Field("1.0.0", alias="INTEGRATION_VERSION", min_length=1, max_length=32)
    #: Largest webhook body accepted. API Gateway allows 10 MB and Lambda 6 MB; 4 MiB leaves room for
    #: base64 (which grows a body by a third) inside Lambda's 6 MB synchronous payload.
    max_body_bytes: int = Field(4 * 1024 * 1024, alias="MAX_BODY_BYTES", gt=0)
    signature_tolerance_seconds: int = Field(300, alias="SIGNATURE_TOLERANCE_SECONDS", gt=0)
    secrets_max_age_seconds: int = Field(300, alias="SECRETS_MAX_AGE_SECONDS", ge=0)
    #: Least time a 401 takes from the start of its tenant lookup (`tenants.RefusalFloor`): longer
    #: than a Secrets Manager round trip, so a probe cannot tell a cached tenant from an unknown id.
    unauthorized_floor_seconds: float = Field(0.1, alias="UNAUTHORIZED_FLOOR_SECONDS", ge=0, le=2)
    #: Overrides of the regional endpoints (local sink, tests). Empty means Segment's own.
    segment_url_us: str = Field("", alias="SEGMENT_URL_US")
    segment_url_eu: str = Field("", alias="SEGMENT_URL_EU")
    segment_timeout_seconds: float = Field(10.0, alias="SEGMENT_TIMEOUT_SECONDS", gt=0)
    #: Overrides of the regional OAuth token servers (the local sink emulates one; tests). Empty means
    #: Segment's own (`limits.SEGMENT_OAUTH_SERVERS`); tokens come from `{server}/token`.
    segment_oauth_url_us: str = Field("", alias="SEGMENT_OAUTH_URL_US")
    segment_oauth_url_eu: str = Field("", alias="SEGMENT_OAUTH_URL_EU")
    #: The public (webhook) API's root URL, `https://{api}.execute-api.{region}.amazonaws.com/prod`: the
    #: admin API builds from it each tool's webhook URL and the destination URL a tenant pastes.
    #: Set by the template on the admin function only.
    public_api_url: str = Field("", alias="PUBLIC_API_URL")
    #: Must equal the queue's RedrivePolicy.maxReceiveCount: on that attempt the forwarder itself
    #: dead-letters a failing record with its reason instead of letting SQS move it silently. A
    #: backstop only (SQS's largest value): the backoff schedule never needs it within the age limit
    #: (forward/policy.py, docs/delivery.md "The backstop").
    max_receive_count: int = Field(SQS_MAX_RECEIVE_COUNT, alias="MAX_RECEIVE_COUNT", ge=1, le=SQS_MAX_RECEIVE_COUNT)
    #: A record that still fails after this many hours in the queue is dead-lettered with its last
    #: reason. 168 h rides out a week-long Segment outage; at most 335 h, so a record is received and
    #: given up (the backoff cap plus a slot after the limit) before the queue's 14-day retention.
    max_delivery_age_hours: float = Field(168.0, alias="MAX_DELIVERY_AGE_HOURS", gt=0, le=335)
    #: Backoff across receives (forward/policy.py): the first wait and its cap, in seconds. The
    #: defaults are that module's REDELIVERY_BASE_SECONDS / REDELIVERY_CAP_SECONDS (a unit test keeps
    #: them equal); the local stack and tests shorten them.
    redelivery_base_seconds: float = Field(30.0, alias="REDELIVERY_BASE_SECONDS", ge=1, le=900)
    #: While a region's circuit breaker is open, one probe per this many seconds per instance
    #: (forward/breaker.py's PROBE_INTERVAL_SECONDS; the local stack shortens it).
    breaker_probe_seconds: float = Field(60.0, alias="BREAKER_PROBE_SECONDS", ge=0.1, le=3600)
    redelivery_cap_seconds: float = Field(900.0, alias="REDELIVERY_CAP_SECONDS", ge=1, le=SQS_MAX_VISIBILITY_SECONDS)
    #: Segment's partner cap on requests per second, for the whole deployment.
    partner_requests_per_second: float = Field(50.0, alias="PARTNER_REQUESTS_PER_SECOND", gt=0, le=50)
    #: The forwarder's event source MaximumConcurrency: at most this many instances run at once.
    forwarder_max_concurrency: int = Field(2, alias="FORWARDER_MAX_CONCURRENCY", ge=1)
    #: The identity loop's DynamoDB table (empty: the loop is off in this deployment).
    identity_table_name: str = Field("", alias="IDENTITY_TABLE_NAME")
    #: Table shared by all ingest instances for single-use signature tokens (Mailgun). Empty: an
    #: in-memory guard per instance, which only catches replays that reach the same instance.
    replay_table_name: str = Field("", alias="REPLAY_TABLE_NAME")
    #: How long an identify keeps an email/phone/anonymousId -> userId link alive without a refresh.
    identity_ttl_days: int = Field(400, alias="IDENTITY_TTL_DAYS", ge=1, le=3650)
    #: Most Segment messages one destination request may carry; above it Segment sees a 413 that
    #: says to lower the batch size (everything must be applied within Segment's 5 s timeout).
    destination_max_batch: int = Field(1000, alias="DESTINATION_MAX_BATCH", ge=1, le=4000)

    model_config = {"populate_by_name": True}

    @property
    def instance_requests_per_second(self) -> float:
        """Each instance's share of the partner cap, so the fleet as a whole stays under it."""
        return self.partner_requests_per_second / self.forwarder_max_concurrency

    @field_validator("secrets_prefix")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    known = {field.alias for field in Settings.model_fields.values()}
    return Settings.model_validate({key: value for key, value in os.environ.items() if key in known})
