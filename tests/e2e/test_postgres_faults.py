"""A real server on a PostgreSQL store that hangs (SIGSTOP on the postmaster and its backends)
(several servers on one database form a cluster: tests/e2e/test_cluster.py)."""

import contextlib
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.e2e.http import Http

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


def cluster_pids(dsn: str) -> list[int]:
    """The postmaster and every process it started (backends, checkpointer, ...)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT current_setting('data_directory')").fetchone()
    assert row is not None
    postmaster = int((Path(row[0]) / "postmaster.pid").read_text().split()[0])
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                if int(stat.rpartition(")")[2].split()[1]) == postmaster:
                    children.append(int(entry.name))
    return [postmaster, *children]


@contextlib.contextmanager
def paused(pids: list[int]) -> Iterator[None]:
    """Stops every process in ``pids`` and always lets them go on afterwards.

    A backend may exit between listing it and stopping it (CI saw ProcessLookupError there);
    that must neither fail the test nor leave the postmaster stopped for every later test."""
    try:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        yield
    finally:
        for pid in reversed(pids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def hung(dsn: str) -> contextlib.AbstractContextManager[None]:
    """The whole PostgreSQL cluster behind ``dsn``, stopped."""
    return paused(cluster_pids(dsn))


def process_state(pid: int, wanted: set[str], within: float = 5.0) -> str:
    """The process's state letter, once it is one of ``wanted`` (signals arrive a moment later)."""
    deadline = time.monotonic() + within
    while True:
        state = (Path("/proc") / str(pid) / "stat").read_text().rpartition(")")[2].split()[0]
        if state in wanted or time.monotonic() > deadline:
            return state
        time.sleep(0.01)


def test_pausing_skips_a_process_that_is_gone_and_resumes_the_rest():
    """The bug that left CI's PostgreSQL stopped: a pid listed, then gone before SIGSTOP."""
    import subprocess

    gone = subprocess.Popen(["true"])
    gone.wait()
    alive = subprocess.Popen(["sleep", "30"])
    try:
        with paused([alive.pid, gone.pid]):
            assert process_state(alive.pid, {"T"}) == "T"
        assert process_state(alive.pid, {"S", "R"}) in {"S", "R"}
    finally:
        alive.kill()
        alive.wait()


def wait_ok(http: Http, method: str, path: str, body=None, within: float = 60) -> dict:
    deadline = time.monotonic() + within
    while True:
        status, data = http.call(method, path, body)
        if status == 200:
            return data
        assert time.monotonic() < deadline, (status, data)
        time.sleep(0.2)


def test_hung_postgresql_answers_503_and_applies_no_timed_out_write(make_server, pg_url, pg_dsn):
    if os.environ.get("ARANGOTASKS_TEST_PG_DSN"):
        pytest.skip("needs the cluster this test session started (it is stopped with SIGSTOP)")
    server = make_server(ARANGOTASKS_STORE=pg_url, ARANGOTASKS_PG_OPERATION_TIMEOUT="2")
    http = Http(server.url)
    task = {"command": "return 1;", "offset": 3600}
    http.ok("PUT", "/_api/tasks/before", task)
    port = pg_url.rsplit(":", 1)[1].split("/")[0]
    with hung(pg_dsn):
        status, data = http.call("PUT", "/_api/tasks/hung", task)
        assert status == 503, data
        assert data["errorMessage"] == "task store unavailable: timed out"
        assert port not in json.dumps(data) and "127.0.0.1" not in json.dumps(data)
        status, data = http.call("GET", "/_api/runs")
        assert status == 503, data
        status, data = http.call("DELETE", "/_api/tasks/before")
        assert status == 503, data
        # What is in memory still answers.
        assert http.ok("GET", "/_api/tasks/before")["id"] == "before"
    wait_ok(http, "PUT", "/_api/tasks/after", task)
    assert http.call("GET", "/_api/tasks/hung")[0] == 404
    with psycopg.connect(pg_url) as conn:
        ids = {row[0] for row in conn.execute("SELECT id FROM tasks")}
    assert ids == {"before", "after"}  # the timed-out create was rolled back, not applied
    assert "no answer within 2 s" in server.output()  # the details are in the log
