"""The catalog of tasks: the store's tasks cached in memory, with the quotas' counts.

The store is the truth; the cache follows it. On a store of one server every write goes through
this process, so the cache is exact. On a store that several nodes share, another node may
have created, changed or deleted a task a moment ago: reads by the API (``lookup``,
``listing``) then ask the store first, so that a GET right after a POST on another node finds
the task; notifications from peers (``membership.py``) keep the cache fresh in between.
"""

import dataclasses
from collections.abc import Callable

from arangotasks.auth import Principal
from arangotasks.errors import ArangoError, ErrorCode, StoreUnavailableError
from arangotasks.models import Task, dumps
from arangotasks.quotas import Usage
from arangotasks.store.base import TaskStore
from arangotasks.store.cluster_rows import ClusterRows


class Catalog:
    """Tasks by id. ``on_gone`` is called with a cached task that the store no longer has."""

    def __init__(
        self,
        store: TaskStore,
        usage: Usage,
        shared: ClusterRows | None,
        on_gone: Callable[[Task], None],
    ):
        self._store = store
        self.usage = usage
        self._shared = shared  # the store, when several nodes share it
        self._on_gone = on_gone
        self._tasks: dict[str, Task] = {}
        self._api_json: dict[str, str] = {}

    # --- the cache -----------------------------------------------------------------------
    def find(self, task_id: str) -> Task | None:
        return self._tasks.get(task_id)

    def holds(self, task: Task) -> bool:
        """Whether ``task`` is the live object of its id (not deleted or replaced)."""
        return self._tasks.get(task.id) is task

    def add(self, task: Task, *, counted: bool = False) -> None:
        """Cache ``task``; ``counted``: its quota usage was reserved already."""
        self._tasks[task.id] = task
        if not counted:
            self.usage.add_task(task)

    def remove(self, task: Task) -> bool:
        if self._tasks.get(task.id) is not task:
            return False
        del self._tasks[task.id]
        self._api_json.pop(task.id, None)
        self.usage.release_task(task)
        return True

    def replace(self, task: Task, new: Task) -> None:
        """Give the live object ``task`` the fields of ``new`` (a PATCH, or a peer's change):
        runs in progress hold the same object and see the change when they end."""
        self.usage.release_task(task)
        for field in dataclasses.fields(Task):
            setattr(task, field.name, getattr(new, field.name))
        self.usage.add_task(task)
        self._api_json.pop(task.id, None)

    def absorb(self, row: Task) -> Task:
        """The live object for a task read from the store: the cached one brought up to date
        (its next run time included), or ``row`` itself, now cached."""
        cached = self.absorb_revision(row)
        cached.next_run_at = row.next_run_at
        return cached

    def all(self) -> list[Task]:
        return list(self._tasks.values())

    def __len__(self) -> int:
        return len(self._tasks)

    # --- what the API reads --------------------------------------------------------------
    def get(self, task_id: str, principal: Principal) -> Task:
        """From the cache (exact on a store of one server)."""
        task = self._tasks.get(task_id)
        if task is None or not principal.may_see(task.owner):
            raise ArangoError(ErrorCode.TASK_NOT_FOUND)
        return task

    async def lookup(self, task_id: str, principal: Principal) -> Task:
        """As :meth:`get`, after asking a shared store for the task's latest state."""
        if self._shared is not None:
            try:
                row = await self._shared.get_task(task_id)
            except StoreUnavailableError:
                return self.get(task_id, principal)  # what this node knows still answers
            cached = self._tasks.get(task_id)
            if row is None:
                if cached is not None:
                    self._gone(cached)
            else:
                self.absorb_revision(row)
        return self.get(task_id, principal)

    def absorb_revision(self, row: Task) -> Task:
        """As :meth:`absorb`, but the cached next run time stays (it is the holder's)."""
        cached = self._tasks.get(row.id)
        if cached is None:
            self.add(row)
            return row
        if cached.revision != row.revision:
            self.replace(cached, row)
        return cached

    async def listing(self, principal: Principal) -> list[Task]:
        """Every task ``principal`` may see; from a shared store, the store's tasks."""
        try:
            rows = await self._store.load_tasks() if self._shared is not None else None
        except StoreUnavailableError:
            rows = None  # what this node knows still answers
        if rows is not None:
            present = {row.id for row in rows}
            for cached in [t for t in self._tasks.values() if t.id not in present]:
                self._gone(cached)
            tasks = [self.absorb_revision(row) for row in rows]
        else:
            tasks = list(self._tasks.values())
        if principal.superuser:
            return tasks
        return [t for t in tasks if t.owner == principal.name]

    def visible(self, principal: Principal) -> list[Task]:
        """The cached tasks ``principal`` may see (metrics, the dashboard's counts)."""
        if principal.superuser:
            return list(self._tasks.values())
        return [t for t in self._tasks.values() if t.owner == principal.name]

    def api_json(self, task: Task) -> str:
        """The task object as JSON text, cached until the task changes."""
        text = self._api_json.get(task.id)
        if text is None:
            text = self._api_json[task.id] = dumps(task.to_api())
        return text

    def _gone(self, task: Task) -> None:
        self._on_gone(task)
        self.remove(task)
