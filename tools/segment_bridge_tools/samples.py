"""The sample webhooks in events/ (one per built-in source), for `make run` and the debugger's
"Send test event". Their stored signatures are stale by design; `signing.sign` makes fresh ones.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"


@dataclass(frozen=True)
class Sample:
    source: str
    body: bytes
    #: Headers that are not signatures (the content type).
    headers: dict[str, str]


def load_samples(directory: Path = EVENTS_DIR) -> list[Sample]:
    """Each `webhook-*.json` API Gateway event in `directory`, in file name order."""
    samples = []
    for path in sorted(directory.glob("webhook-*.json")):
        event = json.loads(path.read_text())
        body = base64.b64decode(event["body"]) if event.get("isBase64Encoded") else (event.get("body") or "").encode()
        source = event["pathParameters"]["source"]
        content_type = next((v for k, v in event["headers"].items() if k.lower() == "content-type"), "application/json")
        samples.append(Sample(source, body, {"Content-Type": content_type}))
    return samples
