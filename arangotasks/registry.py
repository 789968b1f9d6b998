"""The task registry: joins the store (truth), the scheduler (timing), the sandbox (execution)
and the history (run records). Every create and delete is written to the store before it is
acknowledged; the in-memory map and the scheduler follow the store, never lead it."""

import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
import time
from collections.abc import AsyncIterator, Callable

from arangotasks import schedule
from arangotasks.auth import Principal
from arangotasks.batching import GroupWriter
from arangotasks.config import AccessConfig, Misfire, Settings
from arangotasks.errors import ArangoError, ErrorCode, StoreUnavailableError
from arangotasks.history import History
from arangotasks.manual import ManualQueue
from arangotasks.models import ErrorType, Run, RunOutcome, RunStatus, RunTrigger, Task, dumps
from arangotasks.quotas import Allowance, Usage, allowance
from arangotasks.runlog import log_run
from arangotasks.sandbox.base import Sandbox, SandboxClosedError
from arangotasks.scheduler import JobScheduler
from arangotasks.slots import ScheduleMixin
from arangotasks.stopping import canceled_error, stop_runs
from arangotasks.store.base import TaskStore
from arangotasks.validation import TaskSpec
from arangotasks.vault import Vault

log = logging.getLogger(__name__)

MARK_FIRED_RETRY = 1.0


def _now_us() -> float:
    """Unix seconds with microsecond precision, like ArangoDB's ``TRI_microtime``."""
    return time.time_ns() // 1000 / 1e6


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


class Registry(ScheduleMixin):
    """Registered tasks of every database; owns the lifecycle of store, sandbox and scheduler."""

    def __init__(
        self,
        store: TaskStore,
        sandbox: Sandbox,
        settings: Settings,
        access: AccessConfig | None = None,
    ):
        self.store = store
        self.sandbox = sandbox
        self.settings = settings
        self._access = access  # the users' own limits (None: the settings' defaults only)
        self._usage = Usage()  # tasks and bytes per owner, for the quotas
        self._manual = ManualQueue(
            settings.max_queued_manual_runs, settings.max_queued_manual_runs_per_task
        )
        self.history = History(store, settings)
        self.vault = Vault(store, settings)
        self._scheduler = JobScheduler()
        self._tasks: dict[str, Task] = {}
        self._api_json: dict[str, str] = {}
        self._run_locks: dict[str, asyncio.Lock] = {}
        self._write_locks: dict[str, asyncio.Lock] = {}
        self._active: set[asyncio.Task[None]] = set()
        # Runs of a task in progress or waiting for its run lock (cron overlap rules).
        self._busy: dict[str, int] = {}
        self._stopping = asyncio.Event()  # set by close(): ends the waits between retries
        self._unstarted: set[str] = set()  # timed tasks whose run was canceled at the stop
        # Concurrent creates, and timed tasks' "fired" marks and deletions (they fire in
        # bursts), are group-committed: one transaction for all that arrive during the last.
        self._inserts = GroupWriter[Task, bool](store.insert_tasks)
        self._mark_fired = GroupWriter[str, None](self._write_fired_marks)
        self._delete_fired = GroupWriter[str, None](self._write_fired_deletes)
        self._last_tick = 0
        self._default_limits = settings.limits()
        # Called with every finished (or canceled) run; used by tests and future push APIs.
        self.run_listeners: list[Callable[[Run], None]] = []

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        await self.store.open()
        await self.sandbox.start()
        await self.history.start()
        started = time.time()
        stale: list[Task] = []
        # Jobs added before the scheduler starts are queued without a wake-up each.
        for task in await self.store.load_tasks():
            self._tasks[task.id] = task
            self._usage.add_task(task)
            if not self._schedule_loaded(task, started):
                stale.append(task)
        self._scheduler.start()
        for task in stale:
            await self._forget(task)
        log.info("loaded %d task(s) in %.3f s", len(self._tasks), time.time() - started)

    async def close(self) -> None:
        """A normal stop loses nothing: nothing new starts, and runs waiting for a worker are
        recorded canceled; runs in progress get ``shutdown_grace`` seconds to finish, then are
        interrupted and recorded failed (``interrupted``) with their output."""
        self._stopping.set()
        self._scheduler.pause()  # shutdown() would cancel the runs in progress
        await stop_runs(self._active, self.sandbox, self.settings.shutdown_grace)
        self._scheduler.shutdown()
        for writer in (self._inserts, self._mark_fired, self._delete_fired):
            await writer.wait_idle()
        await self.history.close()
        await self.store.close()

    def _schedule_loaded(self, task: Task, now: float) -> bool:
        """Re-arm a task read from the store; ``False`` when it must be dropped instead."""
        due = task.next_run_at
        if due is None:
            # A timed task marked fired before the stop: it ran (or crashed) and is done.
            return False
        if not task.options.enabled:
            return True  # paused: kept, never armed
        if due >= now or self._misfire(task) is Misfire.RUN_ONCE:
            self._schedule(task, max(due, now))
            return True
        # Misfire policy "skip": record the missed slot and wait for the next one.
        self._record_missed(task, due, now, "while the server was down")
        at = schedule.after_misfire(task, due, now, self._period_or_none(task))
        if at is None:
            return False
        task.next_run_at = at
        self.history.note_next_run(task.id, at)
        self._schedule(task, at)
        return True

    # --- limits --------------------------------------------------------------------------
    def allowance(self, owner: str) -> Allowance:
        """The limits in force for ``owner`` (see quotas.py)."""
        return allowance(self.settings, self._access, owner)

    def check_quota(self, owner: str, command: str, params_json: str | None) -> None:
        """403/32 when one more such task would exceed a quota of ``owner``."""
        self._usage.check(owner, command, params_json, self.allowance(owner))

    # --- reads ---------------------------------------------------------------------------
    def get(self, task_id: str, principal: Principal) -> Task:
        task = self._tasks.get(task_id)
        if task is None or not principal.may_see(task.owner):
            raise ArangoError(ErrorCode.TASK_NOT_FOUND)
        return task

    def api_json(self, task: Task) -> str:
        """The task object as JSON text, cached: a task never changes what it shows."""
        text = self._api_json.get(task.id)
        if text is None:
            text = self._api_json[task.id] = dumps(task.to_api())
        return text

    def visible(self, principal: Principal) -> list[Task]:
        if principal.superuser:
            return list(self._tasks.values())
        return [t for t in self._tasks.values() if t.owner == principal.name]

    def __len__(self) -> int:
        return len(self._tasks)

    def scheduled(self) -> int:
        """Pending fire times in the scheduler (tasks not running right now)."""
        return self._scheduler.pending()

    # --- writes --------------------------------------------------------------------------
    def _new_tick(self) -> str:
        # Microsecond clock, strictly increasing within the process (ids match ^\d+$).
        self._last_tick = max(self._last_tick + 1, time.time_ns() // 1000)
        return str(self._last_tick)

    @contextlib.asynccontextmanager
    async def _write_lock(self, task_id: str) -> AsyncIterator[None]:
        lock = self._write_locks.setdefault(task_id, asyncio.Lock())
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and self._write_locks.get(task_id) is lock:
                del self._write_locks[task_id]

    async def create(self, spec: TaskSpec, database: str, owner: str) -> Task:
        """Store, then schedule a new task (§1.4 steps 14-15)."""
        if spec.id == "":
            raise ArangoError(ErrorCode.TASK_INVALID_ID)
        for _attempt in range(5):
            task_id = spec.id if spec.id is not None else self._new_tick()
            created = _now_us()
            task = Task(
                id=task_id,
                name=spec.name,
                created=created,
                command=spec.command,
                database=database,
                owner=owner,
                period_ms=spec.period_ms,
                offset_ms=spec.offset_ms,
                params_json=spec.params_json,
                is_system=spec.is_system,
                timeout=spec.timeout,
                options=spec.options,
                notify=spec.notify,
            )
            first = schedule.created_fire(task)
            if first is None:
                raise ArangoError(ErrorCode.BAD_PARAMETER, "endAt: no slot comes before endAt")
            task.next_run_at = first
            async with self._write_lock(task_id):
                # Counted before the store write, so that concurrent creates share the quota.
                self._usage.reserve(owner, spec.command, spec.params_json, self.allowance(owner))
                try:
                    inserted = await self._inserts.submit(task)
                except BaseException:
                    self._usage.release_task(task)
                    raise
                if not inserted:
                    self._usage.release_task(task)
                    if spec.id is not None:
                        raise ArangoError(ErrorCode.TASK_DUPLICATE_ID)
                    continue  # a client chose an id that equals our tick: take the next one
                self._tasks[task_id] = task
                self._schedule(task, first)
            return task
        raise ArangoError(ErrorCode.INTERNAL, "could not allocate a task id")

    async def _write_fired_marks(self, task_ids: list[str]) -> list[None]:
        await self.store.set_next_runs([(task_id, None) for task_id in task_ids])
        return [None] * len(task_ids)

    async def _write_fired_deletes(self, task_ids: list[str]) -> list[None]:
        await self.store.delete_tasks(task_ids)
        return [None] * len(task_ids)

    async def delete(self, task_id: str, principal: Principal) -> None:
        """Unregister a task: no future runs; a run in progress finishes (§1.5)."""
        task = self.get(task_id, principal)
        async with self._write_lock(task_id):
            if self._tasks.get(task_id) is not task:
                raise ArangoError(ErrorCode.TASK_NOT_FOUND)
            await self.store.delete_task(task_id)
            self._drop(task)

    def _drop(self, task: Task) -> None:
        if self._tasks.get(task.id) is task:
            del self._tasks[task.id]
            self._api_json.pop(task.id, None)
            self._usage.release_task(task)
        self._scheduler.cancel(task.id)
        self.history.forget_next_run(task.id)
        lock = self._run_locks.get(task.id)
        if lock is not None and not lock.locked():
            del self._run_locks[task.id]

    async def _forget(self, task: Task) -> None:
        """Remove a timed task after its single run."""
        async with self._write_lock(task.id):
            if self._tasks.get(task.id) is not task:
                return
            try:
                await self._delete_fired.submit(task.id)
            except StoreUnavailableError as exc:
                # It is marked fired in the store, so the next start drops it anyway.
                log.warning("task %s: could not delete after its run: %s", task.id, exc)
            self._drop(task)

    # --- runs ----------------------------------------------------------------------------
    def _period_seconds(self, task: Task) -> float:
        assert task.period_ms is not None
        return max(task.period_ms / 1000, self.settings.min_period)

    def _schedule(self, task: Task, at: float) -> None:
        if not task.options.enabled:
            return  # paused: resume arms it again
        # A partial of a coroutine function, so that APScheduler awaits it on the loop
        # (a lambda would be sent to a thread pool).
        fire_at = schedule.jittered(task.options, at)
        self._scheduler.schedule(task.id, fire_at, functools.partial(self._fire, task))

    async def _fire(self, task: Task) -> None:
        if self._tasks.get(task.id) is not task:
            return  # deleted after this fire time was taken
        current = asyncio.current_task()
        assert current is not None
        self._active.add(current)
        try:
            await self._fire_once(task)
        except asyncio.CancelledError:
            if not self._stopping.is_set():
                raise
            # Cancelled by close() after every wait: no traceback for a normal stop.
            log.warning("task %s: run abandoned at stop", task.id)
        finally:
            self._active.discard(current)

    async def _fire_once(self, task: Task) -> None:
        scheduled_at = task.next_run_at if task.next_run_at is not None else time.time()
        if task.options.cron is not None:
            await self._fire_slot(task, scheduled_at)
            return
        if task.period_ms is None:
            # Written before the run starts, so that a timed task never runs twice (§1.6).
            try:
                await self._mark_fired.submit(task.id)
            except StoreUnavailableError as exc:
                log.warning("task %s: store unavailable, run postponed: %s", task.id, exc)
                self._schedule(task, time.time() + MARK_FIRED_RETRY)
                return
            task.next_run_at = None
        await self._attempts(task, scheduled_at)
        if self._tasks.get(task.id) is not task:
            return
        if task.period_ms is None and self._stopping.is_set() and not self._ran(task):
            # Canceled at the stop before it started: it never ran, so it runs after the next
            # start (still at most once).
            task.next_run_at = scheduled_at
            self.history.note_next_run(task.id, scheduled_at)
            return
        if task.period_ms is not None:
            # Fixed delay: the next run is one period after this one finished (§1.6).
            at = schedule.after_run(task, time.time(), self._period_seconds(task))
            if at is None:  # past endAt: finished
                await self._forget(task)
                return
            task.next_run_at = at
            self.history.note_next_run(task.id, at)
            self._schedule(task, at)
        else:
            await self._forget(task)

    def run_now(self, task_id: str, principal: Principal) -> Run:
        """Start a manual run outside the schedule; the schedule is unchanged. 429/21003 when
        too many manual runs of this task, or of all tasks, wait to start."""
        task = self.get(task_id, principal)
        self._manual.admit(task.id)
        run = self.history.new_run(task, RunTrigger.MANUAL, time.time(), status=RunStatus.ENQUEUED)
        job = asyncio.create_task(self._execute_manual(task, run), name=f"manual-run-{run.uid}")
        self._active.add(job)
        job.add_done_callback(self._active.discard)
        return run

    async def _execute_manual(self, task: Task, run: Run) -> None:
        # Queued until a worker takes it (or it ends without one): then its place is free.
        left = self._manual.leaver(task.id)
        try:
            await self._execute(task, run, left)
        finally:
            left()

    def _cancel_at_stop(self, task: Task, run: Run) -> None:
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
        lock = self._run_locks.setdefault(task.id, asyncio.Lock())
        async with lock:  # runs of one task never overlap
            if self._tasks.get(task.id) is not task:
                run.status = RunStatus.CANCELED
                run.finished_at = time.time()
                self._finished(run)
                return
            if self._stopping.is_set():
                self._cancel_at_stop(task, run)
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
                )
            except SandboxClosedError:
                if not self._stopping.is_set():
                    raise
                self._cancel_at_stop(task, run)  # it never got a worker
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
