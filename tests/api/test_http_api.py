"""Outbound HTTP through the whole service: run records with ``requests``, a hung remote while the
API keeps answering, and HTTP tasks that cannot starve the tasks making no calls."""

import asyncio
import json
from collections.abc import AsyncIterator

import pytest_asyncio

from tests.api.helpers import create, wait_runs
from tests.conftest import ROOT
from tests.unit.http_remote import remote_app, serve


@pytest_asyncio.fixture
async def remote() -> AsyncIterator[int]:
    async with serve(remote_app()) as port:
        yield port


async def test_a_run_record_lists_its_requests(make_client, remote):
    client = await make_client(http_allow=f"127.0.0.1:{remote}")
    url = f"http://127.0.0.1:{remote}"
    task = await create(
        client,
        command=f"var r = require('@arangodb/request'); r.get('{url}/echo');"
        f" try {{ r.get('{url}/status/500'); r.get('http://127.0.0.1:1/'); }} catch (e) {{}}"
        " return 1;",
    )
    page = await wait_runs(client, f"taskIds={task['id']}", 1)
    run = page["results"][0]
    assert run["status"] == "succeeded", run
    assert [(r["method"], r["url"], r["status"]) for r in run["requests"]] == [
        ("GET", f"{url}/echo", 200),
        ("GET", f"{url}/status/500", 500),
        ("GET", "http://127.0.0.1:1/", None),
    ]
    assert run["requests"][2]["error"].startswith("request to 127.0.0.1 refused")
    assert all(isinstance(r["durationMs"], int) for r in run["requests"])
    # The record reads back the same from the store.
    one = await client.get(f"/_api/runs/{run['uid']}", headers=ROOT)
    assert (await one.json())["requests"] == run["requests"]


async def test_without_an_allowlist_a_request_fails_naming_the_setting(client, remote):
    task = await create(
        client, command=f"require('@arangodb/request').get('http://127.0.0.1:{remote}/echo')"
    )
    run = (await wait_runs(client, f"taskIds={task['id']}", 1))["results"][0]
    assert run["status"] == "failed"
    assert "ARANGOTASKS_HTTP_ALLOW is empty" in run["error"]["message"]


async def test_a_hung_remote_holds_neither_the_api_nor_the_plain_tasks(make_client, remote):
    # One worker for plain runs, one for runs that call out: a flood of HTTP tasks waiting on
    # a remote that never answers must leave the plain tasks their worker.
    client = await make_client(
        http_allow=f"127.0.0.1:{remote}", workers=1, http_workers=1, timeout=30.0
    )
    hung = f"require('@arangodb/request').get('http://127.0.0.1:{remote}/slow?s=60')"
    flood = [await create(client, name=f"hung-{i}", command=hung) for i in range(4)]
    async with asyncio.timeout(20):
        while True:  # wait until the hung ones are waiting on the remote
            page = await client.get("/_api/runs?statuses=processing", headers=ROOT)
            if (await page.json())["total"] >= 1:
                break
            await asyncio.sleep(0.05)
    plain = await create(client, name="plain", command="return 42;")
    run = (await wait_runs(client, f"taskIds={plain['id']}", 1, within=20))["results"][0]
    assert (run["status"], run["result"]) == ("succeeded", 42)
    # The API answers meanwhile, and the hung runs are still going.
    listing = await client.get("/_api/tasks", headers=ROOT)
    assert listing.status == 200
    flood_ids = ",".join(task["id"] for task in flood)
    page = await client.get(
        f"/_api/runs?taskIds={flood_ids}&statuses=succeeded,failed", headers=ROOT
    )
    assert (await page.json())["total"] == 0
    text = json.dumps(await listing.json())
    assert "hung-0" in text
