"""Tasks survive restarts of a real server process: SIGTERM and kill -9."""

import time

import pytest

from tests.e2e.http import Http

pytestmark = pytest.mark.e2e


def snapshot(http: Http) -> dict[str, dict]:
    return {t["id"]: t for t in http.ok("GET", "/_api/tasks")}


@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_tasks_come_back_identical(server, how):
    http = Http(server.url)
    http.ok(
        "PUT",
        "/_api/tasks/periodic",
        {
            "name": "p",
            "command": "return params;",
            "params": {"a": [1, 2]},
            "period": 3600,
            "offset": 1800.5,
        },
    )
    http.ok(
        "PUT",
        "/_db/testdb/_api/tasks/timed",
        {"command": "return 1;", "params": "text", "offset": 7200},
    )
    http.ok(
        "POST",
        "/_api/tasks",
        {"name": "auto", "command": "print(1)", "period": 0.0001, "offset": 3600},
    )
    before = snapshot(http)
    assert len(before) == 3
    if how == "kill9":
        server.kill9()
    else:
        assert server.stop() == 0
    server.start()
    http = Http(server.url)
    assert snapshot(http) == before
    for task_id, body in before.items():
        assert http.ok("GET", f"/_api/tasks/{task_id}") == body


def test_sigterm_is_a_clean_stop(server):
    assert server.stop() == 0
    log = server.output()
    assert "listening on http://127.0.0.1:" in log
    assert "stopped" in log


def test_timed_task_due_while_down_runs_once_after_start(server):
    http = Http(server.url)
    http.ok("PUT", "/_api/tasks/late", {"command": "return 'ran';", "offset": 1})
    server.stop()
    time.sleep(1.5)  # the downtime being simulated
    server.start()
    http = Http(server.url)
    page = http.wait_runs("taskIds=late", 1)
    assert [r["result"] for r in page["results"]] == ["ran"]
    deadline = time.monotonic() + 5
    while http.call("GET", "/_api/tasks/late")[0] != 404:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # Another restart does not run it again.
    server.stop()
    server.start()
    http = Http(server.url)
    time.sleep(0.5)
    assert http.ok("GET", "/_api/runs?taskIds=late")["total"] == 1


def test_kill9_mid_run_marks_the_run_crashed_and_never_reruns_a_timed_task(server):
    http = Http(server.url)
    http.ok("PUT", "/_api/tasks/stuck", {"command": "while (true) {}", "timeout": 60})
    deadline = time.monotonic() + 10
    while http.ok("GET", "/_api/runs?taskIds=stuck&statuses=processing")["total"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    server.kill9()
    server.start()
    http = Http(server.url)
    runs = http.ok("GET", "/_api/runs?taskIds=stuck")["results"]
    assert len(runs) == 1
    assert runs[0]["status"] == "failed"
    assert runs[0]["error"]["type"] == "crash"
    assert runs[0]["finishedAt"] is not None
    assert http.call("GET", "/_api/tasks/stuck")[0] == 404
    time.sleep(0.5)
    assert http.ok("GET", "/_api/runs?taskIds=stuck")["total"] == 1


def test_periodic_cadence_resumes(server):
    http = Http(server.url)
    http.ok("PUT", "/_api/tasks/tick", {"command": "return Date.now();", "period": 0.2})
    http.wait_runs("taskIds=tick", 2)
    server.kill9()
    server.start()
    http = Http(server.url)
    before = http.ok("GET", "/_api/runs?taskIds=tick")["total"]
    page = http.wait_runs("taskIds=tick", before + 3)
    uids = [r["uid"] for r in page["results"]]
    assert len(uids) == len(set(uids))


@pytest.mark.postgres
def test_postgresql_store_survives_kill9(make_server, pg_url):
    server = make_server(ARANGOTASKS_STORE=pg_url)
    http = Http(server.url)
    body = {"command": "return params;", "params": [1], "period": 0.2}
    http.ok("PUT", "/_api/tasks/pg", body)
    http.wait_runs("taskIds=pg", 2)
    before = snapshot(http)
    server.kill9()
    server.start()
    http = Http(server.url)
    assert snapshot(http) == before
    assert http.ok("GET", "/_api/runs?taskIds=pg")["total"] >= 2
    assert "store: postgresql://" in server.output()
    server.stop()
