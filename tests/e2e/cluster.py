"""Several real ``arangotasks serve`` nodes on one PostgreSQL, a local HTTP sink that task
commands POST to, faults (kill -9, SIGSTOP, terminated connections) and the sink's audit.

The audit reads what the tasks did at the sink, not the runs table. Every run POSTs
``{"task", "start"}`` (``start``: ``Date.now()`` when the command began). Runs of a periodic task
keep ArangoDB's fixed delay, so two legitimate starts of one task are at least a period
apart; two starts closer than half a period are two runs of one slot (a duplicate). A timed
task is run at most once: more than one start is a duplicate; none is allowed only when its
run was interrupted by a fault (recorded ``crash``).
"""

import asyncio
import contextlib
import itertools
import os
import random
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from aiohttp import web

from tests.e2e.http import Http
from tests.e2e.server import ServerProcess

COMMAND = (
    "var start = Date.now();"
    "require('@arangodb/request').post({url: params.sink, body: {task: params.id, start: start},"
    " json: true, timeout: 10});"
    "return start;"
)


class Sink:
    """An aiohttp server on loopback (in a thread of its own) that records every POST body
    with its arrival time."""

    def __init__(self) -> None:
        self.hits: list[dict[str, Any]] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        assert self._ready.wait(30), "the sink did not start"
        self.url = f"http://127.0.0.1:{self._port}/hit"

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def hit(request: web.Request) -> web.Response:
            self.hits.append({**(await request.json()), "at": time.time()})
            return web.json_response({})

        app = web.Application()
        app.router.add_post("/hit", hit)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self._port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        self._loop.run_forever()

    def close(self) -> None:
        async def stop() -> None:
            await self._runner.cleanup()
            self._loop.stop()

        asyncio.run_coroutine_threadsafe(stop(), self._loop)
        self._thread.join(10)
        self._loop.close()


@contextlib.contextmanager
def sink() -> Iterator[Sink]:
    s = Sink()
    try:
        yield s
    finally:
        s.close()


class Cluster:
    """``count`` nodes on ``store`` (each with its own data folder and port)."""

    def __init__(self, root: Path, store: str, count: int, **env: str):
        self.nodes: list[ServerProcess] = []
        for i in range(count):
            node_id = f"n{i + 1}"
            # The application name lets a test terminate one node's connections.
            url = f"{store}?application_name=arangotasks-{node_id}"
            folder = root / node_id
            folder.mkdir(parents=True, exist_ok=True)
            self.nodes.append(
                ServerProcess(
                    folder / "data",
                    ARANGOTASKS_STORE=url,
                    ARANGOTASKS_NODE_ID=node_id,
                    ARANGOTASKS_HTTP_ALLOW="127.0.0.0/8",
                    ARANGOTASKS_CLUSTER_LEASE=env.pop("lease", "2"),
                    **env,
                )
            )
        self.store = store
        self.http = [Http(n.url) for n in self.nodes]

    def start(self) -> None:
        for node in self.nodes:
            node.start(timeout=60)

    def stop(self) -> None:
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(node.proc.pid, signal.SIGCONT)
                node.stop()
        for http in self.http:
            http.close()

    def any(self) -> Http:
        return random.choice(self.http)


@dataclass
class Audit:
    """What the sink saw."""

    runs: int = 0
    duplicates: list[tuple[str, float, float]] = field(default_factory=list)
    timed_twice: list[str] = field(default_factory=list)
    timed_missing: list[str] = field(default_factory=list)
    longest_gap: float = 0.0
    late_after_delete: int = 0


def audit(
    hits: list[dict[str, Any]],
    periodic: dict[str, float],
    timed: set[str],
    deleted_at: float | None = None,
) -> Audit:
    """``periodic``: task id -> period (s); ``timed``: ids of timed tasks."""
    result = Audit(runs=len(hits))
    starts: dict[str, list[float]] = defaultdict(list)
    for hit in hits:
        starts[hit["task"]].append(hit["start"] / 1000)
        if deleted_at is not None and hit["task"] in periodic and hit["start"] / 1000 > deleted_at:
            result.late_after_delete += 1
    for task_id, period in periodic.items():
        times = sorted(starts.get(task_id, []))
        for before, after in itertools.pairwise(times):
            if after - before < period / 2:
                result.duplicates.append((task_id, before, after))
            result.longest_gap = max(result.longest_gap, after - before)
    for task_id in timed:
        count = len(starts.get(task_id, []))
        if count > 1:
            result.timed_twice.append(task_id)
        elif count == 0:
            result.timed_missing.append(task_id)
    return result


def terminate_connections(store: str, node_id: str) -> int:
    """``pg_terminate_backend`` of every connection of one node."""
    with psycopg.connect(store, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (f"arangotasks-{node_id}",),
        ).fetchall()
    return len(rows)


def faults(cluster: Cluster, seconds: float, lease: float, log: list[str]) -> None:
    """For ``seconds``: every few seconds, kill -9 one node and start it again, SIGSTOP another
    for longer than the lease, and terminate a third one's database connections."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        order = random.sample(range(len(cluster.nodes)), len(cluster.nodes))
        killed, paused, cut = (cluster.nodes[i] for i in order[:3])
        assert killed.proc is not None and paused.proc is not None
        log.append(f"{time.time():.1f} kill -9 {killed.env['ARANGOTASKS_NODE_ID']}")
        killed.kill9()
        log.append(f"{time.time():.1f} SIGSTOP {paused.env['ARANGOTASKS_NODE_ID']}")
        os.kill(paused.proc.pid, signal.SIGSTOP)
        cut_id = cut.env["ARANGOTASKS_NODE_ID"]
        log.append(
            f"{time.time():.1f} terminate {cut_id}: {terminate_connections(cluster.store, cut_id)}"
        )
        time.sleep(lease * 1.5 + 0.5)
        os.kill(paused.proc.pid, signal.SIGCONT)
        log.append(f"{time.time():.1f} SIGCONT, restart")
        killed.start(timeout=60)
        time.sleep(random.uniform(1.0, 2.0))
