"""One worker process seen from the server: start it, speak its line protocol, stop it.

The pool (pool.py) decides which run gets which worker; this module only manages a process
and its pipes (the protocol itself is described in worker.py).
"""

import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from arangotasks.models import ErrorType
from arangotasks.sandbox.base import Limits, interrupted_error
from arangotasks.sandbox.hardening import STOP_SIGNAL, worker_environment
from arangotasks.sandbox.host import HostCalls, HostRun

_WORKER_MODULE = "arangotasks.sandbox.worker"
STARTUP_TIMEOUT = 30.0
EXIT_GRACE = 1.0
# The reply to a host call of a run that is being interrupted: it fails the run at once.
_INTERRUPTED = interrupted_error()
_INTERRUPTED_REPLY = (
    json.dumps(
        {"error": {"name": _INTERRUPTED["name"], "message": _INTERRUPTED["message"]}}
        | {"fatal": _INTERRUPTED["type"]}
    ).encode()
    + b"\n"
)
# The folder holding the ``arangotasks`` package, so that workers import this very copy.
_SOURCE_ROOT = str(Path(__file__).resolve().parents[2])


class WorkerStartError(RuntimeError):
    """A worker process did not come up (it exited, or never said it was ready)."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"sandbox worker failed to start: {detail}")


class WorkerGone(Exception):
    """The worker gave no answer (it died, or missed the deadline): ``error`` says which."""

    def __init__(self, kind: ErrorType, name: str, message: str) -> None:
        super().__init__(message)
        self.error = {"type": str(kind), "name": name, "message": message, "stack": ""}


class WorkerProcess:
    """A started worker process and its pipes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.interrupted = False  # told to stop its run (see interrupt)
        self._deadline: asyncio.Timeout | None = None  # of the call in progress

    def interrupt(self, within: float) -> None:
        """Tell the worker to stop its run (the server stops): it answers soon with the run
        interrupted; the call in progress fails with :class:`TimeoutError` when no answer came
        within ``within`` seconds. Host calls it makes from now on get an ``interrupted``
        reply."""
        self.interrupted = True
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, STOP_SIGNAL)
        timeout = self._deadline
        if timeout is not None:
            when = asyncio.get_running_loop().time() + within
            current = timeout.when()
            if current is None or when < current:
                timeout.reschedule(when)

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
            async with asyncio.timeout(deadline) as self._deadline:
                stdin.write(json.dumps(request).encode() + b"\n")
                await stdin.drain()
                line = await self.read_line()
                while line.startswith(b'{"call":'):
                    call = json.loads(line)
                    if run is not None:
                        run.output.extend(call["output"])
                    if host is None:
                        host = HostCalls()  # answers every call with an error
                    if self.interrupted:
                        stdin.write(_INTERRUPTED_REPLY)
                    else:
                        stdin.write(await host.dispatch(run, call["call"], call["args"]))
                    await stdin.drain()
                    line = await self.read_line()
            if not line:
                return None
        except ConnectionError:  # the pipe broke: the worker is gone
            return None
        except ValueError:  # an answer beyond the line limit: out of sync for good
            self.kill()
            raise WorkerGone(
                ErrorType.RESULT,
                "AnswerTooLarge",
                "the worker's answer exceeded the size its limits allow: worker killed and "
                "respawned",
            ) from None
        finally:
            self._deadline = None
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

    async def ready(self) -> None:
        """Wait for the worker's ready line; :class:`WorkerStartError` when it does not come."""
        try:
            async with asyncio.timeout(STARTUP_TIMEOUT):
                line = await self.read_line()
        except TimeoutError:
            raise WorkerStartError(f"not ready within {STARTUP_TIMEOUT:g} s") from None
        if not line.startswith(b'{"ready": true'):
            raise WorkerStartError(exit_reason(await self.stop(grace=EXIT_GRACE)))


async def start_worker(
    address_space: int, identity: tuple[int, int] | None, answer_bytes: int
) -> WorkerProcess:
    """Start a worker process (not yet ready: see :meth:`WorkerProcess.ready`).

    :param address_space: its RLIMIT_AS in bytes.
    :param identity: ``(uid, gid)`` it switches to, ``None`` to keep the server's.
    :param answer_bytes: the longest answer line it may send.
    """
    args = ["--address-space", str(address_space), "--parent-pid", str(os.getpid())]
    if identity is not None:
        args += ["--uid", str(identity[0]), "--gid", str(identity[1])]
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
        limit=answer_bytes,
    )
    return WorkerProcess(proc)


def limit_fields(limits: Limits) -> dict[str, Any]:
    """The limits as the fields of a request."""
    return {
        "timeout": limits.timeout,
        "memory": limits.memory_bytes,
        "stack": limits.stack_bytes,
        "output": limits.output_bytes,
        "result": limits.result_bytes,
        "error_message": limits.error_message_bytes,
        "error_stack": limits.error_stack_bytes,
    }


def exit_reason(returncode: int) -> str:
    """A worker's return code in words (``"signal 9, SIGKILL"``, ``"exit code 1"``)."""
    if returncode < 0:
        try:
            return f"signal {-returncode}, {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"
