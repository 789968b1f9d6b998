"""The SQLite store: stdlib sqlite3 on one dedicated thread."""

import asyncio
import contextlib
import errno
import functools
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from arangotasks import datadir
from arangotasks.errors import StoreUnavailableError
from arangotasks.store.runs import RunsSQLStore, next_batch
from arangotasks.store.schema import SQLITE, Result, Stmt

T = TypeVar("T")
log = logging.getLogger(__name__)
# The writer's own checkpoints only when the background ones fall this far behind (pages).
_BACKSTOP_CHECKPOINT_PAGES = 10_000
# A checkpointed WAL is cut back to this size, so that a burst of big runs does not keep it large.
_JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
# Free pages given back to the file system per step after pruning (adapts to PRUNE_SLICE).
# A step costs more per page the longer the free list is (SQLite searches it for each page it
# truncates: ~50 us a page with 90,000 free pages), so steps stay small and many.
_VACUUM_FIRST_PAGES = 64
_VACUUM_MAX_PAGES = 1024  # 4 MiB of 4 KiB pages
_AUTO_VACUUM_INCREMENTAL = 2


class SQLiteStore(RunsSQLStore):
    """Tasks and runs in one SQLite file (WAL journal, ``synchronous=NORMAL``).

    Every call runs on a single worker thread that owns the connection. After an error that
    makes the database unusable (read-only, disk full, I/O error, locked) the connection is
    closed and the next call opens a new one, so the store recovers once the fault clears.

    WAL checkpoints (which copy the log into the file and fsync it, milliseconds each) run on a
    second thread with its own connection every ``checkpoint_interval`` seconds, so that a
    commit never waits for one; SQLite's checkpoints in the committing call are a backstop.

    The file uses ``auto_vacuum = INCREMENTAL``: after pruning, the freed pages are given back
    to the file system in short steps (``PRAGMA incremental_vacuum``). A store made before that
    is converted once when it opens (a ``VACUUM``, which is atomic: a failure leaves the file as
    it was), when the disk has room for a copy of it.

    :param path: the database file; its directory is created when missing.
    :param busy_timeout: seconds to wait for a lock held by another connection.
    :param checkpoint_interval: seconds between background checkpoints; 0 leaves them to SQLite.
    """

    def __init__(
        self, path: str | Path, *, busy_timeout: float = 5.0, checkpoint_interval: float = 1.0
    ):
        super().__init__(SQLITE)
        self.path = Path(path)
        self._busy_timeout = busy_timeout
        self._checkpoint_interval = checkpoint_interval
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None  # touched only on the worker thread
        self._checkpointer: ThreadPoolExecutor | None = None
        self._checkpoint_conn: sqlite3.Connection | None = None  # only on the checkpointer
        self._checkpoint_loop: asyncio.Task[None] | None = None
        # Test hook (see _set_read_only): open new connections with mode=ro. Root ignores file
        # modes, so this is how tests get the SQLITE_READONLY a non-writable file gives others.
        self._read_only = False

    async def open(self) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="arangotasks-sqlite")
        await self._create_schema()
        await self._call(self._convert_to_incremental_vacuum)
        await self._add_run_columns()
        if self._checkpoint_interval > 0 and self._checkpoint_loop is None:
            self._checkpointer = ThreadPoolExecutor(1, thread_name_prefix="arangotasks-ckpt")
            self._checkpoint_loop = asyncio.create_task(self._checkpoints(self._checkpointer))

    async def close(self) -> None:
        loop_task, self._checkpoint_loop = self._checkpoint_loop, None
        checkpointer, self._checkpointer = self._checkpointer, None
        if loop_task is not None and checkpointer is not None:
            loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop_task
            try:
                await asyncio.get_running_loop().run_in_executor(
                    checkpointer, self._end_checkpoints
                )
            finally:
                checkpointer.shutdown(wait=True)
        executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(executor, self._disconnect)
        finally:
            # The close job was the last one queued, so this does not block.
            executor.shutdown(wait=True)

    async def _checkpoints(self, checkpointer: ThreadPoolExecutor) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._checkpoint_interval)
            await loop.run_in_executor(checkpointer, self._checkpoint)

    # --- on the checkpointer thread --------------------------------------------------------
    def _checkpoint(self) -> None:
        """A PASSIVE checkpoint: copies what no reader needs, never blocks the writer."""
        if self._read_only:
            self._end_checkpoints()
            return
        try:
            if self._checkpoint_conn is None:
                if not self.path.exists():
                    return
                self._checkpoint_conn = sqlite3.connect(self.path, isolation_level=None)
            self._checkpoint_conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:
            # A full disk or a read-only file: the writer reports those; try again later.
            log.debug("background checkpoint failed: %s", exc)
            self._end_checkpoints()

    def _end_checkpoints(self) -> None:
        conn, self._checkpoint_conn = self._checkpoint_conn, None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    # --- giving space back ---------------------------------------------------------------------
    async def prune_runs(self, keep_per_task: int, older_than: float) -> int:
        removed = await super().prune_runs(keep_per_task, older_than)
        if removed:
            await self._reclaim_space()
        return removed

    async def _reclaim_space(self) -> None:
        """``PRAGMA incremental_vacuum`` in steps of about ``PRUNE_SLICE`` seconds each."""
        pages, left, unchecked = _VACUUM_FIRST_PAGES, -1, 0
        while True:
            started = time.monotonic()
            step = functools.partial(self._vacuum_step, pages)
            before, left = left, await self._call(step)
            elapsed = time.monotonic() - started
            if left == 0 or left == before:  # done, or the file is not incremental
                return
            # Each step writes the pages it moves to the WAL: checkpoint on the checkpointer's
            # thread before the writer's own backstop checkpoint (a stall of 300 ms) would.
            unchecked += pages
            if unchecked >= _BACKSTOP_CHECKPOINT_PAGES // 2 and self._checkpointer is not None:
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(self._checkpointer, self._checkpoint)
                unchecked = 0
            pages = next_batch(pages, elapsed, _VACUUM_MAX_PAGES)
            await asyncio.sleep(0)  # statements queued meanwhile go first

    def _vacuum_step(self, pages: int) -> int:
        """Give up to ``pages`` free pages back; the number of free pages left."""
        conn = self._connect()
        try:
            # executescript steps the pragma to its end (execute would free a single page).
            conn.executescript(f"PRAGMA incremental_vacuum({int(pages)});")
            return int(conn.execute("PRAGMA freelist_count").fetchone()[0])
        except sqlite3.Error as exc:
            if not _unavailable(exc):
                raise
            self._disconnect()
            raise StoreUnavailableError(f"{self.path}: {exc}") from exc

    def _convert_to_incremental_vacuum(self) -> None:
        """One-time conversion of a store made before ``auto_vacuum = INCREMENTAL``."""
        if self._read_only:
            return
        conn = self._connect()
        if conn.execute("PRAGMA auto_vacuum").fetchone()[0] == _AUTO_VACUUM_INCREMENTAL:
            return
        size = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*"))
        if shutil.disk_usage(self.path.parent).free < 2 * size + (64 << 20):
            log.warning(
                "%s: not enough free disk space to convert it to incremental vacuum (%d MB); "
                "it keeps the space of pruned runs until a later start converts it",
                self.path,
                size >> 20,
            )
            return
        log.warning(
            "%s: converting to incremental vacuum, once (rewrites the file, %d MB)",
            self.path,
            size >> 20,
        )
        try:
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            conn.execute("VACUUM")
        except sqlite3.Error as exc:  # VACUUM is atomic: the file is as it was
            log.warning("%s: conversion to incremental vacuum failed: %s", self.path, exc)

    async def _set_read_only(self, read_only: bool) -> None:
        """Test hook: as if the file became read-only (and the store reconnected), or writable.

        Making it writable again keeps the current connection, which stays read-only, like a
        connection opened while the file was not writable."""
        self._read_only = read_only
        if read_only:
            await self._call(self._disconnect)

    async def _execute(self, stmts: Sequence[Stmt], *, write: bool) -> list[Result]:
        return await self._call(lambda: self._transaction(stmts, write))

    async def _call(self, fn: Callable[[], T]) -> T:
        if self._executor is None:
            raise StoreUnavailableError("the store is closed", "closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    # --- on the worker thread ------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._make_private()
        except OSError as exc:
            raise StoreUnavailableError(f"cannot create {self.path}: {exc}", _reason(exc)) from exc
        uri = f"{self.path.absolute().as_uri()}?mode={'ro' if self._read_only else 'rwc'}"
        try:
            # isolation_level=None: transactions are begun and ended explicitly below.
            conn = sqlite3.connect(uri, uri=True, timeout=self._busy_timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"cannot open {self.path}: {exc}", _reason(exc)) from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
            if not self._read_only:
                # Takes effect in a new (empty) file only; older ones are converted at open.
                conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute(f"PRAGMA journal_size_limit = {_JOURNAL_SIZE_LIMIT}")
            # With WAL, NORMAL loses nothing on a process crash, only possibly on power loss.
            conn.execute("PRAGMA synchronous = NORMAL")
            # Builds of SQLite with SECURE_DELETE (Debian's, so Python's here) zero every page a
            # delete frees and write it through the WAL: pruning a run of 1 MiB wrote 1 MiB
            # (and stalled the store for 100s of ms). FAST still zeroes what is deleted in the
            # b-tree pages (small rows, secrets: no extra I/O); the freed overflow pages of big
            # runs are given back to the file system by the incremental vacuum after pruning.
            conn.execute("PRAGMA secure_delete = FAST")
            if self._checkpoint_interval > 0:
                conn.execute(f"PRAGMA wal_autocheckpoint = {_BACKSTOP_CHECKPOINT_PAGES}")
        except sqlite3.Error as exc:
            conn.close()
            raise StoreUnavailableError(f"cannot open {self.path}: {exc}", _reason(exc)) from exc
        self._conn = conn
        return conn

    def _make_private(self) -> None:
        """The database file is created 0600 here rather than by SQLite (which follows the
        umask); SQLite gives its -wal and -shm files the mode of the database file. Files made
        by an earlier version lose their group and other permissions."""
        if not self._read_only:
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
        for suffix in ("", "-wal", "-shm"):
            datadir.tighten(Path(f"{self.path}{suffix}"))

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _transaction(self, stmts: Sequence[Stmt], write: bool) -> list[Result]:
        retry = self._conn is not None
        while True:
            conn = self._connect()
            try:
                # IMMEDIATE takes the write lock up front: no deadlock on a read-to-write upgrade.
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                results = [self._run(conn, stmt) for stmt in stmts]
                conn.execute("COMMIT")
                return results
            except BaseException as exc:
                self._rollback(conn)
                if not _unavailable(exc):
                    raise
                self._disconnect()
                # A connection opened while the file was read-only stays read-only after the
                # file becomes writable: retry once on a new connection before giving up.
                if not (retry and _error_code(exc) == sqlite3.SQLITE_READONLY):
                    raise StoreUnavailableError(f"{self.path}: {exc}", _reason(exc)) from exc
                retry = False

    def _rollback(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            try:
                conn.rollback()
            except sqlite3.Error:
                self._disconnect()

    @staticmethod
    def _run(conn: sqlite3.Connection, stmt: Stmt) -> Result:
        if stmt.many is not None:
            cursor = conn.executemany(stmt.sql, stmt.many)
        else:
            cursor = conn.execute(stmt.sql, stmt.params)
        rows = cursor.fetchall() if stmt.fetch else []
        return Result(rows, cursor.rowcount)


def _error_code(exc: BaseException) -> int:
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF  # the primary code of an extended one


_REASONS = {
    sqlite3.SQLITE_READONLY: "read-only",
    sqlite3.SQLITE_FULL: "disk full",
    sqlite3.SQLITE_IOERR: "I/O error",
    sqlite3.SQLITE_BUSY: "locked",
    sqlite3.SQLITE_LOCKED: "locked",
    sqlite3.SQLITE_CANTOPEN: "cannot open the database",
    sqlite3.SQLITE_CORRUPT: "database file is corrupt",
    sqlite3.SQLITE_NOTADB: "database file is corrupt",
}


def _reason(exc: BaseException) -> str:
    """What a client is told (the message names the file: it stays in the log)."""
    if isinstance(exc, OSError):
        return "disk full" if exc.errno == errno.ENOSPC else "cannot open the database"
    return _REASONS.get(_error_code(exc), "unavailable")


def _unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` is a condition of the database (not a bug in a statement).

    OperationalError covers read-only, disk full, I/O errors, locked and cannot-open; a bare
    DatabaseError is raised for a corrupt file or one that is not a database. Integrity and
    programming errors are bugs and stay as they are.
    """
    return isinstance(exc, sqlite3.OperationalError) or type(exc) is sqlite3.DatabaseError
