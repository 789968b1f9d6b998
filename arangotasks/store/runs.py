"""The runs API's pages and the pruning of old runs, on top of :class:`SQLStore`: both read or
delete a bounded amount per transaction, so that big rows never stall the store."""

import asyncio
import time
from typing import Any

from arangotasks.models import Run, RunQuery, RunStatus, RunTrigger, StoredRun
from arangotasks.store.schema import (
    RUN_COLUMNS,
    RUN_SELECT,
    UNFINISHED,
    Row,
    SQLStore,
    Stmt,
    runs_filter,
    where_clause,
)

# A page of the runs API is read this many rows at a time, so that its byte limit bounds what
# is read, not only what is sent.
_PAGE_BATCH = 20
# Pruning deletes in transactions of about this many seconds (the batch size adapts), so that
# no other statement waits long for the store: well below the ~50 ms aimed at, as a step can
# take twice its estimate on a busy machine.
PRUNE_SLICE = 0.02
_PRUNE_FIRST_BATCH = 4  # rows of 1 MiB take milliseconds each to delete
_PRUNE_MAX_BATCH = 5000
# ... and of at most this many bytes of result, output, error and requests (one run at least):
# the cost of a delete is in its bytes, and the time-adapted row count lags behind a change in
# row size (a run of small rows, then runs of 1 MiB). Lengths are in characters (SQL length()).
PRUNE_BATCH_BYTES = 2 << 20

_ROW_BYTES = (
    "COALESCE(length(result_json), 0) + length(output) + COALESCE(length(error), 0)"
    " + COALESCE(length(requests), 0)"
)


def _sized(uids: str) -> str:
    """A DELETE of the first of the runs ``uids`` selects (a SELECT of uids whose last
    parameter is a row limit) that fit in a byte budget (the statement's last parameter)."""
    return f"""DELETE FROM runs WHERE uid IN (
    SELECT uid FROM (
        SELECT uid, ROW_NUMBER() OVER (ORDER BY uid) AS n,
            SUM({_ROW_BYTES}) OVER (ORDER BY uid) AS upto
        FROM runs WHERE uid IN ({uids})) AS sized
    WHERE n = 1 OR upto <= ?)"""


# One batch of pruning each: finished runs older than the age limit, and finished runs of one
# task at or below the uid of its newest run beyond the number kept.
_PRUNE_OLD = _sized(
    f"SELECT uid FROM runs WHERE finished_at < ? AND status NOT IN ({UNFINISHED}) LIMIT ?"
)
_PRUNE_TASK = _sized(
    f"""SELECT uid FROM runs WHERE task_id = ? AND status NOT IN ({UNFINISHED}) AND uid <= (
        SELECT uid FROM runs WHERE task_id = ? ORDER BY uid DESC LIMIT 1 OFFSET ?)
    ORDER BY uid LIMIT ?"""
)
_TASKS_OVER = "SELECT task_id FROM runs GROUP BY task_id HAVING COUNT(*) > ?"


def next_batch(size: int, elapsed: float, most: int) -> int:
    """The next batch size after ``size`` items took ``elapsed`` seconds: as many as fit in
    ``PRUNE_SLICE`` at that pace (at most twice as many as before, at least one)."""
    fitting = int(size * PRUNE_SLICE / max(elapsed, 1e-4))
    return max(1, min(most, 2 * size, fitting))


def row_to_stored_run(row: Row) -> StoredRun:
    fields = dict(zip(RUN_COLUMNS, row, strict=True))
    output_json, error_json = fields.pop("output"), fields.pop("error")
    requests_json = fields.pop("requests")
    fields["trigger"] = RunTrigger(fields["trigger"])
    fields["status"] = RunStatus(fields["status"])
    return StoredRun(Run(**fields), output_json, error_json, requests_json)


class RunsSQLStore(SQLStore):
    """``SQLStore`` with bounded page reads and batched pruning (both backends derive from it)."""

    _prune_batch = _PRUNE_FIRST_BATCH  # adapts to PRUNE_SLICE, per store

    async def query_runs_page(
        self, query: RunQuery, max_bytes: int
    ) -> tuple[list[StoredRun], int, int | None]:
        """As :meth:`query_runs`, with result, output and error left as JSON text, and the page
        ending before ``max_bytes`` (it holds one run at least). Rows are read a batch at a
        time; ``next`` is the uid of the first run left out, as without a byte limit."""
        conditions, params = runs_filter(query)
        count = Stmt(f"SELECT COUNT(*) FROM runs{where_clause(conditions)}", params, fetch=True)
        bound = "uid >= ?" if query.reverse else "uid <= ?"
        order = "ASC" if query.reverse else "DESC"
        limit = max(query.limit, 0)
        page: list[StoredRun] = []
        used, total, from_uid = 0, -1, query.from_uid
        while True:
            batch = min(limit - len(page), _PAGE_BATCH)
            where, values = list(conditions), list(params)
            if from_uid is not None:
                where.append(bound)
                values.append(from_uid)
            # One row beyond the batch: its uid starts the next batch (or page).
            sql = f"SELECT {RUN_SELECT} FROM runs{where_clause(where)} ORDER BY uid {order} LIMIT ?"
            select = Stmt(sql, [*values, batch + 1], fetch=True)
            if total < 0:
                counted, result = await self._execute([count, select], write=False)
                total = int(counted.rows[0][0])
            else:
                result = await self._one(select, write=False)
            for row in result.rows[:batch]:
                stored = row_to_stored_run(row)
                if page and used + stored.size > max_bytes:
                    return page, total, stored.run.uid
                page.append(stored)
                used += stored.size
            if len(result.rows) <= batch:
                return page, total, None
            from_uid = int(result.rows[batch][0])
            if len(page) == limit:
                return page, total, from_uid

    async def prune_runs(self, keep_per_task: int, older_than: float) -> int:
        removed = await self._delete_in_batches(_PRUNE_OLD, (older_than,))
        over = await self._one(Stmt(_TASKS_OVER, (keep_per_task,), fetch=True), write=False)
        for (task_id,) in over.rows:
            removed += await self._delete_in_batches(_PRUNE_TASK, (task_id, task_id, keep_per_task))
        return removed

    async def _delete_in_batches(self, sql: str, params: tuple[Any, ...]) -> int:
        """Run ``sql`` (a DELETE whose last parameters are a row limit and a byte budget) until
        it deletes nothing, each batch its own transaction of about ``PRUNE_SLICE`` seconds and
        at most ``PRUNE_BATCH_BYTES`` (one run at least)."""
        removed = 0
        while True:
            size = self._prune_batch
            started = time.monotonic()
            result = await self._one(Stmt(sql, (*params, size, PRUNE_BATCH_BYTES)), write=True)
            elapsed = time.monotonic() - started
            if not result.rowcount:
                return removed
            removed += result.rowcount
            # From the rows deleted, not the limit: a batch cut short by its bytes says how
            # many rows of this size fit (the next one reads at most twice as many).
            self._prune_batch = next_batch(result.rowcount, elapsed, _PRUNE_MAX_BATCH)
            await asyncio.sleep(0)  # statements queued meanwhile go first
