"""kill -9 while clients create and delete tasks (and tasks run): after a restart the store holds
exactly what was acknowledged; only the one request each client had in flight may go either way."""

import random
import threading
import time

import pytest
import requests

from tests.e2e.http import Http

pytestmark = pytest.mark.e2e

CLIENTS = 8
IDS_PER_CLIENT = 6


def wait_for_writes(logs: list[list[tuple[str, str, bool | None]]]) -> None:
    """Until the clients have really been writing: at least 50 acknowledged operations (or 30 s,
    when the test's assertion says so), not a fixed time that a loaded machine may spend on a
    handful of requests."""
    deadline = time.monotonic() + 30
    time.sleep(0.5)
    while sum(len(log) for log in logs) <= 50 and time.monotonic() < deadline:
        time.sleep(0.05)


def test_kill9_during_writes_loses_and_duplicates_nothing(server):
    # Per client, its operations in order: (task id, "create"/"delete", acked: True/None=unknown).
    logs: list[list[tuple[str, str, bool | None]]] = [[] for _ in range(CLIENTS)]
    stop = threading.Event()

    def client(n: int) -> None:
        http = Http(server.url)
        rng = random.Random(n)
        while not stop.is_set():
            task_id = f"k{n}-{rng.randrange(IDS_PER_CLIENT)}"
            if rng.random() < 0.6:
                op, method, body = "create", "PUT", {"command": "return 1;", "period": 0.2}
            else:
                op, method, body = "delete", "DELETE", None
            try:
                status, _ = http.call(method, f"/_api/tasks/{task_id}", body)
            except requests.RequestException:
                logs[n].append((task_id, op, None))  # in flight when the server died
                return
            assert status in (200, 404, 409), status
            if status == 200:
                logs[n].append((task_id, op, True))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    wait_for_writes(logs)
    server.kill9()
    stop.set()
    for t in threads:
        t.join(30)
    assert sum(len(log) for log in logs) > 50  # the clients really were writing

    server.start()
    http = Http(server.url)
    listed = [t["id"] for t in http.ok("GET", "/_api/tasks")]
    assert len(listed) == len(set(listed))
    present = set(listed)
    for log in logs:
        state: dict[str, bool] = {}
        uncertain: set[str] = set()
        for task_id, op, acked in log:
            if acked:
                state[task_id] = op == "create"
            else:
                uncertain.add(task_id)
        for task_id, exists in state.items():
            if task_id not in uncertain:
                assert (task_id in present) == exists, (task_id, log)
    details = http.ok("GET", "/_api/version?details=true")["details"]
    # "scheduled" leaves out the tasks running right now: never more than there are tasks.
    assert int(details["tasks"]) == len(listed) >= int(details["scheduled"])
    # The surviving periodic tasks run again after the restart.
    if listed:
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
        http.wait_runs(f"taskIds={listed[0]}&afterStartedAt={since}", 1)
