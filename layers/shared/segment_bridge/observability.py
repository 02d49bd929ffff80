"""Process-wide Logger and Metrics, created once (Powertools' recommended pattern)."""

from __future__ import annotations

import gc

from aws_lambda_powertools import Logger, Metrics

SERVICE = "segment-bridge"
NAMESPACE = "SegmentBridge"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


def freeze_setup_objects() -> None:
    """Take what imports and the one-time setup made out of the garbage collector's view.

    Those objects (modules, pydantic schemas, botocore models: ~90,000 of them) live as long as the
    execution environment, yet every full collection during a large webhook walked them again: about
    a tenth of a 1,000-event request's CPU (bench/FINDINGS.md). `gc.freeze` moves them to a
    permanent generation; collecting first (once per process: it is the costly part) keeps the
    garbage of imports from being frozen with them.
    """
    global _collected_before_freeze
    if not _collected_before_freeze:
        gc.collect()
        _collected_before_freeze = True
    gc.freeze()


_collected_before_freeze = False
