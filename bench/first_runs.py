"""First-run lateness: tasks created through the API on a real server, each run once at its offset.

``count`` timed tasks (``return params.a + params.b``, no period) are created by concurrent
``POST /_api/tasks``, their offsets aimed at due times spread over two seconds (or more: at most
500 due per second) after a lead of two seconds plus 2 ms per task, so that creating them does
not overlap their first runs much. Once every task has run, the run records give, per task, the
fire lateness (``enqueuedAt - scheduledAt``: the scheduler's part) and the start lateness
(``startedAt - scheduledAt``: including the wait for a free sandbox worker).
"""

import asyncio
import json
import time
from datetime import datetime
from typing import Any

import aiohttp

from bench.common import (
    TRIVIAL_COMMAND,
    BenchContext,
    Outcome,
    Row,
    Server,
    summary_ms,
)

LEAD = 2.0  # seconds from the first create to the first due run, plus 2 ms per task
RATE = 500  # due first runs per second at most (the pool runs ~1,000-1,250/s on 2 cores)
CLIENTS = 16
TARGET_P99_MS = 10.0


def _stamp(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


async def _create_all(url: str, count: int) -> None:
    base = time.time() + LEAD + count * 0.002  # creating them all ends before the first is due
    spread = max(2.0, count / RATE)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    async def client(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            body = {"name": f"first-{i}", "command": TRIVIAL_COMMAND, "params": {"a": 1, "b": 2}}
            # The offset counts from the create: aim every task at its own slot of the spread.
            body["offset"] = base + spread * i / count - time.time()
            async with session.post(f"{url}/_api/tasks", data=json.dumps(body)) as response:
                if response.status != 200:
                    raise RuntimeError(f"POST: {response.status} {await response.text()}")

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(client(session) for _ in range(CLIENTS)))


async def _all_runs(url: str, count: int, within: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as session:
        while True:
            query = "statuses=succeeded,failed&limit=0"
            async with session.get(f"{url}/_api/runs?{query}") as response:
                total = (await response.json())["total"]
            if total >= count:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {total} of {count} runs finished in {within} s")
            await asyncio.sleep(0.2)
        runs: list[dict[str, Any]] = []
        start: int | None = None
        while True:
            query = "limit=1000" + ("" if start is None else f"&from={start}")
            async with session.get(f"{url}/_api/runs?{query}") as response:
                page = await response.json()
            runs += page["results"]
            start = page["next"]
            if start is None:
                return runs


def _measure(ctx: BenchContext, count: int) -> dict[str, Any]:
    data_dir = ctx.workdir / f"first-{count}"
    with Server(data_dir) as server:
        server.start()
        started = time.perf_counter()
        asyncio.run(_create_all(server.url, count))
        create_seconds = time.perf_counter() - started
        runs = asyncio.run(_all_runs(server.url, count, within=60 + count / 50))
    failed = sum(run["status"] != "succeeded" for run in runs)
    fire = [_stamp(run["enqueuedAt"]) - _stamp(run["scheduledAt"]) for run in runs]
    start = [_stamp(run["startedAt"]) - _stamp(run["scheduledAt"]) for run in runs]
    return {
        "tasks": count,
        "create_seconds": round(create_seconds, 2),
        "runs": len(runs),
        "failed": failed,
        "fire_lateness": summary_ms(fire),
        "start_lateness": summary_ms(start),
    }


def run(ctx: BenchContext) -> Outcome:
    sizes = (100, 1000) if ctx.quick else (100, 1000, 5000)
    figures: dict[str, Any] = {}
    rows: list[Row] = []
    for count in sizes:
        got = _measure(ctx, count)
        figures[str(count)] = got
        fire, start = got["fire_lateness"], got["start_lateness"]
        rows.append(
            Row(
                f"{count:>5} timed tasks: fire / start lateness p50/p99/max",
                f"{fire['median_ms']:.2f}/{fire['p99_ms']:.2f}/{fire['max_ms']:.1f} / "
                f"{start['median_ms']:.2f}/{start['p99_ms']:.2f}/{start['max_ms']:.1f} ms "
                f"({got['runs']} runs, {got['failed']} failed)",
                f"start p99 < {TARGET_P99_MS:g} ms" if count == 1000 else "",
                start["p99_ms"] < TARGET_P99_MS if count == 1000 else None,
            )
        )
    return Outcome(figures, rows)
