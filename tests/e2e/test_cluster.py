"""Three real nodes on one PostgreSQL: consistency across nodes, and every slot run once under
kill -9, SIGSTOP and terminated connections, audited at an HTTP sink (see cluster.py). The
control with the occurrence fence off must find duplicates: the audit can fail."""

import itertools
import json
import os
import signal
import time

import pytest

from tests.e2e.cluster import COMMAND, Cluster, audit, faults, sink

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

LEASE = 2.0
# One round of faults in make test; make stress sets a longer run.
FAULT_SECONDS = float(os.environ.get("CLUSTER_FAULT_SECONDS", "5"))


@pytest.fixture(scope="module")
def module_pg_url(pg_dsn):
    """A fresh database for the module's cluster (started once: starting nodes is slow)."""
    import uuid

    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(pg_dsn)
    name = f"cluster_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield f"postgresql://{info.get('user', 'postgres')}@{info['host']}:{info['port']}/{name}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def cluster_of_3(tmp_path_factory, module_pg_url):
    cluster = Cluster(tmp_path_factory.mktemp("cluster"), module_pg_url, 3, lease=str(LEASE))
    cluster.start()
    yield cluster
    cluster.stop()


def _wait(predicate, within: float = 30.0, every: float = 0.1):
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(every)


@pytest.mark.timeout(180)
def test_nodes_see_each_others_writes_at_once(cluster_of_3):
    a, b, c = cluster_of_3.http

    def alive():
        found = [n for n in a.ok("GET", "/_api/nodes")["result"] if n["alive"]]
        return found if len(found) == 3 else None

    nodes = _wait(alive)
    assert [n["id"] for n in nodes] == ["n1", "n2", "n3"]
    assert set(nodes[0]) == {"id", "address", "startedAt", "heartbeatAt", "alive"}
    for i in range(5):
        created = a.ok("POST", "/_api/tasks", {"command": "return 1;", "offset": 3600})
        # Read at once on another node, in the list too.
        assert b.ok("GET", f"/_api/tasks/{created['id']}")["id"] == created["id"]
        assert created["id"] in [t["id"] for t in c.ok("GET", "/_api/tasks")]
        c.ok("DELETE", f"/_api/tasks/{created['id']}")
        assert a.call("GET", f"/_api/tasks/{created['id']}")[0] == 404, i
        assert b.call("DELETE", f"/_api/tasks/{created['id']}")[0] == 404
    # Run now on any node; the record is read on a third one and names the node that ran it.
    task = a.ok("POST", "/_api/tasks", {"command": "return 'now';", "offset": 3600})
    run = b.ok("POST", f"/_api/tasks/{task['id']}/run")
    assert run["node"] == "n2"
    done = c.wait_runs(f"taskIds={task['id']}", 1)["results"][0]
    assert done["uid"] == run["uid"] and done["result"] == "now" and done["node"] == "n2"


@pytest.mark.timeout(180)
def test_delete_on_one_node_stops_runs_on_every_node(cluster_of_3):
    with sink() as hits:
        ids = [f"d{i}" for i in range(6)]
        for i, task_id in enumerate(ids):
            body = {"command": COMMAND, "period": 0.5, "params": {"sink": hits.url, "id": task_id}}
            cluster_of_3.http[i % 3].ok("PUT", f"/_api/tasks/{task_id}", body)
        _wait(lambda: {h["task"] for h in hits.hits} >= set(ids), within=30)
        for task_id in ids:
            cluster_of_3.any().ok("DELETE", f"/_api/tasks/{task_id}")
        deleted = time.time()
        time.sleep(2.0)
        late = [h for h in hits.hits if h["start"] / 1000 > deleted + 1.0]
        assert late == []


def _create_load(cluster, url, periodic: int, timed: int, window: float):
    """Periodic tasks (period 1 s) and timed tasks due across ``window`` seconds, created
    through different nodes, each POSTing its own id."""
    periods, timed_ids = {}, set()
    for i in range(periodic):
        task_id = f"p{i}"
        body = {"command": COMMAND, "period": 1, "params": {"sink": url, "id": task_id}}
        cluster.http[i % len(cluster.http)].ok("PUT", f"/_api/tasks/{task_id}", body)
        periods[task_id] = 1.0
    for i in range(timed):
        task_id = f"t{i}"
        offset = 2 + window * i / max(timed, 1)
        body = {"command": COMMAND, "offset": offset, "params": {"sink": url, "id": task_id}}
        cluster.http[i % len(cluster.http)].ok("PUT", f"/_api/tasks/{task_id}", body)
        timed_ids.add(task_id)
    return periods, timed_ids


def _crashed(cluster, task_id: str) -> bool:
    """Whether a timed task that never ran has a record saying why: its run was cut by a fault
    (crash), or it was admitted and had not started when its node lost its lease (it is not
    started later: a timed task runs at most once)."""
    runs = cluster.http[0].ok("GET", f"/_api/runs?taskIds={task_id}")["results"]
    return any(
        (r["error"] or {}).get("type") == "crash" or (r["error"] or {}).get("name") == "LeaseLapsed"
        for r in runs
    )


@pytest.mark.timeout(300)
def test_every_slot_runs_once_under_faults(cluster_of_3):
    log: list[str] = []
    with sink() as hits:
        periods, timed = _create_load(cluster_of_3, hits.url, 30, 30, FAULT_SECONDS)
        faults(cluster_of_3, FAULT_SECONDS, LEASE, log)
        time.sleep(LEASE * 2 + 3)  # the last timed tasks are due and failed over
        result = audit(list(hits.hits), periods, timed)
    missing = [t for t in result.timed_missing if not _crashed(cluster_of_3, t)]
    print(f"audited {result.runs} runs; longest gap {result.longest_gap:.1f} s; faults: {log}")
    assert result.runs > 300
    assert result.duplicates == []
    assert result.timed_twice == []
    assert missing == []
    # Failover: a dead or paused node's tasks continue within two leases and a period (plus
    # the time a paused node's run in flight may add on a loaded machine).
    assert result.longest_gap < 4 * LEASE + 1 + 10


@pytest.mark.timeout(300)
def test_without_the_fence_the_audit_finds_duplicates(tmp_path, pg_url):
    """The control: the same faults with the occurrence fence off (a test-only setting)."""
    cluster = Cluster(tmp_path, pg_url, 3, lease=str(LEASE), ARANGOTASKS_CLUSTER_FENCE="false")
    cluster.start()
    log: list[str] = []
    try:
        with sink() as hits:
            periods, _ = _create_load(cluster, hits.url, 30, 0, 0)
            time.sleep(2)
            duplicates = []
            deadline = time.monotonic() + 60
            while not duplicates and time.monotonic() < deadline:
                node = cluster.nodes[len(log) % 3]
                os.kill(node.proc.pid, signal.SIGSTOP)
                time.sleep(LEASE * 1.5 + 0.5)
                os.kill(node.proc.pid, signal.SIGCONT)
                log.append(node.env["ARANGOTASKS_NODE_ID"])
                time.sleep(2)
                duplicates = audit(list(hits.hits), periods, set()).duplicates
    finally:
        cluster.stop()
    assert duplicates, f"no duplicates without the fence after pausing {log}"


def _starts(runs: list[dict]) -> list[float]:
    from datetime import datetime

    return sorted(
        datetime.fromisoformat(r["startedAt"].replace("Z", "+00:00")).timestamp()
        for r in runs
        if r["status"] in ("succeeded", "failed") and r["startedAt"]
    )


@pytest.mark.timeout(180)
def test_a_run_that_waited_through_a_pause_does_not_start_after_a_takeover(tmp_path, pg_url):
    """n1 has one worker, busy; a periodic task's slot is admitted on n1 and waits for it. n1 is
    paused longer than the lease and n2 takes the task over. When n1 resumes, its waiting run
    must not start (n2 runs the task now): it is recorded canceled (LeaseLapsed)."""
    cluster = Cluster(tmp_path, pg_url, 2, lease=str(LEASE), ARANGOTASKS_WORKERS="1")
    cluster.start()
    try:
        n1, n2 = cluster.http
        busy = "var t = Date.now(); while (Date.now() - t < 4000) {} return 1;"
        n1.ok("POST", "/_api/tasks", {"command": busy, "offset": 0.2})
        tick = n1.ok("POST", "/_api/tasks", {"command": "return 1;", "period": 1, "offset": 1})

        def waiting_on_n1():
            runs = n2.ok("GET", f"/_api/runs?taskIds={tick['id']}")["results"]
            return [r for r in runs if r["status"] == "enqueued" and r["node"] == "n1"]

        [queued] = _wait(waiting_on_n1, within=15, every=0.05)
        pid = cluster.nodes[0].proc.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(LEASE * 1.5 + 1.5)
        finally:
            os.kill(pid, signal.SIGCONT)

        def settled():
            runs = n2.ok("GET", f"/_api/runs?taskIds={tick['id']}&limit=1000")["results"]
            mine = [r for r in runs if r["uid"] == queued["uid"]]
            on_n2 = [r for r in runs if r["node"] == "n2" and r["status"] == "succeeded"]
            # n2's reaper may mark it crash while n1 is paused; n1 writes what happened to
            # it once it resumes.
            done = mine and (mine[0]["error"] or {}).get("type") != "crash"
            done = done and mine[0]["status"] not in ("enqueued", "processing")
            return (mine[0], runs) if done and len(on_n2) >= 3 else None

        record, runs = _wait(settled, within=30)
        assert record["status"] == "canceled", json.dumps(record)
        assert record["error"]["name"] == "LeaseLapsed" and record["startedAt"] in (None, "")
        starts = _starts(runs)
        close = [(a, b) for a, b in itertools.pairwise(starts) if b - a < 0.5]
        assert close == [], runs
    finally:
        cluster.stop()
