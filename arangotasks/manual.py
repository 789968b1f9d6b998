"""Bounds on manual runs (``POST /_api/tasks/{id}/run``) waiting to start: each waits for its
task's previous run and then for a worker, so without a bound a client can queue runs faster
than any pool drains them (10,000 requests once queued 9,977 runs)."""

from collections import Counter
from collections.abc import Callable

from arangotasks.errors import ArangoError, ErrorCode


class ManualQueue:
    """Counts queued manual runs, per task and overall.

    :param total: most manual runs of all tasks queued at once.
    :param per_task: most manual runs of one task queued at once.
    """

    def __init__(self, total: int, per_task: int) -> None:
        self._total = total
        self._per_task = per_task
        self._queued: Counter[str] = Counter()
        self._count = 0

    def queued(self, task_id: str | None = None) -> int:
        """Manual runs queued now: of ``task_id``, or of every task."""
        return self._count if task_id is None else self._queued[task_id]

    def admit(self, task_id: str) -> None:
        """Count one more queued run of ``task_id``, or raise 429/21003 when a bound is reached."""
        if self._queued[task_id] >= self._per_task:
            raise ArangoError(
                ErrorCode.QUEUE_FULL,
                f"too many manual runs of task '{task_id}' waiting to start "
                f"(at most {self._per_task}); try again when one has started",
            )
        if self._count >= self._total:
            raise ArangoError(
                ErrorCode.QUEUE_FULL,
                f"too many manual runs waiting to start (at most {self._total} in all); "
                "try again later",
            )
        self._queued[task_id] += 1
        self._count += 1

    def leaver(self, task_id: str) -> Callable[[], None]:
        """A function that uncounts one admitted run of ``task_id``; calls after the first do
        nothing (a run leaves the queue when a worker takes it, or when it ends without one)."""
        left = False

        def leave() -> None:
            nonlocal left
            if left:
                return
            left = True
            self._count -= 1
            self._queued[task_id] -= 1
            if self._queued[task_id] <= 0:
                del self._queued[task_id]

        return leave
