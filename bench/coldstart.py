"""Benchmark 3: cold start of each handler module, against `import boto3` in the same run.

Every sample is a fresh interpreter (`python -c ...`), as a new Lambda execution environment is.
Inside it we time, with perf_counter: the import of the handler module (what Lambda's INIT phase
runs), then the first-invocation setup its first request pays (settings, the tenant directory with
its Secrets Manager client, the SQS adapter and its boto3 client, the Segment HTTP session); no
network calls. The baseline, `import boto3` timed the same way in its own fresh interpreter, is what
every Python Lambda that talks to AWS pays anyway. Samples are interleaved (boto3, forward,
ingest, boto3, ...) and the median of each is reported, with the whole process's wall time too.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from typing import Any, Callable

from .common import HANDLER_DIRS, PYTHON, ROOT, Section, median

PROBE = r"""
import json, os, sys, time
sys.path[:0] = {paths!r}
t0 = time.perf_counter()
{import_line}
t1 = time.perf_counter()
after_import = {{"boto3_loaded": "boto3" in sys.modules, "modules": len(sys.modules)}}
{setup}
t2 = time.perf_counter()
print(json.dumps({{"import": t1 - t0, "setup": t2 - t1, **after_import, "modules_after_setup": len(sys.modules)}}))
"""

SETUP = {
    "boto3": "",
    # What each handler's first invocation builds before doing any work (all cached afterwards).
    "forward_handler": "f = forward_handler.get_forwarder()\n"
                       "from segment_bridge import aws\naws.client('sqs')",
    "ingest_handler": "i = ingest_handler.get_ingestor()\n"
                      "getattr(i.queue, 'sqs', None)",
}

ENV = {
    "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
    "QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/segment-bridge",
    "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/segment-bridge-dlq",
    "POWERTOOLS_SERVICE_NAME": "segment-bridge", "POWERTOOLS_LOG_LEVEL": "INFO",
}


def probe(module: str) -> dict[str, Any]:
    code = PROBE.format(paths=[str(d) for d in HANDLER_DIRS] + [str(ROOT)], import_line=f"import {module}",
                        setup=SETUP[module])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    env.update(ENV)
    env.pop("PYTHONPATH", None)
    start = time.perf_counter()
    completed = subprocess.run([PYTHON, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    process_wall = time.perf_counter() - start
    if completed.returncode != 0:
        raise RuntimeError(f"cold-start probe for {module} failed:\n{completed.stderr[-2000:]}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    result["process"] = process_wall
    return result


def measure(repeats: int) -> dict[str, list[dict[str, Any]]]:
    modules = list(SETUP)
    samples: dict[str, list[dict[str, Any]]] = {m: [] for m in modules}
    for module in modules:  # compile .pyc files and warm the page cache; not counted
        probe(module)
    for _ in range(repeats):
        for module in modules:
            samples[module].append(probe(module))
    return samples


def run(quick: bool, log: Callable[[str], None], repeats: int | None = None) -> Section:
    repeats = repeats or (3 if quick else 7)
    log(f"cold start: {repeats} fresh interpreters each for import boto3, forward_handler, ingest_handler")
    samples = measure(repeats)
    base = median([s["import"] for s in samples["boto3"]])
    base_process = median([s["process"] for s in samples["boto3"]])
    section = Section("3. Cold start: handler import and first-invocation setup, against `import boto3`")
    section.add("Baseline: `import boto3` (median, absolute for orientation)",
                f"{base * 1000:.0f} ms; whole `python -c` process {base_process * 1000:.0f} ms")
    data: dict[str, Any] = {"boto3": base}
    for module in ("forward_handler", "ingest_handler"):
        imp = median([s["import"] for s in samples[module]])
        total = median([s["import"] + s["setup"] for s in samples[module]])
        process = median([s["process"] for s in samples[module]])
        loaded = samples[module][0]["boto3_loaded"]
        section.add(f"{module}: import / `import boto3`", f"{imp / base:.2f}x", "<= 1.3x", imp / base <= 1.3)
        section.add(f"{module}: import + first-invocation setup / `import boto3`", f"{total / base:.2f}x")
        section.add(f"{module}: whole process / `python -c \"import boto3\"` process", f"{process / base_process:.2f}x")
        section.add(f"{module}: boto3 imported by the handler import itself", "yes" if loaded else "no (deferred to setup)")
        data[module] = {"import": imp, "total": total, "process": process}
    section.notes += [
        f"{repeats} samples of each, interleaved, after one discarded round that compiles bytecode; medians. "
        "Import and setup are timed inside the fresh interpreter (perf_counter), so interpreter start-up is "
        "excluded from those ratios; the whole-process ratio includes it on both sides.",
        "First-invocation setup = `get_forwarder()` / `get_ingestor()` (settings, tenant directory, Segment "
        "session, DLQ/SQS adapters) plus creating the SQS client they use; no network calls. Lambda runs the "
        "import in INIT (at full CPU, up to 10 s) and the setup in the first request.",
    ]
    section.data = data
    return section
