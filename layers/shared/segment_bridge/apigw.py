"""What every API Gateway handler of ours shares: the raw body of a REST proxy event, bounded JSON
answers, and one set of error handlers (a `BridgeError` is its status with `{"message": ...}`, an
unknown route a 404 that names the right one, anything unexpected a logged 500)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from .errors import BridgeError, MalformedRequest
from .limits import MAX_REPORT_TEXT_CHARS, MAX_RESPONSE_BYTES
from .observability import logger, metrics


def json_response(status: int, body: dict[str, Any]) -> Response[str]:
    return Response(status_code=status, content_type="application/json", body=encode_bounded(body))


def encode_bounded(body: dict[str, Any], max_bytes: int = MAX_RESPONSE_BYTES) -> str:
    """`json.dumps(body)`, unless that exceeds `max_bytes`: then the lists are trimmed to fit.

    Per-event reports quote the sender's input (event names, keys), so a hostile request could
    otherwise make a response larger than Lambda's 6 MB payload limit, which API Gateway turns
    into a 502. A trimmed body says so: `"truncated": true` and `"omitted": {list: count}`.
    Lists keep their order and are filled in the body's key order (messageIds first).
    """
    text = json.dumps(body)
    if len(text) <= max_bytes:
        return text
    lists = [key for key, value in body.items() if isinstance(value, list)]
    out: dict[str, Any] = {key: _clip(value) for key, value in body.items() if key not in lists}
    out["truncated"] = True
    omitted = {key: len(body[key]) for key in lists}
    out["omitted"] = omitted  # full counts while sizing: the final counts are never longer
    used = len(json.dumps(out)) + sum(len(json.dumps(key)) + 4 for key in lists)
    for key in lists:
        kept: list[Any] = []
        for item in body[key]:
            item = _clip(item)
            size = len(json.dumps(item)) + 2
            if used + size > max_bytes:
                break
            kept.append(item)
            used += size
        out[key] = kept
        omitted[key] = len(body[key]) - len(kept)
    out["omitted"] = {key: count for key, count in omitted.items() if count}
    return json.dumps(out)


def _clip(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_REPORT_TEXT_CHARS:
        return value[: MAX_REPORT_TEXT_CHARS - 1] + "\u2026"
    if isinstance(value, dict):
        return {key: _clip(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clip(item) for item in value]
    return value


def raw_body(event: APIGatewayProxyEvent) -> bytes:
    """The body byte for byte: with BinaryMediaTypes '*/*' API Gateway hands every body over as base64."""
    body = event.body or ""
    if event.is_base64_encoded:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedRequest("body is not valid base64") from None
    try:
        return body.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate API Gateway never produces: not text at all
        raise MalformedRequest("body is not valid UTF-8 text") from None


def error_response(name: str, error: BridgeError, body: dict[str, Any] | None = None) -> Response[str]:
    """A refused request's answer (`body`, by default `{"message": ...}`), counted as `{Name}Status{code}`;
    5xx and 429 are also logged (the caller will retry)."""
    metrics.add_metric(name=f"{name.capitalize()}Status{error.status_code}", unit=MetricUnit.Count, value=1)
    if error.status_code >= 500 or error.status_code == 429:
        logger.warning(f"{name} unavailable", extra={"status": error.status_code, "reason": error.message})
    return json_response(error.status_code, body if body is not None else error.body())


def install_error_handlers(app: APIGatewayRestResolver, *, name: str, route_hint: str, retry_hint: str) -> None:
    """The error answers of one API function (`name`: "ingest", "destination").

    A `BridgeError` is counted as `{Name}Status{code}` and answered with its status and message
    (5xx and 429 also logged: the caller will retry); an unknown route is a 404 that says
    `route_hint`; anything else is logged with its traceback and answered 500 with `retry_hint`.
    """

    @app.exception_handler(BridgeError)
    def handle_bridge_error(error: BridgeError) -> Response[str]:
        return error_response(name, error)

    @app.not_found
    def handle_not_found(_: Exception) -> Response[str]:
        return json_response(404, {"message": f"no such route; {route_hint}"})

    @app.exception_handler(Exception)
    def handle_unexpected(error: Exception) -> Response[str]:
        logger.exception(f"unhandled error in {name}")
        return json_response(500, {"message": f"internal error; {retry_hint}"})
