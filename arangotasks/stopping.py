"""A normal stop of the registry's runs (SIGTERM, SIGINT): the waits and the records it makes.

Nothing new starts (the sandbox is drained), runs in progress get the grace, then are
interrupted; whatever is still going after the sandbox closed is cancelled quietly. See the
README's "A normal stop".
"""

import asyncio
import contextlib
import logging

from arangotasks.models import ErrorType
from arangotasks.sandbox.base import Sandbox

log = logging.getLogger("arangotasks.registry")

# After the grace: how long interrupted runs may take to end and be recorded (the sandbox kills
# a worker that does not answer well before), then runs whose worker close() killed.
INTERRUPT_WAIT = 10.0
KILLED_WAIT = 2.0


async def stop_runs(active: set[asyncio.Task[None]], sandbox: Sandbox, grace: float) -> None:
    """Drain ``sandbox``, give the ``active`` runs ``grace`` seconds, interrupt the rest, and
    close the sandbox. ``active`` is the live set of run tasks (they remove themselves)."""
    sandbox.drain()
    if active:
        log.info("stopping: up to %g s for %d run(s) in progress", grace, len(active))
        await asyncio.wait(set(active), timeout=grace)
    if active:
        log.warning("stopping: interrupting %d run(s) still in progress", len(active))
        sandbox.interrupt()
        await asyncio.wait(set(active), timeout=INTERRUPT_WAIT)
    await sandbox.close()
    if active:
        await asyncio.wait(set(active), timeout=KILLED_WAIT)
    for job in list(active):  # stuck elsewhere (a store write): ended quietly
        job.cancel()
    await asyncio.gather(*active, return_exceptions=True)


async def cancel_loops(loops: list[asyncio.Task[None]]) -> None:
    """Cancel background loops and wait until each has ended."""
    for loop in loops:
        loop.cancel()
    for loop in loops:
        with contextlib.suppress(asyncio.CancelledError):
            await loop


def canceled_error(*, manual: bool, repeats: bool, reruns: bool) -> dict[str, str]:
    """The error of a run that had not started when the server stopped (status canceled).

    :param manual: a manual run (it is not made again).
    :param repeats: the task is periodic or cron (its schedule goes on after the next start).
    :param reruns: a timed task's first attempt: the task runs after the next start.
    """
    if manual:
        later = "ask for it again after the next start"
    elif reruns:
        later = "the task runs after the next start"
    elif repeats:
        later = "the task's schedule goes on after the next start"
    else:
        later = "no further retry"
    return {
        "type": ErrorType.INTERRUPTED.value,
        "name": "Interrupted",
        "message": f"canceled: the server stopped before this run started; {later}",
        "stack": "",
    }
