"""The registry's schedule extensions: cron slots (fixed rate, overlap), retries, misfires,
PATCH and pause/resume. ``Registry`` (registry.py) mixes this in; the instants themselves come
from ``arangotasks.schedule``."""

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager

from arangotasks import schedule
from arangotasks.auth import Principal
from arangotasks.catalog import Catalog
from arangotasks.claims import Claims
from arangotasks.config import Misfire, Settings
from arangotasks.errors import ArangoError, ErrorCode
from arangotasks.history import History
from arangotasks.models import ErrorType, Overlap, Run, RunStatus, RunTrigger, Task
from arangotasks.scheduler import JobScheduler
from arangotasks.store.base import TaskStore
from arangotasks.validation import TaskSpec


class ScheduleMixin:
    """Needs the registry's state and these of its methods (declared here for the type checker)."""

    settings: Settings
    store: TaskStore
    history: History
    _scheduler: JobScheduler
    catalog: Catalog
    claims: Claims
    _shared: bool
    _run_locks: dict[str, asyncio.Lock]
    _busy: dict[str, int]
    _stopping: asyncio.Event
    get: Callable[[str, Principal], Task]
    _write_lock: Callable[[str], AbstractAsyncContextManager[None]]
    _schedule: Callable[[Task, float], None]
    _period_seconds: Callable[[Task], float]
    _forget: Callable[[Task], Awaitable[None]]
    _finished: Callable[[Run], None]
    _spawn: Callable[[Awaitable[None]], None]

    def _misfire(self, task: Task) -> Misfire:
        return Misfire(task.options.misfire or self.settings.misfire)

    def _record_missed(self, task: Task, due: float, now: float, why: str) -> None:
        error = {
            "type": ErrorType.MISSED.value,
            "name": "Missed",
            "message": f"skipped: its time passed {why} (misfire=skip)",
            "stack": "",
        }
        self._record_unrun(task, due, RunStatus.CANCELED, error, listeners=False)

    def _record_unrun(
        self, task: Task, slot: float, status: RunStatus, error: dict[str, str], *, listeners: bool
    ) -> None:
        """Record a slot that does not run (missed, or skipped for overlap). On one server at
        once; with several nodes after the occurrence fence took the slot for it."""

        def record(run: Run) -> None:
            run.finished_at = time.time()
            run.error = error
            if listeners:
                self._finished(run)
            else:
                self.history.touch(run)

        if not self._shared:
            record(self.history.new_run(task, RunTrigger.SCHEDULE, slot, status=status))
            return

        async def admitted() -> None:
            run = await self.claims.admit(task, RunTrigger.SCHEDULE, slot, status, 1)
            if isinstance(run, Run):
                record(run)

        self._spawn(admitted())

    def next_runs(self, task: Task, count: int) -> list[float]:
        """The next ``count`` slots of ``task`` (none while it is paused)."""
        return schedule.upcoming(task, count, self._period_or_none(task))

    async def update(self, task_id: str, principal: Principal, spec: TaskSpec) -> Task:
        """PATCH: change a task in place. Its id, ``created`` and history stay, a run in progress
        finishes as it started, and the next run follows the new schedule."""
        task = await self.catalog.lookup(task_id, principal)
        async with self._write_lock(task_id):
            if not self.catalog.holds(task):
                raise ArangoError(ErrorCode.TASK_NOT_FOUND)
            if task.next_run_at is None and not _repeats(task):
                raise ArangoError(ErrorCode.BAD_PARAMETER, "a timed task cannot change once it ran")
            new = dataclasses.replace(
                task,
                name=spec.name,
                command=spec.command,
                period_ms=spec.period_ms,
                params_json=spec.params_json,
                timeout=spec.timeout,
                options=spec.options,
                notify=spec.notify,
                revision=task.revision + 1,
            )
            retimed = _timing(new) != _timing(task)
            if retimed:
                at = schedule.changed_fire(new, time.time(), self._period_or_none(new))
                if at is None:
                    raise ArangoError(ErrorCode.BAD_PARAMETER, "endAt: no slot comes before endAt")
                new.next_run_at = at
            if not await self.store.update_task(new):
                raise ArangoError(ErrorCode.TASK_NOT_FOUND)
            # The live object changes (after the commit), so that a run in progress continues
            # on the new schedule when it ends.
            self.catalog.replace(task, new)
            self.history.forget_next_run(task_id)
            if self._shared:
                await self._tell("u", task_id)  # type: ignore[attr-defined]  # peers.py
                if not retimed and not self.claims.holds(task_id):
                    return task  # its holder reloads it; its schedule is unchanged
                # This node holds it now: the old holder's fence is void, its timer idle.
                if not await self.claims.taken(task):
                    raise ArangoError(ErrorCode.TASK_NOT_FOUND)
            self._scheduler.cancel(task_id)
            # A periodic run in progress arms its next run itself when it ends.
            in_run = task.period_ms is not None and task.id in self._busy
            if task.next_run_at is not None and (retimed or not in_run):
                self._schedule(task, task.next_run_at)
            if not in_run:
                self.claims.settle(task, busy=False)  # a far next run: back to the cluster
            return task

    def _period_or_none(self, task: Task) -> float | None:
        return None if task.period_ms is None else self._period_seconds(task)

    async def _fire_slot(self, task: Task, slot: float) -> None:
        """A cron slot: arm the next one now (fixed rate), then run this one unless the last
        run still goes (overlap)."""
        self._arm_after(task, slot)
        if self._overlapping(task):
            self._record_skipped(task, slot)
        else:
            await self._attempts(task, slot)  # type: ignore[attr-defined]  # runpath.py
        await self._finish_slot(task)

    def _arm_after(self, task: Task, slot: float) -> None:
        """Arm the cron slot after ``slot`` (``next_run_at`` None: there is none, past endAt)."""
        at = schedule.after_slot(task, slot)
        now = time.time()
        if at is not None and at <= now:
            # The server fell behind by more than a slot (a stall, a suspended machine): the
            # slots it missed are a misfire. run_once: this late run stands for them.
            if self._misfire(task) is Misfire.SKIP:
                self._record_missed(task, at, now, "while the server was behind")
            at = schedule.after_misfire(task, at, now, None)
        task.next_run_at = at
        self.claims.next_run(task, at)
        if at is not None:
            self._schedule(task, at)

    def _overlapping(self, task: Task) -> bool:
        """Whether a slot of ``task`` that comes now must be skipped (overlap): its last run
        still goes (or a manual one), and ``buffer`` holds one waiting at most."""
        busy = self._busy.get(task.id, 0)
        if not busy:
            lock = self._run_locks.get(task.id)
            if lock is not None and lock.locked():
                busy = 1  # a manual run is going
        return bool(busy) and (task.options.overlap is not Overlap.BUFFER or busy > 1)

    async def _finish_slot(self, task: Task) -> None:
        """After a cron slot: a task with no further slot (past endAt) is finished."""
        if task.next_run_at is None and self.catalog.holds(task):
            await self._forget(task)  # past endAt: finished, its history kept

    def _record_skipped(self, task: Task, slot: float) -> None:
        error = {
            "type": ErrorType.OVERLAP.value,
            "name": "Overlap",
            "message": "skipped: the previous run of this task was still going (overlap=skip)",
            "stack": "",
        }
        self._record_unrun(task, slot, RunStatus.SKIPPED, error, listeners=True)


def _repeats(task: Task) -> bool:
    return task.period_ms is not None or task.options.cron is not None


def _timing(task: Task) -> tuple[object, ...]:
    """What decides when a task fires; a PATCH that changes none of it keeps the next run."""
    o = task.options
    return (task.period_ms, o.cron, o.timezone, o.start_at, o.end_at, o.enabled)
