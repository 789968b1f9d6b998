"""Precision: how late periodic tasks of period 1 s fire, for 100, 1,000 and 10,000 tasks, against
the floor of bare APScheduler 3.11 on the same machine in the same run.

Measured in-process, each configuration in a fresh event loop, first runs spread over one period:

* ``registry+pool``: the real ``Registry`` (SQLite store, history on) and the real QuickJS pool.
  Fire lateness = when the scheduler calls ``Registry._fire_now`` (the registry takes the slot)
  minus the time the task was scheduled for (``task.next_run_at``, what ``_schedule`` handed to
  APScheduler). Start lateness = the run record's ``startedAt - scheduledAt``. The registry
  stamps ``startedAt`` before it waits for a free worker, so a saturated pool shows in the run's
  duration
  (``finishedAt - startedAt``, also reported), not in the start lateness; and a periodic task
  whose runs queue fires less often than once a period (fixed delay): see ``runs/task/s``.
* ``registry+null``: the same registry with a sandbox that answers at once: the scheduling path
  alone (registry, history, store, APScheduler), comparable to the bare floor.
* ``bare-date``: APScheduler ``AsyncIOScheduler`` + ``MemoryJobStore``, coroutine jobs that do
  nothing but re-add themselves as one-shot date jobs one period after they ran (our pattern).
* ``bare-interval``: the same with one ``IntervalTrigger(seconds=1)`` job per task.
"""

import asyncio
import functools
import math
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bench.common import (
    BenchContext,
    CpuMeter,
    Outcome,
    Row,
    quiet_in_process_logs,
    seed_tasks,
    summary_ms,
)

TARGET_P99_MS = 10.0
TARGET_TASKS = 1000
PERIOD = 1.0
JOB_DEFAULTS = {"misfire_grace_time": None, "coalesce": True, "max_instances": 1_000_000}


class NullSandbox:
    """A sandbox whose every run succeeds at once (after one loop iteration)."""

    size = 0

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def drain(self) -> None:
        pass

    def interrupt(self) -> None:
        pass

    async def compile_error(self, command: str, **_: Any) -> str | None:
        return None

    async def run(self, command: str, params_json: str | None, limits: Any = None, **_: Any) -> Any:
        from arangotasks.models import RunOutcome

        await asyncio.sleep(0)
        return RunOutcome(ok=True, result_json="3")


class Window:
    """Collects samples only between ``open()`` and ``close()``."""

    def __init__(self) -> None:
        self.open_ = False
        self.fire: list[float] = []
        self.start: list[float] = []
        self.duration: list[float] = []
        self.first: list[float] = []  # fires of the slot ``first_at`` given to _registry
        # When the run of a slot reached ``sandbox.run`` (handed on to be run) minus the slot.
        self.handoff: list[float] = []

        # The registry's fires as (when, slot), kept whole and sorted out after the window:
        # appending one pair is the least a fire can pay for being measured (a burst of 1,000
        # fires adds each fire's measuring to the lateness of every fire after it).
        self.fired: list[tuple[float, float]] = []
        self.opened_at = self.closed_at = 0.0

    def add(self, samples: list[float], value: float) -> None:
        if self.open_:
            samples.append(value)

    async def measure(self, warmup: float, seconds: float) -> None:
        await asyncio.sleep(warmup)
        self.open_ = True
        self.opened_at = time.time()
        await asyncio.sleep(seconds)
        self.open_ = False
        self.closed_at = time.time()

    def sort_fired(self, first_at: float | None) -> None:
        """Fire lateness from :attr:`fired`: those in the window, and those of ``first_at``."""
        for when, slot in self.fired:
            late = when - slot
            if self.opened_at <= when < self.closed_at:
                self.fire.append(late)
            if slot == first_at:  # also before the window opens
                self.first.append(late)


async def _registry(
    data_dir: Path, real_pool: bool, warmup: float, seconds: float, first_at: float | None = None
) -> Window:
    from arangotasks.config import Settings
    from arangotasks.models import Run, RunTrigger, Task
    from arangotasks.registry import Registry
    from arangotasks.sandbox import QuickJSSandbox
    from arangotasks.store import open_store

    settings = Settings(data_dir=data_dir, no_auth=True, history=True)
    sandbox: Any = QuickJSSandbox(settings.workers) if real_pool else NullSandbox()
    registry = Registry(open_store(None, data_dir), sandbox, settings)
    window = Window()
    original = registry._fire_now
    slots: dict[str, float] = {}  # task id -> the slot its fire began with
    sandbox_run = sandbox.run

    fired = window.fired.append

    def timed_fire(task: Task) -> Any:
        slot = task.next_run_at
        if slot is not None:
            fired((time.time(), slot))
            slots[task.id] = slot
        return original(task)

    def handed_on(*args: Any, **kwargs: Any) -> Any:
        # Not a coroutine: the run's own coroutine starts as soon as this returns it.
        slot = slots.pop(kwargs.get("label", ""), None)
        if slot is not None:  # a slot skipped for overlap never gets here
            window.add(window.handoff, time.time() - slot)
        return sandbox_run(*args, **kwargs)

    sandbox.run = handed_on

    def finished(run: Run) -> None:
        if run.trigger is RunTrigger.SCHEDULE and run.started_at is not None:
            window.add(window.start, run.started_at - run.scheduled_at)
            if run.finished_at is not None:
                window.add(window.duration, run.finished_at - run.started_at)

    # _schedule() binds self._fire_now when it schedules: the instance attribute wins.
    registry._fire_now = timed_fire  # type: ignore[method-assign]
    registry.run_listeners.append(finished)
    await registry.start()
    try:
        await window.measure(warmup, seconds)
    finally:
        await registry.close()
    window.sort_fired(first_at)
    return window


async def _bare(count: int, interval: bool, warmup: float, seconds: float) -> Window:
    scheduler = AsyncIOScheduler(timezone=UTC, job_defaults=JOB_DEFAULTS)
    scheduler.start()
    window = Window()
    due: dict[str, float] = {}

    async def date_job(key: str) -> None:
        now = time.time()
        window.add(window.fire, now - due[key])
        # Fixed delay, as the registry does: the next run one period after this one.
        due[key] = at = time.time() + PERIOD
        trigger = DateTrigger(run_date=datetime.fromtimestamp(at, UTC), timezone=UTC)
        scheduler.add_job(functools.partial(date_job, key), trigger, id=key, replace_existing=True)

    async def interval_job(key: str) -> None:
        now = time.time()
        start = due[key]
        window.add(window.fire, now - (start + math.floor((now - start) / PERIOD) * PERIOD))

    first = time.time() + 1.0
    for i in range(count):
        key = f"job{i}"
        due[key] = at = first + PERIOD * i / count
        if interval:
            trigger: Any = IntervalTrigger(
                seconds=PERIOD, start_date=datetime.fromtimestamp(at, UTC), timezone=UTC
            )
            scheduler.add_job(functools.partial(interval_job, key), trigger, id=key)
        else:
            trigger = DateTrigger(run_date=datetime.fromtimestamp(at, UTC), timezone=UTC)
            scheduler.add_job(functools.partial(date_job, key), trigger, id=key)
    try:
        await window.measure(warmup, seconds)
    finally:
        scheduler.shutdown(wait=False)
        await asyncio.sleep(0)
    return window


def _config(folder: Path, kind: str, count: int, warmup: float, seconds: float) -> Window:
    if kind.startswith("bare"):
        return asyncio.run(_bare(count, kind == "bare-interval", warmup, seconds))
    data_dir = folder / f"{kind}-{count}"
    seed_tasks(data_dir, count, first_in=1.0, spread=PERIOD, period=PERIOD)
    return asyncio.run(_registry(data_dir, kind == "registry+pool", warmup, seconds))


KINDS = ("bare-date", "bare-interval", "registry+null", "registry+pool")


def run(ctx: BenchContext) -> Outcome:
    quiet_in_process_logs()
    counts = (100, 1000) if ctx.quick else (100, 1000, 10_000)
    warmup, seconds = (1.5, 3.0) if ctx.quick else (2.0, 6.0)
    figures: dict[str, Any] = {"period_s": PERIOD, "window_s": seconds, "results": {}}
    table: dict[tuple[str, int], dict[str, Any]] = {}
    for count in counts:
        for kind in KINDS:
            meter = CpuMeter(os.getpid())
            meter.start()
            started = time.perf_counter()
            window = _config(ctx.workdir, kind, count, warmup, seconds)
            meter.stop()
            result: dict[str, Any] = {"fire": summary_ms(window.fire)}
            # CPU of every other process on the machine meanwhile (the machine may be shared).
            result["other_processes_cores"] = round(
                meter.others / (time.perf_counter() - started), 2
            )
            if window.start:
                result["start"] = summary_ms(window.start)
                result["duration"] = summary_ms(window.duration)
            # Expected samples: one per task per period (fewer when the runs fall behind).
            result["fires_per_task_per_s"] = round(len(window.fire) / count / seconds, 3)
            table[kind, count] = result
            figures["results"][f"{kind}/{count}"] = result
            print(f"   {kind:>14} {count:>6}: {result}", flush=True)

    rows: list[Row] = []
    for count in counts:
        # The floor: the better of the two bare APScheduler patterns at this count.
        floor_p99 = min(table[kind, count]["fire"]["p99_ms"] for kind in KINDS[:2])
        figures["results"][f"floor_p99_ms/{count}"] = floor_p99
        for kind in KINDS:
            fire = table[kind, count]["fire"]
            label = f"{count:>6} tasks {kind:<14} fire lateness med/p99/max"
            value = f"{fire['median_ms']:.2f}/{fire['p99_ms']:.2f}/{fire['max_ms']:.1f} ms"
            target, ok = "", None
            if kind.startswith("registry"):
                ratio = fire["p99_ms"] / max(floor_p99, 1e-3)
                value += f" ({ratio:.1f}x floor p99"
                value += f", others {table[kind, count]['other_processes_cores']:.1f} cores)"
                if count == TARGET_TASKS and kind == "registry+pool":
                    target, ok = f"p99 < {TARGET_P99_MS:g} ms", fire["p99_ms"] < TARGET_P99_MS
            rows.append(Row(label, value, target, ok))
        pool = table["registry+pool", count]
        if "start" in pool:
            start, duration = pool["start"], pool["duration"]
            rows.append(
                Row(
                    f"{count:>6} tasks registry+pool start lateness, run duration p50/p99",
                    f"{start['median_ms']:.1f}/{start['p99_ms']:.1f}, "
                    f"{duration['median_ms']:.1f}/{duration['p99_ms']:.1f} ms, "
                    f"{pool['fires_per_task_per_s']:.2f} runs/task/s",
                )
            )
    return Outcome(figures, rows)
