"""The task registry: joins the catalog (tasks, ``catalog.py``), the claims (which slots run on
this node, ``claims.py``), the scheduler (timing), the run path (``runpath.py``), the sandbox
and the history. Every create and delete is written to the store before it is acknowledged;
the cache and the scheduler follow the store, never lead it."""

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable

from arangotasks import schedule
from arangotasks.auth import Principal
from arangotasks.batching import GroupWriter
from arangotasks.catalog import Catalog
from arangotasks.claims import Claims, ClusterClaims, LocalClaims
from arangotasks.config import AccessConfig, Misfire, Settings
from arangotasks.errors import ArangoError, ErrorCode, StoreUnavailableError
from arangotasks.history import History
from arangotasks.manual import ManualQueue
from arangotasks.membership import Membership, node_identity
from arangotasks.models import Run, RunStatus, RunTrigger, Task
from arangotasks.peers import PeerEvents, shared_store
from arangotasks.quotas import Allowance, Usage, allowance
from arangotasks.runpath import RunPath
from arangotasks.sandbox.base import Sandbox
from arangotasks.scheduler import JobScheduler
from arangotasks.slots import ScheduleMixin
from arangotasks.stopping import stop_runs
from arangotasks.store.base import TaskStore
from arangotasks.store.cluster_rows import Admission
from arangotasks.validation import TaskSpec
from arangotasks.vault import Vault

log = logging.getLogger(__name__)

_ALLOWANCES_KEPT = 4096  # owners whose limits are remembered at once


def _now_us() -> float:
    """Unix seconds with microsecond precision, like ArangoDB's ``TRI_microtime``."""
    return time.time_ns() // 1000 / 1e6


class Registry(ScheduleMixin, RunPath, PeerEvents):
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
        self._allowances: dict[str, Allowance] = {}  # by owner (see allowance())
        self._manual = ManualQueue(
            settings.max_queued_manual_runs, settings.max_queued_manual_runs_per_task
        )
        self.history = History(store, settings)
        self.vault = Vault(store, settings)
        shared = self._shared_rows = shared_store(store)
        self._shared = shared is not None
        self.catalog = Catalog(store, Usage(), shared, self._gone)
        self.node_id, self.address = node_identity(settings)
        self.started_at = time.time()
        self.membership: Membership | None = None
        self.claims: Claims
        if shared is not None:
            cluster = ClusterClaims(shared, self.history, settings, self.node_id)
            self.claims = self._cluster = cluster
            listen_dsn = getattr(getattr(store, "_inner", store), "dsn", None)
            self.membership = Membership(
                shared, cluster, settings, self.node_id, self.address, listen_dsn
            )
        else:
            self.claims = LocalClaims(self.history, self.node_id)
        # One node decides alone: the run path admits its runs without yielding (_fire_now).
        self._local = self.claims if isinstance(self.claims, LocalClaims) else None
        self._scheduler = JobScheduler(start=self._start_fire, after_pass=self._arm_fired)
        # Cron tasks a pass of fires took, armed after it: (task, slot, skipped for overlap).
        self._unarmed: list[tuple[Task, float, bool]] = []
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
        await self.history.start(shared=self._shared)
        started = time.time()
        stale: list[Task] = []
        # Jobs added before the scheduler starts are queued without a wake-up each.
        for task in await self.store.load_tasks():
            self.catalog.add(task)
            # Several nodes: a task is armed when this node claims it (claims.py).
            if not self._shared and not self._schedule_loaded(task, started):
                stale.append(task)
        self._scheduler.start()
        for task in stale:
            await self._forget(task)
        if self.membership is not None:
            await self.membership.start(self._news)
            await self._cluster.start(self._adopt, self._lost, self._revised)
        log.info(
            "node %s: loaded %d task(s) in %.3f s", self.node_id, len(self), time.time() - started
        )

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
        if self.membership is not None:
            await self._cluster.close()
        await self.history.close()
        if self.membership is not None:
            await self.membership.close()  # after the last records: the leases go last
        await self.store.close()

    def _schedule_loaded(self, task: Task, now: float) -> bool:
        """Arm a task read from the store (or claimed); ``False`` when it must be dropped."""
        due = task.next_run_at
        if due is None:
            # A timed task marked fired before the stop: it ran (or crashed) and is done.
            return False
        if not task.options.enabled:
            return True  # paused: kept, never armed
        # A claim comes a little late when its holder died: that is not a missed slot.
        grace = self.settings.cluster_lease + self.settings.cluster_poll if self._shared else 0
        if due >= now - grace or self._misfire(task) is Misfire.RUN_ONCE:
            self._schedule(task, max(due, now))
            return True
        # Misfire policy "skip": record the missed slot and wait for the next one.
        self._record_missed(task, due, now, "while the server was down")
        at = schedule.after_misfire(task, due, now, self._period_or_none(task))
        if at is None:
            return False
        task.next_run_at = at
        self.claims.next_run(task, at)
        self._schedule(task, at)
        return True

    # --- limits --------------------------------------------------------------------------
    def allowance(self, owner: str) -> Allowance:
        """The limits in force for ``owner`` (see quotas.py); made once per owner, since the
        settings and the users file are fixed for the registry's life (every run asks)."""
        known = self._allowances.get(owner)
        if known is None:
            if len(self._allowances) >= _ALLOWANCES_KEPT:
                self._allowances.clear()  # owners of deleted tasks: bounded, not a leak
            known = self._allowances[owner] = allowance(self.settings, self._access, owner)
        return known

    def check_quota(self, owner: str, command: str, params_json: str | None) -> None:
        """403/32 when one more such task would exceed a quota of ``owner``."""
        self.catalog.usage.check(owner, command, params_json, self.allowance(owner))

    # --- reads ---------------------------------------------------------------------------
    def get(self, task_id: str, principal: Principal) -> Task:
        return self.catalog.get(task_id, principal)

    async def lookup(self, task_id: str, principal: Principal) -> Task:
        """A task as the store has it now (other nodes' writes included)."""
        return await self.catalog.lookup(task_id, principal)

    async def listing(self, principal: Principal) -> list[Task]:
        return await self.catalog.listing(principal)

    def api_json(self, task: Task) -> str:
        return self.catalog.api_json(task)

    def visible(self, principal: Principal) -> list[Task]:
        return self.catalog.visible(principal)

    def __len__(self) -> int:
        return len(self.catalog)

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
        usage = self.catalog.usage
        for _attempt in range(5):
            task_id = spec.id if spec.id is not None else self._new_tick()
            task = Task(
                id=task_id,
                name=spec.name,
                created=_now_us(),
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
                usage.reserve(owner, spec.command, spec.params_json, self.allowance(owner))
                try:
                    inserted = await self._inserts.submit(task)
                except BaseException:
                    usage.release_task(task)
                    raise
                if not inserted:
                    usage.release_task(task)
                    if spec.id is not None:
                        raise ArangoError(ErrorCode.TASK_DUPLICATE_ID)
                    continue  # a client chose an id that equals our tick: take the next one
                self.catalog.add(task, counted=True)  # by the reservation above
                if self._shared:
                    self.claims.wake()  # claimed (and armed) by the next poll, at once
                else:
                    self._schedule(task, first)
            return task
        raise ArangoError(ErrorCode.INTERNAL, "could not allocate a task id")

    async def _mark_fired_write(self, task: Task) -> None:
        await self._mark_fired.submit(task.id)

    async def _write_fired_marks(self, task_ids: list[str]) -> list[None]:
        await self.store.set_next_runs([(task_id, None) for task_id in task_ids])
        return [None] * len(task_ids)

    async def _write_fired_deletes(self, task_ids: list[str]) -> list[None]:
        await self.store.delete_tasks(task_ids)
        return [None] * len(task_ids)

    async def delete(self, task_id: str, principal: Principal) -> None:
        """Unregister a task: no future runs; a run in progress finishes (§1.5)."""
        task = await self.lookup(task_id, principal)
        async with self._write_lock(task_id):
            if not self.catalog.holds(task):
                raise ArangoError(ErrorCode.TASK_NOT_FOUND)
            if not await self.store.delete_task(task_id) and self._shared:
                self._gone(task)
                self.catalog.remove(task)
                raise ArangoError(ErrorCode.TASK_NOT_FOUND)  # another node deleted it first
            self._drop(task)
        await self._tell("d", task_id)

    def _drop(self, task: Task) -> None:
        self.catalog.remove(task)
        self._scheduler.cancel(task.id)
        self.claims.forget(task.id)
        self.history.forget_next_run(task.id)
        lock = self._run_locks.get(task.id)
        if lock is not None and not lock.locked():
            del self._run_locks[task.id]

    async def _forget(self, task: Task) -> None:
        """Remove a timed task after its single run."""
        async with self._write_lock(task.id):
            if not self.catalog.holds(task):
                return
            try:
                await self._delete_fired.submit(task.id)
            except StoreUnavailableError as exc:
                # It is marked fired in the store, so the next start drops it anyway.
                log.warning("task %s: could not delete after its run: %s", task.id, exc)
            self._drop(task)
        await self._tell("d", task.id)

    # --- runs ----------------------------------------------------------------------------
    def _period_seconds(self, task: Task) -> float:
        assert task.period_ms is not None
        return max(task.period_ms / 1000, self.settings.min_period)

    def _schedule(self, task: Task, at: float) -> None:
        if not task.options.enabled:
            return  # paused: resume arms it again
        fire_at = schedule.jittered(task.options, at)
        self._scheduler.schedule(task.id, fire_at, functools.partial(self._fire_now, task))

    async def run_now(self, task_id: str, principal: Principal) -> Run:
        """Start a manual run outside the schedule; the schedule is unchanged. 429/21003 when
        too many manual runs of this task, or of all tasks, wait to start."""
        task = await self.lookup(task_id, principal)
        self._manual.admit(task.id)
        try:
            run = await self.claims.admit(
                task, RunTrigger.MANUAL, time.time(), RunStatus.ENQUEUED, 1
            )
        except BaseException:
            self._manual.leaver(task.id)()
            raise
        if not isinstance(run, Run):  # deleted on another node meanwhile
            self._manual.leaver(task.id)()
            raise ArangoError(ErrorCode.TASK_NOT_FOUND)
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


__all__ = ["Admission", "Registry"]
