"""Throughput: the highest sustained rate of trivial scheduled runs, history on and off.

A real server gets ``TASKS`` periodic tasks with a 10 ms period (seeded into its store), far
more than the worker pool can serve, so the pool is saturated for the whole window and the rate
measured is the ceiling. Runs are counted by run uid (every run, scheduled or manual, takes the
next uid, with or without history): a manual run of a probe task at each end of the window
brackets it. CPU of the server process and of its workers over the same window comes from /proc.
Issue 5 asks for the history on/off ratio: both servers are measured in the same run, three
times, alternating; the rates shown are the best window of each, the ratio comes from the adjacent
on/off pair that other processes on the (possibly shared) machine disturbed least.
"""

import time
from pathlib import Path
from typing import Any

from bench.common import BenchContext, CpuMeter, Outcome, Row, Server, fmt, ok, seed_tasks

TARGET_RUNS_PER_S = 1000
TASKS = 100
PERIOD = 0.01


def _probe_uid(server: Server) -> int:
    return int(ok(server.url, "POST", "/_api/tasks/probe0/run")["uid"])


def _window(server: Server, seconds: float) -> dict[str, float]:
    meter = CpuMeter(server.pid)
    first = _probe_uid(server)
    meter.start()
    started = time.perf_counter()
    time.sleep(seconds)
    last = _probe_uid(server)
    elapsed = time.perf_counter() - started
    meter.stop()
    runs = last - first - 1
    return {
        "runs": runs,
        "seconds": round(elapsed, 2),
        "runs_per_s": round(runs / elapsed, 1),
        "server_cores": round(meter.server / elapsed, 2),
        "worker_cores": round(meter.workers / elapsed, 2),
        "other_processes_cores": round(meter.others / elapsed, 2),
        "cpu_us_per_run": round((meter.server + meter.workers) / max(runs, 1) * 1e6, 1),
    }


def _measure(data_dir: Path, history: bool, warmup: float, window: float) -> dict[str, Any]:
    seed_tasks(data_dir, TASKS, first_in=1.0, period=PERIOD)
    seed_tasks(data_dir, 1, prefix="probe")
    with Server(data_dir, ARANGOTASKS_HISTORY="1" if history else "0") as server:
        server.start()
        time.sleep(warmup)
        result = _window(server, window)
        if history:
            page = ok(server.url, "GET", "/_api/runs?limit=1&statuses=failed")
            result["failed_runs"] = page["total"]
    return result


def run(ctx: BenchContext) -> Outcome:
    warmup, window, rounds = (2.0, 4.0, 1) if ctx.quick else (3.0, 10.0, 3)
    on: list[dict[str, Any]] = []
    off: list[dict[str, Any]] = []
    for i in range(rounds):  # a fresh store each time: no runs left over from a previous stop
        on.append(_measure(ctx.workdir / f"history-on-{i}", True, warmup, window))
        off.append(_measure(ctx.workdir / f"history-off-{i}", False, warmup, window))
    best_on = max(on, key=lambda r: r["runs_per_s"])
    best_off = max(off, key=lambda r: r["runs_per_s"])
    # The on/off ratio from one adjacent pair of windows: the pair that other processes on the
    # machine disturbed least (a shared machine can take a core away for a whole window).
    pairs = sorted(
        zip(on, off, strict=True),
        key=lambda p: p[0]["other_processes_cores"] + p[1]["other_processes_cores"],
    )
    quiet_on, quiet_off = pairs[0]
    ratio = quiet_on["runs_per_s"] / quiet_off["runs_per_s"]
    figures = {
        "tasks": TASKS,
        "period_s": PERIOD,
        "history_on": on,
        "history_off": off,
        "runs_per_s_history_on": best_on["runs_per_s"],
        "runs_per_s_history_off": best_off["runs_per_s"],
        "ratio_on_to_off": round(ratio, 3),
        "ratio_pair_other_processes_cores": [
            quiet_on["other_processes_cores"],
            quiet_off["other_processes_cores"],
        ],
        "ratios_by_round": [
            round(a["runs_per_s"] / b["runs_per_s"], 3) for a, b in zip(on, off, strict=True)
        ],
    }

    def cpu(r: dict[str, Any]) -> str:
        return (
            f"server {r['server_cores']:.2f} + workers {r['worker_cores']:.2f} cores "
            f"(other processes {r['other_processes_cores']:.2f})"
        )

    rows = [
        Row(
            f"runs/s, history on ({TASKS} tasks, {PERIOD * 1000:g} ms period)",
            fmt(best_on["runs_per_s"], 0),
            f"≥ {TARGET_RUNS_PER_S:,}",
            best_on["runs_per_s"] >= TARGET_RUNS_PER_S,
        ),
        Row("  CPU meanwhile", cpu(best_on)),
        Row("  CPU per run (server + workers)", f"{fmt(best_on['cpu_us_per_run'])} µs"),
        Row("runs/s, history off (ARANGOTASKS_HISTORY=0)", fmt(best_off["runs_per_s"], 0)),
        Row("  CPU meanwhile", cpu(best_off)),
        Row(
            "history on / off (least disturbed pair of windows)",
            f"{ratio:.2f} ({quiet_on['runs_per_s']:.0f} / {quiet_off['runs_per_s']:.0f})",
        ),
    ]
    return Outcome(figures, rows)
