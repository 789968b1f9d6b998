"""Isolation under load: latency of ``GET /_api/tasks/{id}`` on a real server while CPU-heavy tasks
run, against the same server idle, in the same run.

The hogs are 4 periodic tasks ``while (true) {}`` with a 2 s timeout and a 100 ms period: every
worker spends its whole time in JavaScript that the engine's CPU limit interrupts after 2 s, over
and over (more hogs than workers, so a worker never waits). Latency is measured with an open loop
at a fixed rate (200 requests/s, the aiohttp generator in its own process, latencies counted
from each request's scheduled send time), and the throughput with a closed loop (wrk when
installed). Worker CPU over the loaded window confirms the hogs ran.
"""

import time
from collections import Counter
from typing import Any

from bench.common import BenchContext, CpuMeter, Outcome, Row, Server, fmt, ok, seed_tasks
from bench.loadgen import aiohttp_load, load

HOGS = 4
HOG = {"command": "while (true) {}", "period": 0.1, "offset": 0, "timeout": 2}
RATE = 200.0


def _measure(server: Server, path: str, seconds: float, scratch: Any) -> dict[str, Any]:
    meter = CpuMeter(server.pid)
    meter.start()
    started = time.perf_counter()
    paced = aiohttp_load(server.url + path, seconds=seconds, rate=RATE, connections=64)
    closed = load(server.url + path, scratch, seconds=seconds / 2)
    elapsed = time.perf_counter() - started
    meter.stop()
    return {
        "paced": paced,
        "closed": closed,
        "server_cores": round(meter.server / elapsed, 2),
        "worker_cores": round(meter.workers / elapsed, 2),
        "other_processes_cores": round(meter.others / elapsed, 2),  # includes the load generators
    }


def run(ctx: BenchContext) -> Outcome:
    seconds = 4.0 if ctx.quick else 10.0
    data_dir = ctx.workdir / "data"
    ids = seed_tasks(data_dir, 100)
    path = f"/_api/tasks/{ids[0]}"
    with Server(data_dir) as server:
        server.start()
        idle = _measure(server, path, seconds, ctx.workdir)
        for i in range(HOGS):
            ok(server.url, "PUT", f"/_api/tasks/hog{i}", {**HOG, "name": f"hog {i}"})
        time.sleep(1.0)
        loaded = _measure(server, path, seconds, ctx.workdir)
        failed = ok(server.url, "GET", "/_api/runs?statuses=failed&limit=1000")["results"]
    # InternalError = the engine's CPU limit; WorkerTimeout = the pool's wall-clock kill.
    endings = Counter(run["error"]["name"] for run in failed)
    p99_ratio = loaded["paced"]["p99_ms"] / idle["paced"]["p99_ms"]
    rps_ratio = loaded["closed"]["rps"] / idle["closed"]["rps"]
    figures = {
        "rate": RATE,
        "hogs": HOGS,
        "idle": idle,
        "loaded": loaded,
        "hog_run_endings": dict(endings),
        "p99_ratio_loaded_to_idle": round(p99_ratio, 2),
        "rps_ratio_loaded_to_idle": round(rps_ratio, 2),
    }

    def paced(r: dict[str, Any]) -> str:
        p = r["paced"]
        errors = f", {p['errors']} errors" if p["errors"] else ""
        return f"{p['p50_ms']:.2f}/{p['p99_ms']:.2f}/{p['max_ms']:.1f} ms{errors}"

    rows = [
        Row(f"GET one at {RATE:g} req/s, idle: p50/p99/max", paced(idle)),
        Row(f"  same, {HOGS} while(true) hogs running", paced(loaded)),
        Row("  p99 loaded / idle", f"{p99_ratio:.2f}x"),
        Row("  worker CPU while loaded", f"{loaded['worker_cores']:.2f} cores"),
        Row(
            "  hog runs: CPU-limit stops / wall-clock kills",
            f"{endings['InternalError']} / {endings['WorkerTimeout']}",
        ),
        Row(
            "GET one, closed loop: req/s idle → loaded",
            f"{fmt(idle['closed']['rps'], 0)} → {fmt(loaded['closed']['rps'], 0)} "
            f"({rps_ratio:.2f}x)",
        ),
    ]
    return Outcome(figures, rows)
