"""SQL shared by the SQLite and PostgreSQL stores.

Every statement is written once, with ``?`` placeholders; the PostgreSQL backend rewrites them to
``%s``. No statement may therefore contain a literal ``?`` or ``%``. ``SQLStore`` implements the
whole ``TaskStore`` contract on top of one primitive, ``_execute``: run a batch of statements in
one transaction.
"""

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from arangotasks.errors import DuplicateTaskError
from arangotasks.models import (
    Run,
    RunQuery,
    RunStatus,
    Task,
)
from arangotasks.store.rows import (  # the rows' columns and conversions (re-exported)
    OPTION_COLUMNS,
    RUN_COLUMNS,
    RUN_SELECT,
    TASK_COLUMNS,
    UNFINISHED,
    Row,
    row_to_run,
    row_to_task,
    run_to_row,
    task_to_row,
)
from arangotasks.store.secret_rows import SecretRows, secret_schema

__all__ = [
    "OPTION_COLUMNS",
    "RUN_COLUMNS",
    "RUN_SELECT",
    "TASK_COLUMNS",
    "UNFINISHED",
    "Row",
    "row_to_run",
    "row_to_task",
    "run_to_row",
    "task_to_row",
]

# Bounds the number of bound parameters of one statement (SQLite's limit is 32766, PG's 65535).
_IN_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between the backends' DDL."""

    real: str  # an 8-byte float column
    bigint: str  # a 64-bit integer column; SQLite's must be INTEGER to alias the rowid
    seq_column: str  # the column definition of tasks.seq (creation order)
    next_seq: str  # the value inserted into tasks.seq
    schema_prelude: tuple[str, ...] = ()  # runs first in the schema transaction
    runs_columns: str = "SELECT name FROM pragma_table_info('runs')"  # the runs table's columns
    add_column: str = "ALTER TABLE runs ADD COLUMN"  # + " name TYPE"
    add_clause: str = "ADD COLUMN"  # PostgreSQL's may skip a column another server added
    shared: bool = False  # several servers may use the store at once (leases, fences: v3)


SQLITE = Dialect(
    real="REAL",
    bigint="INTEGER",
    seq_column="seq INTEGER NOT NULL",
    # The write transaction is BEGIN IMMEDIATE, so no other writer can take the same number.
    next_seq="(SELECT COALESCE(MAX(seq), 0) + 1 FROM tasks)",
)
POSTGRES = Dialect(
    real="DOUBLE PRECISION",
    bigint="BIGINT",
    seq_column="seq BIGINT GENERATED ALWAYS AS IDENTITY",
    next_seq="DEFAULT",
    # Concurrent CREATE TABLE IF NOT EXISTS can still collide in PG's catalogs; serialise them.
    schema_prelude=("SELECT pg_advisory_xact_lock(727361)",),
    runs_columns=(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_name = 'runs' AND table_schema = current_schema()"
    ),
    add_column="ALTER TABLE runs ADD COLUMN IF NOT EXISTS",
    add_clause="ADD COLUMN IF NOT EXISTS",
    shared=True,
)
# Columns of runs added after the first release: (name, type), added to older stores on open.
ADDED_RUN_COLUMNS = (("requests", "TEXT"),)


def schema_statements(d: Dialect) -> list[str]:
    """Schema version 1 (the first release); ``migrations`` brings it to ``SCHEMA_VERSION``."""
    return [
        *d.schema_prelude,
        f"""CREATE TABLE IF NOT EXISTS tasks (
            id TEXT PRIMARY KEY,
            {d.seq_column},
            name TEXT NOT NULL,
            created {d.real} NOT NULL,
            command TEXT NOT NULL,
            database TEXT NOT NULL,
            owner TEXT NOT NULL,
            period_ms {d.bigint},
            offset_ms {d.bigint} NOT NULL,
            params_json TEXT,
            is_system INTEGER NOT NULL,
            timeout {d.real},
            next_run_at {d.real})""",
        "CREATE INDEX IF NOT EXISTS tasks_seq ON tasks (seq)",
        f"""CREATE TABLE IF NOT EXISTS runs (
            uid {d.bigint} PRIMARY KEY,
            task_id TEXT NOT NULL,
            task_name TEXT NOT NULL,
            database TEXT NOT NULL,
            owner TEXT NOT NULL,
            trigger TEXT NOT NULL,
            status TEXT NOT NULL,
            scheduled_at {d.real} NOT NULL,
            enqueued_at {d.real} NOT NULL,
            started_at {d.real},
            finished_at {d.real},
            result_json TEXT,
            output TEXT NOT NULL,
            error TEXT,
            requests TEXT)""",
        "CREATE INDEX IF NOT EXISTS runs_task_uid ON runs (task_id, uid)",
        "CREATE INDEX IF NOT EXISTS runs_status ON runs (status)",
        # run_stats counts (failed) runs per task from this index alone (SQLite adds the uid).
        "CREATE INDEX IF NOT EXISTS runs_task_status ON runs (task_id, status)",
        "CREATE INDEX IF NOT EXISTS runs_started_at ON runs (started_at)",
        # Pruning by age finds its batches from this index.
        "CREATE INDEX IF NOT EXISTS runs_finished_at ON runs (finished_at)",
        # max_run_uid must not go down when pruning removes the newest runs: uids are never reused.
        f"CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value {d.bigint} NOT NULL)",
        "INSERT INTO store_meta (key, value) VALUES ('max_run_uid', 0) "
        "ON CONFLICT (key) DO NOTHING",
        *secret_schema(d.real),
    ]


def _in(column: str, values: Iterable[str]) -> tuple[str, list[Any]]:
    items = sorted(values)
    if not items:
        return "1 = 0", []  # an empty filter set matches nothing
    return f"{column} IN ({', '.join('?' * len(items))})", list(items)


def runs_filter(q: RunQuery) -> tuple[list[str], list[Any]]:
    """The WHERE conditions of ``q`` except ``from_uid``, and their parameters."""
    conditions: list[str] = []
    params: list[Any] = []
    if q.statuses is not None:
        sql, values = _in("status", (s.value for s in q.statuses))
        conditions.append(sql)
        params += values
    if q.task_ids is not None:
        sql, values = _in("task_id", q.task_ids)
        conditions.append(sql)
        params += values
    simple: list[tuple[str, Any]] = [
        ("trigger = ?", None if q.trigger is None else q.trigger.value),
        ("started_at < ?", q.before_started_at),
        ("started_at > ?", q.after_started_at),
        ("owner = ?", q.owner),
        ("database = ?", q.database),
    ]
    for sql, value in simple:
        if value is not None:
            conditions.append(sql)
            params.append(value)
    return conditions, params


def where_clause(conditions: Sequence[str]) -> str:
    return f" WHERE {' AND '.join(conditions)}" if conditions else ""


@dataclass(frozen=True, slots=True)
class Stmt:
    """One statement of a batch: ``many`` rows go through executemany, else ``params``."""

    sql: str
    params: Sequence[Any] = ()
    many: Sequence[Row] | None = None
    fetch: bool = False


@dataclass(frozen=True, slots=True)
class Result:
    rows: list[Row]
    rowcount: int


_INSERT_TASK = (
    f"INSERT INTO tasks ({', '.join(TASK_COLUMNS)}, seq) VALUES "
    f"({', '.join('?' * len(TASK_COLUMNS))}, {{next_seq}}) ON CONFLICT (id) DO NOTHING"
)
_UPSERT_RUN = (
    f"INSERT INTO runs ({RUN_SELECT}) VALUES ({', '.join('?' * len(RUN_COLUMNS))}) "
    f"ON CONFLICT (uid) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in RUN_COLUMNS[1:])
)
# The latest run comes without its result and output (NULL and '[]'): a task list with details
# must not read a big result of every task.
_STATS_COLUMNS = {"result_json": "NULL", "output": "'[]'"}
_RUN_STATS = f"""SELECT s.task_id, s.n, s.failed, {
    ", ".join(_STATS_COLUMNS.get(c, "r." + c) for c in RUN_COLUMNS)
}
    FROM (SELECT task_id, COUNT(*) AS n,
                 COUNT(CASE WHEN status = '{RunStatus.FAILED.value}' THEN 1 END) AS failed,
                 MAX(uid) AS last_uid
          FROM runs WHERE {{task_filter}} GROUP BY task_id) AS s
    JOIN runs AS r ON r.uid = s.last_uid"""


class SQLStore(SecretRows, ABC):
    """The ``TaskStore`` methods for a backend that provides ``open``, ``close``, ``_execute``."""

    def __init__(self, dialect: Dialect):
        self._dialect = dialect
        self._insert_task = _INSERT_TASK.format(next_seq=dialect.next_seq)

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def _execute(self, stmts: Sequence[Stmt], *, write: bool) -> list[Result]:
        """Run ``stmts`` in one transaction (committed, or rolled back on error) and return one
        result per statement; raise ``StoreUnavailableError`` when the database is unusable."""

    def _schema(self) -> list[Stmt]:
        return [Stmt(sql) for sql in schema_statements(self._dialect)]

    async def _add_run_columns(self) -> None:
        """Add the columns of runs that a store made by an older version lacks."""
        result = await self._one(Stmt(self._dialect.runs_columns, fetch=True), write=False)
        present = {str(row[0]) for row in result.rows}
        missing = [(name, kind) for name, kind in ADDED_RUN_COLUMNS if name not in present]
        if missing:
            stmts = [Stmt(f"{self._dialect.add_column} {name} {kind}") for name, kind in missing]
            await self._execute(stmts, write=True)

    async def _create_schema(self) -> None:
        """Create the first version's tables if missing, then migrate to ``SCHEMA_VERSION``, one
        transaction per version (a store opened by an older release is upgraded in place)."""
        await self._execute(self._schema(), write=True)
        sql = "SELECT value FROM store_meta WHERE key = 'schema_version'"
        rows = (await self._one(Stmt(sql, fetch=True), write=False)).rows
        version = int(rows[0][0]) if rows else 1
        from arangotasks.store.migrations import migrations  # it builds on this module

        for target, statements in sorted(migrations(self._dialect).items()):
            if target <= version:
                continue
            stamp = Stmt(
                "INSERT INTO store_meta (key, value) VALUES ('schema_version', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (target,),
            )
            prelude = [Stmt(sql) for sql in self._dialect.schema_prelude]
            await self._execute([*prelude, *(Stmt(sql) for sql in statements), stamp], write=True)

    async def _one(self, stmt: Stmt, *, write: bool) -> Result:
        return (await self._execute([stmt], write=write))[0]

    # --- tasks -------------------------------------------------------------------------
    async def insert_task(self, task: Task) -> None:
        result = await self._one(Stmt(self._insert_task, task_to_row(task)), write=True)
        if result.rowcount == 0:
            raise DuplicateTaskError(task.id)

    async def insert_tasks(self, tasks: Sequence[Task]) -> list[bool]:
        if not tasks:
            return []
        stmts = [Stmt(self._insert_task, task_to_row(task)) for task in tasks]
        return [result.rowcount > 0 for result in await self._execute(stmts, write=True)]

    async def update_task(self, task: Task) -> bool:
        columns = [c for c in TASK_COLUMNS if c != "id"]
        sql = f"UPDATE tasks SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?"
        row = task_to_row(task)
        result = await self._one(Stmt(sql, (*row[1:], row[0])), write=True)
        return result.rowcount > 0

    async def delete_task(self, task_id: str) -> bool:
        result = await self._one(Stmt("DELETE FROM tasks WHERE id = ?", (task_id,)), write=True)
        return result.rowcount > 0

    async def delete_tasks(self, task_ids: Sequence[str]) -> None:
        if task_ids:
            rows = [(task_id,) for task_id in task_ids]
            await self._execute([Stmt("DELETE FROM tasks WHERE id = ?", many=rows)], write=True)

    async def load_tasks(self) -> list[Task]:
        sql = f"SELECT {', '.join(TASK_COLUMNS)} FROM tasks ORDER BY seq"
        result = await self._one(Stmt(sql, fetch=True), write=False)
        return [row_to_task(row) for row in result.rows]

    async def set_next_runs(self, updates: Sequence[tuple[str, float | None]]) -> None:
        if not updates:
            return
        rows = [(next_run_at, task_id) for task_id, next_run_at in updates]
        sql = "UPDATE tasks SET next_run_at = ? WHERE id = ?"
        await self._execute([Stmt(sql, many=rows)], write=True)

    # --- runs --------------------------------------------------------------------------
    async def max_run_uid(self) -> int:
        stored, meta = await self._execute(
            [
                Stmt("SELECT MAX(uid) FROM runs", fetch=True),
                Stmt("SELECT value FROM store_meta WHERE key = 'max_run_uid'", fetch=True),
            ],
            write=False,
        )
        return int(max(stored.rows[0][0] or 0, *(row[0] for row in meta.rows)))

    async def save_runs(self, runs: Sequence[Run]) -> None:
        if not runs:
            return
        top = max(run.uid for run in runs)
        await self._execute(
            [
                Stmt(_UPSERT_RUN, many=[run_to_row(run) for run in runs]),
                Stmt(
                    "UPDATE store_meta SET value = ? WHERE key = 'max_run_uid' AND value < ?",
                    (top, top),
                ),
            ],
            write=True,
        )

    async def get_run(self, uid: int) -> Run | None:
        sql = f"SELECT {RUN_SELECT} FROM runs WHERE uid = ?"
        result = await self._one(Stmt(sql, (uid,), fetch=True), write=False)
        return row_to_run(result.rows[0]) if result.rows else None

    async def query_runs(self, query: RunQuery) -> tuple[list[Run], int, int | None]:
        conditions, params = runs_filter(query)
        count = Stmt(f"SELECT COUNT(*) FROM runs{where_clause(conditions)}", params, fetch=True)
        if query.from_uid is not None:
            conditions = [*conditions, "uid >= ?" if query.reverse else "uid <= ?"]
            params = [*params, query.from_uid]
        # One row beyond the page: its uid starts the next page (even for limit 0).
        limit = max(query.limit, 0)
        sql = (
            f"SELECT {RUN_SELECT} FROM runs{where_clause(conditions)} "
            f"ORDER BY uid {'ASC' if query.reverse else 'DESC'} LIMIT ?"
        )
        counted, page = await self._execute(
            [count, Stmt(sql, [*params, limit + 1], fetch=True)], write=False
        )
        next_uid = int(page.rows[limit][0]) if len(page.rows) > limit else None
        return [row_to_run(row) for row in page.rows[:limit]], int(counted.rows[0][0]), next_uid

    async def fail_unfinished_runs(self, finished_at: float, error: dict[str, str]) -> int:
        sql = (
            f"UPDATE runs SET status = '{RunStatus.FAILED.value}', finished_at = ?, error = ? "
            f"WHERE status IN ({UNFINISHED})"
        )
        result = await self._one(Stmt(sql, (finished_at, json.dumps(error))), write=True)
        return result.rowcount

    async def run_stats(self, task_ids: Sequence[str]) -> dict[str, tuple[int, int, Run | None]]:
        ids = sorted(set(task_ids))
        stmts = []
        for start in range(0, len(ids), _IN_CHUNK):
            task_filter, params = _in("task_id", ids[start : start + _IN_CHUNK])
            sql = _RUN_STATS.format(task_filter=task_filter)
            stmts.append(Stmt(sql, params, fetch=True))
        stats: dict[str, tuple[int, int, Run | None]] = dict.fromkeys(ids, (0, 0, None))
        for result in await self._execute(stmts, write=False) if stmts else []:
            for row in result.rows:
                stats[row[0]] = (int(row[1]), int(row[2]), row_to_run(row[3:]))
        return stats
