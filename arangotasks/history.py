"""Run history: allocates run uids and writes run records in batches, off the run path."""

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable

from arangotasks.config import Settings
from arangotasks.errors import StoreUnavailableError
from arangotasks.models import ErrorType, Run, RunQuery, RunStatus, RunTrigger, StoredRun, Task
from arangotasks.stopping import cancel_loops
from arangotasks.store.base import TaskStore
from arangotasks.store.cluster_rows import CRASH_NAME

log = logging.getLogger(__name__)

CRASH_ERROR = {
    "type": ErrorType.CRASH.value,
    "name": CRASH_NAME,  # what a claim tells apart from a run's real end
    "message": "the server stopped during this run; it was marked failed at the next start",
    "stack": "",
}


class History:
    """Collects run records and next-run times in memory and flushes them to the store in one
    transaction every ``history_flush_interval`` seconds, so a run never waits for a disk write."""

    def __init__(self, store: TaskStore, settings: Settings):
        self._store = store
        self._settings = settings
        self._enabled = settings.history
        self._max_pending = settings.history_max_pending  # read by every touch()
        self._next_uid = 0
        self._dirty_runs: dict[int, Run] = {}
        self._dirty_next: dict[str, float | None] = {}
        self.dropped = 0  # run records dropped because the store could not take them
        self._dropped_unreported = 0
        self._flush_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []

    async def start(self, *, shared: bool = False) -> int:
        """Recover runs a crash interrupted; return how many were marked failed. A ``shared``
        store (several nodes) numbers runs itself and leaves recovery to ``claims.py``: other
        nodes' runs in progress are not crashes."""
        recovered = 0
        if shared and not self._enabled:
            # The run rows are the occurrence fence of several nodes: they are kept.
            log.warning("ARANGOTASKS_HISTORY=false is ignored: several nodes keep run records")
            self._enabled = True
        if not shared:
            self._next_uid = await self._store.max_run_uid() + 1
            recovered = await self._store.fail_unfinished_runs(time.time(), CRASH_ERROR)
        if recovered:
            log.warning(
                "marked %d run(s) interrupted by the last stop as failed (crash)", recovered
            )
        flush = self._every(
            self._settings.history_flush_interval,
            self._flush_if_dirty,
            "writing run history",
            first=False,
        )
        prune = self._every(self._settings.prune_interval, self.prune, "pruning", first=True)
        self._loops = [
            asyncio.create_task(flush, name="history-flush"),
            asyncio.create_task(prune, name="history-prune"),
        ]
        return recovered

    async def close(self) -> None:
        await cancel_loops(self._loops)
        self._loops = []
        try:
            await self.flush()
        except StoreUnavailableError as exc:
            log.error("could not write the last run records: %s", exc)

    # --- the run path: memory only ---------------------------------------------------------
    def new_run(
        self,
        task: Task,
        trigger: RunTrigger,
        scheduled_at: float,
        *,
        status: RunStatus,
        attempt: int = 1,
    ) -> Run:
        """A new run record numbered by this process (a store of one server)."""
        run = self.build_run(task, trigger, scheduled_at, status=status, attempt=attempt)
        run.uid = self._next_uid
        self._next_uid += 1
        self.touch(run)
        return run

    @staticmethod
    def build_run(
        task: Task,
        trigger: RunTrigger,
        scheduled_at: float,
        *,
        status: RunStatus,
        attempt: int = 1,
    ) -> Run:
        """A run record without its uid, not recorded yet."""
        # Positional (uid, task_id, task_name, database, owner, trigger, scheduled_at,
        # enqueued_at, status): every scheduled run is made here, and keywords cost twice as
        # much for a dataclass of this many fields.
        return Run(
            0,
            task.id,
            task.name,
            task.database,
            task.owner,
            trigger,
            scheduled_at,
            time.time(),
            status,
            attempt=attempt,
            revision=task.revision,
        )

    def touch(self, run: Run) -> None:
        """Mark a run record changed; it reaches the store with the next flush. While the store
        cannot be written, at most ``history_max_pending`` records wait: the oldest is dropped."""
        if self._enabled:
            self._dirty_runs[run.uid] = run
            if len(self._dirty_runs) > self._max_pending:
                del self._dirty_runs[next(iter(self._dirty_runs))]
                if not self._dropped_unreported:
                    log.warning(
                        "run history: %d records wait for the store; dropping the oldest "
                        "(ARANGOTASKS_HISTORY_MAX_PENDING)",
                        len(self._dirty_runs),
                    )
                self.dropped += 1
                self._dropped_unreported += 1

    def note_next_run(self, task_id: str, at: float | None) -> None:
        self._dirty_next[task_id] = at

    def forget_next_run(self, task_id: str) -> None:
        self._dirty_next.pop(task_id, None)

    # --- writing -------------------------------------------------------------------------
    async def flush(self) -> None:
        """Write everything changed so far (readers call this to see their own writes)."""
        async with self._flush_lock:
            # In transactions of at most history_batch runs (a backlog after an outage is
            # large); what arrives meanwhile waits for the next flush.
            size = self._settings.history_batch
            for _batch in range(-(-len(self._dirty_runs) // size)):
                uids = list(itertools.islice(self._dirty_runs, size))
                runs = {uid: self._dirty_runs.pop(uid) for uid in uids}
                try:
                    await self._store.save_runs(list(runs.values()))
                except BaseException:
                    # Keep what was not written; newer changes made meanwhile win.
                    self._dirty_runs = runs | self._dirty_runs
                    raise
            if self._dropped_unreported:
                log.warning(
                    "run history: %d run record(s) were dropped while the store could not be "
                    "written",
                    self._dropped_unreported,
                )
                self._dropped_unreported = 0
            nexts, self._dirty_next = self._dirty_next, {}
            try:
                if nexts:
                    await self._store.set_next_runs(list(nexts.items()))
            except BaseException:
                self._dirty_next = nexts | self._dirty_next
                raise

    async def _flush_if_dirty(self) -> None:
        if self._dirty_runs or self._dirty_next:
            await self.flush()

    async def _every(
        self, interval: float, job: Callable[[], Awaitable[object]], what: str, *, first: bool
    ) -> None:
        """Run ``job`` every ``interval`` seconds for ever; a failure is logged, never fatal."""
        if not first:
            await asyncio.sleep(interval)
        while True:
            try:
                await job()
            except StoreUnavailableError as exc:
                log.warning("%s postponed (will retry): %s", what, exc)
            except Exception:
                log.exception("%s failed (will retry)", what)
            await asyncio.sleep(interval)

    async def prune(self) -> int:
        older_than = time.time() - self._settings.history_max_age_days * 86400
        removed = await self._store.prune_runs(self._settings.history_keep, older_than)
        if removed:
            log.info("pruned %d old run record(s)", removed)
        return removed

    # --- reading -------------------------------------------------------------------------
    async def _flush_for_read(self) -> None:
        # Readers want their own writes, but a store that cannot be written may still be read.
        try:
            await self.flush()
        except StoreUnavailableError as exc:
            log.warning("reading run history without the latest changes: %s", exc)

    async def query(self, query: RunQuery) -> tuple[list[Run], int, int | None]:
        await self._flush_for_read()
        return await self._store.query_runs(query)

    async def query_page(
        self, query: RunQuery, max_bytes: int
    ) -> tuple[list[StoredRun], int, int | None]:
        """A page of the runs API: JSON texts kept as stored, at most ``max_bytes`` of them."""
        await self._flush_for_read()
        return await self._store.query_runs_page(query, max_bytes)

    async def get(self, uid: int) -> Run | None:
        run = self._dirty_runs.get(uid)
        if run is not None:
            return run
        return await self._store.get_run(uid)

    async def stats(self, task_ids: list[str]) -> dict[str, tuple[int, int, Run | None]]:
        await self._flush_for_read()
        return await self._store.run_stats(task_ids)
