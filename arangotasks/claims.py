"""Who decides that a slot runs here: the claims of this node on tasks, and the occurrence fence.

One node (SQLite, or tests' in-memory stores) decides alone: :class:`LocalClaims` admits every
run and numbers runs in memory, as before several nodes were possible.

Several nodes on one PostgreSQL decide through the database, with no leader
(:class:`ClusterClaims`):

1. **Claim.** Every ``cluster_poll`` seconds (and at once after a create here) a node leases
   the tasks due within ``cluster_ahead`` seconds that nobody holds, ``FOR UPDATE SKIP LOCKED``:
   two nodes claiming at once take different tasks. A lease names its node, lasts while that
   node's heartbeat is younger than ``cluster_lease`` seconds (PostgreSQL's clock), and carries
   a fence (a counter bumped by every claim). Only a node holding a task arms a timer for it
   (APScheduler), so N nodes do not all wake for every task.
2. **Renew.** The heartbeat (``membership.py``) renews every lease of the node at once (one
   row: the node's) and reads back the leases it holds; a lease missing from that answer was
   lost (the node paused or lost its connection longer than the lease, and another node took
   the task over).
3. **Fence.** Before a slot runs, its run row is inserted: only while this node still holds the
   lease with its fence and its own heartbeat is fresh, and only once per (task, slot,
   attempt), by a unique index; the held task rows are locked until the rows are in, so a claim
   by another node comes after them (and sees the last slot: a takeover starts a periodic task
   a period after it) or voids the fence first. The row, not the lease, is what makes a slot run
   once: a node that resumes from a pause with an old lease inserts nothing and runs nothing.
   Run uids come from a sequence with that insert.
4. **Start.** An admitted run waits for a worker; it starts only before the start gate closes
   (:meth:`ClusterClaims.start_gate`: 90 % of a lease after the last heartbeat was sent, and only
   while the lease held right after the admission lasts). A run admitted just before a pause
   does not start after it, when another node may run the task: it is recorded canceled
   (``LeaseLapsed``).
5. **Settle.** After a run the holder writes the next slot (fenced). It keeps the lease while
   the next slot is near (a period of a second does not change nodes every run) and gives it
   back when the slot is further than ``cluster_ahead``, or when it holds more than its share
   of the cluster's leases (a node that joins gets work).

A node that dies stops renewing: its leases expire and the tasks are claimed again; the slot
it was running has its row already, so it is not run again, and the reaper marks that run as
a crash. ``cluster_fence = False`` (tests only) skips steps 3 and 4: the control that shows the
cluster test can see duplicates.
"""

from typing import Protocol

from arangotasks.history import History
from arangotasks.leases import ClusterClaims
from arangotasks.models import Run, RunStatus, RunTrigger, Task
from arangotasks.sandbox.base import StartBy
from arangotasks.store.cluster_rows import Admission

__all__ = ["Claims", "ClusterClaims", "LocalClaims"]


class Claims(Protocol):
    """What the registry asks about claims (both implementations below)."""

    node_id: str

    def holds(self, task_id: str) -> bool:
        """Whether this node may arm and run ``task_id``'s schedule now."""

    async def admit(
        self, task: Task, trigger: RunTrigger, slot: float, status: RunStatus, attempt: int
    ) -> Run | Admission:
        """A new run record of ``task`` (its uid set), or why it must not run."""

    def start_gate(self, task_id: str) -> StartBy | None:
        """For a scheduled run of ``task_id`` just admitted: when, at the latest, a worker may
        begin it (asked again at that moment); ``None``: whenever."""

    def next_run(self, task: Task, at: float | None) -> None:
        """``task`` (held) fires next at ``at`` (None: no further slot)."""

    def settle(self, task: Task, busy: bool) -> None:
        """``task``'s run ended (or was skipped): keep its lease or give it back."""

    def forget(self, task_id: str) -> None:
        """``task_id`` was deleted or changed elsewhere: stop holding it."""

    def give_back(self, task: Task) -> None:
        """Stop holding ``task`` and free its lease (its next run time unchanged)."""

    def wake(self) -> None:
        """A task was created here: claim due tasks now rather than at the next poll."""

    async def unfence(self, run: Run) -> None:
        """``run`` was admitted but never started (canceled at a stop): its slot is free."""

    async def taken(self, task: Task) -> bool:
        """A write on this node changed ``task``'s schedule: hold it (the old holder's fence is
        void). False when it is gone."""


class LocalClaims:
    """A single node: every run is admitted, uids come from the history's counter."""

    def __init__(self, history: History, node_id: str):
        self._history = history
        self.node_id = node_id

    def holds(self, task_id: str) -> bool:
        return True

    async def admit(
        self, task: Task, trigger: RunTrigger, slot: float, status: RunStatus, attempt: int
    ) -> Run | Admission:
        return self.admit_now(task, trigger, slot, status, attempt)

    def admit_now(
        self, task: Task, trigger: RunTrigger, slot: float, status: RunStatus, attempt: int
    ) -> Run:
        """:meth:`admit` without yielding: one node decides alone (the run path's fast fire)."""
        run = self._history.new_run(task, trigger, slot, status=status, attempt=attempt)
        run.node = self.node_id
        return run

    def start_gate(self, task_id: str) -> StartBy | None:
        return None

    def next_run(self, task: Task, at: float | None) -> None:
        self._history.note_next_run(task.id, at)

    def settle(self, task: Task, busy: bool) -> None:
        pass

    def forget(self, task_id: str) -> None:
        pass

    def give_back(self, task: Task) -> None:
        pass

    def wake(self) -> None:
        pass

    async def unfence(self, run: Run) -> None:
        pass

    async def taken(self, task: Task) -> bool:
        return True
