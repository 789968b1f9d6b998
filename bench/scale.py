"""Scale: start-up time and resident memory of a real server holding 0, 10,000 and 100,000 tasks.

The store is seeded directly (one transaction through the store's own insert statement), with
first runs a month away so that nothing fires during the measurement. Start-up is measured from
spawning ``python -m arangotasks serve`` until ``GET /_api/version`` answers: the server binds
its port only after the registry loaded every task, and the log line
"loaded N task(s) in X s" confirms the count and gives the load step alone. Memory is VmRSS of
the server process (workers apart: they hold no tasks) one second after it answered; memory per
task is the difference to the empty server divided by the task count. Each size is started
twice; the faster start is kept.
"""

import time
from typing import Any

from bench.common import (
    BenchContext,
    Outcome,
    Row,
    Server,
    children,
    cpu_seconds,
    fmt,
    machine_busy_seconds,
    rss_kb,
    seed_tasks,
)

TARGET_START_S = 10.0
TARGET_TASKS = 100_000


def _start(data_dir: Any, expected: int) -> dict[str, Any]:
    with Server(data_dir) as server:
        machine_before = machine_busy_seconds()
        answered = server.start(timeout=300)
        ours = cpu_seconds(server.pid) + sum(cpu_seconds(p) for p in children(server.pid))
        others = max(0.0, machine_busy_seconds() - machine_before - ours) / answered
        loaded, load_seconds = server.loaded()
        if loaded != expected:
            raise RuntimeError(f"the server loaded {loaded} task(s), expected {expected}")
        rss_at_answer = rss_kb(server.pid)
        time.sleep(1.0)
        return {
            "start_s": round(answered, 3),
            "load_s": load_seconds,
            "rss_at_answer_mb": round(rss_at_answer / 1024, 1),
            "rss_mb": round(rss_kb(server.pid) / 1024, 1),
            "worker_rss_mb": round(sum(rss_kb(p) for p in children(server.pid)) / 1024, 1),
            # CPU of every other process meanwhile (the machine may be shared), in cores
            "other_processes_cores": round(others, 2),
        }


def run(ctx: BenchContext) -> Outcome:
    sizes = (0, 10_000) if ctx.quick else (0, 10_000, TARGET_TASKS)
    rounds = 1 if ctx.quick else 2
    results: dict[int, dict[str, Any]] = {}
    for size in sizes:
        data_dir = ctx.workdir / f"tasks-{size}"
        started = time.perf_counter()
        seed_tasks(data_dir, size)
        seeded = time.perf_counter() - started
        starts = [_start(data_dir, size) for _ in range(rounds)]
        best = min(starts, key=lambda r: r["start_s"])
        results[size] = best | {"seed_s": round(seeded, 2), "starts": starts}

    empty = results[0]
    rows: list[Row] = []
    for size in sizes:
        r = results[size]
        per_task = ""
        if size:
            r["bytes_per_task"] = round((r["rss_mb"] - empty["rss_mb"]) * 1024 * 1024 / size)
            per_task = f", {fmt(r['bytes_per_task'], 0)} B/task"
        target, ok = "", None
        if size == TARGET_TASKS:
            target, ok = f"< {TARGET_START_S:g} s", r["start_s"] < TARGET_START_S
        rows.append(
            Row(
                f"{size:>7,} tasks: start (load step), server RSS",
                f"{r['start_s']:.2f} s ({r['load_s']:.2f} s), {r['rss_mb']:.0f} MiB{per_task}"
                f" (others {r['other_processes_cores']:.1f} cores)",
                target,
                ok,
            )
        )
    figures = {"results": {str(size): result for size, result in results.items()}}
    return Outcome(figures, rows)
