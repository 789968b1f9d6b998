"""The run path: a fire time comes → the slot is admitted (``claims.py``) → the sandbox runs it
→ the record is written (``history.py``) → the next fire time is armed. ``Registry`` mixes
this in, with the schedule extensions of ``slots.py``."""

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from arangotasks import schedule
from arangotasks.catalog import Catalog
from arangotasks.claims import Claims, LocalClaims
from arangotasks.config import Settings
from arangotasks.errors import StoreUnavailableError
from arangotasks.history import History
from arangotasks.models import ErrorType, Run, RunOutcome, RunStatus, RunTrigger, Task
from arangotasks.quotas import Allowance
from arangotasks.runlog import log_run
from arangotasks.sandbox.base import Limits, NotStartedError, Sandbox, SandboxClosedError
from arangotasks.stopping import canceled_error
from arangotasks.store.cluster_rows import Admission

log = logging.getLogger(__name__)

MARK_FIRED_RETRY = 1.0
# A scheduled run admitted on a node whose lease then lapsed (it paused, or lost PostgreSQL,
# while the run waited for a worker): it never started, and another node may run the task.
LAPSED_NAME = "LeaseLapsed"
LAPSED_ERROR = {
    "type": ErrorType.MISSED.value,
    "name": LAPSED_NAME,
    "message": "not started: this node's lease on the task lapsed while the run waited for a "
    "worker (the node paused or lost PostgreSQL); the task goes on where it is held",
    "stack": "",
}


def _readable(outcome: RunOutcome) -> RunOutcome:
    """A result the engine could serialise but Python cannot read back (nested deeper than its
    recursion limit) would break every page of the runs API: record it as a failed run."""
    # Nesting needs two characters a level: a short text cannot reach the limit (~1,000), and
    # most results are short, so they skip the second parse on the run path.
    if outcome.result_json is None or len(outcome.result_json) < 1000:
        return outcome
    try:
        json.loads(outcome.result_json)
    except RecursionError:
        error = {
            "type": ErrorType.RESULT.value,
            "name": "RangeError",
            "message": "the returned value is nested too deeply",
            "stack": "",
        }
        return RunOutcome(ok=False, output=outcome.output, error=error, requests=outcome.requests)
    return outcome


class RunPath:
    """Needs the registry's state and these of its methods (declared for the type checker)."""

    settings: Settings
    sandbox: Sandbox
    history: History
    catalog: Catalog
    claims: Claims
    run_listeners: list[Callable[[Run], None]]
    _active: set[asyncio.Task[None]]
    _run_locks: dict[str, asyncio.Lock]
    _busy: dict[str, int]
    _stopping: asyncio.Event
    _unstarted: set[str]
    _default_limits: Limits
    _shared: bool

    _schedule: Callable[[Task, float], None]
    _period_seconds: Callable[[Task], float]
    allowance: Callable[[str], Allowance]
    _forget: Callable[[Task], Awaitable[None]]
    _mark_fired_write: Callable[[Task], Awaitable[None]]
    _fire_slot: Callable[[Task, float], Awaitable[None]]
    _arm_after: Callable[[Task, float], None]
    _overlapping: Callable[[Task], bool]
    _record_skipped: Callable[[Task, float], None]
    _unarmed: list[tuple[Task, float, bool]]
    _finish_slot: Callable[[Task], Awaitable[None]]
    _local: LocalClaims | None
    _spawn: Callable[[Awaitable[None]], None]

    def _fire_now(self, task: Task) -> Coroutine[Any, Any, None] | None:
        """A fire time of ``task`` came: called by the scheduler on the loop, without yielding.

        On one server the slot is taken right here: decided (a slot that overlaps the last run
        is recorded skipped) and its run admitted (the record made, ``enqueuedAt``). A bucket of
        1,000 fires at one instant is a pass of plain calls, not 1,000 chains of coroutines.
        After the pass the scheduler calls :meth:`_arm_fired` (the next cron slots), then
        starts what the fires returned, their runs (:meth:`_fire` with the admitted run).
        Several nodes (the admission is a database write) and timed tasks (their fired mark is
        written first) return the whole fire as a coroutine, :meth:`_fire` without one.
        """
        if self._stopping.is_set() or not self.catalog.holds(task):
            return None
        local = self._local
        cron = task.options.cron
        if local is None or (cron is None and task.period_ms is None):
            return self._fire(task)
        slot = task.next_run_at if task.next_run_at is not None else time.time()
        if cron is not None:
            overlaps = self._overlapping(task)
            self._unarmed.append((task, slot, overlaps))
            if overlaps:
                self._record_skipped(task, slot)
                return None
        run = local.admit_now(task, RunTrigger.SCHEDULE, slot, RunStatus.ENQUEUED, 1)
        busy = self._busy
        busy[task.id] = busy.get(task.id, 0) + 1  # counted off by _attempts' finally
        return self._fire(task, (slot, run))

    def _arm_fired(self) -> None:
        """After a pass of fires: arm the next slot of each cron task the pass took (fixed rate:
        before any of their runs starts). A task skipped for overlap with no further slot (past
        endAt) is finished; one that runs is finished after its run."""
        unarmed, self._unarmed = self._unarmed, []
        for task, slot, skipped in unarmed:
            if not self.catalog.holds(task):
                continue
            try:
                self._arm_after(task, slot)
            except Exception:  # one task's failure must not leave the others unarmed
                log.exception("task %s: next slot after %.3f not armed", task.id, slot)
                continue
            if skipped and task.next_run_at is None:
                self._spawn(self._finish_slot(task))

    def _start_fire(self, key: str, fire: Awaitable[None]) -> None:
        """Run a fire's coroutine in a task the registry waits for at its stop."""
        self._spawn(fire)

    async def _fire(self, task: Task, admitted: tuple[float, Run] | None = None) -> None:
        """A fire's coroutine: with ``admitted`` (slot, run), the rest of a fire that
        :meth:`_fire_now` admitted (the run, its retries, then what follows it: the next
        periodic run; a cron task past ``endAt`` is removed); without, the whole fire (several
        nodes, timed tasks)."""
        if admitted is None and (not self.catalog.holds(task) or not self.claims.holds(task.id)):
            return  # deleted, or claimed by another node, after this fire time was taken
        try:
            if admitted is None:
                await self._fire_once(task)
            elif task.options.cron is not None:
                await self._attempts(task, *admitted)
                await self._finish_slot(task)
            elif await self._attempts(task, *admitted):
                await self._after_attempts(task, admitted[0])
        except asyncio.CancelledError:
            if not self._stopping.is_set():
                raise
            # Cancelled by close() after every wait: no traceback for a normal stop.
            log.warning("task %s: run abandoned at stop", task.id)
        finally:
            if self.catalog.holds(task) and not self._stopping.is_set():
                self.claims.settle(task, busy=task.id in self._busy)

    async def _fire_once(self, task: Task) -> None:
        scheduled_at = task.next_run_at if task.next_run_at is not None else time.time()
        if task.options.cron is not None:
            await self._fire_slot(task, scheduled_at)
            return
        if task.period_ms is None and not self._shared:
            # Written before the run starts, so that a timed task never runs twice (§1.6).
            # (Several nodes: the run row that the occurrence fence inserts is that mark.)
            try:
                await self._mark_fired_write(task)
            except StoreUnavailableError as exc:
                log.warning("task %s: store unavailable, run postponed: %s", task.id, exc)
                self._schedule(task, time.time() + MARK_FIRED_RETRY)
                return
            task.next_run_at = None
        if await self._attempts(task, scheduled_at):
            await self._after_attempts(task, scheduled_at)

    async def _after_attempts(self, task: Task, scheduled_at: float) -> None:
        """After the runs of a periodic or timed task's slot: arm the next run, or remove it."""
        if not self.catalog.holds(task):
            return
        if task.period_ms is None and self._stopping.is_set() and not self._ran(task):
            # Canceled at the stop before it started: it never ran, so it runs after the next
            # start (still at most once).
            task.next_run_at = scheduled_at
            self.claims.next_run(task, scheduled_at)
            return
        if task.period_ms is not None:
            # Fixed delay: the next run is one period after this one finished (§1.6).
            at = schedule.after_run(task, time.time(), self._period_seconds(task))
            if at is None:  # past endAt: finished
                await self._forget(task)
                return
            task.next_run_at = at
            self.claims.next_run(task, at)
            self._schedule(task, at)
        else:
            task.next_run_at = None
            await self._forget(task)

    async def _attempts(self, task: Task, scheduled_at: float, first: Run | None = None) -> bool:
        """Run a scheduled slot, and retry a failed run as ``retries`` says (attempts 2, 3, ...).
        False when this node lost the task (it runs nothing more of it). ``first``: the first
        attempt, admitted and counted busy by :meth:`_fire_now`."""
        if first is None:
            self._busy[task.id] = self._busy.get(task.id, 0) + 1
        try:
            attempt = 1
            while True:
                if first is not None:
                    run: Run | Admission = first
                    first = None
                else:
                    run = await self.claims.admit(
                        task, RunTrigger.SCHEDULE, scheduled_at, RunStatus.ENQUEUED, attempt
                    )
                if run is Admission.CLAIM_LOST:
                    return False
                if run is Admission.SLOT_TAKEN:
                    # Another node ran this slot (and died or paused in it): not run again.
                    log.info("task %s: slot %.3f ran on another node", task.id, scheduled_at)
                    return True
                assert isinstance(run, Run)
                await self._execute(task, run)
                if run.error is not None and run.error.get("name") == LAPSED_NAME:
                    # Its slot is free again (a timed task must still run once, somewhere),
                    # and the lease goes back if this node still has it.
                    await self.claims.unfence(run)
                    self.claims.give_back(task)
                    return False
                retries = task.options.retries
                if run.status is not RunStatus.FAILED or retries is None or attempt > retries.count:
                    return True
                attempt += 1
                if await self._stopped_within(retries.delay_before(attempt)):
                    return True
                if not self.catalog.holds(task):
                    return True  # deleted meanwhile
        except StoreUnavailableError as exc:
            # Without its fence row a slot does not run: the next poll claims it again.
            log.warning("task %s: slot %.3f not admitted: %s", task.id, scheduled_at, exc)
            if self._shared:
                self.claims.give_back(task)
                return False
            raise
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

    async def _cancel_at_stop(self, task: Task, run: Run) -> None:
        """A run that had not started when the server stopped: recorded canceled."""
        run.status = RunStatus.CANCELED
        run.finished_at = time.time()
        repeats = task.period_ms is not None or task.options.cron is not None
        manual = run.trigger is RunTrigger.MANUAL
        # A timed task whose slot never started runs after the next start (not a retry: the
        # slot ran once already).
        reruns = not (repeats or manual) and run.attempt == 1
        run.error = canceled_error(manual=manual, repeats=repeats, reruns=reruns)
        if reruns:
            self._unstarted.add(task.id)
            await self.claims.unfence(run)  # several nodes: the slot may be taken again
        self._finished(run)

    def _ran(self, task: Task) -> bool:
        """Whether the last slot of ``task`` started (it was not canceled at the stop)."""
        if task.id in self._unstarted:
            self._unstarted.discard(task.id)
            return False
        return True

    def _finished(self, run: Run) -> None:
        self.history.touch(run)
        for listener in self.run_listeners:
            listener(run)

    async def _execute(
        self, task: Task, run: Run, on_start: Callable[[], None] | None = None
    ) -> None:
        lock = self._run_locks.get(task.id)
        if lock is None:
            lock = self._run_locks[task.id] = asyncio.Lock()
        async with lock:  # runs of one task never overlap (on one node)
            if not self.catalog.holds(task):
                run.status = RunStatus.CANCELED
                run.finished_at = time.time()
                self._finished(run)
                return
            if self._stopping.is_set():
                await self._cancel_at_stop(task, run)
                return

            def started() -> None:  # a worker took the run: its wait for one is not its time
                run.status = RunStatus.PROCESSING
                run.started_at = time.time()
                self.history.touch(run)
                if on_start is not None:
                    on_start()

            limits = self._default_limits
            allowed = self.allowance(task.owner)
            # The owner's maximum applies at run time too: to the default timeout, and to
            # tasks stored before the owner's maximum was lowered.
            timeout = min(task.timeout or limits.timeout, allowed.max_timeout)
            if timeout != limits.timeout:
                limits = dataclasses.replace(limits, timeout=timeout)
            manual = run.trigger is RunTrigger.MANUAL
            try:
                outcome = await self.sandbox.run(
                    task.command,
                    task.params_json,
                    limits,
                    label=task.id,
                    on_start=started,
                    database=task.database,
                    owner=task.owner,
                    max_concurrent=allowed.max_runs,
                    start_by=None if manual else self.claims.start_gate(task.id),
                )
            except NotStartedError:
                log.warning("task %s: run not started: this node's lease lapsed", task.id)
                run.status = RunStatus.CANCELED
                run.finished_at = time.time()
                run.error = dict(LAPSED_ERROR)
                self._finished(run)
                return
            except SandboxClosedError:
                if not self._stopping.is_set():
                    raise
                await self._cancel_at_stop(task, run)  # it never got a worker
                return
            except Exception as exc:  # a broken sandbox must not stop a periodic task
                log.exception("task %s: sandbox failure", task.id)
                outcome = RunOutcome(
                    ok=False,
                    error={
                        "type": ErrorType.CRASH.value,
                        "name": type(exc).__name__,
                        "message": str(exc),
                        "stack": "",
                    },
                )
            run.finished_at = time.time()
            if run.started_at is None:  # it failed before a worker took it
                run.started_at = run.finished_at
            outcome = _readable(outcome)
            run.status = RunStatus.SUCCEEDED if outcome.ok else RunStatus.FAILED
            run.result_json = outcome.result_json
            run.output = outcome.output
            run.error = outcome.error
            run.requests = outcome.requests
            self._finished(run)
        log_run(task.id, run)
