"""The run history API: fields, filters, pagination, manual runs, visibility, retention."""

import asyncio
import json
from datetime import datetime

import pytest
from dirty_equals import IsPositiveInt, IsStr

from tests.api.helpers import create, runs, wait_runs
from tests.conftest import ALICE, BOB, ROOT

ISO = IsStr(regex=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


async def test_every_field_of_a_succeeded_run(client):
    task = await create(
        client,
        name="echo",
        command="print('hi', params.a); console.warn('w'); return params;",
        params={"a": [1, "x"]},
    )
    page = await wait_runs(client, f"taskIds={task['id']}", 1)
    assert page["results"] == [
        {
            "uid": IsPositiveInt,
            "taskId": task["id"],
            "taskName": "echo",
            "database": "_system",
            "status": "succeeded",
            "trigger": "schedule",
            "scheduledAt": ISO,
            "enqueuedAt": ISO,
            "startedAt": ISO,
            "finishedAt": ISO,
            "duration": IsStr(regex=r"^PT\d+(\.\d+)?S$"),
            "result": {"a": [1, "x"]},
            "output": ['hi [1,"x"]', "WARN: w"],
            "error": None,
            "requests": [],
            "attempt": 1,
            "revision": 1,
            "node": IsStr(min_length=1),
        }
    ]
    run = page["results"][0]
    assert run["startedAt"] <= run["finishedAt"]
    one = await client.get(f"/_api/runs/{run['uid']}", headers=ROOT)
    assert await one.json() == run


async def test_failed_run_has_the_error_with_stack(client):
    task = await create(
        client,
        command="function boom() { throw new TypeError('bad ' + params); }\nboom();",
        params=7,
    )
    page = await wait_runs(client, f"taskIds={task['id']}", 1)
    run = page["results"][0]
    assert run["status"] == "failed"
    assert run["error"] == {
        "type": "exception",
        "name": "TypeError",
        "message": "bad 7",
        "stack": IsStr(regex=r"(?s).*at boom .*"),
    }


async def test_timeout_error_type(make_client):
    client = await make_client(timeout=0.3)
    task = await create(client, command="while (true) {}")
    run = (await wait_runs(client, f"taskIds={task['id']}", 1))["results"][0]
    assert (run["status"], run["error"]["type"]) == ("failed", "timeout")


async def test_per_task_timeout(client):
    task = await create(client, command="while (true) {}", timeout=0.2)
    run = (await wait_runs(client, f"taskIds={task['id']}", 1))["results"][0]
    assert run["error"]["type"] == "timeout"


async def test_manual_run(client):
    task = await create(client, id="m", command="return 'manual';", period=3600, offset=3600)
    resp = await client.post("/_api/tasks/m/run", headers=ROOT)
    assert resp.status == 202
    accepted = await resp.json()
    assert accepted["status"] == "enqueued" and accepted["trigger"] == "manual"
    page = await wait_runs(client, "taskIds=m", 1)
    assert page["results"][0]["uid"] == accepted["uid"]
    assert page["results"][0]["result"] == "manual"
    # The schedule did not change.
    got = await (await client.get("/_api/tasks/m?details=true", headers=ROOT)).json()
    assert datetime.fromisoformat(got["nextRunAt"]).timestamp() == pytest.approx(
        task["created"] + 3600, abs=0.01
    )
    assert (await client.post("/_api/tasks/nope/run", headers=ROOT)).status == 404
    assert (await client.post("/_api/tasks/m/run", headers=BOB)).status == 403


async def test_details_view(client):
    await create(client, id="d", command="throw new Error('x')", period=0.05)
    await wait_runs(client, "taskIds=d", 2)
    body = await (await client.get("/_api/tasks/d?details=true", headers=ROOT)).json()
    assert body["runs"] >= 2 and body["failures"] >= 2
    assert body["lastRun"]["status"] in ("failed", "processing")
    plain = await (await client.get("/_api/tasks/d", headers=ROOT)).json()
    assert "runs" not in plain and "nextRunAt" not in plain
    listed = await (await client.get("/_api/tasks?details=true", headers=ROOT)).json()
    assert listed[0]["id"] == "d" and "failures" in listed[0]


async def test_task_runs_route_and_pagination(client):
    await create(client, id="p", command="return 1;", period=0.01)
    await wait_runs(client, "taskIds=p", 7)
    await client.delete("/_api/tasks/p", headers=ROOT)
    page1 = await runs(client, "limit=3&statuses=succeeded")
    total = page1["total"]
    assert len(page1["results"]) == 3
    uids = [r["uid"] for r in page1["results"]]
    assert uids == sorted(uids, reverse=True)
    assert page1["from"] == uids[0]
    assert page1["next"] < uids[-1]
    seen = list(uids)
    page = page1
    while page["next"] is not None:
        page = await runs(client, f"limit=3&statuses=succeeded&from={page['next']}")
        seen += [r["uid"] for r in page["results"]]
    assert len(seen) == len(set(seen)) == total
    assert page["next"] is None
    forward = await runs(client, "limit=1000&statuses=succeeded&reverse=true")
    assert [r["uid"] for r in forward["results"]] == sorted(seen)
    # The task is gone, its runs stay.
    assert (await client.get("/_api/tasks/p/runs", headers=ROOT)).status == 404


async def test_task_runs_route(client):
    await create(client, id="r1", period=3600)
    await create(client, id="r2", period=3600)
    await wait_runs(client, "taskIds=r1,r2", 2)
    page = await runs(client, path="/_db/_system/_api/tasks/r1/runs")
    assert {r["taskId"] for r in page["results"]} == {"r1"}


async def test_empty_page(client):
    assert await runs(client) == {
        "results": [],
        "total": 0,
        "limit": 20,
        "from": None,
        "next": None,
    }
    assert (await runs(client, "limit=0"))["results"] == []


async def test_filters(client):
    await create(client, id="ok", command="return 1;", period=3600)
    await create(client, id="bad", command="throw 1;", period=3600)
    await wait_runs(client, "taskIds=ok,bad", 2)
    await client.post("/_api/tasks/ok/run", headers=ROOT)
    await wait_runs(client, "taskIds=ok", 2)
    assert {r["taskId"] for r in (await runs(client, "statuses=failed"))["results"]} == {"bad"}
    assert (await runs(client, "trigger=manual"))["total"] == 1
    assert (await runs(client, "trigger=schedule&taskIds=ok"))["total"] == 1
    assert (await runs(client, "afterStartedAt=2999-01-01T00:00:00Z"))["total"] == 0
    assert (await runs(client, "beforeStartedAt=2999-01-01T00:00:00%2B01:00"))["total"] == 3
    assert (await runs(client, "database=_system"))["total"] == 3
    assert (await runs(client, "database=testdb"))["total"] == 0


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("statuses=done", "statuses"),
        ("statuses=", "statuses"),
        ("trigger=cron", "trigger"),
        ("limit=-1", "limit"),
        ("limit=abc", "limit"),
        ("limit=100000", "limit"),
        ("from=x", "from"),
        ("reverse=maybe", "reverse"),
        ("afterStartedAt=yesterday", "afterStartedAt"),
        ("beforeStartedAt=2026-01-01T00:00:00", "beforeStartedAt"),
        ("colour=blue", "colour"),
    ],
)
async def test_bad_filters_name_the_parameter(client, query, name):
    resp = await client.get(f"/_api/runs?{query}", headers=ROOT)
    body = await resp.json()
    assert (resp.status, body["errorNum"], body["code"]) == (400, 10, 400)
    assert f"'{name}'" in body["errorMessage"]


async def test_unknown_run(client):
    resp = await client.get("/_api/runs/999999", headers=ROOT)
    assert (resp.status, (await resp.json())["errorNum"]) == (404, 404)
    assert (await client.get("/_api/runs/abc", headers=ROOT)).status == 400


async def test_users_see_only_runs_of_their_tasks(client):
    mine = await create(client, headers=ALICE, command="return 'alice';")
    await create(client, command="return 'root';")
    await wait_runs(client, "", 2)
    alice_page = await runs(client, headers=ALICE)
    assert [r["taskId"] for r in alice_page["results"]] == [mine["id"]]
    assert alice_page["total"] == 1
    other = next(r for r in (await runs(client))["results"] if r["taskId"] != mine["id"])
    assert (await client.get(f"/_api/runs/{other['uid']}", headers=ALICE)).status == 404
    assert (await client.get(f"/_api/runs/{other['uid']}", headers=BOB)).status == 404
    assert (await client.get(f"/_api/runs/{other['uid']}", headers=ROOT)).status == 200


async def test_retention_keeps_the_newest_runs_per_task(make_client):
    client = await make_client(history_keep=3, prune_interval=0.05)
    await create(client, id="k", period=0.005)
    await wait_runs(client, "taskIds=k", 10)
    await client.delete("/_api/tasks/k", headers=ROOT)
    async with asyncio.timeout(5):
        while (await runs(client, "taskIds=k"))["total"] > 3:
            await asyncio.sleep(0.05)
    kept = await runs(client, "taskIds=k")
    assert kept["total"] == 3


async def test_history_off_records_nothing(make_client):
    client = await make_client(history=False)
    task = await create(client, command="return 1;", period=0.01)
    resp = await client.post(f"/_api/tasks/{task['id']}/run", headers=ROOT)
    assert resp.status == 202
    assert (await runs(client))["total"] == 0


async def test_runs_under_db_prefix(client):
    await create(client, path="/_db/testdb/_api/tasks", command="return 2;")
    page = await wait_runs(client, "database=testdb", 1)
    assert page["results"][0]["database"] == "testdb"
    via_prefix = await runs(client, path="/_db/testdb/_api/runs")
    assert via_prefix["total"] == 1
    body = json.dumps(via_prefix)
    assert "testdb" in body


async def test_started_at_is_when_a_worker_took_the_run(make_client):
    client = await make_client(workers=1)
    slow = "const end = Date.now() + 300; while (Date.now() < end) {} return 'slow';"
    await create(client, id="slow", command=slow, period=3600, offset=3600)
    await create(client, id="quick", period=3600, offset=3600)
    assert (await client.post("/_api/tasks/slow/run", headers=ROOT)).status == 202
    assert (await client.post("/_api/tasks/quick/run", headers=ROOT)).status == 202
    page = await wait_runs(client, "taskIds=slow,quick", 2)
    got = {run["taskId"]: run for run in page["results"]}
    at = {key: datetime.fromisoformat(value) for key, value in got["quick"].items() if "At" in key}
    slow_finished = datetime.fromisoformat(got["slow"]["finishedAt"])
    # quick waited for the only worker: queued before slow finished, started after it.
    assert at["enqueuedAt"] < slow_finished <= at["startedAt"] <= at["finishedAt"]
    assert float(got["quick"]["duration"][2:-1]) < 0.25
