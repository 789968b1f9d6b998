"""Fairness between users: the pool is shared between owners, each user's time limit and runs
at once are bounded, manual runs queue within bounds, and quotas bound what a user may keep."""

import asyncio
import json

import pytest

from tests.api.helpers import create, runs, wait_runs
from tests.conftest import ALICE, CAROL, ROOT, USERS_TOML, basic

CAROL_TASKS = "/_db/other/_api/tasks"
CAROL_RUNS = "/_db/other/_api/runs"
DAVE = basic("dave", "dave-pw")


@pytest.fixture
def limited_users(tmp_path):
    """The usual users plus dave, whose own limits are in the users file."""
    path = tmp_path / "limited.toml"
    path.write_text(
        USERS_TOML
        + """
[[users]]
name = "dave"
password = "dave-pw"
max_timeout = 1.5
max_runs = 1
max_tasks = 2
max_command_kb = 1
max_params_kb = 1
"""
    )
    return path


async def post(client, body, headers=ROOT, path="/_api/tasks"):
    return await client.post(path, data=json.dumps(body), headers=headers)


async def test_another_users_task_runs_while_one_user_hogs_the_pool(make_client):
    client = await make_client(workers=2)
    for i in range(2):
        await create(client, ALICE, id=f"hog{i}", command="while (true) {}", timeout=60)
    await create(client, CAROL, path=CAROL_TASKS, id="victim", command="return 1;", period=0.1)
    # Alice may hold one of the two workers (one less than the pool): Carol's runs go on.
    async with asyncio.timeout(30):
        while True:
            page = await runs(client, "taskIds=victim&statuses=succeeded", CAROL, CAROL_RUNS)
            if page["total"] >= 3:
                break
            await asyncio.sleep(0.05)
    hogs = await runs(client, "taskIds=hog0,hog1&statuses=processing", ALICE)
    assert hogs["total"] == 1


async def test_a_user_cannot_ask_for_a_timeout_beyond_their_maximum(make_client):
    client = await make_client()
    resp = await post(client, {"command": "return 1;", "timeout": 3600}, ALICE)
    assert resp.status == 400
    assert await resp.json() == {
        "error": True,
        "errorNum": 10,
        "errorMessage": "timeout must be a positive number of seconds, at most 300",
        "code": 400,
    }
    await create(client, ALICE, command="return 1;", timeout=300, offset=3600)
    # Superusers keep the hard maximum.
    await create(client, ROOT, command="return 1;", timeout=3600, offset=3600)


async def test_a_users_own_limits_from_the_users_file(make_client, limited_users):
    client = await make_client(config=limited_users, workers=2)
    resp = await post(client, {"command": "return 1;", "timeout": 2}, DAVE)
    assert (await resp.json())["errorMessage"] == (
        "timeout must be a positive number of seconds, at most 1.5"
    )
    # The default timeout (5 s here) is cut to dave's maximum when his runs run.
    await create(client, DAVE, id="spin0", command="while (true) {}")
    await create(client, DAVE, id="spin1", command="while (true) {}")
    # One run at a time: the other waits although a worker is free.
    async with asyncio.timeout(20):
        while (await runs(client, "statuses=processing", DAVE))["total"] < 1:
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)
    assert (await runs(client, "statuses=processing", DAVE))["total"] == 1
    assert (await runs(client, "statuses=enqueued", DAVE))["total"] == 1
    done = await wait_runs(client, "taskIds=spin0,spin1", 2, within=30, headers=DAVE)
    for run in done["results"]:
        # The CPU limit, or on a starved machine the wall-clock deadline it implies (2x + 3 s).
        assert run["error"]["type"] == "timeout"
        message = run["error"]["message"]
        assert "CPU time limit of 1.5 s" in message or "deadline of 6 s" in message


async def test_manual_runs_queue_within_bounds(make_client):
    client = await make_client(max_queued_manual_runs_per_task=3, max_queued_manual_runs=5)
    for name in ("slow", "other"):
        await create(client, id=name, command="while (true) {}", timeout=3, offset=3600)
    statuses = [(await client.post("/_api/tasks/slow/run", headers=ROOT)).status for _ in range(4)]
    # The first run starts at once (it leaves the queue), three wait behind it.
    async with asyncio.timeout(20):
        while (await runs(client, "statuses=processing"))["total"] < 1:
            await asyncio.sleep(0.02)
        while True:
            resp = await client.post("/_api/tasks/slow/run", headers=ROOT)
            if resp.status == 429:
                break
            statuses.append(resp.status)
            await asyncio.sleep(0.02)
    assert set(statuses) == {202}
    assert await resp.json() == {
        "error": True,
        "errorNum": 21003,
        "errorMessage": "too many manual runs of task 'slow' waiting to start (at most 3); "
        "try again when one has started",
        "code": 429,
    }
    # Two more of another task fill the overall bound of 5.
    for _ in range(2):
        assert (await client.post("/_api/tasks/other/run", headers=ROOT)).status == 202
    resp = await client.post("/_api/tasks/other/run", headers=ROOT)
    assert resp.status == 429
    assert (await resp.json())["errorMessage"] == (
        "too many manual runs waiting to start (at most 5 in all); try again later"
    )


async def test_quotas_bound_tasks_and_bytes_per_user(make_client, limited_users):
    client = await make_client(
        config=limited_users, user_max_tasks=3, user_max_command_kb=2, user_max_params_kb=2
    )
    for i in range(3):
        await create(client, ALICE, id=f"a{i}", command="return 1;", offset=3600)
    resp = await post(client, {"command": "return 1;"}, ALICE)
    assert resp.status == 403
    assert await resp.json() == {
        "error": True,
        "errorNum": 32,
        "errorMessage": "quota exceeded: user 'alice' may have at most 3 tasks",
        "code": 403,
    }
    # Deleting a task gives its share back.
    assert (await client.delete("/_api/tasks/a0", headers=ALICE)).status == 200
    await create(client, ALICE, id="a3", command="return 1;", offset=3600)
    # Dave's own limits: 2 tasks, 1 KiB of commands and 1 KiB of params in all.
    await create(client, DAVE, command="//" + "x" * 600, offset=3600)
    resp = await post(client, {"command": "//" + "x" * 600}, DAVE)
    assert (await resp.json())["errorMessage"] == (
        "quota exceeded: user 'dave' may have at most 1 KiB of commands in all its tasks"
    )
    resp = await post(client, {"command": "return 1;", "params": "p" * 1100}, DAVE)
    assert (resp.status, (await resp.json())["errorMessage"]) == (
        403,
        "quota exceeded: user 'dave' may have at most 1 KiB of params in all its tasks",
    )
    # Superusers are exempt from the defaults.
    for _ in range(5):
        await create(client, ROOT, command="return 1;", offset=3600)


async def test_concurrent_creates_cannot_overshoot_a_quota(make_client):
    client = await make_client(user_max_tasks=5)
    answers = await asyncio.gather(
        *(post(client, {"command": f"return {i};", "offset": 3600}, ALICE) for i in range(12))
    )
    assert sorted(resp.status for resp in answers) == [200] * 5 + [403] * 7
    listed = await (await client.get("/_api/tasks", headers=ALICE)).json()
    assert len(listed) == 5
