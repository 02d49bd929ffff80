"""`python -m bench [--quick] [--only forward,ingest,...] [--no-write]`: run the benchmarks, print the
table, and write it to docs/benchmarks.md (full runs only, unless --write is given).

Every section runs to the end even when another fails; a failure is printed with its traceback,
shown in the table, and makes the command exit 1. `make test` runs every section at `--smoke`
size (tests/unit/test_bench_smoke.py), so a benchmark that no longer matches the code fails CI.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from . import bench_chaos, bench_conformance, bench_libraries, bench_outage, coldstart, forward, ingest, report, scale
from .common import ROOT, Section, Service, Sink, aws_env, machine_info, start_moto, start_sink
from .messages import TENANTS, prepare, write_key

FULL_N = 100_000
QUICK_N = 5_000
SMOKE_N = 300
SECTIONS = ("forward", "ingest", "coldstart", "chaos", "conformance", "outage", "libraries")
#: Sections that need no shared services, each `section(size, log) -> Section`.
STANDALONE: dict[str, Callable[[str, Callable[[str], None]], Section]] = {
    "chaos": bench_chaos.section,
    "conformance": bench_conformance.section,
    "outage": bench_outage.section,
    "libraries": bench_libraries.section,
}


class Context:
    def __init__(self, n: int, quick: bool, log: Callable[[str], None], smoke: bool = False) -> None:
        self.n = n
        self.quick = quick or smoke
        #: Tiny repetitions, for tests/unit/test_bench_smoke.py: checks the code runs, not the figures.
        self.smoke = smoke
        self.log = log
        self.services: list[Service] = []
        self.records_path = self.calls_path = ""
        self.moto: Service
        self.sink: Sink
        self.dlq_url = ""
        self.mean_message_bytes = 0.0
        self.profile_dir: str | None = None
        #: Forwarding rounds: the contenders take turns, so a noisy period hits all of them.
        self.rounds = 1 if smoke else 2 if quick else 4

    def __enter__(self) -> Context:
        self.log("starting moto server and Segment sink (separate processes)")
        self.moto = start_moto()
        self.services.append(self.moto)
        sink = start_sink()
        self.services.append(sink)
        self.sink = Sink(sink.url)
        self._create_resources()
        meta = prepare(self.n, Path(tempfile.gettempdir()) / "segment-bridge-bench", self.log)
        self.records_path, self.calls_path = meta["records"], meta["calls"]
        self.mean_message_bytes = meta["mean_bytes"]
        return self

    def __exit__(self, *exc: Any) -> None:
        for service in reversed(self.services):
            service.stop()

    def _create_resources(self) -> None:
        import boto3

        env = aws_env(self.moto.url)
        session = boto3.session.Session(
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name="us-east-1",
        )
        sqs = session.client("sqs", endpoint_url=self.moto.url)
        self.dlq_url = sqs.create_queue(QueueName="bench-dlq")["QueueUrl"]
        secrets = session.client("secretsmanager", endpoint_url=self.moto.url)
        for tenant, _, region in TENANTS:
            secrets.create_secret(
                Name=f"segment-bridge/tenants/{tenant}",
                SecretString=json.dumps({"write_key": write_key(tenant), "region": region, "sources": {}}),
            )


def guarded(name: str, run: Callable[[], Section | list[Section]], failures: list[str]) -> list[Section]:
    """Run one section; a failure is recorded (and printed) instead of stopping the others."""
    try:
        result = run()
    except Exception:
        trace = traceback.format_exc()
        print(trace, file=sys.stderr, flush=True)
        failures.append(name)
        return [Section(f"{name}: FAILED", notes=["failed:\n" + trace])]
    return result if isinstance(result, list) else [result]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help=f"smaller run ({QUICK_N:,} messages, fewer repetitions)")
    parser.add_argument(
        "-n", type=int, default=None, help=f"messages for the forwarding benchmark (default {FULL_N:,})"
    )
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated: " + ",".join(SECTIONS))
    parser.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)  # tiny run for the smoke test
    parser.add_argument(
        "--profile", default=None, metavar="DIR", help="write pyinstrument profiles of the measured parts into DIR"
    )
    parser.add_argument("--write", action="store_true", help="write docs/benchmarks.md even for --quick / partial runs")
    parser.add_argument("--no-write", action="store_true", help="do not write docs/benchmarks.md")
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args(argv)

    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    n = args.n or (SMOKE_N if args.smoke else QUICK_N if args.quick else FULL_N)
    started = time.perf_counter()
    started_at = datetime.now(UTC)
    machine = machine_info()

    def log(line: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {line}", file=sys.stderr, flush=True)

    log(f"machine: {machine['nproc']} cores, {machine['cpu']}, Python {machine['python']}, load {machine['load']}")
    size = "smoke" if args.smoke else "quick" if args.quick else "full"
    sections: list[Section] = []
    failures: list[str] = []
    forward_section: Section | None = None
    ingest_section: Section | None = None
    if "forward" in only or "ingest" in only:
        with Context(n, args.quick, log, smoke=args.smoke) as ctx:
            ctx.profile_dir = args.profile
            if "forward" in only:
                sections += guarded("forward", lambda: forward.run(ctx), failures)
                forward_section = None if "forward" in failures else sections[-1]
            if "ingest" in only:
                sections += guarded("ingest", lambda: ingest.run(ctx), failures)
                ingest_section = None if "ingest" in failures else sections[-1]
    if "coldstart" in only:
        sections += guarded(
            "coldstart", lambda: coldstart.run(quick=args.quick, log=log, repeats=1 if args.smoke else None), failures
        )
    if forward_section is not None:
        sections += guarded("scale", lambda: scale.run(forward_section, ingest_section), failures)
    for name, run_section in STANDALONE.items():
        if name in only:
            log(f"{name}: {size} run")
            sections += guarded(name, partial(run_section, size, log), failures)

    elapsed = time.perf_counter() - started
    given = sys.argv[1:] if argv is None else argv
    command = "make bench  (= .venv/bin/python -m bench" + (" " + " ".join(given) if given else "") + ")"
    meta = {
        "command": command,
        "date": started_at.strftime("%Y-%m-%d %H:%M UTC"),
        "elapsed": f"{elapsed:.0f} s",
        "n": f"{n:,}",
        **machine,
        "load_end": machine_info()["load"],
    }
    print(report.console(sections, meta))
    full = not args.quick and not args.smoke and only == list(SECTIONS) and args.n in (None, FULL_N)
    if not args.no_write and (full or args.write):
        path = Path(args.output)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(report.markdown(sections, meta))
        log(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    if failures:
        log(f"FAILED sections: {', '.join(failures)} (tracebacks above)")
        return 1
    log(f"done in {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
