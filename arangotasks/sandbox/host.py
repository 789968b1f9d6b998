"""Host calls: what task code asks the server to do for it (HTTP requests, secrets, ...).

The worker never acts outside its sandbox: a host call travels over its pipe to the server
(see worker.py for the protocol), and the pool hands it to :meth:`HostCalls.dispatch`, which runs
the handler registered under the call's kind. Adding a host API is one handler here (registered
by its feature, e.g. ``calls.register("http.request", handler)``) and its JavaScript module in
prelude_host.js.
"""

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from arangotasks.models import ErrorType

log = logging.getLogger(__name__)


class HostCallError(Exception):
    """A host call failed: thrown in the command as an Error with ``name`` and ``message``.

    :param fatal: an error type (e.g. ``"timeout"``, ``"http_limit"``): the run breached one of
        its limits and fails with this type whatever the command does next.
    """

    def __init__(self, message: str, *, name: str = "Error", fatal: str | None = None) -> None:
        super().__init__(message)
        self.name = name
        self.message = message
        self.fatal = fatal


@dataclass(slots=True)
class HostRun:
    """One run's side of its host calls: who it runs for, how long it may take, what it did.

    :param database: the task's database (handlers choose their policy by it).
    :param timeout: the run's limit in seconds; host calls may wait for I/O until this much
        wall-clock time has passed since the run started.
    """

    database: str
    timeout: float
    started: float = field(default_factory=time.monotonic)
    requests: list[dict[str, Any]] = field(default_factory=list)  # the run record's "requests"
    output: list[str] = field(default_factory=list)  # lines the worker handed over so far
    state: dict[str, Any] = field(default_factory=dict)  # per-handler counters, keyed by kind
    # Values a host call revealed (secrets): the pool masks them in everything the run shows.
    redact: set[str] = field(default_factory=set)
    # What handlers clean up when the run ends (e.g. the db bridge's unfinished cursors).
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def close(self) -> None:
        """Run the closers (each once; one that fails is logged, the others still run)."""
        closers, self.closers = self.closers, []
        for closer in closers:
            try:
                await closer()
            except Exception:
                log.exception("host call clean-up failed")

    def remaining(self) -> float:
        """Seconds of wall clock left for waiting on I/O."""
        return self.timeout - (time.monotonic() - self.started)

    def check_time(self) -> float:
        """:meth:`remaining`, or a fatal timeout when none is left."""
        left = self.remaining()
        if left <= 0:
            raise wall_timeout(self.timeout)
        return left


def wall_timeout(timeout: float) -> HostCallError:
    return HostCallError(
        f"interrupted: the run's time limit of {timeout:g} s passed while waiting on a host call",
        name="InternalError",
        fatal=ErrorType.TIMEOUT.value,
    )


Handler = Callable[[HostRun, Any], Awaitable[Any]]


class HostCalls:
    """The registry of host-call handlers, keyed by kind (``"http.request"``)."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def register(self, kind: str, handler: Handler) -> None:
        """Make ``handler(run, args)`` answer calls of ``kind``: it returns a JSON value for the
        command, or raises :class:`HostCallError`. It replaces an earlier handler of ``kind``
        (an app built again on a shared sandbox, as the tests do)."""
        self._handlers[kind] = handler

    @property
    def kinds(self) -> list[str]:
        return sorted(self._handlers)

    async def dispatch(self, run: HostRun | None, kind: str, args: Any) -> bytes:
        """The reply line (with its newline) to one call."""
        handler = self._handlers.get(kind)
        try:
            if run is None:
                raise HostCallError("host calls are not available for this run")
            if handler is None:
                raise HostCallError(f"unknown host call {kind!r}")
            value = await handler(run, args)
        except HostCallError as exc:
            error = {"name": exc.name, "message": exc.message}
            return json.dumps({"error": error, "fatal": exc.fatal}).encode() + b"\n"
        except Exception as exc:  # a handler's bug must not take the run's worker down
            log.exception("host call %s failed", kind)
            error = {"name": "Error", "message": f"host call {kind} failed: {exc!r}"}
            return json.dumps({"error": error}).encode() + b"\n"
        return json.dumps({"value": value}).encode() + b"\n"
