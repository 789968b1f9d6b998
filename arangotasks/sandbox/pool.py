"""QuickJSSandbox: a pool of long-lived worker processes driven over pipes from asyncio."""

import asyncio
import logging
import os
import signal
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from arangotasks.models import ErrorType, RunOutcome
from arangotasks.redact import redactor_for
from arangotasks.sandbox.base import (
    Limits,
    NotStartedError,
    SandboxClosedError,
    SandboxUnavailableError,
    StartBy,
    interrupted_error,
)
from arangotasks.sandbox.host import HostCalls, HostRun
from arangotasks.sandbox.process import (
    EXIT_GRACE,
    WorkerGone,
    WorkerProcess,
    WorkerStartError,
    exit_reason,
    limit_fields,
)
from arangotasks.sandbox.workers import WorkerSet

__all__ = ["PoolStats", "QuickJSSandbox", "WorkerStartError"]

log = logging.getLogger(__name__)

_DEFAULT_LIMITS = Limits()
# Compiling is quick; a body that smuggles code into new Function must not hold creates long.
_COMPILE_LIMITS = Limits(timeout=1.0)
# After interrupt(), how long a busy worker may take to answer before it is killed: a fast-path
# run answers at once, with its output; a host-mode busy loop only ends with its worker.
INTERRUPT_WAIT = 3.0
_KILLED = interrupted_error(
    f": its worker did not stop within {INTERRUPT_WAIT:g} s and was killed (output printed "
    "after its last host call is lost)"
)
_COMPILE_CACHE_SIZE = 4096
_CACHED_COMMAND_CHARS = 16 * 1024
# Commands known to call the host, which start in host mode (an LRU, like the compile cache).
_HOST_COMMANDS_SIZE = 4096


@dataclass(frozen=True, slots=True)
class PoolStats:
    """What the worker pool is doing now, and how many workers it had to replace so far."""

    workers: int  # live worker processes
    busy: int  # workers running a call
    waiting: int  # calls waiting for a free worker
    restarts: int  # workers started to replace one that died or was killed


class QuickJSSandbox:
    """Runs task commands in QuickJS, each in a fresh context inside a worker process.

    :param workers: number of worker processes (default: one per core).
    :param limits: bounds of a run when :meth:`run` gets none.
    :param worker_address_space: RLIMIT_AS of each worker in bytes (a backstop for the engine).
    :param host: the handlers of the host calls that commands make (outbound HTTP, ...).
    :param host_workers: workers of their own for the commands that call the host, started on
        first use: such a run holds its worker while it waits on I/O, so a flood of them must
        not take every worker from the commands that make no calls. 0 = run them here.
    :param identity: ``(uid, gid)`` the workers switch to before their first request (see
        :func:`~arangotasks.sandbox.hardening.worker_identity`); ``None`` keeps the server's.
    """

    def __init__(
        self,
        workers: int | None = None,
        limits: Limits = _DEFAULT_LIMITS,
        worker_address_space: int = 1 << 30,
        *,
        identity: tuple[int, int] | None = None,
        compile_workers: int = 2,
        host: HostCalls | None = None,
        host_workers: int = 0,
    ) -> None:
        self.size = workers or os.cpu_count() or 1
        self.limits = limits
        self.host = host if host is not None else HostCalls()
        # Commands known to call the host (they start in host mode, on the host workers).
        self._host_commands: OrderedDict[str, None] = OrderedDict()
        self._host_workers = host_workers
        self._hosted: QuickJSSandbox | None = None
        self._hosted_lock = asyncio.Lock()
        self._address_space = worker_address_space
        self._identity = identity
        # Compile checks get a worker of their own: a create must not wait behind long runs.
        self._compiler = None
        if compile_workers > 0:
            self._compiler = QuickJSSandbox(
                compile_workers,
                _COMPILE_LIMITS,
                worker_address_space,
                identity=identity,
                compile_workers=0,
            )
        self._workers = WorkerSet(self.size, worker_address_space, identity, limits.answer_bytes())
        self._closed = False
        self._draining = False
        self._busy: set[WorkerProcess] = set()  # workers running a request now
        self._compiled: OrderedDict[str, str | None] = OrderedDict()  # LRU of compile checks

    @property
    def pids(self) -> list[int]:
        """Process ids of the live workers."""
        return self._workers.pids

    def stats(self) -> PoolStats:
        """Counts for the metrics, read at scrape time (nothing is updated per run for them)."""
        return PoolStats(
            workers=len(self.pids),
            busy=self._workers.busy(),
            waiting=self._workers.waiting,
            restarts=max(0, self._workers.spawned - self.size),
        )

    async def start(self) -> None:
        if self._compiler is not None:
            await self._compiler.start()
        await self._workers.start()
        if self._compiler is not None:  # the compile pool itself stays quiet
            log.info("sandbox: %d QuickJS workers (+1 for compile checks) started", self.size)

    async def close(self) -> None:
        self._closed = True
        if self._compiler is not None:
            await self._compiler.close()
        if self._hosted is not None:
            await self._hosted.close()
        await self._workers.close()

    def drain(self) -> None:
        """Take no new runs (compile checks go on): see :meth:`Sandbox.drain`."""
        self._draining = True
        self._workers.drain()
        if self._hosted is not None:
            self._hosted.drain()

    def interrupt(self) -> None:
        """Stop the runs in progress (and take no new ones): see :meth:`Sandbox.interrupt`. A
        worker gets ``INTERRUPT_WAIT`` seconds to answer, then it is killed."""
        self.drain()
        for worker in self._busy:
            worker.interrupt(INTERRUPT_WAIT)
        if self._hosted is not None:
            self._hosted.interrupt()

    async def compile_error(self, command: str, *, owner: str = "") -> str | None:
        """:class:`SandboxUnavailableError` when no worker gave an answer."""
        if self._compiler is not None:
            return await self._compiler.compile_error(command, owner=owner)
        if command in self._compiled:
            self._compiled.move_to_end(command)
            return self._compiled[command]
        request = {"op": "compile", "command": command, **limit_fields(self.limits)}
        try:
            try:
                answer = await self._call(request, self.limits, owner=owner)
            except WorkerGone as gone:
                if gone.error["type"] != ErrorType.CRASH:
                    raise
                # A worker killed while idle fails the next call; compiling again is harmless.
                answer = await self._call(request, self.limits, owner=owner)
        except (
            WorkerGone
        ) as gone:  # the worker's fault (stuck, dead), not the command's: not cached
            raise SandboxUnavailableError(f"compile check: {gone}") from None
        error = None if answer["error"] is None else str(answer["error"])
        # Clients register the same commands again and again; compiling is deterministic.
        if len(command) <= _CACHED_COMMAND_CHARS:
            self._compiled[command] = error
            if len(self._compiled) > _COMPILE_CACHE_SIZE:
                self._compiled.popitem(last=False)
        return error

    async def run(
        self,
        command: str,
        params_json: str | None,
        limits: Limits | None = None,
        *,
        label: str = "",
        on_start: Callable[[], None] | None = None,
        database: str = "",
        owner: str = "",
        max_concurrent: int | None = None,
        start_by: StartBy | None = None,
    ) -> RunOutcome:
        limits = limits or self.limits
        known = command in self._host_commands
        if known:
            self._host_commands.move_to_end(command)
            if self._host_workers > 0:
                hosted = await self._hosted_pool()
                return await hosted.run(
                    command,
                    params_json,
                    limits,
                    label=label,
                    on_start=on_start,
                    database=database,
                    owner=owner,
                    max_concurrent=max_concurrent,
                    start_by=start_by,
                )
        request: dict[str, Any] = {"op": "run", "command": command, "params": params_json}
        request.update(limit_fields(limits))
        if known:
            request["host"] = True
        elif self._host_workers > 0:
            request["divert"] = True  # a host call: answer at once, the host workers run it
        run = HostRun(database, limits.timeout)
        try:
            answer = await self._call(
                request, limits, on_start, run, owner, max_concurrent, start_by
            )
        except WorkerGone as gone:  # the registry logs the failed run
            outcome = RunOutcome(
                ok=False, output=run.output, error=gone.error, requests=run.requests
            )
            if run.redact:
                redactor_for(frozenset(run.redact)).record(outcome)
            return outcome
        finally:
            if run.closers:  # the run path: most runs leave nothing to clean up
                await run.close()
        if answer.get("host") and command not in self._host_commands:
            self._host_commands[command] = None
            if len(self._host_commands) > _HOST_COMMANDS_SIZE:
                self._host_commands.popitem(last=False)
        if answer.get("diverted"):
            hosted = await self._hosted_pool()
            return await hosted.run(
                command,
                params_json,
                limits,
                label=label,
                database=database,
                owner=owner,
                max_concurrent=max_concurrent,
                start_by=start_by,
            )
        if answer.get("not_started"):  # the worker got it past its start deadline
            raise NotStartedError("the run's start deadline passed before its worker began it")
        outcome = RunOutcome(
            ok=bool(answer["ok"]),
            result_json=answer.get("result"),
            output=list(answer["output"]),
            output_truncated=bool(answer["truncated"]),
            error=answer.get("error"),
            requests=run.requests,
        )
        result = outcome.result_json
        if result is not None and len(result) > limits.result_bytes:  # the worker checks first
            outcome.ok, outcome.result_json = False, None
            outcome.error = {
                "type": ErrorType.RESULT.value,
                "name": "RangeError",
                "message": f"the returned value is beyond the result limit of "
                f"{limits.result_bytes} bytes (ARANGOTASKS_RESULT_KB)",
                "stack": "",
            }
        # Before anything is logged or returned: the secrets this run read become "***" (a run
        # that read none pays nothing).
        if run.redact:
            redactor_for(frozenset(run.redact)).record(outcome)
        return outcome

    async def _hosted_pool(self) -> "QuickJSSandbox":
        """The pool of the host workers, started on first use; it shares the host commands."""
        async with self._hosted_lock:
            if self._closed or self._draining:
                raise SandboxClosedError("the sandbox is stopping")
            if self._hosted is None:
                hosted = QuickJSSandbox(
                    self._host_workers,
                    self.limits,
                    self._address_space,
                    identity=self._identity,
                    compile_workers=0,
                    host=self.host,
                )
                hosted._host_commands = self._host_commands
                await hosted.start()
                self._hosted = hosted
                log.info("sandbox: %d workers for commands that call out started", hosted.size)
            return self._hosted

    async def _call(
        self,
        request: dict[str, Any],
        limits: Limits,
        on_start: Callable[[], None] | None = None,
        run: HostRun | None = None,
        owner: str = "",
        max_concurrent: int | None = None,
        start_by: StartBy | None = None,
    ) -> dict[str, Any]:
        """One request on an idle worker, taken fairly for ``owner``; :class:`WorkerGone` when it
        gives no answer. A worker that gave none is replaced in the background."""
        worker = await self._workers.acquire(owner, max_concurrent)
        try:
            if start_by is not None:
                # Asked now, not when the run was queued: the latest start may have moved on
                # (a renewed lease) or gone (a lost one) while the run waited for a worker.
                latest = start_by()
                if time.monotonic() >= latest:
                    self._workers.release(worker)
                    raise NotStartedError("the run's start deadline passed while it waited")
                request["start_by"] = latest
            return await self._call_on(worker, request, limits, on_start, run)
        finally:
            self._workers.done(owner)

    async def _call_on(
        self,
        worker: WorkerProcess,
        request: dict[str, Any],
        limits: Limits,
        on_start: Callable[[], None] | None,
        run: HostRun | None,
    ) -> dict[str, Any]:
        if on_start is not None:
            on_start()
        if run is not None:
            run.started = time.monotonic()  # its wait for a worker is not its time
        # Generous: on a loaded machine a worker may get far less CPU than wall-clock time.
        deadline = limits.timeout * 2 + 3
        self._busy.add(worker)
        try:
            answer = await worker.call(request, deadline, self.host, run)
        except BaseException as exc:
            # Past the deadline, cancelled or broken mid-run: the worker may still answer
            # later, so it cannot serve another request.
            worker.kill()
            self._workers.replace(worker)
            if isinstance(exc, TimeoutError) and worker.interrupted:
                raise _killed_at_stop() from None
            if isinstance(exc, TimeoutError):
                raise WorkerGone(
                    ErrorType.TIMEOUT,
                    "WorkerTimeout",
                    f"no answer within the wall-clock deadline of {deadline:g} s (a builtin that "
                    "ignores the CPU limit?): worker killed and respawned",
                ) from None
            raise
        finally:
            self._busy.discard(worker)
        if answer is None:
            # Its stdout is closed, so it is exiting: give it a moment to report why.
            try:
                returncode = await asyncio.shield(worker.stop(grace=EXIT_GRACE))
            finally:
                self._workers.replace(worker)
            if worker.interrupted:
                raise _killed_at_stop()
            if returncode == -signal.SIGXCPU:  # RLIMIT_CPU of a host-mode run (see worker.py)
                raise WorkerGone(
                    ErrorType.TIMEOUT,
                    "InternalError",
                    f"interrupted: CPU time limit of {limits.timeout:g} s exceeded",
                )
            raise WorkerGone(
                ErrorType.CRASH, "WorkerCrash", f"worker died ({exit_reason(returncode)})"
            )
        self._workers.release(worker)
        return answer


def _killed_at_stop() -> WorkerGone:
    """The end of a run whose worker was killed after :meth:`QuickJSSandbox.interrupt`."""
    return WorkerGone(ErrorType.INTERRUPTED, _KILLED["name"], _KILLED["message"])
