"""`python -m bench [--quick] [--only forward,ingest,coldstart] [--no-write]`: run the benchmarks,
print the table, and write it to docs/benchmarks.md (full runs only, unless --write is given)."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from . import coldstart, forward, ingest, report, scale
from .common import ROOT, Section, Service, Sink, aws_env, machine_info, start_moto, start_sink
from .messages import TENANTS, prepare, write_key

FULL_N = 100_000
QUICK_N = 5_000
SMOKE_N = 300
SECTIONS = ("forward", "ingest", "coldstart", "chaos", "conformance")
#: Benchmarks other workstreams add to bench/: run when present, through `run(quick=...)` returning
#: a Section, a list of them, a dict of figures or text; or else through `main()` with its output kept.
EXTERNAL = (("chaos", "bench.bench_chaos"), ("conformance", "bench.bench_conformance"))


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

    def __enter__(self) -> "Context":
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
        session = boto3.session.Session(aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")
        sqs = session.client("sqs", endpoint_url=self.moto.url)
        self.dlq_url = sqs.create_queue(QueueName="bench-dlq")["QueueUrl"]
        secrets = session.client("secretsmanager", endpoint_url=self.moto.url)
        for tenant, _, region in TENANTS:
            secrets.create_secret(Name=f"segment-bridge/tenants/{tenant}", SecretString=json.dumps(
                {"write_key": write_key(tenant), "region": region, "sources": {}}))


def run_external(name: str, module_name: str, quick: bool, log: Callable[[str], None]) -> list[Section]:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return []
        raise
    if not hasattr(module, "run"):
        if not hasattr(module, "main"):
            return [Section(f"{name} ({module_name})", notes=[f"{module_name} has no run(quick) entry point; skipped."])]
        # A script-style benchmark: run its main() as `python bench/<file>.py [--quick]` and keep what it prints.
        import contextlib
        import io

        log(f"{name}: {module_name}.main(){' --quick' if quick else ''}")
        saved, output = sys.argv, io.StringIO()
        sys.argv = [module_name, *(["--quick"] if quick else [])]
        try:
            with contextlib.redirect_stdout(output):
                module.main()
        finally:
            sys.argv = saved
        return [Section(f"{name} ({module_name}, its own output)", notes=[output.getvalue().rstrip() + "\n"])]
    log(f"{name}: {module_name}.run(quick={quick})")
    result = module.run(quick=quick)
    if isinstance(result, Section):
        return [result]
    if isinstance(result, list) and all(isinstance(s, Section) for s in result):
        return result
    section = Section(f"{name} ({module_name})")
    if isinstance(result, dict):
        for key, value in result.items():
            section.add(str(key), str(value))
    else:
        section.notes.append(str(result))
    return [section]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help=f"smaller run ({QUICK_N:,} messages, fewer repetitions)")
    parser.add_argument("-n", type=int, default=None, help=f"messages for the forwarding benchmark (default {FULL_N:,})")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated: " + ",".join(SECTIONS))
    parser.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)  # tiny run for the smoke test
    parser.add_argument("--profile", default=None, metavar="DIR",
                        help="write pyinstrument profiles of the measured parts into DIR")
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
    started_at = datetime.now(timezone.utc)
    machine = machine_info()

    def log(line: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {line}", file=sys.stderr, flush=True)

    log(f"machine: {machine['nproc']} cores, {machine['cpu']}, Python {machine['python']}, load {machine['load']}")
    sections: list[Section] = []
    forward_section: Section | None = None
    ingest_section: Section | None = None
    if "forward" in only or "ingest" in only:
        with Context(n, args.quick, log, smoke=args.smoke) as ctx:
            ctx.profile_dir = args.profile
            if "forward" in only:
                forward_section = forward.run(ctx)
                sections.append(forward_section)
            if "ingest" in only:
                ingest_section = ingest.run(ctx)
                sections.append(ingest_section)
    if "coldstart" in only:
        sections.append(coldstart.run(quick=args.quick, log=log, repeats=1 if args.smoke else None))
    if forward_section is not None:
        sections.append(scale.run(forward_section, ingest_section))
    for name, module_name in EXTERNAL:
        if name in only:
            try:
                sections.extend(run_external(name, module_name, args.quick or args.smoke, log))
            except Exception:  # another workstream's benchmark must not take ours down
                sections.append(Section(f"{name} ({module_name})", notes=["failed:\n" + traceback.format_exc(limit=3)]))

    elapsed = time.perf_counter() - started
    given = sys.argv[1:] if argv is None else argv
    command = "make bench  (= .venv/bin/python -m bench" + (" " + " ".join(given) if given else "") + ")"
    meta = {"command": command, "date": started_at.strftime("%Y-%m-%d %H:%M UTC"), "elapsed": f"{elapsed:.0f} s",
            "n": f"{n:,}", **machine, "load_end": machine_info()["load"]}
    print(report.console(sections, meta))
    full = not args.quick and not args.smoke and only == list(SECTIONS) and args.n in (None, FULL_N)
    if not args.no_write and (full or args.write):
        path = Path(args.output)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(report.markdown(sections, meta))
        log(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    log(f"done in {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
