"""A normal stop (SIGTERM, SIGINT) of a real server loses nothing: runs in progress get the grace,
runs that outlast it are recorded at once (before the process exits) as interrupted with their
output, runs still waiting for a worker are recorded canceled, and nothing logs a traceback."""

import json
import os
import signal
import sqlite3
import time

import pytest

from tests.e2e.http import Http
from tests.e2e.server import ServerProcess

pytestmark = pytest.mark.e2e

BUSY_2S = "print('a'); const t = Date.now(); while (Date.now() - t < 2000) {} return 'done';"


def wait_total(http: Http, query: str, total: int, within: float = 30.0) -> dict:
    deadline = time.monotonic() + within
    while True:
        page = http.ok("GET", f"/_api/runs?{query}")
        if page["total"] >= total:
            return page
        assert time.monotonic() < deadline, page
        time.sleep(0.05)


def stored_runs(server: ServerProcess, task_id: str) -> list[dict]:
    """The run records in the SQLite file, read after the server exited (no restart, so no
    recovery at start can have touched them)."""
    path = server.data_dir / "arangotasks.sqlite3"
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT status, trigger, started_at, finished_at, output, error FROM runs "
            "WHERE task_id = ? ORDER BY uid",
            (task_id,),
        ).fetchall()
    keys = ("status", "trigger", "startedAt", "finishedAt", "output", "error")
    runs = [dict(zip(keys, row, strict=True)) for row in rows]
    for run in runs:
        run["output"] = json.loads(run["output"])
        run["error"] = json.loads(run["error"]) if run["error"] else None
    return runs


def assert_quiet(log: str) -> None:
    assert "Traceback" not in log and "CancelledError" not in log, log
    assert " ERROR " not in log, log


def test_runs_in_progress_finish_within_the_grace(make_server):
    server = make_server(ARANGOTASKS_SHUTDOWN_GRACE="30")
    http = Http(server.url)
    http.ok("PUT", "/_api/tasks/periodic", {"command": BUSY_2S, "period": 3600})
    http.ok("PUT", "/_api/tasks/manual", {"command": BUSY_2S, "period": 3600, "offset": 3600})
    http.ok("POST", "/_api/tasks/manual/run")
    wait_total(http, "taskIds=periodic,manual&statuses=processing", 2)
    # Not timed: the server must exit by itself (stop() would kill it after this long).
    assert server.stop(signal.SIGTERM, timeout=60) == 0
    assert_quiet(server.output())
    for task_id, trigger in (("periodic", "schedule"), ("manual", "manual")):
        [run] = stored_runs(server, task_id)
        assert (run["status"], run["trigger"], run["output"]) == ("succeeded", trigger, ["a"])
        assert run["error"] is None and run["finishedAt"] is not None


def test_runs_beyond_the_grace_are_recorded_interrupted_before_the_exit(make_server):
    server = make_server(ARANGOTASKS_SHUTDOWN_GRACE="1", ARANGOTASKS_WORKERS="1")
    http = Http(server.url)
    busy = "print('started'); while (true) {}"
    http.ok("PUT", "/_api/tasks/busy", {"command": busy, "offset": 0, "timeout": 600})
    wait_total(http, "taskIds=busy&statuses=processing", 1)
    # The only worker is busy: this timed task and a manual run wait for it.
    http.ok("PUT", "/_api/tasks/queued", {"command": "return 'later';", "offset": 0})
    http.ok("PUT", "/_api/tasks/other", {"command": "return 1;", "period": 3600, "offset": 3600})
    http.ok("POST", "/_api/tasks/other/run")
    wait_total(http, "taskIds=queued,other&statuses=enqueued", 2)
    assert server.stop(signal.SIGTERM, timeout=60) == 0
    log = server.output()
    assert_quiet(log)
    assert "interrupting 1 run(s) still in progress" in log

    [run] = stored_runs(server, "busy")
    assert run["status"] == "failed"
    assert run["output"] == ["started"]
    assert run["error"]["type"] == "interrupted", run  # not "crash": recorded by the stop
    assert "ARANGOTASKS_SHUTDOWN_GRACE" in run["error"]["message"]
    assert run["finishedAt"] is not None
    for task_id in ("queued", "other"):
        [canceled] = stored_runs(server, task_id)
        assert canceled["status"] == "canceled", canceled
        assert canceled["startedAt"] is None and canceled["finishedAt"] is not None
        assert canceled["error"]["type"] == "interrupted"

    server.start()
    http = Http(server.url)
    # The interrupted timed task is done (at most once: it is not run again) ...
    assert http.call("GET", "/_api/tasks/busy")[0] == 404
    [again] = http.ok("GET", "/_api/runs?taskIds=busy")["results"]
    assert again["error"]["type"] == "interrupted"
    # ... the one that never started runs now.
    page = wait_total(http, "taskIds=queued&statuses=succeeded", 1)
    assert page["results"][0]["result"] == "later"


def test_ctrl_c_to_the_process_group_stops_the_server_not_its_workers(tmp_path):
    """A terminal's Ctrl-C (and systemd) signal the server's whole process group: the workers
    ignore it, so the run in progress finishes within the grace instead of crashing."""
    server = ServerProcess(tmp_path / "data", ARANGOTASKS_SHUTDOWN_GRACE="30")
    server.preexec_fn = os.setpgrp  # its own group, as under a shell
    server.start()
    try:
        http = Http(server.url)
        http.ok("PUT", "/_api/tasks/slow", {"command": BUSY_2S, "offset": 0})
        wait_total(http, "taskIds=slow&statuses=processing", 1)
        assert server.proc is not None
        os.killpg(server.proc.pid, signal.SIGINT)
        assert server.stop(signal.SIGINT, timeout=60) == 0
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.stop()
    assert_quiet(server.output())
    [run] = stored_runs(server, "slow")
    assert (run["status"], run["output"]) == ("succeeded", ["a"])
