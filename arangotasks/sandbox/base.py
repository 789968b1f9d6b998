"""The sandbox interface: compile-check and run task JavaScript somewhere safe."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from arangotasks.models import ErrorType, RunOutcome

# The error of a run still going when the server stopped and its grace ran out.
INTERRUPTED_MESSAGE = (
    "interrupted: the server stopped and the run went on past the shutdown grace "
    "(ARANGOTASKS_SHUTDOWN_GRACE)"
)


def interrupted_error(detail: str = "") -> dict[str, str]:
    """A run error of type ``interrupted``; ``detail`` is added to the message."""
    message = f"{INTERRUPTED_MESSAGE}{detail}"
    return {"type": ErrorType.INTERRUPTED.value, "name": "Interrupted", "message": message} | {
        "stack": ""
    }


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds of one run. ``timeout`` is seconds of wall clock (the engine's CPU limit is the same
    value; the parent kills the worker at ``timeout * 2 + 3``). A result beyond ``result_bytes``
    (its JSON text, UTF-8) fails the run; an error's message and stack are cut at theirs."""

    timeout: float = 30.0
    memory_bytes: int = 64 * 1024 * 1024
    stack_bytes: int = 1024 * 1024
    output_bytes: int = 64 * 1024
    result_bytes: int = 1024 * 1024
    error_message_bytes: int = 16 * 1024
    error_stack_bytes: int = 16 * 1024

    def answer_bytes(self) -> int:
        """The longest answer line a worker can send within these limits: JSON escaping may
        make a character of output six bytes, a quote of the result two."""
        texts = self.output_bytes + self.error_message_bytes + self.error_stack_bytes
        return 2 * self.result_bytes + 6 * texts + 64 * 1024


class SandboxUnavailableError(RuntimeError):
    """No worker could answer (stuck past its deadline, or dead): the sandbox's fault, not the
    command's."""


class SandboxClosedError(RuntimeError):
    """The sandbox takes no new runs: it is stopping (:meth:`Sandbox.drain`) or closed. The run
    did not start."""


class NotStartedError(RuntimeError):
    """The run's start deadline (``start_by``) passed before a worker began it: no part of the
    command ran. Several nodes: this node could not be sure it still held the task's lease."""


StartBy = Callable[[], float]  # the current latest start (time.monotonic()) of a run


class Sandbox(Protocol):
    async def start(self) -> None:
        """Start the workers; call inside the running event loop."""

    async def close(self) -> None:
        """Stop every worker (runs in progress end as crashes, or as interrupted after
        :meth:`interrupt`)."""

    def drain(self) -> None:
        """Take no new runs: a run waiting for a worker, and every later one, raises
        :class:`SandboxClosedError`. Runs in progress go on."""

    def interrupt(self) -> None:
        """Stop the runs in progress: each ends soon as ``interrupted`` with the output it
        printed so far (one whose worker does not stop within a few seconds is killed, and keeps
        the output handed over with its host calls)."""

    async def compile_error(self, command: str, *, owner: str = "") -> str | None:
        """``None`` when ``command`` compiles as the body of ``new Function("params", ...)``,
        else the engine's reason and position (``"SyntaxError: expecting ';' (line 1, column
        12)"``). Parse only: no part of the command runs. :class:`SandboxUnavailableError` when
        no worker answered.

        :param owner: whose check this is (checks are shared fairly between owners).
        """

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
        """Run the raw ``command`` as a function body with ``params`` in scope.

        :param params_json: JSON text of params, ``None`` when absent (``params`` is ``undefined``).
        :param limits: bounds of this run; the sandbox's defaults when ``None``.
        :param label: shown in log lines (the task id).
        :param on_start: called once a worker takes the run (its wait for a free worker ends).
        :param database: the task's database, which host calls (outbound HTTP) act for.
        :param owner: whose run this is: workers are shared fairly between owners.
        :param max_concurrent: most workers ``owner``'s runs may hold at once (``None``: no cap).
        :param start_by: asked when a worker is about to take the run: the latest
            ``time.monotonic()`` it may begin at (the worker checks it again on receipt; the
            clock is system-wide). Past it, :class:`NotStartedError` and nothing ran.
        """
