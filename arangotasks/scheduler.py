"""Timing engine: APScheduler 3's AsyncIOScheduler with its in-memory job store.

The task table in the store is the single source of truth; this holds only "when does each task
fire next" and is rebuilt from the store at start. Every job is a one-shot date job; a periodic
task is re-added by the registry after its run finishes (ArangoDB's fixed delay, §1.6).
"""

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

# APScheduler logs two INFO lines per run; at hundreds of runs per second that is the hot path.
logging.getLogger("apscheduler").setLevel(logging.WARNING)


class JobScheduler:
    """One pending fire time per key (a task id)."""

    def __init__(self) -> None:
        self._aps = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={
                # Late is better than never: a busy loop must not silently drop runs.
                "misfire_grace_time": None,
                "coalesce": True,
                # Overlap is prevented by the registry's per-task lock. APScheduler's own
                # instance count is released a tick after the coroutine ends, which would make
                # a job re-added from inside its own run look like an overlap and be skipped.
                "max_instances": 1_000_000,
            },
        )

    def start(self) -> None:
        """Start the timer; must be called inside the running event loop."""
        self._aps.start()

    def shutdown(self) -> None:
        if self._aps.running:
            self._aps.shutdown(wait=False)

    def schedule(self, key: str, at: float, func: Callable[[], Awaitable[None]]) -> None:
        """Fire ``func`` at epoch second ``at`` (at once if it has passed), replacing any
        earlier schedule of ``key``."""
        trigger = DateTrigger(run_date=datetime.fromtimestamp(at, UTC), timezone=UTC)
        self._aps.add_job(func, trigger=trigger, id=key, replace_existing=True)

    def cancel(self, key: str) -> bool:
        try:
            self._aps.remove_job(key)
        except JobLookupError:
            return False
        return True

    def pending(self) -> int:
        return len(self._aps.get_jobs())
