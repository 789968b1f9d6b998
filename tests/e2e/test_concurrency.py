"""Many clients writing at once leave store and scheduler consistent: no lost task, no ghost."""

import random
import threading

import pytest

from tests.e2e.http import Http

pytestmark = pytest.mark.e2e

CLIENTS = 16
OPS_PER_CLIENT = 60


def test_concurrent_creates_and_deletes(server):
    acked: dict[str, str] = {}  # id -> last acknowledged operation
    lock = threading.Lock()
    errors: list[tuple[int, dict]] = []

    def client(n: int) -> None:
        http = Http(server.url)
        rng = random.Random(n)
        for _ in range(OPS_PER_CLIENT):
            # Odd clients own their ids (an exact oracle); even clients fight over shared ids.
            task_id = f"c{n}-{rng.randrange(8)}" if n % 2 else f"shared{rng.randrange(10)}"
            if rng.random() < 0.6:
                status, body = http.call(
                    "PUT", f"/_api/tasks/{task_id}", {"command": "return 1;", "offset": 3600}
                )
                op = "create"
            else:
                status, body = http.call("DELETE", f"/_api/tasks/{task_id}")
                op = "delete"
            if status >= 500 or status not in (200, 404, 409):
                errors.append((status, body))
            if status == 200 and n % 2:
                with lock:
                    acked[task_id] = op
        http.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    http = Http(server.url)
    listed = {t["id"] for t in http.ok("GET", "/_api/tasks")}
    owned = {task_id for task_id, op in acked.items() if op == "create"}
    assert {i for i in listed if not i.startswith("shared")} == owned
    details = http.ok("GET", "/_api/version?details=true")["details"]
    assert int(details["tasks"]) == int(details["scheduled"]) == len(listed)
    # The same after a restart: the store holds exactly what the server acknowledged.
    server.stop()
    server.start()
    http = Http(server.url)
    assert {t["id"] for t in http.ok("GET", "/_api/tasks")} == listed
