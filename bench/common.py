"""Shared pieces: a real server process, /proc readings, store seeding, percentiles, report rows.

The server launcher mirrors ``tests/e2e/server.py`` but does not import the test suite (that
pulls in pytest and the test credentials) and measures what the benchmarks need: the time until
the port answers, the "loaded N task(s)" log line, CPU and memory of the server and its workers.
Every benchmark runs the server with ``ARANGOTASKS_NO_AUTH=1`` (no Basic/JWT check per request).
"""

import asyncio
import http.client
import json
import logging
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")
TRIVIAL_COMMAND = "return params.a + params.b"
TRIVIAL_PARAMS = '{"a": 1, "b": 2}'
FAR = 30 * 86400.0  # "never" within a benchmark: 30 days


@dataclass
class Row:
    """One line of the summary table: a figure and, when it has one, its target."""

    label: str
    value: str
    target: str = ""
    ok: bool | None = None


@dataclass
class Outcome:
    """What a benchmark module returns: figures for results.json and rows for the table."""

    figures: dict[str, Any] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)


@dataclass(frozen=True)
class BenchContext:
    quick: bool
    workdir: Path


# --- statistics ---------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary_ms(seconds: list[float]) -> dict[str, float]:
    """median, p99 and max in milliseconds, and the sample count."""
    if not seconds:
        return {"n": 0, "median_ms": math.nan, "p99_ms": math.nan, "max_ms": math.nan}
    return {
        "n": len(seconds),
        "median_ms": round(percentile(seconds, 50) * 1e3, 3),
        "p99_ms": round(percentile(seconds, 99) * 1e3, 3),
        "max_ms": round(max(seconds) * 1e3, 3),
    }


# --- /proc --------------------------------------------------------------------------------
def _stat_fields(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()  # fields from 3 (state) on


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (0 when it is gone)."""
    try:
        fields = _stat_fields(pid)
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (the sandbox workers of a server)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if int(_stat_fields(int(entry))[1]) == pid:
                    found.append(int(entry))
            except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
                continue
    return found


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def reaped_children_cpu_seconds(pid: int) -> float:
    """CPU seconds of the children ``pid`` has waited for (killed and respawned workers)."""
    try:
        fields = _stat_fields(pid)
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return 0.0
    return (int(fields[13]) + int(fields[14])) / CLK_TCK


class CpuMeter:
    """CPU seconds of a process and of its children (live ones, plus those it reaped meanwhile:
    a worker killed at its deadline) between ``start()`` and ``stop()``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._before = (0.0, 0.0, 0.0)
        self.server = 0.0
        self.workers = 0.0
        self.others = 0.0  # every other process on the machine (a shared machine is noisy)

    def _sample(self) -> tuple[float, float, float]:
        workers = sum(cpu_seconds(child) for child in children(self.pid))
        server, workers = cpu_seconds(self.pid), workers + reaped_children_cpu_seconds(self.pid)
        return server, workers, machine_busy_seconds()

    def start(self) -> None:
        self._before = self._sample()

    def stop(self) -> None:
        server, workers, machine = self._sample()
        self.server = server - self._before[0]
        self.workers = workers - self._before[1]
        self.others = max(0.0, machine - self._before[2] - self.server - self.workers)


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine spent busy since boot (/proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


# --- a real server ------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def python_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


class Server:
    """``python -m arangotasks serve`` on a free loopback port, without authentication."""

    def __init__(self, data_dir: Path, **env: str) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / f"{data_dir.name}-server-{self.port}.log"
        self.env = python_env(ARANGOTASKS_NO_AUTH="1", ARANGOTASKS_LOG_LEVEL="INFO", **env)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 120.0) -> float:
        """Start and wait until ``GET /_api/version`` answers; seconds from spawn to answer."""
        command = [sys.executable, "-m", "arangotasks", "serve", "--port", str(self.port)]
        command += ["--data-dir", str(self.data_dir)]
        with open(self.log_path, "ab") as log:
            started = time.perf_counter()
            self.proc = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=REPO_ROOT,
            )
        deadline = started + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                status, _ = request(self.url, "GET", "/_api/version", timeout=1.0)
            except OSError:
                time.sleep(0.005)
                continue
            if status in (200, 401):  # 401: it answers, with authentication on
                return time.perf_counter() - started
        self.stop()
        raise RuntimeError(f"server did not answer within {timeout} s:\n{self.output()}")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def loaded(self) -> tuple[int, float]:
        """(tasks, seconds) of the last "loaded N task(s) in X s" log line."""
        found = re.findall(r"loaded (\d+) task\(s\) in ([\d.]+) s", self.output())
        if not found:
            raise RuntimeError(f"no 'loaded' line in the server log:\n{self.output()[-2000:]}")
        count, seconds = found[-1]
        return int(count), float(seconds)


def request(
    url: str, method: str, path: str, body: Any = None, timeout: float = 30.0
) -> tuple[int, Any]:
    """One JSON request (a new connection each time: for setup, not for measuring)."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        payload = None if body is None else json.dumps(body)
        conn.request(method, path, body=payload, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None
    finally:
        conn.close()


def ok(url: str, method: str, path: str, body: Any = None) -> Any:
    status, data = request(url, method, path, body)
    if not 200 <= status < 300:
        raise RuntimeError(f"{method} {path}: {status} {data}")
    return data


# --- seeding the store directly -----------------------------------------------------------
def seed_tasks(
    data_dir: Path,
    count: int,
    *,
    first_in: float = FAR,
    spread: float = 0.0,
    period: float | None = FAR,
    command: str = TRIVIAL_COMMAND,
    prefix: str = "seed",
) -> list[str]:
    """Insert ``count`` periodic tasks in one transaction through the store's own statement
    (no API calls); the first run of task ``i`` is ``first_in + spread * i / count`` seconds
    from now. Returns their ids."""
    return asyncio.run(_seed(data_dir, count, first_in, spread, period, command, prefix))


async def _seed(
    data_dir: Path,
    count: int,
    first_in: float,
    spread: float,
    period: float | None,
    command: str,
    prefix: str,
) -> list[str]:
    from arangotasks.models import Task
    from arangotasks.store import open_store
    from arangotasks.store.schema import Stmt, task_to_row

    store: Any = open_store(None, data_dir)
    await store.open()
    try:
        now = time.time()
        tasks = [
            Task(
                id=f"{prefix}{i}",
                name=f"bench {i}",
                created=now,
                command=command,
                database="_system",
                period_ms=None if period is None else int(period * 1000),
                offset_ms=int(first_in * 1000),
                params_json=TRIVIAL_PARAMS,
                next_run_at=now + first_in + spread * i / count,
            )
            for i in range(count)
        ]
        # SQLStore._insert_task is the statement insert_task() runs, here through executemany.
        stmt = Stmt(store._insert_task, many=[task_to_row(task) for task in tasks])
        await store._execute([stmt], write=True)
    finally:
        await store.close()
    return [task.id for task in tasks]


def quiet_in_process_logs() -> None:
    """In-process benchmarks close registries with thousands of runs still queued: APScheduler
    logs each cancelled job. Keep the console to the figures."""
    import arangotasks.scheduler  # noqa: F401  (it sets APScheduler's level when imported)

    logging.getLogger("apscheduler").setLevel(logging.CRITICAL)
    logging.getLogger("arangotasks").setLevel(logging.ERROR)


def fmt(value: float, digits: int = 1) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:,.{digits}f}"
