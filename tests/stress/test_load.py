"""Load: 50 concurrent clients create, read and delete tasks against a server that runs 1,000
periodic tasks. Zero 5xx; when the dust settles the task list equals what the acknowledged
operations imply (no lost task, no ghost) and every scheduled task has a pending job.

``STRESS_SECONDS`` (default 60) sets how long the clients write; ``make stress`` runs it.
"""

import asyncio
import os
import random
import time
from collections import Counter

import aiohttp
import pytest

from tests.conftest import ROOT
from tests.e2e.http import Http

pytestmark = pytest.mark.stress

CLIENTS = 50
BACKGROUND_TASKS = 1000
IDS_PER_CLIENT = 20


@pytest.fixture
def busy_server(make_server):
    server = make_server(ARANGOTASKS_HISTORY_KEEP="5", ARANGOTASKS_PRUNE_INTERVAL="5")
    http = Http(server.url)
    for i in range(BACKGROUND_TASKS):
        # Spread over the second so that the runs do not all start at once.
        http.ok(
            "PUT",
            f"/_api/tasks/bg{i}",
            {
                "command": "return params.i * 2;",
                "params": {"i": i},
                "period": 1,
                "offset": (i % 100) / 100,
            },
        )
    http.close()
    return server


async def client_loop(url: str, n: int, until: float, acked: dict, counts: Counter) -> None:
    """One client owns its ids, so the last acknowledged operation on each id is exact."""
    rng = random.Random(n)
    async with aiohttp.ClientSession(url, headers=ROOT) as session:
        while time.monotonic() < until:
            task_id = f"load{n}-{rng.randrange(IDS_PER_CLIENT)}"
            roll = rng.random()
            if roll < 0.45:
                method, path = "PUT", f"/_api/tasks/{task_id}"
                body = {"command": "return 1;", "period": rng.choice([0.5, 1, 5]), "offset": 0.2}
            elif roll < 0.8:
                method, path, body = "DELETE", f"/_api/tasks/{task_id}", None
            else:
                method, path, body = "GET", f"/_api/tasks/{task_id}", None
            async with session.request(method, path, json=body) as resp:
                data = await resp.json()
                counts[resp.status] += 1
                assert resp.status < 500, (method, path, resp.status, data)
                if resp.status >= 400:
                    assert set(data) == {"error", "errorNum", "errorMessage", "code"}
                if resp.status == 200 and method != "GET":
                    acked[task_id] = method


SECONDS = float(os.environ.get("STRESS_SECONDS", "60"))


# The clients' time plus set-up (1,000 tasks) and the final checks with a restart.
@pytest.mark.timeout(SECONDS + 180)
def test_fifty_clients_against_a_thousand_running_tasks(busy_server):
    seconds = SECONDS
    acked: dict[str, str] = {}
    counts: Counter = Counter()

    async def main():
        until = time.monotonic() + seconds
        await asyncio.gather(
            *(client_loop(busy_server.url, n, until, acked, counts) for n in range(CLIENTS))
        )

    asyncio.run(main())
    http = Http(busy_server.url)
    listed = {t["id"] for t in http.ok("GET", "/_api/tasks")}
    expected = {task_id for task_id, op in acked.items() if op == "PUT"}
    assert {i for i in listed if i.startswith("load")} == expected
    assert {i for i in listed if i.startswith("bg")} == {f"bg{i}" for i in range(BACKGROUND_TASKS)}
    runs = http.ok("GET", "/_api/runs?limit=0")
    failed = http.ok("GET", "/_api/runs?limit=0&statuses=failed")
    print(
        f"\nload: {sum(counts.values())} requests in {seconds:g} s {dict(counts)}; "
        f"{len(expected)} client tasks left; runs recorded (after pruning) {runs['total']}, "
        f"failed {failed['total']}"
    )
    assert failed["total"] == 0
    busy_server.stop()
    busy_server.start()
    after = {t["id"] for t in Http(busy_server.url).ok("GET", "/_api/tasks")}
    assert after == listed
