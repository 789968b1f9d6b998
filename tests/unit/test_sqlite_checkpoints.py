"""SQLite WAL checkpoints run in the background, off the committing thread."""

import asyncio
import shutil
import sqlite3
from pathlib import Path

import pytest

from arangotasks.store.sqlite import SQLiteStore
from tests.unit.test_store import task


def ids_in_main_file(db: Path, scratch: Path) -> set[str]:
    """The task ids the database file holds without its WAL (what was checkpointed)."""
    copy = scratch / "copy.sqlite"
    shutil.copyfile(db, copy)
    conn = sqlite3.connect(copy)
    try:
        return {row[0] for row in conn.execute("SELECT id FROM tasks")}
    except sqlite3.OperationalError:  # not even the schema is in the file yet
        return set()
    finally:
        conn.close()


@pytest.mark.parametrize("interval", [0.05, 0])
async def test_commits_reach_the_file_through_background_checkpoints(tmp_path, interval):
    db = tmp_path / "store.sqlite"
    store = SQLiteStore(db, checkpoint_interval=interval)
    await store.open()
    try:
        for n in range(5):
            await store.insert_task(task(f"t{n}"))
        expected = {f"t{n}" for n in range(5)}
        if interval:
            async with asyncio.timeout(10):
                while ids_in_main_file(db, tmp_path) != expected:
                    await asyncio.sleep(0.02)
        else:
            # Left to SQLite, a few small commits stay in the WAL (it checkpoints per 1,000 pages).
            await asyncio.sleep(0.2)
            assert ids_in_main_file(db, tmp_path) == set()
        assert {t.id for t in await store.load_tasks()} == expected
    finally:
        await store.close()
    assert ids_in_main_file(db, tmp_path) == expected  # and closing folds in the rest
