"""Fairness between users on a real server (2 workers, authentication on, two users):

- create latency of one user (new commands, so every create is compile-checked) while another
  user keeps six creates of ``}); for (;;) {} (function () {`` in flight, against the same
  creates with nobody attacking;
- successful runs of one user's 0.5 s periodic task in a 6 s window, before and after another
  user starts two ``while (true) {}`` tasks with a 60 s timeout.

Before the fairness work the compile check ran such a body (1 s each on one shared compile
worker) and the two hogs held both workers, so the victim's figures were seconds and 0 runs.
"""

import asyncio
import base64
import json
import statistics
import time
from typing import Any

import aiohttp

from bench.common import BenchContext, Outcome, Row, Server

USERS = """
databases = ["other"]

[[users]]
name = "alice"
password = "a"

[[users]]
name = "carol"
password = "c"
"""
ATTACK = "}); for (;;) {} (function () {"
VICTIM_TASKS = "/_db/other/_api/tasks"


def _auth(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


ALICE, CAROL = _auth("alice", "a"), _auth("carol", "c")


async def _post(
    session: aiohttp.ClientSession, url: str, body: Any, headers: dict[str, str]
) -> tuple[int, float]:
    started = time.perf_counter()
    async with session.post(url, data=json.dumps(body), headers=headers) as resp:
        await resp.read()
        return resp.status, time.perf_counter() - started


def _ms(seconds: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(seconds) * 1000, 1),
        "max_ms": round(max(seconds) * 1000, 1),
    }


async def _compile_attack(session: aiohttp.ClientSession, base: str, creates: int) -> Any:
    victim = base + VICTIM_TASKS
    idle = []
    for i in range(creates):
        status, took = await _post(session, victim, {"command": f"return 'q{i}';"}, CAROL)
        assert status == 200, status
        idle.append(took)
    stop = asyncio.Event()

    async def attacker(k: int) -> int:
        n = 0
        while not stop.is_set():
            await _post(session, base + "/_api/tasks", {"command": f"{ATTACK} // {k} {n}"}, ALICE)
            n += 1
        return n

    attackers = [asyncio.ensure_future(attacker(k)) for k in range(6)]
    await asyncio.sleep(1.0)
    attacked = []
    for i in range(creates):
        status, took = await _post(session, victim, {"command": f"return 'v{i}';"}, CAROL)
        assert status == 200, status
        attacked.append(took)
    stop.set()
    attacks = sum(await asyncio.gather(*attackers))
    return {"idle": _ms(idle), "attacked": _ms(attacked), "attack_creates": attacks}


async def _hogs(session: aiohttp.ClientSession, base: str, window: float) -> Any:
    async def succeeded() -> int:
        path = "/_db/other/_api/runs?taskIds=victim&statuses=succeeded&limit=0"
        async with session.get(base + path, headers=CAROL) as resp:
            total: int = (await resp.json())["total"]
            return total

    body = {"id": "victim", "command": "return 1;", "period": 0.5}
    assert (await _post(session, base + VICTIM_TASKS, body, CAROL))[0] == 200
    await asyncio.sleep(1.0)
    first = await succeeded()
    await asyncio.sleep(window)
    before = await succeeded() - first
    for i in range(2):
        hog = {"id": f"hog{i}", "command": "while (true) {}", "timeout": 60, "period": 1}
        assert (await _post(session, base + "/_api/tasks", hog, ALICE))[0] == 200
    await asyncio.sleep(1.0)
    first = await succeeded()
    await asyncio.sleep(window)
    return {"window_s": window, "before": before, "with_hogs": await succeeded() - first}


async def _measure(base: str, quick: bool) -> Any:
    async with aiohttp.ClientSession() as session:
        compile_figures = await _compile_attack(session, base, 5 if quick else 15)
        hog_figures = await _hogs(session, base, 6.0)
    return compile_figures, hog_figures


def run(ctx: BenchContext) -> Outcome:
    config = ctx.workdir / "users.toml"
    config.write_text(USERS)
    with Server(ctx.workdir / "data", ARANGOTASKS_CONFIG=str(config)) as server:
        server.env["ARANGOTASKS_NO_AUTH"] = "0"
        server.env["ARANGOTASKS_WORKERS"] = "2"
        server.start()
        compile_figures, hog_figures = asyncio.run(_measure(server.url, ctx.quick))
    figures = {"compile_attack": compile_figures, "hogs": hog_figures}
    idle, attacked = compile_figures["idle"], compile_figures["attacked"]
    rows = [
        Row(
            "Another user's create, idle → six attack creates in flight: median/max",
            f"{idle['median_ms']}/{idle['max_ms']} → {attacked['median_ms']}/"
            f"{attacked['max_ms']} ms",
        ),
        Row(
            f"Victim's runs in {hog_figures['window_s']:g} s, before → with two hogs",
            f"{hog_figures['before']} → {hog_figures['with_hogs']}",
            "> 0",
            hog_figures["with_hogs"] > 0,
        ),
    ]
    return Outcome(figures, rows)
