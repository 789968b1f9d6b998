"""API load: requests/s and p99 latency of ``GET /_api/tasks/{id}``, ``GET /_api/tasks`` and
``POST /_api/tasks`` on a real server holding 10,000 tasks (seeded into its store, first runs a
month away), against a bare aiohttp app measured the same way in the same run (the framework
floor). Authentication is off on both (``ARANGOTASKS_NO_AUTH=1``).

The bare app (``python -m bench.api_load --bare-server PORT BODYFILE``) answers
``GET/POST /small`` with a fixed ~200-byte JSON task object, and ``GET /big`` with the exact bytes
our ``GET /_api/tasks`` returned (a static body of the same size: the floor for the list).
The load generator is wrk (one thread, 16 connections, closed loop) when installed, else the
aiohttp generator of ``bench.loadgen`` in its own process. POST is measured with the same body
every time (compile checks are cached per command) and with a new command every time (each POST
compiles in a worker). Each pair is measured back to back, twice, alternating; the better run of
each is kept.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from bench.common import (
    REPO_ROOT,
    BenchContext,
    Outcome,
    Row,
    Server,
    fmt,
    free_port,
    python_env,
    request,
    seed_tasks,
)
from bench.loadgen import load

TARGET_RATIO = 0.5
TASKS = 10_000
SMALL = {
    "id": "1763890000123456",
    "name": "user-defined task",
    "created": 1763890000.123456,
    "type": "periodic",
    "period": 86400,
    "offset": 86400,
    "command": "(function (params) { return params.a + params.b } )(params);",
    "database": "_system",
}
POST_BODY = json.dumps(
    {"command": "return params.a + params.b", "params": {"a": 1, "b": 2}, "period": 86400}
    | {"offset": 86400}
)
# A distinct command per request (bench.loadgen fills in __N__): no compile check is cached.
POST_UNIQUE_BODY = POST_BODY.replace("params.a + params.b", "params.a + params.b + __N__")


def bare_app(big_body: bytes) -> web.Application:
    small = json.dumps(SMALL, separators=(",", ":")).encode()

    async def small_get(request: web.Request) -> web.Response:
        return web.Response(body=small, content_type="application/json")

    async def small_post(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=small, content_type="application/json")

    async def big_get(request: web.Request) -> web.Response:
        return web.Response(body=big_body, content_type="application/json")

    app = web.Application()
    app.add_routes([web.get("/small", small_get), web.post("/small", small_post)])
    app.add_routes([web.get("/big", big_get)])
    return app


class BareServer:
    def __init__(self, body_file: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "bench.api_load", "--bare-server", str(self.port)]
        self.proc = subprocess.Popen(
            [*command, str(body_file)],
            cwd=REPO_ROOT,
            env=python_env(),
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                request(self.url, "GET", "/small", timeout=1.0)
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("the bare aiohttp app did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def _best(results: list[dict[str, Any]]) -> dict[str, Any]:
    return max(results, key=lambda r: r["rps"])


def run(ctx: BenchContext) -> Outcome:
    seconds, rounds = (2.0, 1) if ctx.quick else (5.0, 2)
    tasks = 2000 if ctx.quick else TASKS
    data_dir = ctx.workdir / "data"
    ids = seed_tasks(data_dir, tasks)
    server = Server(data_dir)
    bare: BareServer | None = None
    results: dict[str, list[dict[str, Any]]] = {}

    def measure(key: str, url: str, **options: Any) -> None:
        result = load(url, ctx.workdir, seconds=seconds, **options)
        results.setdefault(key, []).append(result)

    try:
        server.start()
        big = ctx.workdir / "list-body.json"
        status, listing = request(server.url, "GET", "/_api/tasks")
        assert status == 200 and len(listing) == tasks, (status, len(listing))
        big.write_bytes(json.dumps(listing, separators=(",", ":"), ensure_ascii=False).encode())
        bare = BareServer(big)
        one = f"/_api/tasks/{ids[len(ids) // 2]}"
        for _ in range(rounds):
            measure("get_one", server.url + one)
            measure("floor_small_get", bare.url + "/small")
            measure("get_list", server.url + "/_api/tasks")
            measure("floor_big_get", bare.url + "/big")
        for _ in range(rounds):  # POST last: it adds tasks
            measure("post", server.url + "/_api/tasks", method="POST", body=POST_BODY)
            measure("floor_small_post", bare.url + "/small", method="POST", body=POST_BODY)
            measure("post_unique", server.url + "/_api/tasks", method="POST", body=POST_UNIQUE_BODY)
        created = len(request(server.url, "GET", "/_api/tasks")[1]) - tasks
    finally:
        server.stop()
        if bare is not None:
            bare.stop()

    best = {key: _best(runs) for key, runs in results.items()}
    pairs = [
        ("GET /_api/tasks/{id}", "get_one", "floor_small_get"),
        ("POST /_api/tasks (same command each time)", "post", "floor_small_post"),
        ("POST /_api/tasks (a new command each time)", "post_unique", "floor_small_post"),
        (f"GET /_api/tasks ({tasks:,} tasks, {big.stat().st_size >> 10} KiB)", "get_list", ""),
    ]
    figures: dict[str, Any] = {
        "tasks": tasks,
        "auth": "off (ARANGOTASKS_NO_AUTH=1)",
        "tool": best["get_one"]["tool"],
        "list_body_bytes": big.stat().st_size,
        "tasks_created_by_post": created,
        "runs": results,
        "best": best,
    }
    rows: list[Row] = []
    floor_small = best["floor_small_get"]
    rows.append(
        Row(
            "bare aiohttp floor GET small JSON: req/s, p99",
            f"{fmt(floor_small['rps'], 0)}/s, {floor_small['p99_ms']:.2f} ms",
        )
    )
    for label, key, floor_key in pairs:
        ours = best[key]
        value = f"{fmt(ours['rps'], 0)}/s, {ours['p99_ms']:.2f} ms"
        if ours["errors"]:
            value += f", {ours['errors']} errors"
        if floor_key:
            ratio = ours["rps"] / best[floor_key]["rps"]
            figures[f"ratio_{key}"] = round(ratio, 3)
            rows.append(Row(label, value))
            rows.append(
                Row(
                    "  / bare floor (same method, small JSON)",
                    f"{ratio:.2f}",
                    f"≥ {TARGET_RATIO:g}",
                    ratio >= TARGET_RATIO,
                )
            )
        else:
            ratio = ours["rps"] / floor_small["rps"]
            same_size = ours["rps"] / best["floor_big_get"]["rps"]
            figures["ratio_get_list"] = round(ratio, 4)
            figures["ratio_get_list_same_size_floor"] = round(same_size, 3)
            rows.append(Row(label, value))
            rows.append(Row("  / bare floor (small JSON)", f"{ratio:.3f}"))
            rows.append(Row("  / bare floor (static body, same size)", f"{same_size:.2f}"))
    return Outcome(figures, rows)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.api_load")
    parser.add_argument("--bare-server", type=int, required=True, metavar="PORT")
    parser.add_argument("body_file", type=Path)
    args = parser.parse_args()
    app = bare_app(args.body_file.read_bytes())
    web.run_app(app, host="127.0.0.1", port=args.bare_server, access_log=None, print=None)


if __name__ == "__main__":
    main()
