"""Benchmark 3: cold start of each handler module, against `import boto3` in the same run.

Every sample is a fresh interpreter (`python -c ...`), as a new Lambda execution environment is.
Inside it we time (CPU and wall time): the import of the handler module (what Lambda's INIT phase
runs), then the first-invocation setup its first request pays (settings, the tenant directory with
its Secrets Manager client, the SQS adapter and its boto3 client, the Segment HTTP session); no
network calls. The baseline, `import boto3` timed the same way in its own fresh interpreter, is what
every Python Lambda that talks to AWS pays anyway. Samples are interleaved (boto3, forward,
ingest, boto3, ...) and the fastest of each is reported, with the whole process's wall time too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from .common import HANDLER_DIRS, PYTHON, ROOT, Section

PROBE = r"""
import json, os, sys, time
sys.path[:0] = {paths!r}
c0, t0 = time.process_time(), time.perf_counter()
{import_line}
c1, t1 = time.process_time(), time.perf_counter()
after_import = {{"boto3_loaded": "boto3" in sys.modules, "modules": len(sys.modules)}}
{setup}
c2, t2 = time.process_time(), time.perf_counter()
print(json.dumps({{"import": t1 - t0, "setup": t2 - t1, "import_cpu": c1 - c0, "setup_cpu": c2 - c1, **after_import,
                  "modules_after_setup": len(sys.modules)}}))
"""

SETUP = {
    "boto3": "",
    # What each handler's first invocation builds before doing any work (all cached afterwards).
    "forward_handler": "f = forward_handler.get_forwarder()\nfrom segment_bridge import aws\naws.client('sqs')",
    "ingest_handler": "i = ingest_handler.get_ingestor()\ngetattr(i.queue, 'sqs', None)",
}

#: The third-party libraries each handler imports, alone: what its import costs before any of our own
#: code runs (defining one small model is what builds pydantic's model machinery, as our first model does).
_PYDANTIC_MODEL = "import pydantic\nclass _Probe(pydantic.BaseModel):\n    x: int = 0"
LIBRARIES = {
    "forward_handler": (
        "Powertools Logger/Metrics, pydantic models, requests",
        f"import aws_lambda_powertools.logging, aws_lambda_powertools.metrics\n{_PYDANTIC_MODEL}\nimport requests",
    ),
    "ingest_handler": (
        "Powertools Logger/Metrics/event handler, pydantic models",
        "import aws_lambda_powertools.logging, aws_lambda_powertools.metrics, "
        f"aws_lambda_powertools.event_handler\n{_PYDANTIC_MODEL}",
    ),
}

#: After the forwarder's own setup: the first assertion of an OAuth tenant, timed on its own.
OAUTH_SETUP = """
jwt_at_import = "jwt" in sys.modules
o0 = time.process_time()
from segment_bridge.forward import OAuthCredentials, load_private_key, make_assertion
creds = OAuthCredentials("t", "app", "key", {pem!r})
make_assertion(creds, "https://oauth2.segment.io", time.time(), "jti", key=load_private_key(creds.private_key))
after_import["oauth_cpu"] = time.process_time() - o0
after_import["jwt_at_import"] = jwt_at_import
"""


@cache
def oauth_pem() -> str:
    from segment_bridge.admin import generate_key_pair

    return generate_key_pair().private_pem


ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/segment-bridge",
    "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/segment-bridge-dlq",
    "POWERTOOLS_SERVICE_NAME": "segment-bridge",
    "POWERTOOLS_LOG_LEVEL": "INFO",
}


def probe(module: str, unbuilt: Path | None = None) -> dict[str, Any]:
    """`module`: a handler, `boto3`, `libraries:<handler>` (that handler's libraries, no setup) or
    `unbuilt:<handler>` (the handler imported from `unbuilt`, a copy without bytecode)."""
    kind, _, handler = module.partition(":")
    paths = [str(d) for d in HANDLER_DIRS] + [str(ROOT)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    # The deployed layer ships bytecode (layers/shared/Makefile): let the discarded first round write it
    # here too, whatever the calling shell says (these machines export PYTHONDONTWRITEBYTECODE=1).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if kind == "libraries":
        import_line, setup = LIBRARIES[handler][1], ""
    elif kind == "unbuilt":
        assert unbuilt is not None
        import_line, setup, paths = f"import {handler}", "", [str(unbuilt)]
        env["PYTHONDONTWRITEBYTECODE"] = "1"  # like a read-only /opt: every run compiles again
    elif kind == "oauth":
        # The forwarder's import and setup, then what an OAuth tenant's first token adds on top: PyJWT's
        # import (with cryptography's RSA), loading the tenant's key and signing one assertion. The
        # key is made beforehand (making keys is the admin API's work, not the forwarder's).
        import_line = f"import {handler}"
        setup = SETUP[handler] + OAUTH_SETUP.format(pem=oauth_pem())
    else:
        import_line, setup = f"import {module}", SETUP[module]
    code = PROBE.format(paths=paths, import_line=import_line, setup=setup)
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


def copy_without_bytecode(target: Path) -> Path:
    """What the handlers import from outside the standard library (the layer's packages, ours, the
    handler modules), copied into `target` without any bytecode: the layer as SAM's python3.13
    builder used to ship it, where Lambda's read-only /opt meant compiling every module again at
    every cold start (layers/shared/Makefile now ships compiled bytecode)."""
    finder = (
        "import json, sys, sysconfig\n"
        f"sys.path[:0] = {[str(d) for d in HANDLER_DIRS] + [str(ROOT)]!r}\n"
        "import forward_handler, ingest_handler\n"
        "std = sysconfig.get_paths()['stdlib']  # (in a venv, platstdlib holds site-packages)\n"
        "files = {getattr(m, '__file__', None) for m in list(sys.modules.values())}\n"
        "print(json.dumps(sorted(f for f in files if f and not f.startswith(std))))"
    )
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}, **ENV}
    files = json.loads(
        subprocess.run(
            [PYTHON, "-c", finder], cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=120
        ).stdout
    )
    roots = [*HANDLER_DIRS, ROOT / "layers" / "shared", *(Path(p) for p in sys.path if p.endswith("site-packages"))]
    tops = set()
    for file in map(Path, files):
        root = next((r for r in roots if file.is_relative_to(r)), None)
        if root is not None:
            tops.add((root, file.relative_to(root).parts[0]))
    for root, top in tops:
        source = root / top
        if source.is_dir():
            shutil.copytree(source, target / top, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
        else:
            shutil.copy2(source, target / top)
    return target


def measure(repeats: int, unbuilt: Path) -> dict[str, list[dict[str, Any]]]:
    modules = [
        *SETUP,
        *(f"libraries:{handler}" for handler in LIBRARIES),
        *(f"unbuilt:{handler}" for handler in LIBRARIES),
        "oauth:forward_handler",
    ]
    samples: dict[str, list[dict[str, Any]]] = {m: [] for m in modules}
    for module in modules:  # compile .pyc files and warm the page cache; not counted
        probe(module, unbuilt)
    for _ in range(repeats):
        for module in modules:
            samples[module].append(probe(module, unbuilt))
    return samples


def run(quick: bool, log: Callable[[str], None], repeats: int | None = None) -> Section:
    repeats = repeats or (3 if quick else 11)
    log(f"cold start: {repeats} fresh interpreters each for import boto3, forward_handler, ingest_handler")
    with tempfile.TemporaryDirectory(prefix="bench-unbuilt-") as tmp:
        samples = measure(repeats, copy_without_bytecode(Path(tmp)))

    # The fastest sample of each: noise (another process, a slower spell of the shared host) only
    # ever adds time, so the minimum is the steadiest estimate of what the import itself costs
    # (timeit's reasoning); medians of the same samples swung the ratios by 15 % between runs.
    def cpu(name: str, *keys: str) -> float:
        return min(sum(s[k] for k in keys or ("import_cpu",)) for s in samples[name])

    def wall(name: str) -> float:
        return min(s["import"] for s in samples[name])

    base, base_wall = cpu("boto3"), wall("boto3")
    base_process = min(s["process"] for s in samples["boto3"])
    section = Section("3. Cold start: handler import and first-invocation setup, against `import boto3`")
    section.add(
        "Baseline: `import boto3` (fastest sample: CPU time; wall time; absolute for orientation)",
        f"{base * 1000:.0f} ms CPU; {base_wall * 1000:.0f} ms wall; whole `python -c` process "
        f"{base_process * 1000:.0f} ms",
    )
    data: dict[str, Any] = {"boto3": base}
    for module in ("forward_handler", "ingest_handler"):
        imp = cpu(module)
        total = cpu(module, "import_cpu", "setup_cpu")
        process = min(s["process"] for s in samples[module])
        loaded = samples[module][0]["boto3_loaded"]
        libraries = cpu(f"libraries:{module}")
        section.add(
            f"{module}: import / `import boto3` (CPU time; wall time)",
            f"{imp / base:.2f}x (wall {wall(module) / base_wall:.2f}x)",
            "<= 1.3x",
            imp / base <= 1.3,
        )
        section.add(
            f"{module}: its libraries alone ({LIBRARIES[module][0]}) / `import boto3`", f"{libraries / base:.2f}x"
        )
        section.add(
            f"{module}: the bridge's own modules (import - libraries) / `import boto3`",
            f"{(imp - libraries) / base:.2f}x",
        )
        unbuilt = cpu(f"unbuilt:{module}")
        section.add(
            f"{module}: import from a layer without bytecode (as SAM's python builder shipped it) / `import boto3`",
            f"{unbuilt / base:.2f}x ({unbuilt / imp:.1f}x the compiled layer)",
        )
        section.add(f"{module}: import + first-invocation setup / `import boto3`", f"{total / base:.2f}x")
        section.add(f'{module}: whole process / `python -c "import boto3"` process', f"{process / base_process:.2f}x")
        section.add(
            f"{module}: boto3 imported by the handler import itself", "yes" if loaded else "no (deferred to setup)"
        )
        data[module] = {"import": imp, "total": total, "process": process, "libraries": libraries, "unbuilt": unbuilt}
    oauth_samples = samples["oauth:forward_handler"]
    oauth_cpu = min(sample["oauth_cpu"] for sample in oauth_samples)
    forward_total = data["forward_handler"]["total"]
    section.add(
        "forward_handler: PyJWT imported by the handler import or its setup",
        "yes" if oauth_samples[0]["jwt_at_import"] else "no (only an OAuth tenant's first token imports it)",
    )
    section.add(
        "forward_handler: an OAuth tenant's first assertion (import PyJWT + cryptography RSA, load key, sign) "
        "/ `import boto3`",
        f"{oauth_cpu / base:.2f}x ({oauth_cpu * 1000:.0f} ms CPU)",
    )
    section.add(
        "forward_handler: import + setup + first OAuth assertion / import + setup",
        f"{(forward_total + oauth_cpu) / forward_total:.2f}x",
    )
    data["oauth_first_assertion"] = oauth_cpu
    section.notes += [
        "OAuth (issue 16): PyJWT is imported lazily, by the first assertion of a tenant sent with OAuth, so a "
        "deployment without OAuth tenants pays nothing; the rows above time that first assertion in the same "
        "fresh interpreter right after the forwarder's setup (later assertions reuse the loaded key, and a "
        "token lasts days).",
        f"{repeats} samples of each, interleaved, after one discarded round that compiles bytecode; each figure "
        "is the fastest sample (noise only adds time; medians swung the ratios by 15 % between runs on this "
        "shared machine). Import and setup are timed inside the fresh interpreter, so interpreter start-up is "
        "excluded from those ratios (the whole-process ratio includes it on both sides). Ratios are of CPU time "
        "(process_time: an import is CPU work), with the wall-time ratio beside it.",
        "`Its libraries alone`: the same fresh-interpreter timing of importing only the third-party packages the "
        "handler imports (and defining one pydantic model, which builds pydantic's machinery as the first model of "
        "ours does), so the rest is what the bridge's own modules add.",
        "`A layer without bytecode`: the handler and everything it imports from outside the standard library, "
        "copied without __pycache__ and imported with PYTHONDONTWRITEBYTECODE, as Lambda ran the layer SAM's "
        "python3.13 builder made (no .pyc, and /opt is read-only, so nothing is ever cached). The layer is now "
        "built by layers/shared/Makefile with compiled bytecode, so the main rows are what Lambda runs.",
        "First-invocation setup = `get_forwarder()` / `get_ingestor()` (settings, tenant directory, Segment "
        "session, DLQ/SQS adapters) plus creating the SQS client they use; no network calls. Lambda runs the "
        "import in INIT (at full CPU, up to 10 s) and the setup in the first request.",
    ]
    section.data = data
    return section
