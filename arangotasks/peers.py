"""What the claims and the peer nodes report to the registry (several nodes on one
PostgreSQL): a task this node claimed, a lease it lost, a task a peer changed or deleted.
``Registry`` mixes this in."""

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from arangotasks.catalog import Catalog
from arangotasks.claims import Claims
from arangotasks.config import Settings
from arangotasks.errors import StoreUnavailableError
from arangotasks.history import History
from arangotasks.membership import Membership
from arangotasks.models import Task
from arangotasks.scheduler import JobScheduler
from arangotasks.store.base import TaskStore
from arangotasks.store.cluster_rows import ClusterRows

log = logging.getLogger(__name__)


def shared_store(store: TaskStore) -> ClusterRows | None:
    """The store as a cluster store when several nodes can share it (PostgreSQL)."""
    inner = getattr(store, "_inner", store)  # the metrics' counting wrapper passes calls on
    return store if isinstance(inner, ClusterRows) else None  # type: ignore[return-value]


class PeerEvents:
    """Needs the registry's state (declared here for the type checker)."""

    settings: Settings
    store: TaskStore
    history: History
    catalog: Catalog
    claims: Claims
    membership: Membership | None
    node_id: str
    address: str
    started_at: float
    _shared_rows: ClusterRows | None
    _scheduler: JobScheduler
    _active: set[asyncio.Task[None]]
    _shared: bool

    _schedule_loaded: Callable[[Task, float], bool]

    def _adopt(self, row: Task, fence: int) -> None:
        """This node claimed ``row``: arm it."""
        task = self.catalog.absorb(row)
        self._scheduler.cancel(task.id)
        if not self._schedule_loaded(task, time.time()):
            self.claims.give_back(task)

    def _lost(self, task_id: str) -> None:
        """Another node holds ``task_id`` now (or this node gave it back): disarm it."""
        self._scheduler.cancel(task_id)

    def _revised(self, task_id: str, revision: int) -> None:
        task = self.catalog.find(task_id)
        if task is not None and task.revision != revision:
            self._spawn(self._reload(task_id))

    def _news(self, payload: str) -> None:
        """A peer's notification: ``[kind, node, task id]``."""
        try:
            _kind, node, task_id = json.loads(payload)
        except (ValueError, TypeError):
            return
        if node != self.node_id:
            self._spawn(self._reload(str(task_id)))

    async def _reload(self, task_id: str) -> None:
        """Bring the cached task to the store's state (a peer changed or deleted it)."""
        row = await self.store_task(task_id)
        cached = self.catalog.find(task_id)
        if row is None:
            if cached is not None:
                self._gone(cached)
                self.catalog.remove(cached)
            return
        self.catalog.absorb_revision(row)

    async def store_task(self, task_id: str) -> Task | None:
        assert self._shared_rows is not None
        return await self._shared_rows.get_task(task_id)

    def _spawn(self, job: Any) -> None:
        task = asyncio.ensure_future(job)
        self._active.add(task)
        task.add_done_callback(self._active.discard)
        task.add_done_callback(_log_failure)

    def _gone(self, task: Task) -> None:
        """The store no longer has ``task`` (deleted on another node)."""
        self._scheduler.cancel(task.id)
        self.claims.forget(task.id)
        self.history.forget_next_run(task.id)

    async def _tell(self, kind: str, task_id: str) -> None:
        if self.membership is not None:
            await self.membership.tell(json.dumps([kind, self.node_id, task_id]))

    async def nodes(self) -> list[dict[str, Any]]:
        """The nodes of the cluster (``GET /_api/nodes``); a store of one server has one."""
        if self.membership is not None:
            return await self.membership.nodes()
        from arangotasks.api.common import iso

        return [
            {
                "id": self.node_id,
                "address": self.address,
                "startedAt": iso(self.started_at),
                "heartbeatAt": iso(time.time()),
                "alive": True,
            }
        ]


def _log_failure(task: "asyncio.Future[Any]") -> None:
    if not task.cancelled() and task.exception() is not None:
        exc = task.exception()
        if isinstance(exc, StoreUnavailableError):
            log.warning("a registry job could not reach the store: %s", exc)
        else:
            log.error("registry job failed", exc_info=exc)
