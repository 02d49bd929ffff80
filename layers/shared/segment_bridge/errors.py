"""Domain errors that carry the HTTP status a caller should see: a request refused as a whole.

The API handlers map each to `{"message": ...}` with its status (`apigw.install_error_handlers`);
nothing else in the package knows about HTTP. Messages are written for the caller: they say what
to fix, never echo a secret. They carry nothing else: what became of a request that was handled
(accepted, skipped and rejected events) is a result value, never an exception.
"""

from __future__ import annotations


class BridgeError(Exception):
    status_code = 400
    #: A short machine-readable name of the error, for answers whose callers read one (Segment's libraries
    #: print `code: message`, so the Tracking API routes add it; other routes answer `{"message"}` alone).
    code = "invalid_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict[str, str]:
        return {"message": self.message}


class MalformedRequest(BridgeError):
    status_code = 400


class Unauthorized(BridgeError):
    """Bad signature and unknown tenant share this error and text, so tenants cannot be enumerated."""

    status_code = 401
    code = "unauthorized"

    def __init__(self, message: str = "signature verification failed or unknown tenant") -> None:
        super().__init__(message)


class Forbidden(BridgeError):
    """The admin API was called without an AWS IAM identity (API Gateway's AWS_IAM authorizer sets one)."""

    status_code = 403
    code = "forbidden"


class UnknownSource(BridgeError):
    status_code = 404
    code = "not_found"


class NotFound(BridgeError):
    """The admin API: no such tenant (the API is IAM-authorized, so saying so reveals nothing)."""

    status_code = 404
    code = "not_found"


class Conflict(BridgeError):
    """The admin API: the request contradicts the tenant's state (e.g. replacing an active OAuth key)."""

    status_code = 409
    code = "conflict"


class PayloadTooLarge(BridgeError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(BridgeError):
    status_code = 415
    code = "unsupported_media_type"


class Throttled(BridgeError):
    """A dependency throttled us (DynamoDB capacity): the caller should retry later; Segment does on 429."""

    status_code = 429
    code = "throttled"


class UnsupportedCallType(BridgeError):
    """A Segment call type the destination does not implement; 501 is what Segment's partner docs ask for."""

    status_code = 501
    code = "not_implemented"


class ServiceUnavailable(BridgeError):
    """A dependency (SQS, Secrets Manager) failed: the tool should retry; ids are stable so no duplicates."""

    status_code = 503
    code = "unavailable"


class TenantConfigError(Exception):
    """A tenant's secret exists but is unusable. Logged for the operator; callers see a 503."""
