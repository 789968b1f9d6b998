"""Stores and big runs: pages bounded in bytes, pruning in batches, SQLite giving space back.

The store fixtures (SQLite and PostgreSQL) are test_store's, imported: their names shadow.
"""
# ruff: noqa: F811

import dataclasses
import json
import sqlite3
from pathlib import Path

import pytest

from arangotasks.models import RunQuery
from arangotasks.store import runs as runs_module
from arangotasks.store.schema import Result, SQLStore, Stmt
from arangotasks.store.sqlite import SQLiteStore
from tests.unit.test_store import F, P, make_store, pg_schema_dsn, run, store, uids  # noqa: F401


async def _page_through(store: SQLStore, query: RunQuery, max_bytes: int) -> list[int]:
    seen: list[int] = []
    while True:
        page, _, next_uid = await store.query_runs_page(query, max_bytes)
        assert page or next_uid is None
        seen += [stored.run.uid for stored in page]
        if next_uid is None:
            return seen
        query = dataclasses.replace(query, from_uid=next_uid)


async def test_pages_match_query_runs_without_a_byte_limit(store: SQLStore) -> None:
    runs = [
        run(
            uid,
            "a" if uid % 3 else "b",
            status=F if uid % 4 == 0 else run(1).status,
            result_json=json.dumps("r" * uid),
            output=[f"line {uid}"],
            error={"type": "exception", "name": "E", "message": "m", "stack": ""}
            if uid % 4 == 0
            else None,
        )
        for uid in range(1, 46)
    ]
    await store.save_runs(runs)
    for query in [
        RunQuery(limit=0),
        RunQuery(limit=1),
        RunQuery(limit=20),
        RunQuery(limit=21),
        RunQuery(limit=100),
        RunQuery(limit=7, from_uid=30),
        RunQuery(limit=25, reverse=True),
        RunQuery(limit=30, reverse=True, from_uid=10),
        RunQuery(limit=30, task_ids=frozenset("b")),
    ]:
        expected, total, next_uid = await store.query_runs(query)
        page, page_total, page_next = await store.query_runs_page(query, 1 << 30)
        assert [s.run.uid for s in page] == uids(expected), query
        assert (page_total, page_next) == (total, next_uid), query
        for stored, full in zip(page, expected, strict=True):
            assert stored.run.result_json == full.result_json
            assert json.loads(stored.output_json) == full.output
            assert (None if stored.error_json is None else json.loads(stored.error_json)) == (
                full.error
            )


async def test_pages_stop_at_the_byte_limit_and_page_on(store: SQLStore) -> None:
    await store.save_runs([run(uid, result_json=json.dumps("x" * 1000)) for uid in range(1, 61)])
    page, total, next_uid = await store.query_runs_page(RunQuery(limit=50), 5000)
    assert total == 60 and 1 <= len(page) < 5 and next_uid == page[-1].run.uid - 1
    assert await _page_through(store, RunQuery(limit=50), 5000) == list(range(60, 0, -1))
    assert await _page_through(store, RunQuery(limit=50, reverse=True), 5000) == list(range(1, 61))
    # One run at least, whatever its size.
    page, _, next_uid = await store.query_runs_page(RunQuery(limit=50), 1)
    assert uids([s.run for s in page]) == [60] and next_uid == 59


async def test_prune_in_small_batches(store: SQLStore) -> None:
    runs = [run(uid, "a") for uid in range(1, 301)] + [run(301, "b")]
    runs[0] = run(1, "a", status=P)  # still running: kept
    await store.save_runs(runs)
    store._prune_batch = 7  # type: ignore[attr-defined]  # far below the work to do
    assert await store.prune_runs(keep_per_task=10, older_than=0) == 289  # 2 to 290
    assert uids((await store.query_runs(RunQuery(limit=100)))[0]) == [301, *range(300, 290, -1), 1]
    assert await store.prune_runs(keep_per_task=10, older_than=1e12) == 11


async def test_big_runs_are_pruned_a_few_bytes_per_transaction(
    store: SQLStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The byte budget of a batch, not only its row count, bounds what a transaction deletes:
    after small rows the row limit is high, and a batch of it over runs of 1 MiB stalled the
    store for 100s of ms."""
    monkeypatch.setattr(runs_module, "PRUNE_BATCH_BYTES", 100_000)
    big = json.dumps("b" * 40_000)  # about 40 kB with its output: two fit in a budget
    await store.save_runs([run(uid, result_json=big) for uid in range(1, 31)])
    store._prune_batch = 1000  # type: ignore[attr-defined]  # as after many small rows
    deleted: list[int] = []
    one = store._one

    async def counting(stmt: Stmt, *, write: bool) -> Result:
        result = await one(stmt, write=write)
        if stmt.sql.lstrip().startswith("DELETE"):
            deleted.append(result.rowcount)
        return result

    monkeypatch.setattr(store, "_one", counting)
    assert await store.prune_runs(keep_per_task=2, older_than=0) == 28
    assert sum(deleted) == 28
    # 2 runs at most per transaction (fewer when a slow batch shrinks the row limit).
    assert max(deleted) == 2 and len([n for n in deleted if n]) >= 14
    assert uids((await store.query_runs(RunQuery()))[0]) == [30, 29]


async def test_sqlite_pruning_does_not_write_what_it_deletes(tmp_path: Path) -> None:
    """A delete frees the pages of a big run without zeroing them through the WAL (builds with
    SECURE_DELETE wrote every freed page): the incremental vacuum gives them back instead."""
    path = tmp_path / "store.sqlite3"
    store = SQLiteStore(path, checkpoint_interval=0)
    await store.open()
    try:
        await store.save_runs([run(1, result_json=json.dumps("b" * 3_000_000)), run(2)])
        with sqlite3.connect(path, isolation_level=None) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert Path(f"{path}-wal").stat().st_size == 0
        assert await store.prune_runs(keep_per_task=1, older_than=0) == 1
        assert Path(f"{path}-wal").stat().st_size < 1_000_000  # not the 3 MB of run 1
        assert _pragma(path, "freelist_count") == 0
    finally:
        await store.close()


def _pragma(path: Path, name: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(f"PRAGMA {name}").fetchone()[0])


async def test_sqlite_gives_the_space_of_pruned_runs_back(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    store = SQLiteStore(path, checkpoint_interval=0)
    await store.open()
    try:
        assert _pragma(path, "auto_vacuum") == 2  # incremental
        big = json.dumps("b" * 100_000)
        await store.save_runs([run(uid, result_json=big) for uid in range(1, 101)])
        pages = _pragma(path, "page_count")
        assert await store.prune_runs(keep_per_task=5, older_than=0) == 95
        assert _pragma(path, "freelist_count") == 0
        assert _pragma(path, "page_count") < pages / 5
    finally:
        await store.close()


async def test_an_older_sqlite_store_is_converted_once(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    store = SQLiteStore(path)
    await store.open()
    await store.save_runs([run(1), run(2)])
    await store.close()
    with sqlite3.connect(path, isolation_level=None) as conn:  # as stores were made before
        conn.execute("PRAGMA auto_vacuum = NONE")
        conn.execute("VACUUM")
    assert _pragma(path, "auto_vacuum") == 0
    store = SQLiteStore(path)
    await store.open()
    try:
        assert _pragma(path, "auto_vacuum") == 2
        assert uids((await store.query_runs(RunQuery()))[0]) == [2, 1]
    finally:
        await store.close()
