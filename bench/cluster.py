"""Several nodes on one PostgreSQL (issue 14): runs per second with 1, 2 and 3 nodes, start
lateness, and the failover gap under kill -9.

- ``runs_N``: N ``arangotasks serve`` nodes on a fresh database of a throwaway PostgreSQL,
  history on; 1,200 periodic tasks (period 1 s, a trivial command) created through the nodes
  in turn. After a warm-up, the runs finished in a window (read from the runs table, PostgreSQL's
  clock), per second, and the p99 of ``startedAt - scheduledAt`` of those runs (which includes
  the fixed-delay run time: a period counts from the end of the previous run).
- ``failover``: 3 nodes, 90 periodic tasks (period 1 s); three times, kill -9 of one node (and a
  restart). For each task, the longest time between two consecutive starts minus the period: the
  failover gap; p99 and max over the tasks, against 2 x lease + one period.
"""

import contextlib
import time
from pathlib import Path
from typing import Any

import psycopg

from bench.common import BenchContext, Outcome, Row, Server, ok, percentile
from tests.pgserver import postgres_server

LEASE = 2.0
PERIOD = 1.0


def _database(dsn: str, name: str) -> str:
    from psycopg.conninfo import conninfo_to_dict

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    info = conninfo_to_dict(dsn)
    return f"postgresql://{info.get('user', 'postgres')}@{info['host']}:{info['port']}/{name}"


def _nodes(workdir: Path, url: str, count: int, **env: str) -> list[Server]:
    nodes = []
    for i in range(count):
        folder = workdir / f"n{i + 1}"
        folder.mkdir(parents=True, exist_ok=True)
        node = Server(
            folder / "data",
            ARANGOTASKS_STORE=url,
            ARANGOTASKS_NODE_ID=f"n{i + 1}",
            ARANGOTASKS_CLUSTER_LEASE=str(LEASE),
            **env,
        )
        node.start()
        nodes.append(node)
    return nodes


def _create(nodes: list[Server], count: int) -> None:
    for i in range(count):
        body = {"command": "return 1;", "period": PERIOD, "offset": (i % 100) / 100}
        ok(nodes[i % len(nodes)].url, "PUT", f"/_api/tasks/t{i}", body)


def _window(url: str, start: float, end: float) -> tuple[int, list[float], dict[str, int]]:
    """Runs finished in [start, end) (PostgreSQL's clock): count, start lateness, per node."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT started_at - scheduled_at, node FROM runs WHERE finished_at >= %s"
            " AND finished_at < %s AND status = 'succeeded'",
            (start, end),
        ).fetchall()
    per_node: dict[str, int] = {}
    for _, node in rows:
        per_node[node] = per_node.get(node, 0) + 1
    return len(rows), [float(r[0]) for r in rows], per_node


def _pg_now(url: str) -> float:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()
    assert row is not None
    return float(row[0])


def _throughput(dsn: str, workdir: Path, count: int, tasks: int, seconds: float) -> dict[str, Any]:
    url = _database(dsn, f"bench_runs_{count}")
    nodes = _nodes(workdir / f"runs{count}", url, count)
    try:
        _create(nodes, tasks)
        time.sleep(5)  # warm-up: every task claimed and running
        start = _pg_now(url)
        time.sleep(seconds)
        end = _pg_now(url)
        runs, lateness, per_node = _window(url, start, end)
    finally:
        for node in nodes:
            node.stop()
    return {
        "nodes": count,
        "tasks": tasks,
        "runs_per_s": round(runs / (end - start), 1),
        "lateness_p50_ms": round(percentile(lateness, 50) * 1e3, 1) if lateness else None,
        "lateness_p99_ms": round(percentile(lateness, 99) * 1e3, 1) if lateness else None,
        "runs_per_node": per_node,
    }


def _gaps(url: str, since: float) -> list[float]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT task_id, started_at FROM runs WHERE started_at >= %s AND trigger = 'schedule'"
            " ORDER BY task_id, started_at",
            (since,),
        ).fetchall()
    gaps: dict[str, float] = {}
    last: dict[str, float] = {}
    for task_id, started in rows:
        if task_id in last:
            gaps[task_id] = max(gaps.get(task_id, 0.0), started - last[task_id] - PERIOD)
        last[task_id] = started
    return list(gaps.values())


def _failover(dsn: str, workdir: Path, tasks: int, kills: int) -> dict[str, Any]:
    url = _database(dsn, "bench_failover")
    nodes = _nodes(workdir / "failover", url, 3)
    try:
        _create(nodes, tasks)
        time.sleep(5)
        since = _pg_now(url)
        for i in range(kills):
            victim = nodes[i % 3]
            assert victim.proc is not None
            victim.proc.kill()
            victim.proc.wait()
            victim.proc = None
            time.sleep(LEASE * 2 + 2)
            victim.start()
            time.sleep(3)
        gaps = _gaps(url, since)
    finally:
        for node in nodes:
            with contextlib.suppress(Exception):
                node.stop()
    return {
        "tasks": tasks,
        "kills": kills,
        "gap_p99_s": round(percentile(gaps, 99), 2) if gaps else None,
        "gap_max_s": round(max(gaps), 2) if gaps else None,
        "bound_s": 2 * LEASE + PERIOD,
    }


def run(ctx: BenchContext) -> Outcome:
    tasks = 300 if ctx.quick else 1200
    seconds = 5.0 if ctx.quick else 15.0
    figures: dict[str, Any] = {"lease_s": LEASE}
    rows = []
    with postgres_server() as dsn:
        for count in (1, 2, 3):
            result = _throughput(dsn, ctx.workdir, count, tasks, seconds)
            figures[f"runs_{count}"] = result
            label = f"{count} node(s), {tasks} tasks of period 1 s: runs/s, lateness p99"
            value = f"{result['runs_per_s']:,.0f}/s, {result['lateness_p99_ms']} ms"
            if count == 3:
                rows.append(Row(label, value, "≥ 950 runs/s", result["runs_per_s"] >= 950))
            else:
                rows.append(Row(label, value))
        failover = _failover(dsn, ctx.workdir, 30 if ctx.quick else 90, 2 if ctx.quick else 3)
        figures["failover"] = failover
        rows.append(
            Row(
                f"failover gap under kill -9 (lease {LEASE:g} s), p99 / max",
                f"{failover['gap_p99_s']} / {failover['gap_max_s']} s",
                f"max ≤ {failover['bound_s']:g} s",
                failover["gap_max_s"] is not None and failover["gap_max_s"] <= failover["bound_s"],
            )
        )
    return Outcome(figures, rows)
