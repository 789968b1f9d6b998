"""The samples that call out (webhook_post.js, http_health_check.js), run against local aiohttp
servers standing in for a webhook and the services checked."""

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from dirty_equals import IsStr

from arangotasks.sandbox import Limits, QuickJSSandbox
from arangotasks.sandbox.host import HostCalls
from tests.unit.http_remote import serve, use_outbound

pytestmark = pytest.mark.asyncio(loop_scope="module")

SAMPLES = Path(__file__).resolve().parents[2] / "sample_commands"
RECEIVED: list[tuple[dict[str, str], Any]] = []


async def hook(request: web.Request) -> web.Response:
    RECEIVED.append((dict(request.headers), await request.json()))
    return web.json_response({"ok": True}, status=202)


async def healthy(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def fail(request: web.Request) -> web.Response:
    return web.Response(status=503, text="maintenance")


def local_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_get("/healthy", healthy)
    app.router.add_get("/down", fail)
    app.router.add_post("/down", fail)
    return app


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def local() -> AsyncIterator[int]:
    async with serve(local_app()) as port:
        yield port


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sandbox(local: int) -> AsyncIterator[QuickJSSandbox]:
    calls = HostCalls()
    outbound = use_outbound(calls, http_allow=f"127.0.0.1:{local}")
    sandbox = QuickJSSandbox(workers=1, limits=Limits(timeout=10.0), compile_workers=0, host=calls)
    await sandbox.start()
    yield sandbox
    await sandbox.close()
    await outbound.close()


def sample(name: str) -> str:
    command = (SAMPLES / name).read_text(encoding="utf-8")
    assert command.startswith("// ") and "params" in command.split("\n\n")[0]
    return command


async def test_webhook_post(sandbox, local):
    params = {
        "url": f"http://127.0.0.1:{local}/hook",
        "event": "nightly",
        "data": [1],
        "token": "t",
    }
    outcome = await sandbox.run(sample("webhook_post.js"), json.dumps(params))
    assert outcome.ok, outcome.error
    assert outcome.result_json == '{"status":202}'
    assert outcome.output == ["webhook nightly: 202 Accepted"]
    headers, body = RECEIVED[-1]
    assert headers["Authorization"] == "Bearer t"
    assert body == {"event": "nightly", "data": [1], "sentAt": IsStr(regex=r"^\d{4}-.*Z$")}
    assert [entry["status"] for entry in outcome.requests] == [202]


async def test_webhook_post_fails_the_run_on_an_error_status(sandbox, local):
    params = {"url": f"http://127.0.0.1:{local}/down", "event": "x"}
    outcome = await sandbox.run(sample("webhook_post.js"), json.dumps(params))
    assert outcome.error is not None
    assert outcome.error["message"] == "webhook answered 503: maintenance"


async def test_http_health_check(sandbox, local):
    base = f"http://127.0.0.1:{local}"
    params = {"urls": [f"{base}/healthy", f"{base}/down", "http://127.0.0.1:1/"]}
    outcome = await sandbox.run(sample("http_health_check.js"), json.dumps(params))
    assert outcome.output == [
        IsStr(regex=rf"^UP {base}/healthy 200 \d+ ms$"),
        f"DOWN {base}/down: status 503",
        IsStr(regex=r"^DOWN http://127.0.0.1:1/: request to 127.0.0.1 refused: .*"),
    ]
    assert outcome.error is not None
    assert outcome.error["message"] == (f"2 service(s) down: {base}/down, http://127.0.0.1:1/")
    healthy = await sandbox.run(
        sample("http_health_check.js"), json.dumps({"urls": [f"{base}/healthy"]})
    )
    assert healthy.result_json == '{"up":1}'
