"""The cluster audit of tests/e2e/test_cluster.py for longer: three nodes, 200 periodic tasks
(period 1 s; ``STRESS_CLUSTER_TASKS`` sets how many) and half as many timed ones, faults
(kill -9, SIGSTOP, terminated connections) for ``STRESS_SECONDS`` (default 300; ``make stress``
in CI sets a short run), audited at the sink.
Prints the audited runs, duplicates and the longest gap (the closing note's figures)."""

import os
import time

import pytest

from tests.e2e.cluster import Cluster, audit, faults, sink
from tests.e2e.conftest import pg_url  # noqa: F401  (the fixture: a fresh database)
from tests.e2e.test_cluster import LEASE, _crashed, _create_load

pytestmark = [pytest.mark.stress, pytest.mark.e2e, pytest.mark.postgres]

SECONDS = float(os.environ.get("STRESS_SECONDS", "300"))
# Periodic tasks (period 1 s); half as many timed ones. 1,000 for the 300,000-run audit.
TASKS = int(os.environ.get("STRESS_CLUSTER_TASKS", "200"))


@pytest.mark.timeout(SECONDS + 600)
def test_every_slot_runs_once_under_long_faults(tmp_path, pg_url):  # noqa: F811
    # Every run row kept (not the last 100 a task), so that a duplicate can be explained.
    cluster = Cluster(tmp_path, pg_url, 3, lease=str(LEASE), ARANGOTASKS_HISTORY_KEEP="1000000")
    cluster.start()
    log: list[str] = []
    try:
        with sink() as hits:
            periods, timed = _create_load(cluster, hits.url, TASKS, TASKS // 2, SECONDS)
            faults(cluster, SECONDS, LEASE, log)
            time.sleep(LEASE * 2 + 5)
            result = audit(list(hits.hits), periods, timed)
        missing = [t for t in result.timed_missing if not _crashed(cluster, t)]
        explained = [_explain(pg_url, *duplicate) for duplicate in result.duplicates[:10]]
    finally:
        cluster.stop()
    for lines in explained:
        print("\n".join(lines))
    print(
        f"\ncluster stress: {result.runs} audited runs in {SECONDS:g} s, "
        f"{len(result.duplicates)} duplicates, {len(result.timed_twice)} timed twice, "
        f"{len(missing)} timed lost, longest gap {result.longest_gap:.2f} s, "
        f"{len(log)} fault events"
    )
    assert result.duplicates == []
    assert result.timed_twice == []
    assert missing == []


def _explain(url: str, task_id: str, before: float, after: float) -> list[str]:
    """The run rows of a duplicate's task around its two starts: which nodes, which slots."""
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT uid, node, status, scheduled_at, started_at, finished_at, fence_slot, error"
            " FROM runs WHERE task_id = %s AND scheduled_at BETWEEN %s AND %s ORDER BY uid",
            (task_id, before - 5, after + 5),
        ).fetchall()
    lines = [f"duplicate {task_id}: starts {before:.3f} and {after:.3f}"]
    for uid, node, status, scheduled, started, finished, slot, error in rows:
        name = (error or "")[:60]
        lines.append(
            f"  uid {uid} {node} {status} scheduled {scheduled:.3f} started {started or 0:.3f}"
            f" finished {finished or 0:.3f} slot {slot or 0:.3f} {name}"
        )
    return lines
