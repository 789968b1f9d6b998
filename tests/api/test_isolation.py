"""A busy or hostile task never stalls the API or other tasks."""

import json

from tests.api.helpers import create, runs, wait_runs
from tests.conftest import ROOT


async def test_api_answers_while_two_cpu_heavy_runs_go_on(make_client):
    client = await make_client(workers=2, timeout=3.0)
    for i in range(2):
        await create(client, id=f"burn{i}", command="while (true) {}")
    await wait_runs_processing(client, 2)
    for i in range(100):
        await create(client, id=f"quick{i}", command="return 1;", offset=3600)
        assert (await client.get(f"/_api/tasks/quick{i}", headers=ROOT)).status == 200
    listed = await (await client.get("/_api/tasks", headers=ROOT)).json()
    assert len(listed) == 102
    # Both burners are still inside their 3 s limit: the 200 requests did not wait for them.
    page = await runs(client, "statuses=processing")
    assert {r["taskId"] for r in page["results"]} == {"burn0", "burn1"}
    done = await wait_runs(client, "taskIds=burn0,burn1", 2)
    assert {r["error"]["type"] for r in done["results"]} == {"timeout"}


async def wait_runs_processing(client, count):
    import asyncio

    async with asyncio.timeout(10):
        while (await runs(client, "statuses=processing"))["total"] < count:
            await asyncio.sleep(0.02)


async def test_a_crashing_task_does_not_hurt_others(make_client):
    client = await make_client(workers=2, memory_mb=16)
    await create(
        client, id="bomb", command="var a = []; while (true) a.push(new Array(1e5).fill(1));"
    )
    await create(client, id="good", command="return params.n * 2;", params={"n": 21}, period=0.05)
    page = await wait_runs(client, "taskIds=good", 5)
    assert {r["result"] for r in page["results"]} == {42}
    bomb = (await wait_runs(client, "taskIds=bomb", 1))["results"][0]
    assert bomb["status"] == "failed"
    assert bomb["error"]["type"] in {"memory", "crash"}
    resp = await client.get("/_api/tasks/good", headers=ROOT)
    assert json.loads(await resp.text())["id"] == "good"
