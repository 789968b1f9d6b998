"""The store interface: the single source of truth for tasks and their run history."""

from collections.abc import Sequence
from typing import Protocol

from arangotasks.models import Run, RunQuery, StoredRun, Task
from arangotasks.store.secret_rows import SecretRecord


class TaskStore(Protocol):
    """Durable tasks and runs. Every method may raise ``StoreUnavailableError``."""

    async def open(self) -> None:
        """Connect and create the schema if needed."""

    async def close(self) -> None: ...

    # --- tasks -------------------------------------------------------------------------
    async def insert_task(self, task: Task) -> None:
        """Persist a new task; raise ``DuplicateTaskError`` if its id exists."""

    async def insert_tasks(self, tasks: Sequence[Task]) -> list[bool]:
        """Persist new tasks in one transaction; per task, ``False`` when its id existed (that
        task is not stored, the others are)."""

    async def update_task(self, task: Task) -> bool:
        """Replace a stored task's fields (PATCH); return whether it existed."""

    async def delete_task(self, task_id: str) -> bool:
        """Remove a task (its runs stay); return whether it existed."""

    async def delete_tasks(self, task_ids: Sequence[str]) -> None:
        """Remove several tasks in one transaction (missing ids ignored)."""

    async def load_tasks(self) -> list[Task]:
        """Every stored task, in creation order."""

    async def set_next_runs(self, updates: Sequence[tuple[str, float | None]]) -> None:
        """Record the next scheduled time of several tasks at once (missing ids ignored)."""

    # --- runs --------------------------------------------------------------------------
    async def max_run_uid(self) -> int:
        """The highest run uid ever stored, 0 when there is none."""

    async def save_runs(self, runs: Sequence[Run]) -> None:
        """Insert or replace several run records (by uid) in one transaction."""

    async def get_run(self, uid: int) -> Run | None: ...

    async def query_runs(self, query: RunQuery) -> tuple[list[Run], int, int | None]:
        """One page of runs, how many match the filters, and the uid of the next page."""

    async def query_runs_page(
        self, query: RunQuery, max_bytes: int
    ) -> tuple[list[StoredRun], int, int | None]:
        """As :meth:`query_runs` for the runs API: result, output and error stay JSON text, and
        the page ends before ``max_bytes`` (holding one run at least)."""

    async def fail_unfinished_runs(self, finished_at: float, error: dict[str, str]) -> int:
        """Mark every enqueued/processing run as failed with ``error``; return how many."""

    async def prune_runs(self, keep_per_task: int, older_than: float) -> int:
        """Delete runs beyond the newest ``keep_per_task`` of each task or finished before
        ``older_than`` (epoch seconds), in short transactions; return how many were deleted."""

    async def run_stats(self, task_ids: Sequence[str]) -> dict[str, tuple[int, int, Run | None]]:
        """Per task id: (number of runs, number of failed runs, latest run or None); the latest
        run without its result and output."""

    # --- secrets (values only as Fernet tokens; see arangotasks.vault) -------------------
    async def put_secret(self, record: SecretRecord, max_count: int) -> SecretRecord | None:
        """Insert or replace a secret (``created`` survives a replacement) and return the stored
        record; ``None`` when its database holds ``max_count`` other secrets already."""

    async def get_secret(self, database: str, name: str) -> SecretRecord | None: ...

    async def list_secrets(self, database: str) -> list[SecretRecord]:
        """The secrets of one database, by name."""

    async def delete_secret(self, database: str, name: str) -> bool:
        """Remove a secret; return whether it existed."""

    async def secret_key_ids(self) -> dict[str, int]:
        """How many secrets (of every database) each key id encrypted."""
