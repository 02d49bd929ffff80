"""Shared plumbing: helper processes (moto server, Segment sink), worker subprocesses, timers, results.

Each contender runs in a fresh worker process (`python -m bench.<module> worker ...`) so its
process CPU time is its own: the sink and moto run in processes of their own, like the real
Segment and SQS endpoints would.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.request import Request, urlopen

ROOT = Path(__file__).resolve().parents[1]
#: The Lambda handlers are deployed from functions/<name>/ and import as top-level modules.
HANDLER_DIRS = [ROOT / "functions" / "ingest", ROOT / "functions" / "forward"]
PYTHON = sys.executable

#: What the template sets on both functions (template.yaml Globals).
LAMBDA_ENV = {
    "POWERTOOLS_SERVICE_NAME": "segment-bridge",
    "POWERTOOLS_METRICS_NAMESPACE": "SegmentBridge",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "SECRETS_PREFIX": "segment-bridge",
    "INTEGRATION_NAME": "segment-bridge",
}


def add_handler_paths() -> None:
    for directory in HANDLER_DIRS:
        if str(directory) not in sys.path:
            sys.path.insert(0, str(directory))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def aws_env(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }


def fetch_json(url: str, method: str = "GET") -> dict[str, Any]:
    request = Request(url, method=method, data=b"" if method == "POST" else None)
    with urlopen(request, timeout=60) as response:
        return json.loads(response.read())


# -- helper processes --------------------------------------------------------------------------
@dataclass
class Service:
    name: str
    process: subprocess.Popen
    url: str

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])])
    env.update(extra or {})
    return env


def _wait_for_port(port: int, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"helper process exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on port {port} after {timeout} s")


def start_sink() -> Service:
    """The Segment sink (bench/sink_process.py) in its own process."""
    process = subprocess.Popen(
        [PYTHON, "-m", "bench.sink_process"],
        cwd=ROOT,
        env=child_env(),
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=die_with_parent,
    )
    line = process.stdout.readline() if process.stdout else ""
    if not line.startswith("PORT "):
        process.kill()
        raise RuntimeError(f"sink did not start: {line!r}")
    port = int(line.split()[1])
    return Service("sink", process, f"http://127.0.0.1:{port}")


def start_moto() -> Service:
    """moto's standalone server (SQS, Secrets Manager) in its own process."""
    port = free_port()
    process = subprocess.Popen(
        [PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        cwd=ROOT,
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=die_with_parent,
    )
    _wait_for_port(port, process)
    return Service("moto", process, f"http://127.0.0.1:{port}")


class Sink:
    """Talks to a sink process."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.batch_url = f"{url}/v1/batch"

    def stats(self) -> dict[str, Any]:
        return fetch_json(f"{self.url}/_sink/stats")

    def reset(self) -> None:
        fetch_json(f"{self.url}/_sink/reset", method="POST")


# -- worker processes --------------------------------------------------------------------------
def die_with_parent() -> None:
    """preexec_fn: SIGTERM this child when the benchmark process dies (Linux), so nothing is left behind."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def run_worker(module: str, args: list[str], env: dict[str, str] | None = None, timeout: float = 600) -> dict[str, Any]:
    """Run `python -m <module> worker <args> --out FILE` in a fresh process; return its JSON result.

    The worker's stdout (handler logs and EMF metrics, as Lambda would write them) is discarded.
    """
    return run_rounds(module, {"worker": ([args], env or {})}, rounds=0, timeout=timeout)["worker"][0]


def run_rounds(
    module: str,
    groups: dict[str, tuple[list[list[str]], dict[str, str]]],
    rounds: int,
    before: Any = None,
    after: Any = None,
    timeout: float = 600,
) -> dict[str, list[dict[str, Any]]]:
    """Start every group's worker processes at once, then run `rounds` measured rounds, group after group.

    A group is `([argv per process], env)`: one contender, possibly several processes (instances).
    Workers prepare and warm up in parallel, then wait (`Rounds.go`). Round r runs each group in
    turn (the order rotates every round, so slow and fast periods of a noisy machine spread over
    all contenders); `before(group, r)` / `after(group, r)` run around each step (reset / read the sink).
    Returns each group's worker results (JSON written by the worker at exit).
    """
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        sync = Path(tmp)
        workers: dict[str, list[tuple[str, subprocess.Popen, Path, Path, list[str]]]] = {}
        for name, (argvs, env) in groups.items():
            for index, argv in enumerate(argvs):
                wid = f"{name}-{index}"
                out, err = sync / f"result-{wid}.json", sync / f"stderr-{wid}.txt"
                command = [PYTHON, "-m", module, "worker", *argv, "--out", str(out)]
                worker_env = child_env({**env, "BENCH_SYNC_DIR": str(sync), "BENCH_WORKER_ID": wid})
                with err.open("w") as stderr:
                    process = subprocess.Popen(
                        command,
                        cwd=ROOT,
                        env=worker_env,
                        stdout=subprocess.DEVNULL,
                        stderr=stderr,
                        preexec_fn=die_with_parent,
                    )
                workers.setdefault(name, []).append((wid, process, out, err, argv))
        everyone = [w for group in workers.values() for w in group]
        deadline = time.monotonic() + timeout

        def fail(wid: str, process: subprocess.Popen, err: Path, argv: list[str]) -> None:
            for _, other, *_ in everyone:
                if other.poll() is None:
                    other.kill()
                    other.wait()
            raise RuntimeError(f"{module} worker {argv} failed ({process.returncode}):\n{err.read_text()[-3000:]}")

        def wait_for(files: list[tuple[Path, tuple[str, subprocess.Popen, Path, Path, list[str]]]]) -> None:
            while True:
                pending = [(f, w) for f, w in files if not f.exists()]
                for _, (wid, process, _, err, argv) in pending:
                    if process.poll() is not None and process.returncode != 0:
                        fail(wid, process, err, argv)
                # A worker that exited cleanly has nothing more to signal (e.g. one without rounds).
                if all(w[1].poll() is not None for _, w in pending):
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{module} workers did not finish within {timeout} s")
                time.sleep(0.01)

        wait_for([(sync / f"ready-{w[0]}", w) for w in everyone])
        for r in range(rounds):
            names = list(workers)
            names = names[r % len(names) :] + names[: r % len(names)]
            for name in names:
                if before is not None:
                    before(name, r)
                for wid, *_ in workers[name]:
                    (sync / f"go-{wid}-{r}").write_text("go")
                wait_for([(sync / f"done-{w[0]}-{r}", w) for w in workers[name]])
                if after is not None:
                    after(name, r)
        results: dict[str, list[dict[str, Any]]] = {}
        for name, group in workers.items():
            for wid, process, out, err, argv in group:
                try:
                    process.wait(timeout=max(1.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                if process.returncode != 0 or not out.exists():
                    fail(wid, process, err, argv)
                results.setdefault(name, []).append(json.loads(out.read_text()))
        return results


class Rounds:
    """Worker side of `run_rounds`: `ready()` once prepared, then `go(r)` / `done(r)` around round r.

    Outside `run_rounds` (a worker started by hand) every call returns at once.
    """

    def __init__(self) -> None:
        directory, self.wid = os.environ.get("BENCH_SYNC_DIR"), os.environ.get("BENCH_WORKER_ID", "")
        self.sync = Path(directory) if directory else None

    def ready(self) -> None:
        if self.sync:
            (self.sync / f"ready-{self.wid}").write_text("ready")

    def go(self, r: int) -> None:
        if self.sync:
            flag = self.sync / f"go-{self.wid}-{r}"
            while not flag.exists():
                time.sleep(0.005)

    def done(self, r: int) -> None:
        if self.sync:
            (self.sync / f"done-{self.wid}-{r}").write_text("done")


def write_result(path: str, result: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(result, indent=1, default=str))


class Timer:
    """Wall time (perf_counter) and this process's CPU time (all threads) over a block."""

    def __enter__(self) -> Timer:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.wall = time.perf_counter() - self.wall0
        self.cpu = time.process_time() - self.cpu0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def machine_info() -> dict[str, str]:
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        cpu = platform.processor() or platform.machine()
    try:
        load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        load = "n/a"
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
        "load": load,
    }


def package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


# -- results -----------------------------------------------------------------------------------
@dataclass
class Figure:
    name: str
    value: str
    target: str = ""
    #: "pass", "short" or "" (no target)
    status: str = ""


@dataclass
class Section:
    title: str
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def add(self, name: str, value: str, target: str = "", ok: bool | None = None) -> None:
        status = "" if ok is None else ("pass" if ok else "short")
        self.figures.append(Figure(name, value, target, status))


def fmt(value: float, digits: int = 2) -> str:
    if value != value:  # NaN
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


class Profile:
    """pyinstrument around a block when `path` is set (`--profile DIR`); a no-op otherwise."""

    def __init__(self, path: str | None, name: str) -> None:
        self.path = path
        self.name = name
        self.profiler: Any = None

    def __enter__(self) -> Profile:
        if self.path:
            from pyinstrument import Profiler

            self.profiler = Profiler(interval=0.0005)
            self.profiler.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.profiler is not None:
            self.profiler.stop()
            out = Path(self.path) / f"{self.name}.txt"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(self.profiler.output_text(unicode=False, color=False, show_all=False))
