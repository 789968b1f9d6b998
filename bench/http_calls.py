"""Outbound HTTP from tasks: requests per second from task commands to a local aiohttp server
(one request per run, and 20 per run), and the cost of one request made by a task against a bare
aiohttp client request to the same server, in the same run.

The remote is a separate process (``python -m bench.http_calls --serve PORT``) answering a small
JSON body. The task side is the service's run path below the registry: a ``QuickJSSandbox`` with
its host workers and the ``http.request`` handler (allowlist, limits, records), as ``serve``
builds it. Commands are warmed up first, so they start in host mode on the host workers.
"""

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from bench.common import BenchContext, Outcome, Row, fmt, free_port, python_env

TARGET_RPS = 500.0
IN_FLIGHT = 8  # runs (or bare requests) in flight at once


def _serve(port: int) -> None:
    from aiohttp import web

    async def answer(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "n": 1})

    app = web.Application()
    app.router.add_get("/ping", answer)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def _start_remote() -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.http_calls", "--serve", str(port)], env=python_env()
    )
    return proc, port


async def _wait_ready(url: str) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("the benchmark's remote server did not start")


async def _bare(url: str, sequential: int, concurrent: int) -> dict[str, float]:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> None:
            async with session.get(url) as response:
                await response.read()

        for _ in range(50):
            await one()
        latencies = []
        for _ in range(sequential):
            started = time.perf_counter()
            await one()
            latencies.append(time.perf_counter() - started)

        async def lane(count: int) -> None:
            for _ in range(count):
                await one()

        started = time.perf_counter()
        await asyncio.gather(*(lane(concurrent // IN_FLIGHT) for _ in range(IN_FLIGHT)))
        elapsed = time.perf_counter() - started
    return {
        "bare_request_median_us": statistics.median(latencies) * 1e6,
        "bare_requests_per_s": (concurrent // IN_FLIGHT) * IN_FLIGHT / elapsed,
    }


async def _tasks(url: str, port: int, runs_one: int, runs_twenty: int) -> dict[str, Any]:
    from arangotasks.config import Settings
    from arangotasks.outbound import Outbound
    from arangotasks.sandbox import Limits, QuickJSSandbox
    from arangotasks.sandbox.host import HostCalls

    settings = Settings(http_allow=f"127.0.0.1:{port}")
    calls = HostCalls()
    outbound = Outbound(settings)
    outbound.register(calls)
    sandbox = QuickJSSandbox(
        workers=os.cpu_count(),
        limits=Limits(timeout=30.0),
        host=calls,
        host_workers=settings.http_workers,
    )
    one = f"return require('@arangodb/request').get('{url}').json.n"
    twenty = (
        f"var r = require('@arangodb/request'), n = 0; for (var i = 0; i < 20; i++) "
        f"n += r.get('{url}').json.n; return n"
    )
    await sandbox.start()
    try:
        for command, expected in ((one, "1"), (twenty, "20")):
            for _ in range(20):  # the first run finds out that it calls out
                outcome = await sandbox.run(command, None)
                assert outcome.result_json == expected, outcome.error

        async def lane(command: str, count: int) -> None:
            for _ in range(count):
                outcome = await sandbox.run(command, None)
                assert outcome.ok, outcome.error

        figures: dict[str, Any] = {"host_workers": settings.http_workers}
        for name, command, runs, per_run in (
            ("one", one, runs_one, 1),
            ("twenty", twenty, runs_twenty, 20),
        ):
            per_lane = max(1, runs // IN_FLIGHT)
            started = time.perf_counter()
            await asyncio.gather(*(lane(command, per_lane) for _ in range(IN_FLIGHT)))
            elapsed = time.perf_counter() - started
            figures[f"{name}_per_run_requests_per_s"] = per_lane * IN_FLIGHT * per_run / elapsed
        # One run at a time: the wall clock of a request made by a task.
        durations = []
        for _ in range(max(10, runs_twenty // 10)):
            started = time.perf_counter()
            await lane(twenty, 1)
            durations.append((time.perf_counter() - started) / 20)
        figures["task_request_median_us"] = statistics.median(durations) * 1e6
        singles = []
        for _ in range(max(20, runs_one // 10)):
            started = time.perf_counter()
            await lane(one, 1)
            singles.append(time.perf_counter() - started)
        figures["one_request_run_median_us"] = statistics.median(singles) * 1e6
        return figures
    finally:
        await sandbox.close()
        await outbound.close()


async def _measure(quick: bool) -> dict[str, Any]:
    proc, port = _start_remote()
    url = f"http://127.0.0.1:{port}/ping"
    try:
        await _wait_ready(url)
        bare = await _bare(url, 200 if quick else 1000, 800 if quick else 4000)
        tasks = await _tasks(url, port, 400 if quick else 2000, 40 if quick else 200)
    finally:
        proc.terminate()
        proc.wait(10)
    return bare | tasks


def run(ctx: BenchContext) -> Outcome:
    from bench.common import quiet_in_process_logs

    quiet_in_process_logs()
    figures = {k: round(v, 1) for k, v in asyncio.run(_measure(ctx.quick)).items()}
    overhead = figures["task_request_median_us"] - figures["bare_request_median_us"]
    figures["overhead_per_request_us"] = round(overhead, 1)
    figures["ratio_task_to_bare_request"] = round(
        figures["task_request_median_us"] / figures["bare_request_median_us"], 2
    )
    one_rps, twenty_rps = (
        figures["one_per_run_requests_per_s"],
        figures["twenty_per_run_requests_per_s"],
    )
    rows = [
        Row(
            "bare aiohttp client, one request (median)",
            f"{fmt(figures['bare_request_median_us'])} µs",
        ),
        Row("  bare client, 8 in flight", f"{fmt(figures['bare_requests_per_s'], 0)} req/s"),
        Row(
            "tasks, 1 request per run, 8 runs in flight",
            f"{fmt(one_rps, 0)} req/s",
            f"≥ {TARGET_RPS:g}",
            one_rps >= TARGET_RPS,
        ),
        Row(
            "tasks, 20 requests per run, 8 runs in flight",
            f"{fmt(twenty_rps, 0)} req/s",
            f"≥ {TARGET_RPS:g}",
            twenty_rps >= TARGET_RPS,
        ),
        Row(
            "a request made by a task (median, one run at a time)",
            f"{fmt(figures['task_request_median_us'])} µs",
        ),
        Row(
            "  overhead against the bare request",
            f"{fmt(overhead)} µs ({figures['ratio_task_to_bare_request']:.2f}x)",
        ),
        Row(
            "a run making 1 request (median, one at a time)",
            f"{fmt(figures['one_request_run_median_us'])} µs",
        ),
    ]
    return Outcome(figures, rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.http_calls")
    parser.add_argument("--serve", type=int, required=True, help="serve the remote on this port")
    _serve(parser.parse_args().serve)
