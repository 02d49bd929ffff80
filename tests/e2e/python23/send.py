"""Sends calls with segment-analytics-python 2.3.x, unmodified, and prints what the library reported as JSON.

    PYTHONPATH=LIBS_DIR python send.py < {"version": "2.3.6", "host": ..., "writeKey": ..., "client": {...},
                                          "calls": [{"method": "track", "args": [...], "kwargs": {...}}]}

LIBS_DIR is where `pip install --target LIBS_DIR segment-analytics-python==2.3.x` put the package
(tests/e2e/test_segment_libraries.py does it); it must come before the environment's site-packages, which
hold another release. `client` is passed to `Client(...)` as keyword arguments (gzip, max_retries,
sync_mode...). stdout gets one JSON object:

    {"version", "module", "calls": [{"method", "queued", "message", "error"}],
     "errors": [{"status", "code", "message", "messageIds"}]}

`calls[i].message` is the message as the library queued it (its messageId, timestamp...); `error` is what a
call raised (sync_mode); `errors` are the library's on_error reports, one per failed request.
"""

import json
import sys

from segment.analytics import Client
from segment.analytics.request import APIError
from segment.analytics.version import VERSION


def described(error: Exception) -> dict:
    if isinstance(error, APIError):
        return {"status": error.status, "code": error.code, "message": error.message}
    return {"status": None, "code": type(error).__name__, "message": str(error)}


def main() -> None:
    spec = json.load(sys.stdin)
    if spec["version"] != VERSION:  # the environment's own release shadowed the one under test
        sys.exit(
            f"imported segment-analytics-python {VERSION} from {sys.modules['segment.analytics'].__file__}, "
            f"expected {spec['version']}"
        )
    out = {"version": VERSION, "module": sys.modules["segment.analytics"].__file__, "calls": [], "errors": []}

    def on_error(error: Exception, batch: list) -> None:
        out["errors"].append({**described(error), "messageIds": [m["messageId"] for m in batch]})

    client = Client(write_key=spec["writeKey"], host=spec["host"], on_error=on_error, **spec.get("client", {}))
    for call in spec["calls"]:
        entry = {"method": call["method"], "queued": False, "message": None, "error": None}
        try:
            entry["queued"], entry["message"] = getattr(client, call["method"])(
                *call.get("args", []), **call.get("kwargs", {})
            )
        except Exception as error:  # sync_mode raises what the request got
            entry["error"] = described(error)
        out["calls"].append(entry)
    if not client.sync_mode:  # join() has no consumers to end in sync_mode and raises TypeError (2.3.6 and 2.4.0)
        client.flush()
        client.join()
    json.dump(out, sys.stdout, default=str)


if __name__ == "__main__":
    main()
