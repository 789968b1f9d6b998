"""Small helpers for API tests: create tasks and wait for runs under a deadline."""

import asyncio
import json

from tests.conftest import ROOT


async def create(client, headers=ROOT, path="/_api/tasks", **body) -> dict:
    body.setdefault("command", "return 1;")
    resp = await client.post(path, data=json.dumps(body), headers=headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def runs(client, query: str = "", headers=ROOT, path="/_api/runs") -> dict:
    resp = await client.get(f"{path}{'?' if query else ''}{query}", headers=headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def wait_runs(client, query: str, count: int, *, within: float = 10.0, headers=ROOT) -> dict:
    """Poll ``GET /_api/runs?query`` until ``count`` finished runs match."""
    sep = "&" if query else ""
    async with asyncio.timeout(within):
        while True:
            page = await runs(client, f"{query}{sep}statuses=succeeded,failed,canceled", headers)
            if page["total"] >= count:
                return page
            await asyncio.sleep(0.02)
