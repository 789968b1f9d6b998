"""Run records wait in memory while the store cannot be written: bounded, counted, logged,
and written in bounded batches once the store takes writes again (real SQLite store)."""

import time

from arangotasks.config import Settings
from arangotasks.history import History
from arangotasks.models import RunQuery, RunStatus, RunTrigger, Task
from arangotasks.store.sqlite import SQLiteStore


class CountingStore(SQLiteStore):
    """The real store; remembers the size of each save_runs transaction."""

    batches: list[int]

    async def save_runs(self, runs):  # type: ignore[no-untyped-def]
        self.batches.append(len(runs))
        await super().save_runs(runs)


async def test_pending_runs_are_bounded_and_written_in_batches(tmp_path, caplog):
    store = CountingStore(tmp_path / "db.sqlite3")
    store.batches = []
    await store.open()
    settings = Settings(
        data_dir=tmp_path, history_max_pending=50, history_batch=20, prune_interval=3600
    )
    history = History(store, settings)
    await history.start()
    task = Task(id="t", name="t", created=time.time(), command="", database="_system")
    await store._set_read_only(True)  # what a full disk or a read-only file gives
    for _ in range(130):
        run = history.new_run(task, RunTrigger.SCHEDULE, time.time(), status=RunStatus.ENQUEUED)
        run.status = RunStatus.SUCCEEDED
        run.finished_at = time.time()
        history.touch(run)
    assert history.dropped == 80
    assert "dropping the oldest" in caplog.text
    await store._set_read_only(False)
    await store._call(store._disconnect)  # the read-only connection goes, as after a fault
    store.batches.clear()
    await history.flush()
    assert store.batches == [20, 20, 10]
    assert "80 run record(s) were dropped" in caplog.text
    runs, total, _ = await store.query_runs(RunQuery(limit=1000))
    assert total == 50
    assert [r.uid for r in runs] == list(range(130, 80, -1))  # the newest were kept (uids from 1)
    await history.close()
    await store.close()
