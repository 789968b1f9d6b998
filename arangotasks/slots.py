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
    _tasks: dict[str, Task]
    _api_json: dict[str, str]
    _run_locks: dict[str, asyncio.Lock]
    _busy: dict[str, int]
    _stopping: asyncio.Event
    get: Callable[[str, Principal], Task]
    _write_lock: Callable[[str], AbstractAsyncContextManager[None]]
    _schedule: Callable[[Task, float], None]
    _period_seconds: Callable[[Task], float]
    _forget: Callable[[Task], Awaitable[None]]
    _execute: Callable[[Task, Run], Awaitable[None]]
    _finished: Callable[[Run], None]

    def _misfire(self, task: Task) -> Misfire:
        return Misfire(task.options.misfire or self.settings.misfire)

    def _record_missed(self, task: Task, due: float, now: float, why: str) -> None:
        missed = self.history.new_run(task, RunTrigger.SCHEDULE, due, status=RunStatus.CANCELED)
        missed.finished_at = now
        missed.error = {
            "type": ErrorType.MISSED.value,
            "name": "Missed",
            "message": f"skipped: its time passed {why} (misfire=skip)",
            "stack": "",
        }
        self.history.touch(missed)

    def next_runs(self, task: Task, count: int) -> list[float]:
        """The next ``count`` slots of ``task`` (none while it is paused)."""
        return schedule.upcoming(task, count, self._period_or_none(task))

    async def update(self, task_id: str, principal: Principal, spec: TaskSpec) -> Task:
        """PATCH: change a task in place. Its id, ``created`` and history stay, a run in progress
        finishes as it started, and the next run follows the new schedule."""
        task = self.get(task_id, principal)
        async with self._write_lock(task_id):
            if self._tasks.get(task_id) is not task:
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
            for field in dataclasses.fields(Task):
                setattr(task, field.name, getattr(new, field.name))
            self._api_json.pop(task_id, None)
            self.history.forget_next_run(task_id)
            self._scheduler.cancel(task_id)
            # A periodic run in progress arms its next run itself when it ends.
            in_run = task.period_ms is not None and task.id in self._busy
            if task.next_run_at is not None and (retimed or not in_run):
                self._schedule(task, task.next_run_at)
            return task

    def _period_or_none(self, task: Task) -> float | None:
        return None if task.period_ms is None else self._period_seconds(task)

    async def _fire_slot(self, task: Task, slot: float) -> None:
        """A cron slot: arm the next one now (fixed rate), then run this one unless the last
        run still goes (overlap)."""
        at = schedule.after_slot(task, slot)
        now = time.time()
        if at is not None and at <= now:
            # The server fell behind by more than a slot (a stall, a suspended machine): the
            # slots it missed are a misfire. run_once: this late run stands for them.
            if self._misfire(task) is Misfire.SKIP:
                self._record_missed(task, at, now, "while the server was behind")
            at = schedule.after_misfire(task, at, now, None)
        task.next_run_at = at
        self.history.note_next_run(task.id, at)
        if at is not None:
            self._schedule(task, at)
        busy = self._busy.get(task.id, 0)
        lock = self._run_locks.get(task.id)
        if not busy and lock is not None and lock.locked():
            busy = 1  # a manual run is going
        if busy and (task.options.overlap is not Overlap.BUFFER or busy > 1):
            self._record_skipped(task, slot)
        else:
            await self._attempts(task, slot)
        if task.next_run_at is None and self._tasks.get(task.id) is task:
            await self._forget(task)  # past endAt: finished, its history kept

    def _record_skipped(self, task: Task, slot: float) -> None:
        skipped = self.history.new_run(task, RunTrigger.SCHEDULE, slot, status=RunStatus.SKIPPED)
        skipped.finished_at = time.time()
        skipped.error = {
            "type": ErrorType.OVERLAP.value,
            "name": "Overlap",
            "message": "skipped: the previous run of this task was still going (overlap=skip)",
            "stack": "",
        }
        self._finished(skipped)

    async def _attempts(self, task: Task, scheduled_at: float) -> None:
        """Run a scheduled slot, and retry a failed run as ``retries`` says (attempts 2, 3, ...)."""
        self._busy[task.id] = self._busy.get(task.id, 0) + 1
        try:
            attempt = 1
            while True:
                run = self.history.new_run(
                    task,
                    RunTrigger.SCHEDULE,
                    scheduled_at,
                    status=RunStatus.ENQUEUED,
                    attempt=attempt,
                )
                await self._execute(task, run)
                retries = task.options.retries
                if run.status is not RunStatus.FAILED or retries is None or attempt > retries.count:
                    return
                attempt += 1
                if await self._stopped_within(retries.delay_before(attempt)):
                    return
                if self._tasks.get(task.id) is not task:
                    return  # deleted meanwhile
        finally:
            left = self._busy[task.id] - 1
            if left:
                self._busy[task.id] = left
            else:
                del self._busy[task.id]

    async def _stopped_within(self, seconds: float) -> bool:
        try:
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        except TimeoutError:
            return False
        return True


def _repeats(task: Task) -> bool:
    return task.period_ms is not None or task.options.cron is not None


def _timing(task: Task) -> tuple[object, ...]:
    """What decides when a task fires; a PATCH that changes none of it keeps the next run."""
    o = task.options
    return (task.period_ms, o.cron, o.timezone, o.start_at, o.end_at, o.enabled)
