"""Build real Lambda events (API Gateway REST proxy v1, SQS) and a Lambda context.

Used by the local stack, by tests and by `events/` generation, so all three feed the handlers
the same shapes API Gateway and the SQS event source mapping produce.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl


def api_gateway_event(
    method: str,
    path: str,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    query: str = "",
    stage: str = "Prod",
    domain: str = "localhost",
    source_ip: str = "127.0.0.1",
    path_parameters: Mapping[str, str] | None = None,
    resource: str | None = None,
    iam_identity: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A REST API (payload v1) proxy event. Bodies are base64, as with BinaryMediaTypes '*/*'.

    The resource and path parameters are inferred from the path for the API's two routes.
    `iam_identity`: what API Gateway's AWS_IAM authorizer adds to `requestContext.identity` for a
    SigV4-signed request (`userArn`, `caller`, `accountId`, `accessKey`; see `iam_identity`).
    """
    header_map = dict(headers or {})
    multi_headers: dict[str, list[str]] = {}
    for name, value in header_map.items():
        multi_headers.setdefault(name, []).append(value)
    pairs = parse_qsl(query, keep_blank_values=True)
    parts = path.strip("/").split("/")
    if len(parts) == 3 and parts[:2] == ["v1", "segment"]:
        inferred_resource, inferred = "/v1/segment/{tenant}", {"tenant": parts[2]}
    elif len(parts) == 4 and parts[:2] == ["v1", "webhooks"]:
        inferred_resource, inferred = "/v1/webhooks/{source}/{tenant}", {"source": parts[2], "tenant": parts[3]}
    else:
        inferred_resource, inferred = "/v1/webhooks/{source}/{tenant}", {}
    resource = resource or inferred_resource
    if path_parameters is None:
        path_parameters = inferred
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": header_map,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": dict(pairs) or None,
        "multiValueQueryStringParameters": ({k: [v for kk, v in pairs if kk == k] for k, _ in pairs} or None),
        "pathParameters": dict(path_parameters) or None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/{stage}{path}",
            "stage": stage,
            "requestId": str(uuid.uuid4()),
            "domainName": domain,
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": source_ip, "userAgent": header_map.get("User-Agent", ""), **(iam_identity or {})},
            "accountId": "123456789012",
            "apiId": "local",
            "protocol": "HTTP/1.1",
        },
        "body": base64.b64encode(body).decode("ascii") if body else None,
        "isBase64Encoded": bool(body),
    }


def iam_identity(arn: str = "arn:aws:sts::123456789012:assumed-role/partner-backend/settings-page") -> dict[str, str]:
    """`requestContext.identity` fields API Gateway sets after verifying a SigV4 signature (AWS_IAM auth)."""
    return {
        "userArn": arn,
        "caller": "AROAEXAMPLEROLEID:settings-page",
        "user": "AROAEXAMPLEROLEID:settings-page",
        "accountId": arn.split(":")[4],
        "accessKey": "ASIAEXAMPLEACCESSKEY",
    }


def sqs_event(
    messages: list[Mapping[str, Any]], queue_arn: str = "arn:aws:sqs:us-east-1:123456789012:segment-bridge"
) -> dict[str, Any]:
    """An SQS event as the Lambda event source mapping delivers it, from ReceiveMessage results."""
    records = []
    for message in messages:
        attributes = dict(message.get("Attributes") or {})
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message.get("ReceiptHandle", ""),
                "body": message["Body"],
                "attributes": {
                    "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
                    "SentTimestamp": attributes.get("SentTimestamp", str(int(time.time() * 1000))),
                    "SenderId": attributes.get("SenderId", "AIDAEXAMPLE"),
                    "ApproximateFirstReceiveTimestamp": attributes.get(
                        "ApproximateFirstReceiveTimestamp", str(int(time.time() * 1000))
                    ),
                },
                "messageAttributes": {
                    name: {
                        "stringValue": value.get("StringValue"),
                        "dataType": value.get("DataType", "String"),
                        "stringListValues": [],
                        "binaryListValues": [],
                    }
                    for name, value in (message.get("MessageAttributes") or {}).items()
                },
                "md5OfBody": message.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": queue_arn.split(":")[3],
            }
        )
    return {"Records": records}


@dataclass
class LocalLambdaContext:
    """Enough of LambdaContext for Powertools (logger, batch) and our deadline checks."""

    function_name: str = "segment-bridge-local"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:segment-bridge-local"
    aws_request_id: str = ""
    timeout_seconds: float = 60.0

    def __post_init__(self) -> None:
        self.aws_request_id = self.aws_request_id or str(uuid.uuid4())
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
