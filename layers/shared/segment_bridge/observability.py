"""Process-wide Logger and Metrics, created once (Powertools' recommended pattern)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

SERVICE = "segment-bridge"
NAMESPACE = "SegmentBridge"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
