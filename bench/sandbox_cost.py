"""Sandbox cost: one trivial run (``return params.a + params.b``) through arangotasks' whole run
path, against the same evaluation in a bare ``quickjs.Context()`` created fresh in a tight loop.

The run path is measured in-process: a real ``Registry`` with its SQLite store, history on and the
``QuickJSSandbox`` worker pool, driven by manual runs (``Registry.run_now``, what
``POST /_api/tasks/{id}/run`` calls) and awaited through ``Registry.run_listeners``:

* sequential: one run at a time, wall clock per run (the headline, against the bare loop);
* the run record's own ``finishedAt - startedAt`` (pool + worker, without queueing);
* saturated: every worker busy, CPU seconds of this process plus the workers per run.

``bench/bench_sandbox.py`` (the pool-level benchmark) supplies the breakdown: a bare context
with the sandbox's limits set, and the worker's whole run without the pipes. The worker's steps
are timed here one by one to show where the time goes (the prelude).
"""

import asyncio
import math
import os
import statistics
import time
from pathlib import Path
from typing import Any

import quickjs

from bench.bench_sandbox import bare_engine_us, worker_inline_us
from bench.common import (
    TRIVIAL_COMMAND,
    TRIVIAL_PARAMS,
    BenchContext,
    CpuMeter,
    Outcome,
    Row,
    fmt,
    quiet_in_process_logs,
    seed_tasks,
)

TARGET_RATIO = 2.0
SOURCE = f"(function (params) {{ {TRIVIAL_COMMAND} }})({TRIVIAL_PARAMS})"


def bare_fresh_context_us(n: int) -> float:
    """The brief's floor: ``ctx = quickjs.Context(); ctx.eval(...)`` in a tight loop."""
    started = time.perf_counter()
    for _ in range(n):
        ctx = quickjs.Context()
        assert ctx.eval(SOURCE) == 3
    return (time.perf_counter() - started) / n * 1e6


def worker_steps_us(n: int) -> dict[str, float]:
    """The worker's run (``Runner.run`` called back to back, no pipes, so every run builds its
    context) split into a fresh engine context with the sandbox's limits, the prelude's
    evaluation in such a context, and the rest (start the command, drain jobs, finish, answer)."""
    from arangotasks.sandbox import engine
    from arangotasks.sandbox.runner import Runner, load_prelude

    prelude = load_prelude()
    runner = Runner(prelude)
    request: dict[str, Any] = {"op": "run", "command": TRIVIAL_COMMAND, "params": TRIVIAL_PARAMS}
    request |= {"timeout": 30.0, "memory": 64 << 20, "stack": 1 << 20, "output": 64 << 10}
    context = evaluated = whole = 0.0
    for _ in range(n):
        t0 = time.perf_counter()
        ctx = engine.Context(memory_bytes=64 << 20, stack_bytes=1 << 20, time_limit=30.0)
        t1 = time.perf_counter()
        ctx.eval(prelude)
        t2 = time.perf_counter()
        assert runner.run(request)["result"] == "3"
        t3 = time.perf_counter()
        context, evaluated, whole = context + t1 - t0, evaluated + t2 - t1, whole + t3 - t2
    return {
        "context_us": round(context / n * 1e6, 1),
        "prelude_us": round(evaluated / n * 1e6, 1),
        "rest_us": round((whole - context - evaluated) / n * 1e6, 1),
        "prelude_bytes": len(prelude.encode()),
    }


async def _registry_path(data_dir: Path, sequential: int, saturated: int) -> dict[str, Any]:
    from arangotasks.auth import ANONYMOUS_SUPERUSER
    from arangotasks.config import Settings
    from arangotasks.models import Run
    from arangotasks.registry import Registry
    from arangotasks.sandbox import QuickJSSandbox
    from arangotasks.store import open_store

    settings = Settings(data_dir=data_dir, no_auth=True, history=True)
    sandbox = QuickJSSandbox(workers=settings.workers, limits=settings.limits())
    registry = Registry(open_store(None, data_dir), sandbox, settings)
    await registry.start()
    waiting: dict[int, asyncio.Future[Run]] = {}

    def finished(run: Run) -> None:
        future = waiting.pop(run.uid, None)
        if future is not None and not future.done():
            future.set_result(run)

    registry.run_listeners.append(finished)
    loop = asyncio.get_running_loop()

    async def one(task_id: str) -> Run:
        run = await registry.run_now(task_id, ANONYMOUS_SUPERUSER)
        future = waiting.setdefault(run.uid, loop.create_future())
        return await future

    try:
        ids = [task.id for task in registry.visible(ANONYMOUS_SUPERUSER)]
        for _ in range(100):  # warm-up
            await one(ids[0])
        started = time.perf_counter()
        runs = [await one(ids[0]) for _ in range(sequential)]
        wall = (time.perf_counter() - started) / sequential
        assert all(run.result_json == "3" for run in runs)
        durations = [run.finished_at - run.started_at for run in runs]  # type: ignore[operator]

        # Saturated: 4 runs in flight per worker, each on its own task (a task's runs serialise).
        in_flight = 4 * sandbox.size
        meter = CpuMeter(os.getpid())
        meter.start()
        started = time.perf_counter()

        async def lane(task_id: str, count: int) -> None:
            for _ in range(count):
                await one(task_id)

        per_lane = saturated // in_flight
        await asyncio.gather(*(lane(ids[i], per_lane) for i in range(in_flight)))
        elapsed = time.perf_counter() - started
        meter.stop()
        total = per_lane * in_flight
        cpu = meter.server + meter.workers
        return {
            "workers": sandbox.size,
            "sequential_runs": sequential,
            "sequential_wall_us": round(wall * 1e6, 1),
            "record_duration_median_us": round(statistics.median(durations) * 1e6, 1),
            "saturated_runs": total,
            "saturated_runs_per_s": round(total / elapsed),
            "saturated_cpu_us_per_run": round(cpu / total * 1e6, 1),
            "saturated_server_cpu_us_per_run": round(meter.server / total * 1e6, 1),
            "saturated_other_processes_cores": round(meter.others / elapsed, 2),
        }
    finally:
        await registry.close()


def run(ctx: BenchContext) -> Outcome:
    quiet_in_process_logs()
    n = 500 if ctx.quick else 2000
    data_dir = ctx.workdir / "sandbox-cost"
    seed_tasks(data_dir, 16)
    bare = statistics.median(bare_fresh_context_us(n) for _ in range(3))
    bare_limits = statistics.median(bare_engine_us(n) for _ in range(3))
    inline = statistics.median(worker_inline_us(n) for _ in range(3))
    try:
        steps: dict[str, Any] = worker_steps_us(n)
    except Exception as exc:  # it reaches into the worker's internals, which may move
        steps = {"error": repr(exc), "prelude_us": math.nan, "prelude_bytes": 0}
    path = asyncio.run(_registry_path(data_dir, n, 2 * n))
    # bare again after the pool: the machine is noisy, take the better of the two readings.
    bare = min(bare, statistics.median(bare_fresh_context_us(n) for _ in range(3)))
    ratio = path["sequential_wall_us"] / bare
    figures: dict[str, Any] = {
        "bare_fresh_context_us": round(bare, 1),
        "bare_with_limits_us": round(bare_limits, 1),
        "worker_inline_us": round(inline, 1),
        "worker_steps": steps,
        **path,
        "ratio_run_path_to_bare": round(ratio, 2),
        "ratio_cpu_per_run_to_bare": round(path["saturated_cpu_us_per_run"] / bare, 2),
    }
    rows = [
        Row("bare quickjs.Context()+eval, tight loop", f"{fmt(bare)} µs"),
        Row("  same with the sandbox's limits set", f"{fmt(bare_limits)} µs"),
        Row("  worker run, no pipes (context+prelude+call)", f"{fmt(inline)} µs"),
        Row(
            "    steps: context / prelude eval / start+finish",
            f"{fmt(steps.get('context_us', math.nan))} / {fmt(steps['prelude_us'])} "
            f"({steps['prelude_bytes']} B) / {fmt(steps.get('rest_us', math.nan))} µs",
        ),
        Row("registry run path, one at a time (wall)", f"{fmt(path['sequential_wall_us'])} µs"),
        Row(
            "  run record finishedAt-startedAt, median",
            f"{fmt(path['record_duration_median_us'])} µs",
        ),
        Row(
            "  saturated: CPU (server+workers) per run",
            f"{fmt(path['saturated_cpu_us_per_run'])} µs",
        ),
        Row(
            "sandbox cost ratio (run path / bare)",
            f"{ratio:.2f}x",
            f"≤ {TARGET_RATIO:g}x",
            ratio <= TARGET_RATIO,
        ),
    ]
    return Outcome(figures, rows)
