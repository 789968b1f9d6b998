"""Dashboard page times with much data: 10,000 tasks and 1,000,000 run records (100 per task,
one in ten failed), seeded directly into the SQLite store, then a real server (authentication off,
so every request is the superuser's, who sees everything) answers each page kind 100 times over
one keep-alive connection; p50/p99 per page kind. Target: p99 under 200 ms for every page."""

import asyncio
import http.client
import random
import time
from pathlib import Path
from typing import Any

from bench.common import BenchContext, Outcome, Row, Server, percentile, seed_tasks

TARGET_P99_MS = 200.0
TASKS = 10_000
RUNS_PER_TASK = 100
SAMPLES = 100


async def _seed_runs(data_dir: Path, task_ids: list[str], per_task: int) -> int:
    from arangotasks.models import Run, RunStatus, RunTrigger
    from arangotasks.store import open_store

    store: Any = open_store(None, data_dir)
    await store.open()
    uid = 0
    now = time.time() - per_task * 60
    try:
        batch: list[Run] = []
        for round_ in range(per_task):
            for index, task_id in enumerate(task_ids):
                uid += 1
                failed = (uid % 10) == 0
                started = now + round_ * 60 + index * 0.001
                batch.append(
                    Run(
                        uid=uid,
                        task_id=task_id,
                        task_name=f"bench {index}",
                        database="_system",
                        owner="",
                        trigger=RunTrigger.SCHEDULE,
                        scheduled_at=started,
                        enqueued_at=started,
                        status=RunStatus.FAILED if failed else RunStatus.SUCCEEDED,
                        started_at=started,
                        finished_at=started + 0.002,
                        result_json=None if failed else "3",
                        output=[f"run {uid} of {task_id}"],
                        error={
                            "type": "exception",
                            "name": "Error",
                            "message": "boom",
                            "stack": "    at anonymous (<task>:1:7)\n",
                        }
                        if failed
                        else None,
                    )
                )
                if len(batch) >= 20_000:
                    await store.save_runs(batch)
                    batch = []
        if batch:
            await store.save_runs(batch)
    finally:
        await store.close()
    return uid


def _measure(port: int, paths: list[str]) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    times = []
    try:
        for path in paths:
            started = time.perf_counter()
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            times.append(time.perf_counter() - started)
            if response.status != 200:
                raise RuntimeError(f"GET {path}: {response.status}")
    finally:
        conn.close()
    return times


def run(ctx: BenchContext) -> Outcome:
    tasks = 1_000 if ctx.quick else TASKS
    per_task = 10 if ctx.quick else RUNS_PER_TASK
    data_dir = ctx.workdir / "ui-data"
    started = time.perf_counter()
    task_ids = seed_tasks(data_dir, tasks)
    runs = asyncio.run(_seed_runs(data_dir, task_ids, per_task))
    seeded = time.perf_counter() - started
    rng = random.Random(7)
    pages = {
        "task list": ["/ui/"] * SAMPLES,
        "task list, filtered": [f"/ui/?q=bench+{rng.randrange(tasks)}" for _ in range(SAMPLES)],
        "task list, last page": [f"/ui/?page={tasks // 50}"] * SAMPLES,
        "task page": [f"/ui/tasks/{rng.choice(task_ids)}" for _ in range(SAMPLES)],
        "task page, failed runs": [
            f"/ui/tasks/{rng.choice(task_ids)}?status=failed" for _ in range(SAMPLES)
        ],
        "run page": [f"/ui/runs/{rng.randrange(1, runs + 1)}" for _ in range(SAMPLES)],
        "failures": ["/ui/failures"] * SAMPLES,
    }
    figures: dict[str, Any] = {"tasks": tasks, "runs": runs, "seed_s": round(seeded, 1)}
    rows: list[Row] = []
    with Server(data_dir) as server:
        server.start(timeout=300)
        _measure(server.port, ["/ui/", f"/ui/tasks/{task_ids[0]}"])  # warm up
        for name, paths in pages.items():
            times = _measure(server.port, paths)
            p50, p99 = percentile(times, 50) * 1000, percentile(times, 99) * 1000
            figures[name] = {"p50_ms": round(p50, 2), "p99_ms": round(p99, 2)}
            rows.append(
                Row(
                    f"dashboard {name} ({tasks:,} tasks, {runs:,} runs): p50 / p99",
                    f"{p50:.1f} / {p99:.1f} ms",
                    f"p99 < {TARGET_P99_MS:g} ms",
                    p99 < TARGET_P99_MS,
                )
            )
    return Outcome(figures, rows)
