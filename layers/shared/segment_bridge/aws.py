"""What every AWS adapter of ours shares: lazily made clients, and how failures are classified.

The adapters themselves live next to the feature they serve (the SQS queue with ingest, the DLQ
with forward, the replay table with ingest, the identity table with identity), as Powertools keeps
`idempotency/persistence/` inside idempotency. Each takes its client through its constructor, so
tests pass a moto-backed or fake one without patching module paths.

Clients are created lazily (a boto3 client made before moto starts is not mocked) and honour
`AWS_ENDPOINT_URL`, which is how `make run` points everything at the embedded moto server.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any, ClassVar

#: Error codes that mean "slow down", whatever the service: the caller should retry later (429).
THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "Throttling",
    }
)


@cache
def client(service: str, connect_timeout: float = 2, read_timeout: float = 5, max_attempts: int = 3) -> Any:
    import boto3
    from botocore.config import Config

    # boto3-stubs type `boto3.client` per literal service name; ours takes the name as data.
    make_client: Callable[..., Any] = boto3.client
    # Tight timeouts: the webhook caller waits on us, and SQS answers in milliseconds when healthy.
    # Callers with a harder deadline (the Segment destination: 5 s in all) pass tighter ones.
    config = Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"mode": "standard", "max_attempts": max_attempts},
    )
    return make_client(service, config=config)


class AwsAdapter:
    """Base of an adapter over one AWS service: `self.client` is the injected client, or the
    process-wide one (with `client_options`: timeouts, attempts) made on first use."""

    service: ClassVar[str]

    def __init__(self, aws_client: Any = None, **client_options: float) -> None:
        self._client = aws_client
        self._client_options = client_options

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = client(self.service, **self._client_options)
        return self._client


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore `ClientError`, or the exception's class name (timeouts,
    connection errors): what logs and metrics name, never the message (it can quote input)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
    return type(exc).__name__
