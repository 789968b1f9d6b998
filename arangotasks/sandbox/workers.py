"""The worker processes of one pool: started and stopped together, handed out fairly between
owners (fair.py), and replaced in the background when one dies or is killed. What a run does
with its worker is the pool's business (pool.py); the process itself is process.py's."""

import asyncio
import logging

from arangotasks.sandbox.base import SandboxClosedError
from arangotasks.sandbox.fair import FairQueue
from arangotasks.sandbox.process import WorkerProcess, start_worker

log = logging.getLogger(__name__)


class WorkerSet:
    """``size`` worker processes (see :func:`~arangotasks.sandbox.process.start_worker` for the
    other parameters)."""

    def __init__(
        self,
        size: int,
        address_space: int,
        identity: tuple[int, int] | None,
        answer_bytes: int,
    ) -> None:
        self.size = size
        self._address_space = address_space
        self._identity = identity
        self._answer_bytes = answer_bytes
        # Handed out fairly between owners (fair.py); None = a slot to spawn into.
        self._idle: FairQueue[WorkerProcess | None] | None = None
        self._workers: set[WorkerProcess] = set()
        self._replacing: set[asyncio.Task[None]] = set()
        self._closed = False
        self._draining = False  # hands out no worker any more (the server stops)
        self.waiting = 0  # acquires waiting for an idle worker (read by the metrics)
        self.spawned = 0  # worker processes started, including replacements

    @property
    def pids(self) -> list[int]:
        """Process ids of the live workers."""
        return [worker.proc.pid for worker in self._workers if worker.alive]

    def busy(self) -> int:
        """Workers handed out now (not idle, not being replaced)."""
        idle = self._idle.qsize() if self._idle is not None else 0
        return max(0, self.size - idle - len(self._replacing))

    async def start(self) -> None:
        if self._idle is not None:
            raise RuntimeError("the sandbox is already started")
        self._idle = FairQueue()
        spawned = await asyncio.gather(
            *(self._spawn() for _ in range(self.size)), return_exceptions=True
        )
        failures = [item for item in spawned if isinstance(item, BaseException)]
        if failures:
            await self.close()
            raise failures[0]
        for worker in spawned:
            assert isinstance(worker, WorkerProcess)
            self._idle.put_nowait(worker)

    async def close(self) -> None:
        """Stop every worker (a call in progress sees its worker die)."""
        self._closed = True
        for task in self._replacing:
            task.cancel()
        await asyncio.gather(*self._replacing, return_exceptions=True)
        await asyncio.gather(*(worker.stop() for worker in list(self._workers)))
        self._workers.clear()
        if self._idle is not None:
            self._idle.put_nowait(None)  # wakes a waiting acquire, which passes it on

    def drain(self) -> None:
        """Hand out no worker any more: waiting and later :meth:`acquire` calls raise
        :class:`SandboxClosedError`."""
        if self._draining:
            return
        self._draining = True
        if self._idle is not None:
            self._idle.put_nowait(None)  # wakes a waiting acquire, which passes it on

    async def acquire(self, owner: str, max_held: int | None) -> WorkerProcess:
        """An idle worker for ``owner`` (fairly, at most ``max_held`` at once); give it back
        with :meth:`done` and then :meth:`release` or :meth:`replace`."""
        if self._idle is None:
            raise RuntimeError("the sandbox is not started")
        self._check_open()
        self.waiting += 1
        try:
            worker = await self._idle.get(owner, max_held)
        finally:
            self.waiting -= 1
        if self._closed or self._draining:
            self._idle.done(owner)
            self._idle.put_nowait(worker)  # for the next waiting acquire
            self._check_open()
        if worker is not None and worker.alive:
            return worker
        try:
            if worker is not None:  # it died while idle
                await self._retire(worker)
            return await self._spawn()
        except BaseException:
            self._idle.done(owner)
            self.release(None)
            raise

    def _check_open(self) -> None:
        if self._closed:
            raise SandboxClosedError("the sandbox is closed")
        if self._draining:
            raise SandboxClosedError("the sandbox is stopping")

    def done(self, owner: str) -> None:
        """``owner``'s use of a worker ended (its share of the pool is free again)."""
        assert self._idle is not None
        self._idle.done(owner)

    def release(self, worker: WorkerProcess | None) -> None:
        """Put ``worker`` (``None``: an empty slot) back among the idle ones."""
        assert self._idle is not None
        self._idle.put_nowait(worker)

    def replace(self, worker: WorkerProcess) -> None:
        """Stop ``worker`` and put a fresh one into its slot, in the background."""
        if self._closed:
            return  # close() stops every worker
        task = asyncio.create_task(self._replace_now(worker))
        self._replacing.add(task)
        task.add_done_callback(self._replacing.discard)

    async def _retire(self, worker: WorkerProcess) -> None:
        await worker.stop()
        self._workers.discard(worker)

    async def _replace_now(self, worker: WorkerProcess) -> None:
        fresh: WorkerProcess | None = None
        try:
            await self._retire(worker)
            fresh = await self._spawn()
        except Exception:
            log.exception("sandbox: respawning a worker failed; the next run retries")
        finally:
            self.release(fresh)

    async def _spawn(self) -> WorkerProcess:
        worker = await start_worker(self._address_space, self._identity, self._answer_bytes)
        self._workers.add(worker)
        self.spawned += 1
        try:
            await worker.ready()
            if self._closed:  # closed while this one started: close() did not see it
                raise SandboxClosedError("the sandbox is closed")
        except BaseException:
            await self._retire(worker)
            raise
        return worker
