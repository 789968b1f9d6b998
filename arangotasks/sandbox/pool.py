"""QuickJSSandbox: a pool of long-lived worker processes driven over pipes from asyncio."""

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arangotasks.models import ErrorType, RunOutcome
from arangotasks.redact import redactor_for
from arangotasks.sandbox.base import Limits, SandboxUnavailableError
from arangotasks.sandbox.fair import FairQueue
from arangotasks.sandbox.hardening import worker_environment
from arangotasks.sandbox.host import HostCalls, HostRun

log = logging.getLogger(__name__)

_WORKER_MODULE = "arangotasks.sandbox.worker"
_STARTUP_TIMEOUT = 30.0
_EXIT_GRACE = 1.0
_DEFAULT_LIMITS = Limits()
# Compiling is quick; a body that smuggles code into new Function must not hold creates long.
_COMPILE_LIMITS = Limits(timeout=1.0)
_COMPILE_CACHE_SIZE = 4096
_CACHED_COMMAND_CHARS = 16 * 1024
# Commands known to call the host, which start in host mode (an LRU, like the compile cache).
_HOST_COMMANDS_SIZE = 4096
# The folder holding the ``arangotasks`` package, so that workers import this very copy.
_SOURCE_ROOT = str(Path(__file__).resolve().parents[2])


@dataclass(frozen=True, slots=True)
class PoolStats:
    """What the worker pool is doing now, and how many workers it had to replace so far."""

    workers: int  # live worker processes
    busy: int  # workers running a call
    waiting: int  # calls waiting for a free worker
    restarts: int  # workers started to replace one that died or was killed


class WorkerStartError(RuntimeError):
    """A worker process did not come up (it exited, or never said it was ready)."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"sandbox worker failed to start: {detail}")


class _Gone(Exception):
    """The worker gave no answer (it died, or missed the deadline): ``error`` says which."""

    def __init__(self, kind: ErrorType, name: str, message: str) -> None:
        super().__init__(message)
        self.error = {"type": str(kind), "name": name, "message": message, "stack": ""}


class _Worker:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    async def read_line(self) -> bytes:
        assert self.proc.stdout is not None
        return await self.proc.stdout.readline()

    async def call(
        self,
        request: dict[str, Any],
        deadline: float,
        host: HostCalls | None = None,
        run: HostRun | None = None,
    ) -> dict[str, Any] | None:
        """Send one request and await its answer: ``None`` when the worker died first,
        :class:`TimeoutError` after ``deadline`` seconds. Host calls the worker makes meanwhile
        are answered through ``host`` for ``run``."""
        stdin = self.proc.stdin
        assert stdin is not None
        try:
            async with asyncio.timeout(deadline):
                stdin.write(json.dumps(request).encode() + b"\n")
                await stdin.drain()
                line = await self.read_line()
                while line.startswith(b'{"call":'):
                    call = json.loads(line)
                    if run is not None:
                        run.output.extend(call["output"])
                    if host is None:
                        host = HostCalls()  # answers every call with an error
                    stdin.write(await host.dispatch(run, call["call"], call["args"]))
                    await stdin.drain()
                    line = await self.read_line()
            if not line:
                return None
        except ConnectionError:  # the pipe broke: the worker is gone
            return None
        except ValueError:  # an answer beyond the line limit: out of sync for good
            self.kill()
            raise _Gone(
                ErrorType.RESULT,
                "AnswerTooLarge",
                "the worker's answer exceeded the size its limits allow: worker killed and "
                "respawned",
            ) from None
        try:
            answer: dict[str, Any] = json.loads(line)
        except ValueError:  # not JSON: out of sync for good
            self.kill()
            return None
        return answer

    def kill(self) -> None:
        # os.kill, not Process.kill: Popen.send_signal polls first and may reap the child
        # itself, and the asyncio child watcher then reports it as "unknown" with code 255.
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)

    async def stop(self, grace: float = 0.0) -> int:
        """Reap the process, killed unless it exits within ``grace`` seconds; its return code."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        if grace > 0:
            with contextlib.suppress(TimeoutError):
                return await asyncio.wait_for(self.proc.wait(), grace)
        self.kill()
        return await self.proc.wait()


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
        # Handed out fairly between owners (fair.py); None = a slot to spawn into.
        self._idle: FairQueue[_Worker | None] | None = None  # None = a slot to spawn into
        self._workers: set[_Worker] = set()
        self._replacing: set[asyncio.Task[None]] = set()
        self._closed = False
        self._compiled: OrderedDict[str, str | None] = OrderedDict()  # LRU of compile checks
        self._waiting = 0  # calls waiting for an idle worker (read by the metrics)
        self._spawned = 0  # worker processes started, including replacements

    @property
    def pids(self) -> list[int]:
        """Process ids of the live workers."""
        return [worker.proc.pid for worker in self._workers if worker.alive]

    def stats(self) -> PoolStats:
        """Counts for the metrics, read at scrape time (nothing is updated per run for them)."""
        idle = self._idle.qsize() if self._idle is not None else 0
        busy = max(0, self.size - idle - len(self._replacing))
        return PoolStats(
            workers=len(self.pids),
            busy=busy,
            waiting=self._waiting,
            restarts=max(0, self._spawned - self.size),
        )

    async def start(self) -> None:
        if self._idle is not None:
            raise RuntimeError("the sandbox is already started")
        self._idle = FairQueue()
        if self._compiler is not None:
            await self._compiler.start()
        spawned = await asyncio.gather(
            *(self._spawn() for _ in range(self.size)), return_exceptions=True
        )
        failures = [item for item in spawned if isinstance(item, BaseException)]
        if failures:
            await self.close()
            raise failures[0]
        for worker in spawned:
            assert isinstance(worker, _Worker)
            self._idle.put_nowait(worker)
        if self._compiler is not None:  # the compile pool itself stays quiet
            log.info("sandbox: %d QuickJS workers (+1 for compile checks) started", self.size)

    async def close(self) -> None:
        self._closed = True
        if self._compiler is not None:
            await self._compiler.close()
        if self._hosted is not None:
            await self._hosted.close()
        for task in self._replacing:
            task.cancel()
        await asyncio.gather(*self._replacing, return_exceptions=True)
        await asyncio.gather(*(worker.stop() for worker in list(self._workers)))
        self._workers.clear()
        if self._idle is not None:
            self._idle.put_nowait(None)  # wakes a waiting run, which passes it on (see _acquire)

    async def compile_error(self, command: str, *, owner: str = "") -> str | None:
        """:class:`SandboxUnavailableError` when no worker gave an answer."""
        if self._compiler is not None:
            return await self._compiler.compile_error(command, owner=owner)
        if command in self._compiled:
            self._compiled.move_to_end(command)
            return self._compiled[command]
        request = {"op": "compile", "command": command, **_limit_fields(self.limits)}
        try:
            try:
                answer = await self._call(request, self.limits, owner=owner)
            except _Gone as gone:
                if gone.error["type"] != ErrorType.CRASH:
                    raise
                # A worker killed while idle fails the next call; compiling again is harmless.
                answer = await self._call(request, self.limits, owner=owner)
        except _Gone as gone:  # the worker's fault (stuck, dead), not the command's: not cached
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
                )
        request: dict[str, Any] = {"op": "run", "command": command, "params": params_json}
        request.update(_limit_fields(limits))
        if known:
            request["host"] = True
        elif self._host_workers > 0:
            request["divert"] = True  # a host call: answer at once, the host workers run it
        run = HostRun(database, limits.timeout)
        try:
            answer = await self._call(request, limits, on_start, run, owner, max_concurrent)
        except _Gone as gone:  # the registry logs the failed run
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
            )
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
            if self._closed:
                raise RuntimeError("the sandbox is closed")
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
    ) -> dict[str, Any]:
        """One request on an idle worker, taken fairly for ``owner``; :class:`_Gone` when it
        gives no answer. A worker that gave none is replaced in the background."""
        worker = await self._acquire(owner, max_concurrent)
        try:
            return await self._call_on(worker, request, limits, on_start, run)
        finally:
            assert self._idle is not None
            self._idle.done(owner)

    async def _call_on(
        self,
        worker: _Worker,
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
        try:
            answer = await worker.call(request, deadline, self.host, run)
        except BaseException as exc:
            # Past the deadline, cancelled or broken mid-run: the worker may still answer
            # later, so it cannot serve another request.
            worker.kill()
            self._replace(worker)
            if isinstance(exc, TimeoutError):
                raise _Gone(
                    ErrorType.TIMEOUT,
                    "WorkerTimeout",
                    f"no answer within the wall-clock deadline of {deadline:g} s (a builtin that "
                    "ignores the CPU limit?): worker killed and respawned",
                ) from None
            raise
        if answer is None:
            # Its stdout is closed, so it is exiting: give it a moment to report why.
            try:
                returncode = await asyncio.shield(worker.stop(grace=_EXIT_GRACE))
            finally:
                self._replace(worker)
            if returncode == -signal.SIGXCPU:  # RLIMIT_CPU of a host-mode run (see worker.py)
                raise _Gone(
                    ErrorType.TIMEOUT,
                    "InternalError",
                    f"interrupted: CPU time limit of {limits.timeout:g} s exceeded",
                )
            raise _Gone(ErrorType.CRASH, "WorkerCrash", f"worker died ({_exit_reason(returncode)})")
        self._release(worker)
        return answer

    async def _acquire(self, owner: str, max_concurrent: int | None) -> _Worker:
        if self._idle is None:
            raise RuntimeError("the sandbox is not started")
        self._waiting += 1
        try:
            worker = await self._idle.get(owner, max_concurrent)
        finally:
            self._waiting -= 1
        if self._closed:
            self._idle.done(owner)
            self._idle.put_nowait(worker)
            raise RuntimeError("the sandbox is closed")
        if worker is not None and worker.alive:
            return worker
        try:
            if worker is not None:  # it died while idle
                await self._retire(worker)
            return await self._spawn()
        except BaseException:
            self._idle.done(owner)
            self._release(None)
            raise

    def _release(self, worker: _Worker | None) -> None:
        assert self._idle is not None
        self._idle.put_nowait(worker)

    async def _retire(self, worker: _Worker) -> None:
        await worker.stop()
        self._workers.discard(worker)

    def _replace(self, worker: _Worker) -> None:
        """Stop ``worker`` and put a fresh one into its slot, in the background."""
        if self._closed:
            return  # close() stops every worker
        task = asyncio.create_task(self._replace_now(worker))
        self._replacing.add(task)
        task.add_done_callback(self._replacing.discard)

    async def _replace_now(self, worker: _Worker) -> None:
        fresh: _Worker | None = None
        try:
            await self._retire(worker)
            fresh = await self._spawn()
        except Exception:
            log.exception("sandbox: respawning a worker failed; the next run retries")
        finally:
            self._release(fresh)

    async def _spawn(self) -> _Worker:
        args = ["--address-space", str(self._address_space), "--parent-pid", str(os.getpid())]
        if self._identity is not None:
            args += ["--uid", str(self._identity[0]), "--gid", str(self._identity[1])]
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            _WORKER_MODULE,
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            # Not the server's: that holds the root password and the JWT secret.
            env=worker_environment(_SOURCE_ROOT),
            # The worker enforces the size limits; this bound is the backstop.
            limit=self.limits.answer_bytes(),
        )
        worker = _Worker(proc)
        self._workers.add(worker)
        self._spawned += 1
        try:
            await self._await_ready(worker)
        except BaseException:
            await self._retire(worker)
            raise
        return worker

    async def _await_ready(self, worker: _Worker) -> None:
        try:
            async with asyncio.timeout(_STARTUP_TIMEOUT):
                line = await worker.read_line()
        except TimeoutError:
            raise WorkerStartError(f"not ready within {_STARTUP_TIMEOUT:g} s") from None
        if not line.startswith(b'{"ready": true'):
            raise WorkerStartError(_exit_reason(await worker.stop(grace=_EXIT_GRACE)))
        if self._closed:  # closed while this one started: close() did not see it
            raise RuntimeError("the sandbox is closed")


def _limit_fields(limits: Limits) -> dict[str, Any]:
    return {
        "timeout": limits.timeout,
        "memory": limits.memory_bytes,
        "stack": limits.stack_bytes,
        "output": limits.output_bytes,
        "result": limits.result_bytes,
        "error_message": limits.error_message_bytes,
        "error_stack": limits.error_stack_bytes,
    }


def _exit_reason(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"signal {-returncode}, {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"
