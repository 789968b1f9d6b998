"""Timing engine: APScheduler 3's AsyncIOScheduler with its in-memory job store.

The task table in the store is the single source of truth; this holds only "when does each task
fire next" and is rebuilt from the store at start. Every job is a one-shot date job; a periodic
task is re-added by the registry after its run finishes (ArangoDB's fixed delay, §1.6).

APScheduler costs ~50-80 µs per job added and keeps its jobs in one sorted list, so a fire time
beyond ``HORIZON`` seconds is parked in a heap and handed to APScheduler by a sweep shortly
before it is due: 100,000 tasks with far-off runs start in well under a second of scheduling.

Keys due within the same millisecond share one APScheduler job (a *bucket*, at the end of that
millisecond: :func:`instant`): cron slots are whole seconds, so 1,000 ``* * * * * *`` tasks are
one job added and processed per second instead of 1,000 (that cost, serialized on the loop, made
the last of such a burst fire ~150 ms late).

A bucket is fired in one pass: every fire of the instant is called (the registry takes its slot
there, without yielding), then ``after_pass`` (the registry arms the next cron slots), then the
awaitables the fires returned (their runs) are started, each in a task. A bucket of ``BURST``
fires or more is woken ``LEAD`` early and sleeps the rest precisely, since the loop's timer
wakes up to ~1 ms late and a burst's wake-up is part of every fire's lateness in it.

While a bucket's fires are handed on, the cyclic garbage collector is held off: it is turned on
again by a callback queued behind the runs' first steps (each runs, without yielding, up to
the point where it is handed to the sandbox). A burst allocates enough to trigger several
young collections and, every few seconds, a full one (40-100 ms with 1,000 tasks) that landed
inside the burst and made every fire after it that late. The collections still run, right after
the hand-offs, while the runs are in the workers. (The run path makes no cyclic garbage: the
collections in a burst freed nothing.) The collector is process-wide state: a bucket that finds
it off leaves it alone.
"""

import asyncio
import contextlib
import functools
import gc
import heapq
import inspect
import itertools
import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

# APScheduler logs two INFO lines per run; at hundreds of runs per second that is the hot path.
logging.getLogger("apscheduler").setLevel(logging.WARNING)
log = logging.getLogger(__name__)


# What is armed for a key: called on the loop at its fire time. It does its work there and
# returns None, or returns an awaitable that runs in a task of its own (a coroutine function).
Fire = Callable[[], Awaitable[None] | None]


class _Call(functools.partial[Awaitable[None]]):
    """A partial with a declared empty signature: APScheduler checks every job's callable with
    ``inspect.signature``, which costs more than the rest of ``add_job`` on a partial."""

    __signature__ = inspect.Signature()


class _Scheduler(AsyncIOScheduler):  # type: ignore[misc]  # APScheduler is untyped
    """AsyncIOScheduler whose wake-up after ``add_job`` costs nothing when its timer already
    fires in time for the new job. The stock one processes every job store and goes through
    ``call_soon_threadsafe`` (a self-pipe write) on every add: with a job re-added per run,
    that was the scheduler's largest cost. Jobs are only ever added on the loop's thread here.
    """

    _wakeup_queued = False

    def wakeup(self) -> None:
        if self._wakeup_queued or self._eventloop is None:
            return
        timer = self._timeout
        if timer is not None and not timer.cancelled():
            with self._jobstores_lock:
                times = [store.get_next_run_time() for store in self._jobstores.values()]
            earliest = min((t for t in times if t is not None), default=None)
            if earliest is not None:
                due_in = earliest.timestamp() - time.time()
                if timer.when() <= self._eventloop.time() + due_in:
                    return  # the pending timer comes first and reschedules itself
        self._wakeup_queued = True
        self._eventloop.call_soon(self._wakeup_now)

    def _wakeup_now(self) -> None:
        self._wakeup_queued = False
        if self._eventloop is None:  # shut down meanwhile
            return
        self._stop_timer()
        self._start_timer(self._process_jobs())

    def _start_timer(self, wait_seconds: float | None) -> None:
        self._stop_timer()
        if wait_seconds is not None:
            self._timeout = self._eventloop.call_later(wait_seconds, self._wakeup_now)


class JobScheduler:
    """One pending fire time per key (a task id)."""

    HORIZON = 60.0  # seconds ahead that APScheduler holds
    SWEEP = 10.0  # how often parked fire times are moved into APScheduler
    # A bucket of this many fires is woken LEAD seconds early and sleeps the rest precisely:
    # the loop's timer (epoll counts whole milliseconds, rounded up) wakes up to ~1 ms late, and
    # a burst's wake-up is part of the lateness of every fire in it.
    BURST = 64
    LEAD = 0.002

    def __init__(
        self,
        start: Callable[[str, Awaitable[None]], None] | None = None,
        after_pass: Callable[[], None] | None = None,
    ) -> None:
        """:param start: how an awaitable that a fire returned is run (the key and it); by
            default in a task of the scheduler's own, its exceptions logged.
        :param after_pass: called after the fires of an instant were called, before what they
            returned is started."""
        self._start = start or self._start_logged
        self._after_pass = after_pass
        # Parked fire times: heap of (at, seq, key, func); _parked[key] = seq of the live entry.
        self._heap: list[tuple[float, int, str, Fire]] = []
        self._parked: dict[str, int] = {}
        self._seq = itertools.count()
        # Fire times held by APScheduler: one job per instant, the keys due then (a bucket).
        self._buckets: dict[float, dict[str, Fire]] = {}
        self._due: dict[str, float] = {}  # key -> the instant of its bucket
        self._firing: set[asyncio.Task[None]] = set()  # fires started by a bucket
        self._shut = False
        self._gc_held = False  # this scheduler turned the garbage collector off (a bucket)
        self._sweeper: asyncio.Task[None] | None = None
        self._aps = _Scheduler(
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
        self._shut = False
        self._aps.start()
        self._sweeper = asyncio.create_task(self._sweep_loop(), name="scheduler-sweep")

    def pause(self) -> None:
        """Fire nothing more; what fires started goes on (whoever started it waits for it). With
        the default ``start``, nothing more includes an awaitable a bucket started that has not
        begun to run yet: it is dropped unrun."""
        self._shut = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self._aps.running:
            self._aps.pause()

    def shutdown(self) -> None:
        """Stop firing (as :meth:`pause`) and stop APScheduler."""
        self._shut = True
        self._release_gc()  # the loop may not run the queued callback any more
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self._aps.running:
            self._aps.shutdown(wait=False)

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self.SWEEP)
            self._sweep()

    def _sweep(self) -> None:
        limit = time.time() + self.HORIZON
        while self._heap and self._heap[0][0] <= limit:
            at, seq, key, func = heapq.heappop(self._heap)
            if self._parked.get(key) == seq:
                del self._parked[key]
                self._add(key, at, func)

    def schedule(self, key: str, at: float, func: Fire) -> None:
        """Fire ``func`` at epoch second ``at`` (at once if it has passed), replacing any
        earlier schedule of ``key``."""
        if at > time.time() + self.HORIZON:
            self.cancel(key)
            seq = next(self._seq)
            self._parked[key] = seq
            heapq.heappush(self._heap, (at, seq, key, func))
            return
        if self._parked:
            self._parked.pop(key, None)  # a parked entry of this key is now stale
        self._add(key, at, func)

    def _add(self, key: str, at: float, func: Fire) -> None:
        if key in self._due:
            self._unbucket(key)
        at = instant(at)
        bucket = self._buckets.get(at)
        if bucket is None:
            bucket = self._buckets[at] = {}
            trigger = DateTrigger(run_date=datetime.fromtimestamp(at, UTC), timezone=UTC)
            self._aps.add_job(_Call(self._fire_bucket, at), trigger=trigger, id=_job_id(at))
        bucket[key] = func
        self._due[key] = at
        if len(bucket) == self.BURST:
            early = DateTrigger(run_date=datetime.fromtimestamp(at - self.LEAD, UTC), timezone=UTC)
            # Gone when APScheduler took the job already (it is due): it fires as it is.
            with contextlib.suppress(JobLookupError):
                self._aps.reschedule_job(_job_id(at), trigger=early)

    def _unbucket(self, key: str) -> bool:
        at = self._due.pop(key, None)
        if at is None:
            return False
        bucket = self._buckets[at]
        del bucket[key]
        if not bucket:
            del self._buckets[at]
            # Already gone when its job was taken by APScheduler but has not started yet.
            with contextlib.suppress(JobLookupError):
                self._aps.remove_job(_job_id(at))
        return True

    async def _fire_bucket(self, at: float) -> None:
        """Call every fire of instant ``at`` (the pass), then ``after_pass``, then start what the
        fires returned.

        Each fire does its part on the spot (on one server the registry takes the slot there:
        it is decided and its run record made, ``enqueuedAt``); what follows for the whole
        instant comes after the pass (the next cron slots, a task for each run), so that the
        last slot of a burst is not taken only after that was done for every slot before it.
        """
        if self._shut or at not in self._buckets:
            return  # (gone: its keys were cancelled, or a caller fired it already)
        early = at - time.time()
        if early > 0:  # a burst woken early (BURST): no fire may begin before its time
            # Blocks the loop on purpose, for at most LEAD (also when the wall clock was set
            # back meanwhile): a precise sleep, where the loop's timer is not.
            time.sleep(min(early, self.LEAD))  # noqa: ASYNC251
        fires = self._buckets.pop(at)
        due = self._due
        # No garbage collection while the fires are handed on: see the module's text.
        held = len(fires) > 1 and not self._gc_held and _hold_gc()
        self._gc_held = self._gc_held or held
        try:
            started: list[tuple[str, Awaitable[None]]] = []
            for key, func in fires.items():
                del due[key]
                try:
                    result = func()
                except Exception:  # as APScheduler did for a job: logged, the other fires go on
                    log.exception("fire of %s raised an exception", key)
                    continue
                if result is not None:
                    started.append((key, result))
            if self._after_pass is not None:
                try:
                    self._after_pass()
                except Exception:  # the fires' runs are admitted: they must start regardless
                    log.exception("after the fires of %r", at)
            start = self._start
            for key, result in started:
                start(key, result)
        finally:
            if held:
                # Queued after the runs' first steps: runs once every run has been handed on.
                asyncio.get_running_loop().call_soon(self._release_gc)

    def _start_logged(self, key: str, started: Awaitable[None]) -> None:
        """Run what a fire returned in a task of the scheduler's own (its exceptions logged)."""
        job = asyncio.get_running_loop().create_task(self._logged(key, started), name=f"fire-{key}")
        self._firing.add(job)
        job.add_done_callback(self._firing.discard)

    def _release_gc(self) -> None:
        """Turn the collector on again if this scheduler turned it off."""
        if self._gc_held:
            self._gc_held = False
            gc.enable()

    async def _logged(self, key: str, started: Awaitable[None]) -> None:
        if self._shut:
            # Shut down after its bucket started it, before it began.
            if inspect.iscoroutine(started):
                started.close()  # never awaited, and never warned about
            return
        try:
            await started
        except Exception:  # as APScheduler did for a job: logged, the other fires go on
            log.exception("fire of %s raised an exception", key)

    def cancel(self, key: str) -> bool:
        if self._parked.pop(key, None) is not None:
            return True  # its heap entry is skipped by the sweep
        return self._unbucket(key)

    def pending(self) -> int:
        return len(self._due) + len(self._parked)


def _hold_gc() -> bool:
    """Turn the cyclic garbage collector off until the caller turns it on again; False (and
    nothing done) when it is off already (someone else holds it)."""
    if not gc.isenabled():
        return False
    gc.disable()
    return True


def instant(at: float) -> float:
    """The instant of the bucket that fires ``at``: its millisecond, rounded up. The loop's timer
    counts whole milliseconds anyway, and runs that end together (a burst) re-arm periodic
    tasks at instants microseconds apart, each of which cost an APScheduler job of its own
    (1,000 ``period: 1`` tasks that ran together: fire lateness p99 41-70 ms the next second,
    22-28 ms with buckets of a millisecond)."""
    return math.ceil(at * 1000) / 1000


def _job_id(at: float) -> str:
    return f"at {at!r}"
