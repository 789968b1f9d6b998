"""Failure notifications posted to a local aiohttp server: body, signature, retries, recovery."""

import asyncio
import hashlib
import hmac
import json
import time

import pytest
from aiohttp import web

from tests.api.helpers import create, wait_runs
from tests.api.test_metrics import scrape, value
from tests.conftest import ROOT

SECRET = "webhook-secret"


class Receiver:
    """A stand-in for the operator's webhook endpoint; ``statuses`` are answered in order."""

    def __init__(self, statuses=()):
        self.statuses = list(statuses)
        self.received: list[tuple[dict, bytes]] = []
        self.release = asyncio.Event()
        self.release.set()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append((dict(request.headers), body))
        await self.release.wait()
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status)

    def events(self) -> list[str]:
        return [json.loads(body)["event"] for _, body in self.received]


@pytest.fixture
async def receiver(aiohttp_server):
    async def make(statuses=()):
        rec = Receiver(statuses)
        app = web.Application()
        app.router.add_post("/hook", rec.handle)
        server = await aiohttp_server(app)
        rec.url = str(server.make_url("/hook"))
        return rec

    return make


async def until(condition, within=20.0):
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_a_failed_run_is_posted_signed_with_the_run_record(make_client, receiver):
    rec = await receiver()
    client = await make_client(webhook_url=rec.url, webhook_secret=SECRET)
    task = await create(client, command="throw new TypeError('boom');", offset=3600)
    run = await (await client.post(f"/_api/tasks/{task['id']}/run", headers=ROOT)).json()
    await until(lambda: rec.received)
    headers, body = rec.received[0]
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Arangotasks-Signature"] == expected
    assert headers["X-Arangotasks-Event"] == "run.failed"
    assert headers["Content-Type"] == "application/json"
    payload = json.loads(body)
    stored = await (await client.get(f"/_api/runs/{run['uid']}", headers=ROOT)).json()
    assert payload == {"event": "run.failed", "run": stored}
    assert payload["run"]["error"]["name"] == "TypeError"
    samples = await scrape(client)
    assert value(samples, "arangotasks_webhooks_sent_total") == 1
    assert value(samples, "arangotasks_webhook_failures_total") == 0


async def test_success_after_failures_is_posted_once(make_client, receiver):
    rec = await receiver()
    client = await make_client(webhook_url=rec.url, webhook_secret=SECRET)
    until_ms = int(time.time() * 1000) + 600
    command = "if (Date.now() < params.until) throw new Error('not yet'); return 1;"
    task = await create(client, command=command, params={"until": until_ms}, period=0.1)
    await wait_runs(client, f"taskIds={task['id']}&statuses=succeeded", 3)
    await until(lambda: "task.recovered" in rec.events())
    await asyncio.sleep(0.3)  # later successes send nothing
    events = rec.events()
    assert events[-1] == "task.recovered" and events.count("task.recovered") == 1
    failures = (await wait_runs(client, f"taskIds={task['id']}&statuses=failed", 1))["total"]
    assert events.count("run.failed") == failures
    recovered = json.loads(rec.received[-1][1])["run"]
    assert recovered["status"] == "succeeded" and recovered["taskId"] == task["id"]


async def test_deliveries_are_retried_with_backoff(make_client, receiver):
    rec = await receiver(statuses=[500, 503])
    client = await make_client(webhook_url=rec.url, webhook_backoff=0.05)
    task = await create(client, command="throw 1;", offset=3600)
    await client.post(f"/_api/tasks/{task['id']}/run", headers=ROOT)
    await until(lambda: len(rec.received) == 3)
    assert len({body for _, body in rec.received}) == 1  # the same notification each time
    assert "X-Arangotasks-Signature" not in rec.received[0][0]  # no secret set
    samples = await scrape(client)
    assert value(samples, "arangotasks_webhooks_sent_total") == 1
    assert value(samples, "arangotasks_webhook_retries_total") == 2


async def test_failures_are_counted_when_every_attempt_fails(make_client, receiver):
    rec = await receiver(statuses=[500] * 10)
    client = await make_client(webhook_url=rec.url, webhook_backoff=0.01, webhook_attempts=3)
    task = await create(client, command="throw 1;", offset=3600)
    await client.post(f"/_api/tasks/{task['id']}/run", headers=ROOT)
    async with asyncio.timeout(20):
        while value(await scrape(client), "arangotasks_webhook_failures_total") < 1:
            await asyncio.sleep(0.05)
    assert len(rec.received) == 3


async def test_a_stuck_receiver_never_holds_up_runs(make_client, receiver):
    rec = await receiver()
    rec.release.clear()  # the receiver takes every request and never answers
    client = await make_client(webhook_url=rec.url, webhook_queue=2, webhook_timeout=30)
    task = await create(client, command="throw 1;", period=0.02)
    page = await wait_runs(client, f"taskIds={task['id']}", 20)
    assert page["total"] >= 20
    samples = await scrape(client)
    # Four senders wait on the receiver, two notifications wait in the queue, the rest dropped.
    assert value(samples, "arangotasks_webhooks_dropped_total") >= 20 - 4 - 2
    rec.release.set()
