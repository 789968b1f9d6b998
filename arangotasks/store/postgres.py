"""The PostgreSQL store: one psycopg 3 ``AsyncConnection`` guarded by a lock."""

import asyncio
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.pq import TransactionStatus

from arangotasks.errors import StoreUnavailableError
from arangotasks.store.cluster_rows import ClusterRows
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


# A write commits only if the server reaches the COMMIT this long before the caller's deadline:
# a transaction whose messages sat in a hung server's socket buffer is then rolled back when
# the server resumes, instead of being applied after the caller was told it failed.
_COMMIT_MARGIN = 0.5
# Raises at run time (a volatile call cast to int), not at plan time like 1/0 would.
_COMMIT_GUARD = (
    "SELECT CASE WHEN clock_timestamp() - transaction_timestamp() > interval '{:.3f} seconds' "
    "THEN pg_catalog.set_config('arangotasks.commit', 'commit deadline passed', true)::int END;"
    " COMMIT"
)


class PostgresStore(RunsSQLStore, ClusterRows):
    """Tasks and runs in a PostgreSQL database (schema created on ``open``).

    Statements run on one connection, one transaction at a time. After a lost connection or
    another server-side unavailability the call raises ``StoreUnavailableError`` and the next
    call connects again. Every call, the wait for the connection included, is bounded by
    ``operation_timeout``: a hung server gives ``StoreUnavailableError`` ("timed out"), the
    connection is dropped, and the write is never applied later (see ``_COMMIT_GUARD``).

    :param dsn: a libpq connection string or ``postgresql://`` URL.
    :param connect_timeout: seconds to wait for a new connection.
    :param operation_timeout: seconds one call may take, waiting for the connection included.
    :param statement_timeout: the server's ``statement_timeout`` (seconds; 0 = none).
    :param keepalive_idle: seconds of silence before TCP keepalives probe the server.
    :param idle_in_transaction_timeout: the server's ``idle_in_transaction_session_timeout``
        (seconds; 0 = none): a node paused inside a transaction loses its session, and the row
        locks it held (a claim's), instead of holding them for the whole pause.

    Several servers (nodes) may use one database at once: see ``ClusterRows`` and
    ``arangotasks/claims.py``.
    """

    def __init__(
        self,
        dsn: str,
        *,
        connect_timeout: float = 10.0,
        operation_timeout: float = 10.0,
        statement_timeout: float = 0.0,
        keepalive_idle: float = 10.0,
        idle_in_transaction_timeout: float = 0.0,
    ):
        super().__init__(POSTGRES)
        self._dsn = dsn
        self._connect_timeout = connect_timeout
        self._operation_timeout = operation_timeout
        self._statement_timeout = statement_timeout
        self._keepalive_idle = keepalive_idle
        self._idle_in_transaction_timeout = idle_in_transaction_timeout
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()
        self._closed = True

    @property
    def dsn(self) -> str:
        """The connection string (other connections of this node: LISTEN)."""
        return self._dsn

    async def open(self) -> None:
        self._closed = False
        await self._create_schema()
        await self._add_run_columns()

    async def close(self) -> None:
        self._closed = True
        try:
            async with asyncio.timeout(self._operation_timeout):
                await self._lock.acquire()
        except TimeoutError:
            pass  # a call is stuck on a hung server: its connection is dropped below anyway
        else:
            self._lock.release()
        await self._disconnect()

    async def _connect(self, **extra: Any) -> psycopg.AsyncConnection[Any]:
        idle = max(1, round(self._keepalive_idle))
        options = {
            "connect_timeout": max(1, round(self._connect_timeout)),
            # A dead peer or network is noticed within about idle + 3 * interval seconds.
            "keepalives": 1,
            "keepalives_idle": idle,
            "keepalives_interval": max(1, idle // 3),
            "keepalives_count": 3,
            **extra,
        }
        server = []
        if self._statement_timeout > 0:
            server.append(f"-c statement_timeout={round(self._statement_timeout * 1000)}")
        if self._idle_in_transaction_timeout > 0:
            milliseconds = round(self._idle_in_transaction_timeout * 1000)
            server.append(f"-c idle_in_transaction_session_timeout={milliseconds}")
        if server:
            options["options"] = " ".join(server)
        try:
            async with asyncio.timeout(self._connect_timeout + 1):
                return await psycopg.AsyncConnection.connect(self._dsn, **options)
        except TimeoutError:
            raise psycopg.OperationalError(
                f"connection not made within {self._connect_timeout:g} s"
            ) from None

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = await self._connect(autocommit=False)
        return self._conn

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()  # no round trip: safe on a hung server

    async def _execute(self, stmts: Sequence[Stmt], *, write: bool) -> list[Result]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._operation_timeout
        try:
            async with asyncio.timeout_at(deadline):
                await self._lock.acquire()
        except TimeoutError:
            raise self._timed_out("waiting for an earlier call") from None
        try:
            if self._closed:
                raise StoreUnavailableError("the store is closed", "closed")
            try:
                async with asyncio.timeout_at(deadline):
                    return await self._transaction(stmts, write, deadline)
            except TimeoutError:
                # The server may be hung with our messages in its buffer: drop the connection
                # (the server rolls back when it sees it closed; the commit guard covers a
                # COMMIT that was sent already).
                await self._disconnect()
                raise self._timed_out("in a transaction") from None
            except pg_errors.InvalidTextRepresentation as exc:
                if "commit deadline passed" not in str(exc):
                    await self._rollback()
                    raise
                await self._disconnect()
                raise self._timed_out("before the commit") from exc
            except _UNAVAILABLE as exc:
                await self._disconnect()
                reason = (
                    "read-only"
                    if isinstance(exc, pg_errors.ReadOnlySqlTransaction)
                    else "database unreachable"
                )
                raise StoreUnavailableError(f"PostgreSQL: {exc}", reason) from exc
            except BaseException:
                await self._rollback()
                raise
        finally:
            self._lock.release()

    async def _transaction(
        self, stmts: Sequence[Stmt], write: bool, deadline: float
    ) -> list[Result]:
        conn = await self._connection()
        loop = asyncio.get_running_loop()
        results = []
        async with conn.cursor() as cursor:
            # The server's transaction_timestamp() is taken no earlier than this.
            budget = deadline - loop.time() - _COMMIT_MARGIN
            for stmt in stmts:
                results.append(await self._run(cursor, stmt))
            if write:
                # Guard and COMMIT in one message: no extra round trip.
                await cursor.execute(_COMMIT_GUARD.format(max(budget, 0.0)).encode())
        if conn.pgconn.transaction_status != TransactionStatus.IDLE:
            await conn.commit()  # a read (or a write whose batch was empty)
        return results

    def _timed_out(self, where: str) -> StoreUnavailableError:
        return StoreUnavailableError(
            f"PostgreSQL: no answer within {self._operation_timeout:g} s ({where})", "timed out"
        )

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
