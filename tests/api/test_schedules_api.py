"""Schedule extensions through the whole service: cron tasks, PATCH, pause/resume, next slots,
preview, retries, overlap and endAt (real SQLite store, real QuickJS workers).

No timing assertions: waits poll with generous deadlines; counts have wide bounds.
"""

import asyncio
import itertools
import json
import time
from datetime import datetime

import pytest

from tests.api.helpers import create
from tests.conftest import BOB, ROOT

BERLIN_NIGHT = "2036-03-29T12:00:00Z"  # the night to 2036-03-30 springs forward


def ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def call(client, method, path, body=None, headers=ROOT):
    data = None if body is None else json.dumps(body)
    resp = await client.request(method, path, data=data, headers=headers)
    return resp.status, await resp.json()


async def runs_of(client, task_id: str, statuses: str = "") -> list[dict]:
    query = f"taskIds={task_id}&limit=1000&reverse=true"
    if statuses:
        query += f"&statuses={statuses}"
    status, page = await call(client, "GET", f"/_api/runs?{query}")
    assert status == 200, page
    return page["results"]


async def wait_for(client, task_id: str, count: int, statuses: str, within: float = 20.0):
    async with asyncio.timeout(within):
        while True:
            found = await runs_of(client, task_id, statuses)
            if len(found) >= count:
                return found
            await asyncio.sleep(0.05)


async def test_a_cron_task_looks_periodic_to_arangodb_clients(client):
    body = await create(client, id="c", cron="30 2 * * *", timezone="Europe/Berlin", offset=0)
    assert list(body) == [
        "id", "name", "created", "type", "offset", "command", "database", "cron", "timezone",
    ]  # fmt: skip
    assert body["type"] == "periodic" and "period" not in body
    assert (body["cron"], body["timezone"]) == ("30 2 * * *", "Europe/Berlin")
    assert (await call(client, "GET", "/_api/tasks/c"))[1] == body
    default_zone = await create(client, cron="@hourly")
    assert default_zone["timezone"] == "UTC"


async def test_an_arangodb_task_has_plain_details_defaults(client):
    body = await create(client, id="p", period=60, offset=30)
    assert list(body) == [
        "id",
        "name",
        "created",
        "type",
        "period",
        "offset",
        "command",
        "database",
    ]
    _, details = await call(client, "GET", "/_api/tasks/p?details=true")
    assert details["cron"] is None and details["enabled"] is True and details["revision"] == 1
    assert details["overlap"] == "skip" and details["misfire"] == "run_once"
    assert details["timeout"] == 5.0 and details["retries"] is None
    assert ts(details["nextRunAt"]) == pytest.approx(body["created"] + 30, abs=0.01)


async def test_every_second_runs_about_once_a_second(client):
    await create(client, id="s", cron="* * * * * *")
    found = await wait_for(client, "s", 4, "succeeded")
    slots = [ts(r["scheduledAt"]) for r in found]
    assert all(slot == int(slot) for slot in slots)  # whole-second slots
    assert len(set(slots)) == len(slots)  # never twice for a slot
    assert len(slots) <= slots[-1] - slots[0] + 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"cron": "* * * * *", "period": 1}, "cron"),
        ({"cron": "60 * * * *"}, "cron"),
        ({"cron": "* * * * *", "timezone": "Europe/Nowhere"}, "timezone"),
        ({"jitter": -1}, "jitter"),
        ({"startAt": "soon"}, "startAt"),
        ({"endAt": "2000-01-01T00:00:00Z"}, "endAt"),
        ({"retries": {"count": "3"}}, "retries"),
        ({"overlap": "queue"}, "overlap"),
        ({"misfire": "never"}, "misfire"),
        ({"enabled": 0}, "enabled"),
    ],
)
async def test_bad_schedule_fields_are_400_10_naming_the_field(client, body, field):
    status, error = await call(client, "POST", "/_api/tasks", {"command": "1", **body})
    assert (status, error["errorNum"]) == (400, 10)
    assert error["errorMessage"].startswith(f"{field}: "), error


async def test_patch_changes_in_place(client):
    first = await create(client, id="t", name="before", period=3600, offset=100, params={"a": 1})
    status, body = await call(client, "PATCH", "/_api/tasks/t", {"name": "after"})
    assert status == 200
    assert body == {**first, "name": "after"}  # id, created, period, offset stay
    _, details = await call(client, "GET", "/_api/tasks/t?details=true")
    assert details["revision"] == 2 and details["nextRunAt"] is not None
    assert ts(details["nextRunAt"]) == pytest.approx(first["created"] + 100, abs=0.01)
    # Switch to cron: the next slot follows the new schedule; runs carry the revision.
    status, body = await call(
        client,
        "PATCH",
        "/_db/_system/_api/tasks/t",
        {"cron": "* * * * * *", "command": "return params.a;"},
    )
    assert status == 200 and body["type"] == "periodic" and "period" not in body
    found = await wait_for(client, "t", 1, "succeeded")
    assert (found[0]["revision"], found[0]["result"]) == (3, 1)
    assert (await call(client, "PATCH", "/_api/tasks/t", {"command": "for (i"}))[1][
        "errorMessage"
    ] == "cannot compile command"
    status, error = await call(client, "PATCH", "/_api/tasks/t", {"offset": 5})
    assert (status, error["errorNum"]) == (400, 10) and error["errorMessage"].startswith("offset:")
    assert (await call(client, "PATCH", "/_api/tasks/nope", {"name": "x"}))[0] == 404
    assert (await call(client, "PATCH", "/_api/tasks", {"name": "x"}))[0] == 405


async def test_read_only_users_cannot_change_tasks(client):
    await create(client, id="ro", period=3600)
    reader = BOB  # read-only in the test users file
    for method, path, body in (
        ("PATCH", "/_api/tasks/ro", {"name": "x"}),
        ("POST", "/_api/tasks/ro/pause", None),
        ("POST", "/_api/tasks/ro/resume", None),
    ):
        status, error = await call(client, method, path, body, headers=reader)
        assert (status, error["errorNum"]) == (403, 11), (method, path, error)


async def test_pause_and_resume(client):
    await create(client, id="pz", cron="* * * * * *")
    await wait_for(client, "pz", 1, "succeeded")
    status, body = await call(client, "POST", "/_api/tasks/pz/pause")
    assert status == 200 and body["id"] == "pz"
    _, details = await call(client, "GET", "/_api/tasks/pz?details=true")
    assert details["enabled"] is False and details["nextRunAt"] is None
    assert (await call(client, "GET", "/_api/tasks/pz/next"))[1] == {"nextRuns": []}
    await asyncio.sleep(0.5)  # a run that had started finishes
    before = len(await runs_of(client, "pz"))
    await asyncio.sleep(2.5)  # more than two slots
    assert len(await runs_of(client, "pz")) == before  # a paused task never fires
    # A manual run still runs it.
    status, _ = await call(client, "POST", "/_api/tasks/pz/run")
    assert status == 202
    await wait_for(client, "pz", before + 1, "succeeded")
    status, body = await call(client, "POST", "/_db/_system/_api/tasks/pz/resume")
    assert status == 200
    found = await wait_for(client, "pz", before + 2, "succeeded")
    assert found[-1]["trigger"] == "schedule"


async def test_next_slots_and_their_count(client):
    await create(client, id="n", cron="30 2 * * *", timezone="Europe/Berlin", startAt=BERLIN_NIGHT)
    status, body = await call(client, "GET", "/_api/tasks/n/next?count=3")
    assert status == 200
    # 2036-03-30 has no 02:30 in Berlin: that day's slot is 03:00 CEST.
    assert body == {
        "nextRuns": [
            "2036-03-30T01:00:00.000000Z",
            "2036-03-31T00:30:00.000000Z",
            "2036-04-01T00:30:00.000000Z",
        ]
    }
    for bad in ("0", "101", "x"):
        status, error = await call(client, "GET", f"/_api/tasks/n/next?count={bad}")
        assert (status, error["errorNum"]) == (400, 10) and error["errorMessage"].startswith(
            "count:"
        )
    assert (await call(client, "GET", "/_api/tasks/none/next"))[0] == 404


async def test_preview(client):
    status, body = await call(
        client,
        "POST",
        "/_api/schedules/preview",
        {
            "cron": "0 * * * *",
            "timezone": "Europe/Berlin",
            "count": 4,
            "from": "2026-10-24T23:30:00Z",
        },
    )
    assert status == 200
    # Fall back: 02:00 fires once (CEST), the repeated 02:00 CET does not.
    assert body["nextRuns"] == [
        "2026-10-25T00:00:00.000000Z",
        "2026-10-25T02:00:00.000000Z",
        "2026-10-25T03:00:00.000000Z",
        "2026-10-25T04:00:00.000000Z",
    ]
    status, body = await call(
        client,
        "POST",
        "/_db/_system/_api/schedules/preview",
        {"period": 1.5, "count": 2, "from": "2026-01-01T00:00:00Z"},
    )
    assert body == {"nextRuns": ["2026-01-01T00:00:01.500000Z", "2026-01-01T00:00:03.000000Z"]}
    for bad, field in (
        ({}, "cron"),
        ({"cron": "@daily", "period": 1}, "cron"),
        ({"cron": "@daily", "count": 0}, "count"),
        ({"cron": "@daily", "from": "later"}, "from"),
        ({"period": -1}, "period"),
        ({"period": 1, "timezone": "UTC"}, "timezone"),
        ({"cron": "@daily", "extra": 1}, "extra"),
    ):
        status, error = await call(client, "POST", "/_api/schedules/preview", bad)
        assert (status, error["errorNum"]) == (400, 10), bad
        assert error["errorMessage"].startswith(f"{field}: "), error


async def test_retries_with_delays_and_backoff(client):
    retries = {"count": 2, "delay": 0.2, "backoff": 2}
    await create(client, id="r", command="throw new Error('no');", retries=retries)
    found = await wait_for(client, "r", 3, "failed")
    assert [r["attempt"] for r in found] == [1, 2, 3]
    assert len({r["scheduledAt"] for r in found}) == 1  # one slot
    gaps = [ts(b["enqueuedAt"]) - ts(a["finishedAt"]) for a, b in itertools.pairwise(found)]
    assert gaps[0] >= 0.2 - 1e-3 and gaps[1] >= 0.4 - 1e-3  # the delays are minimums
    await asyncio.sleep(0.8)
    assert len(await runs_of(client, "r")) == 3  # count 2: three attempts in all


async def test_a_slot_while_the_last_run_goes_is_recorded_as_skipped(client):
    busy = "var end = Date.now() + 2500; while (Date.now() < end) {} return 1;"
    await create(client, id="o", cron="* * * * * *", command=busy, timeout=10)
    skipped = await wait_for(client, "o", 1, "skipped")
    assert skipped[0]["error"]["type"] == "overlap"
    assert skipped[0]["startedAt"] is None and skipped[0]["finishedAt"] is not None
    ran = await wait_for(client, "o", 1, "succeeded")
    assert ran[0]["scheduledAt"] not in {s["scheduledAt"] for s in skipped}


async def test_end_at_finishes_the_task_and_keeps_its_history(client):
    end = datetime.fromtimestamp(time.time() + 2.5).astimezone().isoformat()
    await create(client, id="e", cron="* * * * * *", endAt=end)
    async with asyncio.timeout(20):
        while (await call(client, "GET", "/_api/tasks/e"))[0] != 404:
            await asyncio.sleep(0.1)
    found = await runs_of(client, "e")
    assert found and all(ts(r["scheduledAt"]) <= ts(end) for r in found)
