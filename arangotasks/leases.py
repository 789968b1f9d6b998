"""The leases of one node of a cluster on one PostgreSQL: :class:`ClusterClaims`. The steps
(claim, renew, fence, start, settle) are told in ``claims.py``, which also holds the protocol
and the single node's :class:`~arangotasks.claims.LocalClaims`."""

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable

from arangotasks.batching import GroupWriter
from arangotasks.config import Settings
from arangotasks.errors import StoreUnavailableError
from arangotasks.history import CRASH_ERROR, History
from arangotasks.models import Run, RunStatus, RunTrigger, Task
from arangotasks.sandbox.base import StartBy
from arangotasks.stopping import cancel_loops
from arangotasks.store.cluster_rows import Admission, Beat, Claimed, ClusterRows, Opening

log = logging.getLogger(__name__)

REAP_EVERY = 1.0  # seconds between looks for runs of dead nodes
# A task whose next slot comes within this many seconds stays with its node: a period of a
# few seconds does not change nodes (and leases) at every run.
HOLD_WINDOW = 5.0
# Next-run times of held tasks are written at most this often: they matter only when another
# node takes the task over, and then the occurrence fence tells a slot that ran already (a run
# row lives far longer: history_keep runs per task).
ADVANCE_EVERY = 5.0
FORGET_NODES_AFTER = 3600.0  # a node dead this long leaves /_api/nodes
# Runs start only within (1 - this) of a lease after the last heartbeat was sent.
LEASE_MARGIN = 0.1


Adopt = Callable[[Task, int], None]  # the registry arms a task this node claimed
Lost = Callable[[str], None]  # the registry disarms a task this node no longer holds
Revised = Callable[[str, int], None]  # a held task has this revision in the store


class ClusterClaims:
    """Leases and the occurrence fence on a shared PostgreSQL store (see the module's text)."""

    def __init__(self, store: ClusterRows, history: History, settings: Settings, node_id: str):
        self._store = store
        self._history = history
        self._settings = settings
        self.node_id = node_id
        self._lease = settings.cluster_lease
        self._fence_on = settings.cluster_fence
        self._held: dict[str, int] = {}  # task id -> fence of this node's lease
        self._claimed_at: dict[str, float] = {}  # task id -> when this node took the lease
        self._running: set[str] = set()  # held tasks with a run going (never given back)
        self._share: float = math.inf  # leases this node may hold before it gives some back
        # Lease writes waiting: task id -> (fence, next run time, give the lease back).
        self._settles: dict[str, tuple[int, float | None, bool]] = {}
        self._frees: dict[str, int] = {}  # leases to free, next run time unchanged
        self._settled = asyncio.Event()  # lease writes wait
        self._urgent = asyncio.Event()  # ... and some give a lease back: write them now
        self._woken = asyncio.Event()
        self._admissions = GroupWriter[Opening, Admission](self._admit_batch)
        self._loops: list[asyncio.Task[None]] = []
        self._adopt: Adopt | None = None
        self._lost: Lost | None = None
        self._revised: Revised | None = None
        self.clock_offset = 0.0  # PostgreSQL's clock minus ours, from the last heartbeat
        # Until when (time.monotonic()) this node's leases surely hold: a run starts only
        # before it, so that a node that paused starts nothing until a heartbeat confirms.
        self._valid_until = -math.inf

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self, adopt: Adopt, lost: Lost, revised: Revised) -> None:
        self._adopt, self._lost, self._revised = adopt, lost, revised
        recovered = await self._store.fail_own_runs(self.node_id, CRASH_ERROR)
        if recovered:
            log.warning("marked %d run(s) of this node's last life as failed (crash)", recovered)
        self._loops = [
            asyncio.create_task(self._claim_loop(), name="cluster-claims"),
            asyncio.create_task(self._settle_loop(), name="cluster-settle"),
        ]

    async def close(self) -> None:
        await cancel_loops(self._loops)
        self._loops = []
        try:
            await self._flush_settles()
        except StoreUnavailableError as exc:
            log.warning("could not write the last next-run times: %s", exc)
        self._held.clear()

    # --- the registry's questions -----------------------------------------------------------
    def holds(self, task_id: str) -> bool:
        return task_id in self._held

    def held_count(self) -> int:
        return len(self._held)

    async def admit(
        self, task: Task, trigger: RunTrigger, slot: float, status: RunStatus, attempt: int
    ) -> Run | Admission:
        run = self._history.build_run(task, trigger, slot, status=status, attempt=attempt)
        run.node = self.node_id
        if trigger is RunTrigger.MANUAL:
            opening = Opening(run, fence=None, slot=None)
        else:
            fence = self._held.get(task.id)
            if fence is None:
                return Admission.CLAIM_LOST
            if not self._fence_on:  # the control: no fence row, the lease alone
                opening = Opening(run, fence=None, slot=None)
            else:
                opening = Opening(run, fence=fence, slot=slot)
        verdict = await self._admissions.submit(opening)
        if verdict is not Admission.ADMITTED:
            if verdict is Admission.CLAIM_LOST:
                self._drop(task.id)
            return verdict
        self._history.touch(run)  # later changes of the record go through the history
        return run

    async def _admit_batch(self, openings: list[Opening]) -> list[Admission]:
        return await self._store.admit_runs(self.node_id, openings, self._lease)

    def start_gate(self, task_id: str) -> StartBy | None:
        """The latest start of a run admitted now: while this node's heartbeat vouches for
        its leases, and only while it keeps the lease it holds now, right after the admission
        (``-inf`` once that lease is lost, even if the task was claimed again since)."""
        if not self._fence_on:
            return None  # the control: the lease alone
        # Not held any more (lost between the admission and now): the gate is closed.
        fence = self._held.get(task_id)

        def latest() -> float:
            held = fence is not None and self._held.get(task_id) == fence
            return self._valid_until if held else -math.inf

        return latest

    def next_run(self, task: Task, at: float | None) -> None:
        fence = self._held.get(task.id)
        if fence is not None:
            self._queue_settle(task.id, fence, at, give=False)

    def settle(self, task: Task, busy: bool) -> None:
        """Give the lease back when the next slot is far or this node holds too many; keep
        it while a run of the task goes (overlap rules are this node's to keep)."""
        fence = self._held.get(task.id)
        if fence is None:
            return
        if busy:
            self._running.add(task.id)
            return
        self._running.discard(task.id)
        at = task.next_run_at
        hold_until = time.time() + max(HOLD_WINDOW, self._settings.cluster_ahead)
        far = at is None or not task.options.enabled or at > hold_until
        if far or len(self._held) > self._share:
            self._drop(task.id)
            self._queue_settle(task.id, fence, at, give=True)

    def forget(self, task_id: str) -> None:
        self._held.pop(task_id, None)
        self._claimed_at.pop(task_id, None)
        self._running.discard(task_id)
        self._settles.pop(task_id, None)

    def give_back(self, task: Task) -> None:
        fence = self._held.get(task.id)
        if fence is not None:
            self._drop(task.id)
            self._queue_settle(task.id, fence, task.next_run_at, give=True)

    def wake(self) -> None:
        self._woken.set()

    async def unfence(self, run: Run) -> None:
        try:
            await self._store.unfence_run(run.uid)
        except StoreUnavailableError as exc:
            log.warning("task %s: its canceled slot stays taken: %s", run.task_id, exc)

    async def taken(self, task: Task) -> bool:
        fence = await self._store.take(self.node_id, task.id, self._lease)
        if fence is None:
            return False
        self._hold(task.id, fence)
        self._settles.pop(task.id, None)
        return True

    # --- membership's news ---------------------------------------------------------------
    def renewed(self, beat: Beat, sent_at: float, received_at: float, sent_mono: float) -> None:
        """A heartbeat sent at ``sent_at`` (``sent_mono`` on the monotonic clock) renewed
        ``beat.held``: every other lease this node held before it was sent was taken over
        while the node could not renew."""
        self.clock_offset = beat.now - (sent_at + received_at) / 2
        # PostgreSQL wrote the heartbeat after it was sent, so the leases hold at least a lease
        # from then; a margin covers clock rates and the claimers' own statement time.
        self._valid_until = max(self._valid_until, sent_mono + self._lease * (1 - LEASE_MARGIN))
        for task_id, fence in list(self._held.items()):
            if self._claimed_at.get(task_id, 0.0) >= sent_at:
                continue  # claimed while the heartbeat was on its way
            stored = beat.held.get(task_id)
            if stored is None or stored[0] != fence:
                # (A lease given back is no longer in _held; a next-run time still waiting in
                # _settles is no reason to keep a lost one: forget() discards it.)
                log.warning("task %s: lease lost (taken over by another node)", task_id)
                self._drop(task_id)
            elif self._revised is not None:
                self._revised(task_id, stored[1])
        # Leases the store has but this node let go of (a write that failed): free them, or
        # the heartbeat would renew them for ever.
        for task_id, (fence, _revision) in beat.held.items():
            if task_id not in self._held and task_id not in self._settles:
                self._frees[task_id] = fence
                self._settled.set()
                self._urgent.set()
        alive = [n for n in beat.nodes if not n.stopped and n.heartbeat_at > beat.now - self._lease]
        total = sum(n.held for n in alive if n.id != self.node_id) + len(self._held)
        count = max(1, len(alive))
        # A little over an even share, so that leases do not bounce between nodes.
        self._share = math.ceil(total / count * 1.1) + 2 if count > 1 else math.inf

    # --- internals -----------------------------------------------------------------------
    def _hold(self, task_id: str, fence: int) -> None:
        self._held[task_id] = fence
        self._claimed_at[task_id] = time.time()

    def _drop(self, task_id: str) -> None:
        self.forget(task_id)
        if self._lost is not None:
            self._lost(task_id)

    def _queue_settle(self, task_id: str, fence: int, at: float | None, *, give: bool) -> None:
        self._settles[task_id] = (fence, at, give)
        self._settled.set()
        if give:
            self._urgent.set()

    async def _settle_loop(self) -> None:
        while True:
            await self._settled.wait()
            # Given-back leases go at once (another node claims them); next-run times of
            # held tasks gather for a while, one write per task whatever its runs.
            if not self._urgent.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(ADVANCE_EVERY):
                        await self._urgent.wait()
            await asyncio.sleep(0.01)  # a burst of ends goes in one transaction
            self._settled.clear()
            self._urgent.clear()
            try:
                await self._flush_settles()
            except StoreUnavailableError as exc:
                log.warning("next-run times postponed (will retry): %s", exc)
                self._settled.set()
                self._urgent.set()
                await asyncio.sleep(self._settings.cluster_poll)
            except Exception:
                log.exception("writing next-run times failed (will retry)")
                await asyncio.sleep(self._settings.cluster_poll)

    async def _flush_settles(self) -> None:
        if not self._settles and not self._frees:
            return
        batch, self._settles = self._settles, {}
        frees, self._frees = self._frees, {}
        advances = [(i, f, at) for i, (f, at, give) in batch.items() if not give]
        releases = [(i, f, at) for i, (f, at, give) in batch.items() if give]
        try:
            await self._store.settle_leases(self.node_id, advances, releases, list(frees.items()))
        except BaseException:
            self._settles = batch | self._settles
            self._frees = frees | self._frees
            raise

    async def _claim_loop(self) -> None:
        reaped_at = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.cluster_poll):
                    await self._woken.wait()
            self._woken.clear()
            try:
                await self._claim()
                if time.monotonic() - reaped_at >= REAP_EVERY:
                    reaped_at = time.monotonic()
                    reaped = await self._store.reap(self._lease, CRASH_ERROR, FORGET_NODES_AFTER)
                    if reaped:
                        log.warning("marked %d run(s) of stopped nodes as failed (crash)", reaped)
            except StoreUnavailableError as exc:
                log.warning("claiming postponed (will retry): %s", exc)
            except Exception:
                log.exception("claiming failed (will retry)")

    async def _claim(self) -> None:
        room = self._share - len(self._held)
        limit = self._settings.cluster_claim_batch
        if room < limit:
            # Over its share, a node still takes a few: tasks nobody else claims must run.
            limit = max(int(room), 0) if room >= 1 else 8
        claimed = await self._store.claim_due(
            self.node_id, self._settings.cluster_ahead, self._lease, limit
        )
        for claim in claimed:
            task, fence = claim.task, claim.fence
            self._hold(task.id, fence)
            floor = _takeover_floor(claim, time.time())
            if floor is not None and task.next_run_at is not None and task.next_run_at < floor:
                task.next_run_at = floor
            if self._adopt is not None:
                self._adopt(task, fence)


def _takeover_floor(claim: Claimed, now: float) -> float | None:
    """The earliest next run of a periodic task just claimed (``None``: its stored time).

    The stored next run may be up to ADVANCE_EVERY old when its holder died or paused, so it is
    never sooner than a period after the last slot the fence admitted. After a takeover, a
    period after that slot's run ended, when its node wrote that; else a period after now: the
    old holder may have started that run late (it waited for a worker), but surely before now
    (its start gate closed before its lease lapsed)."""
    period_ms = claim.task.period_ms
    if period_ms is None or claim.task.options.cron is not None or claim.last_slot is None:
        return None
    period = period_ms / 1000
    floor = claim.last_slot + period
    if claim.taken_over:
        floor = max(floor, (claim.last_ended if claim.last_ended is not None else now) + period)
    return floor
