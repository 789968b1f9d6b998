"""``/_admin/metrics``, parsed by prometheus_client's own parser, compared with the runs API."""

import asyncio
import os
import signal

from prometheus_client.parser import text_string_to_metric_families

from arangotasks.keys import REGISTRY
from arangotasks.store.sqlite import SQLiteStore
from tests.api.helpers import create, runs, wait_runs
from tests.conftest import ALICE, ROOT

TOKEN = "scrape-token-123"


async def scrape(client, path="/_admin/metrics", headers=ROOT) -> dict[str, list]:
    resp = await client.get(path, headers=headers)
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("text/plain")
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(await resp.text()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def value(samples, name, **labels) -> float:
    found = [
        s.value
        for s in samples.get(name, [])
        if all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) <= 1, found
    return found[0] if found else 0.0


async def test_runs_and_tasks_match_the_runs_api(make_client):
    client = await make_client()
    ok = await create(client, command="return 1;", period=0.05)
    bad = await create(client, command="throw new Error('no');", period=0.05)
    await create(client, path="/_db/testdb/_api/tasks", command="return 2;", offset=3600)
    await wait_runs(client, f"taskIds={ok['id']}", 3)
    await wait_runs(client, f"taskIds={bad['id']}", 3)
    for task in (ok, bad):
        assert (await client.delete(f"/_api/tasks/{task['id']}", headers=ROOT)).status == 200
    async with asyncio.timeout(10):  # a run in progress finishes after its task is deleted
        while (await runs(client, "statuses=enqueued,processing"))["total"]:
            await asyncio.sleep(0.02)
    samples = await scrape(client)
    succeeded = (await runs(client, "statuses=succeeded"))["total"]
    failed = (await runs(client, "statuses=failed"))["total"]
    assert succeeded >= 3 and failed >= 3
    runs_total = "arangotasks_runs_total"
    assert value(samples, runs_total, status="succeeded", database="_system") == succeeded
    assert value(samples, runs_total, status="failed", database="_system") == failed
    assert value(samples, "arangotasks_run_duration_seconds_count") == succeeded + failed
    assert value(samples, "arangotasks_run_start_lateness_seconds_count") == succeeded + failed
    duration_buckets = samples["arangotasks_run_duration_seconds_bucket"]
    assert duration_buckets[-1].labels["le"] == "+Inf"
    assert duration_buckets[-1].value == succeeded + failed
    assert [b.value for b in duration_buckets] == sorted(b.value for b in duration_buckets)
    assert value(samples, "arangotasks_tasks", type="timed", database="testdb") == 1
    assert value(samples, "arangotasks_tasks", type="periodic", database="_system") == 0
    assert value(samples, "arangotasks_workers") == 1
    assert value(samples, "arangotasks_workers_busy") == 0
    assert value(samples, "arangotasks_runs_queued") == 0
    assert value(samples, "arangotasks_worker_restarts_total") == 0
    assert value(samples, "arangotasks_store_errors_total") == 0
    assert value(samples, "arangotasks_http_requests_total", method="POST", status="200") == 3
    assert value(samples, "arangotasks_http_requests_total", method="DELETE", status="200") == 2


async def test_v2_path_and_database_prefix(make_client):
    client = await make_client()
    for path in ("/_admin/metrics/v2", "/_db/testdb/_admin/metrics"):
        samples = await scrape(client, path)
        assert "arangotasks_workers" in samples


async def test_http_statuses_are_counted_with_bounded_labels(make_client):
    client = await make_client()
    assert (await client.get("/_api/tasks/nope", headers=ROOT)).status == 404
    assert (await client.get("/_api/tasks")).status == 401
    assert (await client.request("PROPFIND", "/_api/tasks", headers=ROOT)).status == 405
    samples = await scrape(client)
    assert value(samples, "arangotasks_http_requests_total", method="GET", status="404") == 1
    assert value(samples, "arangotasks_http_requests_total", method="GET", status="401") == 1
    assert value(samples, "arangotasks_http_requests_total", method="other", status="405") == 1
    label_sets = {frozenset(s.labels) for s in samples["arangotasks_http_requests_total"]}
    assert label_sets == {frozenset({"method", "status"})}


async def test_superusers_or_the_scrape_token_only(make_client):
    client = await make_client(metrics_token=TOKEN)
    assert (await client.get("/_admin/metrics")).status == 401
    resp = await client.get("/_admin/metrics", headers=ALICE)
    assert resp.status == 403
    assert (await resp.json())["errorNum"] == 11
    wrong = {"Authorization": "Bearer not-the-token"}
    assert (await client.get("/_admin/metrics", headers=wrong)).status == 401
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert "arangotasks_workers" in await scrape(client, headers=bearer)
    # The token opens the metrics, nothing else.
    assert (await client.get("/_api/tasks", headers=bearer)).status == 401
    resp = await client.get("/_db/nodb/_admin/metrics", headers=bearer)
    assert resp.status == 404


async def test_worker_restarts_are_counted(make_client):
    client = await make_client()
    task = await create(client, command="return 1;", offset=3600)
    for pid in client.app[REGISTRY].sandbox.pids:
        os.kill(pid, signal.SIGKILL)
    async with asyncio.timeout(30):
        while value(await scrape(client), "arangotasks_worker_restarts_total") < 1:
            # A worker that died while idle is replaced when the next run asks for it.
            resp = await client.post(f"/_api/tasks/{task['id']}/run", headers=ROOT)
            assert resp.status == 202
            await asyncio.sleep(0.1)
    assert value(await scrape(client), "arangotasks_workers") == 1


async def test_store_errors_are_counted(make_settings, aiohttp_client):
    from arangotasks.app import create_app

    settings = make_settings()
    store = SQLiteStore(settings.data_dir / "s.sqlite3")
    client = await aiohttp_client(create_app(settings, store=store))
    await store._set_read_only(True)
    resp = await client.post("/_api/tasks", json={"command": "return 1;"}, headers=ROOT)
    assert resp.status == 503
    await store._set_read_only(False)
    assert value(await scrape(client), "arangotasks_store_errors_total") >= 1
