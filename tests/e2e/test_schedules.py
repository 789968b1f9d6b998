"""Schedule extensions across restarts of a real server: misfire per task, pause and revision."""

import time
from datetime import datetime

import pytest

from tests.e2e.http import Http

pytestmark = pytest.mark.e2e


def ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def all_runs(http: Http, task_id: str) -> list[dict]:
    return http.ok("GET", f"/_api/runs?taskIds={task_id}&limit=1000&reverse=true")["results"]


def test_misfire_is_per_task_after_a_restart(make_server):
    server = make_server(ARANGOTASKS_MISFIRE="skip")  # the server default
    http = Http(server.url)
    every_second = {"command": "return 1;", "cron": "* * * * * *"}
    http.ok("PUT", "/_api/tasks/once", {**every_second, "misfire": "run_once"})
    http.ok("PUT", "/_api/tasks/skips", every_second)
    http.ok("PUT", "/_api/tasks/paused", {**every_second, "enabled": False})
    http.wait_runs("taskIds=once", 1)
    http.wait_runs("taskIds=skips", 1)
    down = time.time()  # slots from here on may be missed (the stop itself takes a while)
    server.stop()
    time.sleep(2.5)  # the downtime being simulated: two slots or more pass
    up = time.time()
    server.start()
    http = Http(server.url)
    missed = http.wait_runs("taskIds=skips&statuses=canceled", 1)["results"]
    assert missed[0]["error"]["type"] == "missed"
    assert down - 1 <= ts(missed[0]["scheduledAt"]) <= up
    http.wait_runs("taskIds=skips", len(all_runs(http, "skips")) + 1)  # and it runs on

    # run_once: one run stands for every slot missed while the server was down.
    http.wait_runs("taskIds=once", len(all_runs(http, "once")) + 1)
    caught_up = [
        r for r in all_runs(http, "once") if down < ts(r["scheduledAt"]) < up and r["startedAt"]
    ]
    assert len(caught_up) <= 1
    late = [r for r in all_runs(http, "once") if ts(r["scheduledAt"]) < up]
    assert any(ts(r["startedAt"]) >= up for r in late)  # the missed slot ran after the start
    assert not [r for r in all_runs(http, "once") if r["status"] == "canceled"]

    # A paused task stays paused and never fired.
    details = http.ok("GET", "/_api/tasks/paused?details=true")
    assert details["enabled"] is False and details["nextRunAt"] is None
    assert all_runs(http, "paused") == []


def test_a_patched_task_comes_back_changed(server):
    http = Http(server.url)
    first = http.ok("PUT", "/_api/tasks/p", {"command": "return 1;", "period": 3600, "offset": 600})
    http.ok(
        "PATCH",
        "/_api/tasks/p",
        {"cron": "0 4 * * *", "timezone": "Asia/Kolkata", "retries": {"count": 2}},
    )
    changed = http.ok("GET", "/_api/tasks/p?details=true")
    server.kill9()
    server.start()
    http = Http(server.url)
    again = http.ok("GET", "/_api/tasks/p?details=true")
    assert again == changed
    assert again["created"] == first["created"] and again["revision"] == 2
    assert again["retries"] == {"count": 2, "delay": 0.0, "backoff": 1.0, "maxDelay": None}
    assert again["nextRunAt"].endswith("22:30:00.000000Z")  # 04:00 in Kolkata (+05:30)
