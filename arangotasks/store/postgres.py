"""The PostgreSQL store: one psycopg 3 ``AsyncConnection`` guarded by a lock."""

import asyncio
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from arangotasks.errors import StoreUnavailableError
from arangotasks.store.runs import RunsSQLStore
from arangotasks.store.schema import POSTGRES, Result, Stmt

# Conditions of the server or the network rather than of a statement. A read-only transaction
# (hot standby, default_transaction_read_only) is PG's analogue of SQLite's read-only file.
_UNAVAILABLE: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    pg_errors.ReadOnlySqlTransaction,
)


def _pg_sql(sql: str) -> str:
    # The shared SQL uses qmark placeholders and contains no literal "?" or "%".
    return sql.replace("?", "%s")


class PostgresStore(RunsSQLStore):
    """Tasks and runs in a PostgreSQL database (schema created on ``open``).

    Statements run on one connection, one transaction at a time. After a lost connection or
    another server-side unavailability the call raises ``StoreUnavailableError`` and the next
    call connects again.

    :param dsn: a libpq connection string or ``postgresql://`` URL.
    :param connect_timeout: seconds to wait for a new connection.
    """

    def __init__(self, dsn: str, *, connect_timeout: float = 10.0):
        super().__init__(POSTGRES)
        self._dsn = dsn
        self._connect_timeout = connect_timeout
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()
        self._closed = True

    async def open(self) -> None:
        self._closed = False
        await self._create_schema()
        await self._add_run_columns()

    async def close(self) -> None:
        self._closed = True
        async with self._lock:
            await self._disconnect()

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(
                self._dsn, autocommit=False, connect_timeout=max(1, round(self._connect_timeout))
            )
        return self._conn

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    async def _execute(self, stmts: Sequence[Stmt], *, write: bool) -> list[Result]:
        async with self._lock:
            if self._closed:
                raise StoreUnavailableError("the store is closed", "closed")
            try:
                conn = await self._connection()
                results = []
                async with conn.cursor() as cursor:
                    for stmt in stmts:
                        results.append(await self._run(cursor, stmt))
                await conn.commit()
                return results
            except _UNAVAILABLE as exc:
                await self._disconnect()
                reason = (
                    "read-only"
                    if isinstance(exc, pg_errors.ReadOnlySqlTransaction)
                    else ("database unreachable")
                )
                raise StoreUnavailableError(f"PostgreSQL: {exc}", reason) from exc
            except BaseException:
                await self._rollback()
                raise

    @staticmethod
    async def _run(cursor: psycopg.AsyncCursor[Any], stmt: Stmt) -> Result:
        sql = _pg_sql(stmt.sql)
        if stmt.many is not None:
            await cursor.executemany(sql, stmt.many)
        else:
            await cursor.execute(sql, stmt.params)
        rows = await cursor.fetchall() if stmt.fetch else []
        return Result(rows, cursor.rowcount)

    async def _rollback(self) -> None:
        if self._conn is None:
            return
        try:
            await self._conn.rollback()
        except (psycopg.Error, asyncio.CancelledError):
            # Interrupted mid-statement (e.g. cancelled): the connection state is unknown.
            await self._disconnect()
