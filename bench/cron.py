"""Cron: fire lateness of 1,000 ``* * * * * *`` tasks against 1,000 ``period: 1`` tasks in the
same run, and the cost of computing cron slots.

The method of ``bench/precision.py`` (fire lateness = when ``Registry._fire`` starts minus the
slot it was armed for), in-process, each configuration in a fresh event loop:

* ``cron``: 1,000 tasks ``* * * * * *`` (UTC). Every slot is a whole second, so all 1,000 are due
  at the same instant, every second: one burst.
* ``period-burst``: 1,000 ``period: 1`` tasks whose first runs are all at the same instant (the
  same burst; with fixed delay they stay nearly aligned). The like-for-like comparison.
* ``period-spread``: 1,000 ``period: 1`` tasks spread over the second (``precision``'s setup).

``null`` is a sandbox that answers at once (the scheduling path alone); ``pool`` the real QuickJS
pool. Slot cost: 100 consecutive slots of a few expressions and zones with ``Cron.after``.
"""

import asyncio
import itertools
import math
import time
import timeit
from pathlib import Path
from typing import Any

from bench.common import BenchContext, Outcome, Row, quiet_in_process_logs, summary_ms
from bench.precision import _registry

COUNT = 1000
TARGET_RATIO = 1.5
TARGET_P99_MS = 10.0
EXPRESSIONS = [
    ("* * * * * *", "UTC"),
    ("* * * * * *", "Europe/Berlin"),
    ("*/15 * * * *", "America/New_York"),
    ("30 2 * * *", "Australia/Lord_Howe"),
    ("0 9 * * MON-FRI", "Asia/Kolkata"),
]


def _seed(data_dir: Path, kind: str) -> None:
    from arangotasks.models import Options, Task
    from arangotasks.store import open_store
    from arangotasks.store.schema import Stmt, task_to_row

    async def seed() -> None:
        store: Any = open_store(None, data_dir)
        await store.open()
        try:
            now = time.time()
            first = math.ceil(now) + 1.0  # a whole second, as a cron slot
            tasks = []
            for i in range(COUNT):
                at = first + (i / COUNT if kind == "period-spread" else 0.0)
                cron = kind == "cron"
                tasks.append(
                    Task(
                        id=f"{kind}{i}",
                        name=f"bench {i}",
                        created=now,
                        command="return params.a + params.b;",
                        database="_system",
                        period_ms=None if cron else 1000,
                        params_json='{"a":1,"b":2}',
                        next_run_at=at,
                        options=Options(cron="* * * * * *") if cron else Options(),
                    )
                )
            stmt = Stmt(store._insert_task, many=[task_to_row(task) for task in tasks])
            await store._execute([stmt], write=True)
        finally:
            await store.close()

    asyncio.run(seed())


def _slot_cost() -> dict[str, float]:
    from arangotasks import cron

    start = time.time()
    costs = {}
    for expression, zone in EXPRESSIONS:
        parsed = cron.parse(expression, zone)
        rounds = 20
        seconds = timeit.timeit(
            lambda p=parsed: list(itertools.islice(p.after(start), 100)), number=rounds
        )
        costs[f"{expression} ({zone})"] = round(seconds / rounds * 1e3, 3)
    return costs


def run(ctx: BenchContext) -> Outcome:
    quiet_in_process_logs()
    warmup, seconds = (1.5, 3.0) if ctx.quick else (2.0, 8.0)
    figures: dict[str, Any] = {"tasks": COUNT, "window_s": seconds, "results": {}}
    rows: list[Row] = []
    for sandbox in ("null", "pool"):
        p99 = {}
        for kind in ("period-spread", "period-burst", "cron"):
            data_dir = ctx.workdir / f"cron-{sandbox}-{kind}"
            _seed(data_dir, kind)
            window = asyncio.run(_registry(data_dir, sandbox == "pool", warmup, seconds))
            fire = summary_ms(window.fire)
            result: dict[str, Any] = {
                "fire": fire,
                "fires_per_task_per_s": round(len(window.fire) / COUNT / seconds, 3),
            }
            if window.start:
                result["start"] = summary_ms(window.start)
            figures["results"][f"{sandbox}/{kind}"] = result
            p99[kind] = fire["p99_ms"]
            print(f"   {sandbox:>4} {kind:>13}: {result}", flush=True)
            rows.append(
                Row(
                    f"{COUNT} tasks {kind:<13} ({sandbox}) fire lateness med/p99",
                    f"{fire['median_ms']:.2f}/{fire['p99_ms']:.2f} ms, "
                    f"{result['fires_per_task_per_s']:.2f} fires/task/s",
                )
            )
        ratio = p99["cron"] / max(p99["period-burst"], 1e-3)
        figures["results"][f"{sandbox}/cron_over_period_burst_p99"] = round(ratio, 2)
        ok = ratio <= TARGET_RATIO and p99["cron"] < TARGET_P99_MS
        rows.append(
            Row(
                f"cron / period (same burst) p99 ({sandbox})",
                f"{ratio:.2f}x ({p99['cron']:.2f} / {p99['period-burst']:.2f} ms)",
                f"<= {TARGET_RATIO}x and < {TARGET_P99_MS:g} ms",
                ok,
            )
        )
    costs = _slot_cost()
    figures["next_100_slots_ms"] = costs
    for name, ms in costs.items():
        rows.append(Row(f"100 next slots of {name}", f"{ms:.2f} ms ({ms * 10:.1f} us a slot)"))
    return Outcome(figures, rows)
