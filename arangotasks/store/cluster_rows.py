"""The SQL of several nodes on one PostgreSQL: nodes, task leases and the occurrence fence.

Every time here is PostgreSQL's clock (``NOW``), never a node's: leases and liveness compare
instants of one clock. The policy (who claims what, when a slot runs) is in
``arangotasks/claims.py``; this module only says it in SQL. Mixed into ``PostgresStore``.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from arangotasks.models import FINISHED_STATUSES, Run, RunStatus, Task
from arangotasks.store.schema import (
    RUN_COLUMNS,
    TASK_COLUMNS,
    UNFINISHED,
    Result,
    Stmt,
    row_to_task,
    run_to_row,
)

# The server's wall clock in epoch seconds, taken when the statement runs (not when its
# transaction began: a claim transaction is short, but a lease must not start in the past).
NOW = "extract(epoch FROM clock_timestamp())::float8"
CHANNEL = "arangotasks_tasks"  # LISTEN/NOTIFY: "c:<id>", "u:<id>", "d:<id>", "r" (released)

_TASK_SELECT = ", ".join(f"t.{c}" for c in TASK_COLUMNS)
# A run that really ended (its node wrote it), not one the reaper marked as a crash.
_ENDED = ", ".join(f"'{s.value}'" for s in FINISHED_STATUSES)
CRASH_NAME = "ServerCrash"  # the error name of a run the reaper marks (history.CRASH_ERROR)


@dataclass(frozen=True, slots=True)
class NodeRow:
    """One node as the ``nodes`` table has it (times from PostgreSQL's clock)."""

    id: str
    address: str
    started_at: float
    heartbeat_at: float
    held: int
    stopped: bool


@dataclass(frozen=True, slots=True)
class Beat:
    """What a heartbeat learns: the server's clock, the nodes, and the leases still held
    (task id -> (fence, revision)); a lease missing from ``held`` was lost."""

    now: float
    nodes: list[NodeRow]
    held: dict[str, tuple[int, int]]


class Admission(Enum):
    """What the occurrence fence said about one run."""

    ADMITTED = "admitted"  # the row is in: run it
    SLOT_TAKEN = "slot taken"  # a run of this slot exists already (another node ran it)
    CLAIM_LOST = "claim lost"  # this node no longer holds the task (or it was deleted)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A task this node just leased, with what the store knows of its last admitted slot."""

    task: Task
    fence: int  # the new lease's fence
    taken_over: bool  # the lease was another node's (or this node's) that lapsed, not free
    last_slot: float | None  # the latest slot the fence admitted (None: none yet)
    last_ended: float | None  # when that slot's run ended, if its node wrote it (not a crash)


def _float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


@dataclass(slots=True)
class Opening:
    """A run to admit: the fenced ones carry the lease fence; manual runs do not."""

    run: Run
    fence: int | None  # None: no lease needed (a manual run); the task must exist
    slot: float | None  # the slot it stands for (fenced runs), else None


_HEARTBEAT = (
    f"INSERT INTO nodes (id, address, started_at, heartbeat_at, held, stopped) "
    f"VALUES (?, ?, ?, {NOW}, ?, 0) ON CONFLICT (id) DO UPDATE SET address = excluded.address, "
    "heartbeat_at = excluded.heartbeat_at, held = excluded.held, stopped = 0"
)
# A lease lasts while its node's heartbeat is fresh: renewing every lease is one row (the
# node's), and the heartbeat reads back the leases it holds.
# FOR SHARE (in id order, as the other lease writes): a claim of another node in flight either
# commits first (and the lease is not read back: lost) or skips the row.
_RENEW = "SELECT id, fence, revision FROM tasks WHERE lease_owner = ? ORDER BY id FOR SHARE"
_NODES = (
    f"SELECT id, address, started_at, heartbeat_at, held, stopped, {NOW} FROM nodes ORDER BY id"
)
# Due soon, enabled, and no lease in force; SKIP LOCKED: two nodes claiming at once take
# different tasks instead of waiting for each other.
# The nodes whose leases lapsed are locked (FOR SHARE) first: a heartbeat of one of them that
# is being written makes the claim wait for it and then see it fresh (and claim nothing of
# that node), or waits itself until the claim is in (and the heartbeat reads back without the
# leases taken). Without the lock a claim could act on a heartbeat it saw stale just before it
# was renewed, and two nodes would both hold a task.
_CLAIM = f"""WITH stale AS MATERIALIZED (
    SELECT id FROM nodes WHERE stopped = 1 OR heartbeat_at <= {NOW} - ? FOR SHARE),
  due AS (
    SELECT id, lease_owner AS was FROM tasks WHERE next_run_at IS NOT NULL AND enabled = 1
      AND next_run_at <= {NOW} + ? AND (lease_owner IS NULL
        OR lease_owner IN (SELECT id FROM stale)
        OR NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = tasks.lease_owner))
    ORDER BY next_run_at LIMIT ? FOR UPDATE SKIP LOCKED),
  claimed AS (UPDATE tasks AS t SET lease_owner = ?, fence = t.fence + 1
    FROM due WHERE t.id = due.id RETURNING {_TASK_SELECT}, t.fence, due.was)
  SELECT claimed.*, last.fence_slot, last.ended FROM claimed LEFT JOIN LATERAL (
    SELECT r.fence_slot, CASE WHEN r.status IN ({_ENDED}) AND (r.error IS NULL
      OR r.error::jsonb ->> 'name' <> '{CRASH_NAME}') THEN r.finished_at END AS ended
    FROM runs r WHERE r.task_id = claimed.id AND r.fence_slot IS NOT NULL
    ORDER BY r.fence_slot DESC, r.attempt DESC LIMIT 1) AS last ON true"""
# A node may admit runs only while its own heartbeat is fresh: others claim its tasks as soon
# as it is not, whatever its own view of its leases.
_FRESH = (
    "EXISTS (SELECT 1 FROM nodes n WHERE n.id = ? AND n.stopped = 0 "
    f"AND n.heartbeat_at > {NOW} - ?)"
)
_TAKE = """UPDATE tasks AS t SET lease_owner = ?, fence = t.fence + 1
  WHERE t.id = ? RETURNING t.fence"""
# Fenced: (write next_run_at?, next_run_at, give the lease back?, id, node, fence).
_SETTLE = (
    "UPDATE tasks SET next_run_at = CASE WHEN ?::boolean THEN ?::float8 ELSE next_run_at END, "
    "lease_owner = CASE WHEN ?::boolean THEN NULL ELSE lease_owner END "
    "WHERE id = ? AND lease_owner = ? AND fence = ?"
)
_RELEASE_ALL = "UPDATE tasks SET lease_owner = NULL WHERE lease_owner = ?"
_STOPPED = "UPDATE nodes SET stopped = 1 WHERE id = ?"
# Unfinished runs of nodes that stopped heartbeating (or stopped) are crashes.
_REAP = f"""UPDATE runs SET status = '{RunStatus.FAILED.value}', finished_at = {NOW}, error = ?
  WHERE status IN ({UNFINISHED}) AND node IS NOT NULL AND node IN (
    SELECT id FROM nodes WHERE stopped = 1 OR heartbeat_at < {NOW} - ?)"""
_FAIL_OWN = f"""UPDATE runs SET status = '{RunStatus.FAILED.value}', finished_at = {NOW}, error = ?
  WHERE status IN ({UNFINISHED}) AND (node = ? OR node IS NULL)"""
_FORGET_NODES = f"DELETE FROM nodes WHERE heartbeat_at < {NOW} - ?"


class ClusterRows:
    """Cluster statements on top of ``_execute`` (see ``SQLStore``)."""

    async def _execute(self, stmts: Sequence[Stmt], *, write: bool) -> list[Result]:
        raise NotImplementedError  # provided by the store

    async def heartbeat(
        self, node: str, address: str, started_at: float, held: int, lease: float
    ) -> Beat:
        """Say this node is alive, renew every lease it holds, and read the nodes."""
        _, renewed, nodes = await self._execute(
            [
                Stmt(_HEARTBEAT, (node, address, started_at, held)),
                Stmt(_RENEW, (node,), fetch=True),
                Stmt(_NODES, fetch=True),
            ],
            write=True,
        )
        rows = [NodeRow(r[0], r[1], r[2], r[3], int(r[4]), bool(r[5])) for r in nodes.rows]
        now = float(nodes.rows[0][6]) if nodes.rows else 0.0
        held_now = {str(r[0]): (int(r[1]), int(r[2])) for r in renewed.rows}
        return Beat(now, rows, held_now)

    async def pg_now(self) -> float:
        result = (await self._execute([Stmt(f"SELECT {NOW}", fetch=True)], write=False))[0]
        return float(result.rows[0][0])

    async def list_nodes(self) -> tuple[float, list[NodeRow]]:
        result = (await self._execute([Stmt(_NODES, fetch=True)], write=False))[0]
        rows = [NodeRow(r[0], r[1], r[2], r[3], int(r[4]), bool(r[5])) for r in result.rows]
        now = float(result.rows[0][6]) if result.rows else await self.pg_now()
        return now, rows

    async def claim_due(self, node: str, ahead: float, lease: float, limit: int) -> list[Claimed]:
        """Lease up to ``limit`` tasks due within ``ahead`` seconds that nobody holds."""
        result = (
            await self._execute([Stmt(_CLAIM, (lease, ahead, limit, node), fetch=True)], write=True)
        )[0]
        width = len(TASK_COLUMNS)
        return [
            Claimed(
                row_to_task(row[:width]),
                fence=int(row[width]),
                taken_over=row[width + 1] is not None,
                last_slot=_float(row[width + 2]),
                last_ended=_float(row[width + 3]),
            )
            for row in result.rows
        ]

    async def take(self, node: str, task_id: str, lease: float) -> int | None:
        """Lease one task whoever holds it (a write on this node changed its schedule); the
        old holder's fence is void. ``None`` when the task is gone."""
        result = (await self._execute([Stmt(_TAKE, (node, task_id), fetch=True)], write=True))[0]
        return int(result.rows[0][0]) if result.rows else None

    async def settle_leases(
        self,
        node: str,
        advances: Sequence[tuple[str, int, float | None]],
        releases: Sequence[tuple[str, int, float | None]],
        frees: Sequence[tuple[str, int]] = (),
    ) -> None:
        """Write next run times of held tasks (``advances``: the lease stays), give leases back
        with a next run time (``releases``) or without changing it (``frees``); all fenced: a
        node whose lease was taken over writes nothing."""
        # One statement over every row in id order: the admission locks task rows in id order
        # too, so the two never wait for each other in a cycle (a deadlock).
        rows = [(True, at, False, i, node, f) for i, f, at in advances]
        rows += [(True, at, True, i, node, f) for i, f, at in releases]
        rows += [(False, None, True, i, node, f) for i, f in frees]
        if rows:
            rows.sort(key=lambda row: str(row[3]))
            await self._execute([Stmt(_SETTLE, many=rows)], write=True)

    async def leave(self, node: str) -> None:
        """A clean stop: every lease of this node is free at once, and it is no longer alive."""
        await self._execute([Stmt(_RELEASE_ALL, (node,)), Stmt(_STOPPED, (node,))], write=True)

    async def reap(self, lease: float, error: dict[str, str], forget_after: float) -> int:
        """Mark the unfinished runs of dead nodes as crashed; forget nodes long dead."""
        reaped, _ = await self._execute(
            [
                Stmt(_REAP, (json.dumps(error), lease)),
                Stmt(_FORGET_NODES, (forget_after,)),
            ],
            write=True,
        )
        return reaped.rowcount

    async def fail_own_runs(self, node: str, error: dict[str, str]) -> int:
        """At start: this node's unfinished runs (an earlier life of the same id), and those
        recorded before several nodes were possible, are crashes."""
        result = (await self._execute([Stmt(_FAIL_OWN, (json.dumps(error), node))], write=True))[0]
        return result.rowcount

    async def unfence_run(self, uid: int) -> None:
        """Free the slot of a run that never started (its record stays)."""
        await self._execute(
            [Stmt("UPDATE runs SET fence_slot = NULL WHERE uid = ?", (uid,))], write=True
        )

    async def notify(self, payload: str) -> None:
        await self._execute(
            [Stmt("SELECT pg_notify(?, ?)", (CHANNEL, payload), fetch=True)], write=True
        )

    async def get_task(self, task_id: str) -> Task | None:
        sql = f"SELECT {', '.join(TASK_COLUMNS)} FROM tasks WHERE id = ?"
        result = (await self._execute([Stmt(sql, (task_id,), fetch=True)], write=False))[0]
        return row_to_task(result.rows[0]) if result.rows else None

    async def admit_runs(
        self, node: str, openings: Sequence[Opening], lease: float
    ) -> list[Admission]:
        """The occurrence fence: insert each run row before the run starts; its uid comes from
        the database. A fenced run goes in only while this node holds the task's lease with
        that fence and its heartbeat is younger than ``lease``, and only once per (task, slot,
        attempt) (a unique index); a manual run only while its task exists. The held task rows
        are locked (``FOR SHARE``) until the rows are in, so a claim of another node either
        comes after them (and sees them) or voids the fence first. One statement and the commit a
        batch."""
        if not openings:
            return []
        for opening in openings:
            opening.run.node = node
        # Every column but the uid, which the statement draws from the sequence.
        rows = [(*run_to_row(o.run)[1:], o.slot, o.fence) for o in openings]
        columns = list(zip(*rows, strict=True))
        ids = sorted({o.run.task_id for o in openings if o.fence is not None})
        (result,) = await self._execute(
            [Stmt(_ADMIT, (ids, node, node, lease, *(list(c) for c in columns)), fetch=True)],
            write=True,
        )
        verdicts = []
        for opening, (_ordinal, uid, inserted, held_fence) in zip(
            openings, result.rows, strict=True
        ):
            opening.run.uid = int(uid)
            if inserted:
                verdicts.append(Admission.ADMITTED)
            elif opening.fence is not None and held_fence == opening.fence:
                verdicts.append(Admission.SLOT_TAKEN)
            else:
                verdicts.append(Admission.CLAIM_LOST)
        return verdicts


_RUN_INSERT_COLUMNS = (*RUN_COLUMNS, "fence_slot")
_GIVEN = _RUN_INSERT_COLUMNS[1:]  # what the batch passes: every column but the uid
# The columns' types, for the arrays of the batch insert (PostgreSQL cannot infer them).
_TYPES = (
    "text text text text text text float8 float8 float8 float8 text text text text "
    "int bigint text float8"
).split()
# One statement (and the commit) a batch: each opening gets a uid from the sequence, in order
# (WITH ORDINALITY); the insert is fenced; the answer says, per opening, whether its row went in
# and which fence this node holds (if its heartbeat is fresh), from which the verdict follows.
# The held rows are locked in id order (as _SETTLE writes them): no deadlock between the two.
# Both CTEs are materialized: the uids are drawn once, the locks taken once.
_ADMIT = (
    "WITH held AS MATERIALIZED (SELECT t.id, t.fence FROM tasks t WHERE t.id = ANY(?::text[]) "
    f"AND t.lease_owner = ? AND {_FRESH} ORDER BY t.id FOR SHARE OF t), "
    "v AS MATERIALIZED (SELECT nextval('run_uids') AS uid, u.* FROM unnest("
    f"{', '.join(f'?::{t}[]' for t in _TYPES)}, ?::bigint[]) WITH ORDINALITY "
    f"AS u({', '.join(_GIVEN)}, want_fence, ordinal)), "
    f"ins AS (INSERT INTO runs ({', '.join(_RUN_INSERT_COLUMNS)}) "
    f"SELECT {', '.join('v.' + c for c in _RUN_INSERT_COLUMNS)} "
    "FROM v LEFT JOIN held h ON h.id = v.task_id WHERE "
    "(v.want_fence IS NULL AND EXISTS (SELECT 1 FROM tasks t WHERE t.id = v.task_id)) "
    "OR h.fence = v.want_fence ON CONFLICT DO NOTHING RETURNING uid) "
    "SELECT v.ordinal, v.uid, ins.uid IS NOT NULL, h.fence FROM v "
    "LEFT JOIN held h ON h.id = v.task_id LEFT JOIN ins ON ins.uid = v.uid ORDER BY v.ordinal"
)
