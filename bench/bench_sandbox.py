"""Measure the JavaScript sandbox on this machine.

    python bench/bench_sandbox.py [--out bench/sandbox.json] [--runs 4000]

* cost of one trivial run (``return params.a + params.b``) awaited through the pool, against a
  bare fresh quickjs Context + eval in a tight loop (and the worker's own work without IPC);
* runs per second with the default worker count: 4 callers per worker, each awaiting its runs
  in turn (as the scheduler does), and all runs gathered at once;
* the largest event-loop pause while those runs go on (a ticker task measuring its gaps); the
  burst's pause is mostly asyncio starting thousands of tasks in one loop iteration;
* respawn time: from SIGKILL of a busy worker to the next run's answer.
"""

import argparse
import asyncio
import json
import os
import platform
import resource
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import quickjs

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arangotasks.sandbox import Limits, QuickJSSandbox
from arangotasks.sandbox.runner import Runner, load_prelude

COMMAND = "return params.a + params.b"
PARAMS = '{"a": 1, "b": 2}'


def bare_engine_us(n: int) -> float:
    """A fresh Context per call, the command inlined: the floor of a fresh-context design."""
    source = f"(function (params) {{ {COMMAND} }})({PARAMS})"
    started = time.perf_counter()
    for _ in range(n):
        context = quickjs.Context()
        context.set_memory_limit(64 << 20)
        context.set_time_limit(30)
        context.set_max_stack_size(1 << 20)
        assert context.eval(source) == 3
    return (time.perf_counter() - started) / n * 1e6


def worker_inline_us(n: int) -> float:
    """The worker's whole run (context, prelude, compile, call, reply) without the pipes."""
    runner = Runner(load_prelude())
    request = {"op": "run", "command": COMMAND, "params": PARAMS, "timeout": 30.0}
    request |= {"memory": 64 << 20, "stack": 1 << 20, "output": 64 << 10}
    started = time.perf_counter()
    for _ in range(n):
        assert runner.run(request)["result"] == "3"
    return (time.perf_counter() - started) / n * 1e6


async def pool_sequential_us(sandbox: QuickJSSandbox, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        outcome = await sandbox.run(COMMAND, PARAMS)
        assert outcome.result_json == "3"
    return (time.perf_counter() - started) / n * 1e6


class LoopWatch:
    """A ticker task: the largest gap between its 1 ms ticks is the event loop's longest pause."""

    def __init__(self) -> None:
        self.largest = 0.0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> "LoopWatch":
        self._task = asyncio.create_task(self._tick())
        await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task

    async def _tick(self) -> None:
        last = time.perf_counter()
        while not self._stop.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            self.largest = max(self.largest, now - last)
            last = now


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system) of this process, or of the process ``pid``."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def steady(sandbox: QuickJSSandbox, n: int, clients: int) -> dict[str, float]:
    """``clients`` callers, each awaiting its runs one after the other (how the scheduler drives
    the pool): runs per second, largest loop pause, CPU per run of the parent and the workers
    (the CPU numbers hold up on a busy machine; the others do not)."""

    async def client(count: int) -> None:
        for _ in range(count):
            assert (await sandbox.run(COMMAND, PARAMS)).result_json == "3"

    done = n // clients * clients
    workers_before = sum(cpu_seconds(pid) for pid in sandbox.pids)
    parent_before = cpu_seconds()
    async with LoopWatch() as watch:
        started = time.perf_counter()
        await asyncio.gather(*(client(n // clients) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return {
        "rate": done / elapsed,
        "pause_ms": watch.largest * 1e3,
        "parent_cpu_us": (cpu_seconds() - parent_before) / done * 1e6,
        "worker_cpu_us": (sum(cpu_seconds(pid) for pid in sandbox.pids) - workers_before)
        / done
        * 1e6,
    }


async def burst(sandbox: QuickJSSandbox, n: int) -> tuple[float, float]:
    """(runs per second, largest loop pause in ms) with ``n`` runs gathered at once."""
    async with LoopWatch() as watch:
        started = time.perf_counter()
        outcomes = await asyncio.gather(*(sandbox.run(COMMAND, PARAMS) for _ in range(n)))
        elapsed = time.perf_counter() - started
    assert all(outcome.result_json == "3" for outcome in outcomes)
    return n / elapsed, watch.largest * 1e3


async def respawn_ms(repeats: int) -> list[float]:
    sandbox = QuickJSSandbox(workers=1)
    await sandbox.start()
    times = []
    try:
        for _ in range(repeats):
            [pid] = sandbox.pids
            busy = asyncio.create_task(sandbox.run("while (true) {}", None))
            await asyncio.sleep(0.05)
            killed = time.perf_counter()
            os.kill(pid, signal.SIGKILL)
            outcome = await busy
            assert outcome.error is not None and outcome.error["type"] == "crash"
            assert (await sandbox.run(COMMAND, PARAMS)).result_json == "3"
            times.append((time.perf_counter() - killed) * 1e3)
    finally:
        await sandbox.close()
    return times


async def pool_measurements(runs: int) -> dict[str, Any]:
    started = time.perf_counter()
    sandbox = QuickJSSandbox(limits=Limits())
    await sandbox.start()
    start_ms = (time.perf_counter() - started) * 1e3
    try:
        await pool_sequential_us(sandbox, 200)  # warm-up
        sequential = statistics.median([await pool_sequential_us(sandbox, 1000) for _ in range(3)])
        steady_runs = [await steady(sandbox, runs, 4 * sandbox.size) for _ in range(3)]
        burst_runs = [await burst(sandbox, runs) for _ in range(3)]
    finally:
        await sandbox.close()
    respawns = await respawn_ms(5)
    return {
        "workers": sandbox.size,
        "pool_start_ms": round(start_ms, 1),
        "pool_run_us": round(sequential, 1),
        "runs_per_second": round(statistics.median(run["rate"] for run in steady_runs)),
        "max_loop_pause_ms": round(max(run["pause_ms"] for run in steady_runs), 2),
        "parent_cpu_us_per_run": round(min(run["parent_cpu_us"] for run in steady_runs), 1),
        "worker_cpu_us_per_run": round(min(run["worker_cpu_us"] for run in steady_runs), 1),
        "burst_runs_per_second": round(statistics.median(rate for rate, _ in burst_runs)),
        "burst_max_loop_pause_ms": round(max(pause for _, pause in burst_runs), 2),
        "respawn_ms_median": round(statistics.median(respawns), 1),
        "respawn_ms_all": [round(t, 1) for t in respawns],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench/sandbox.json", help="JSON results file")
    parser.add_argument("--runs", type=int, default=2000, help="runs per throughput round")
    args = parser.parse_args()

    bare = statistics.median([bare_engine_us(2000) for _ in range(3)])
    inline = statistics.median([worker_inline_us(2000) for _ in range(3)])
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "load_average_at_start": os.getloadavg()[0],
        "bare_engine_us": round(bare, 1),
        "worker_inline_us": round(inline, 1),
    }
    results |= asyncio.run(pool_measurements(args.runs))
    results["ratio_pool_to_bare"] = round(results["pool_run_us"] / bare, 2)

    rows = [
        ("bare fresh Context + eval (tight loop)", f"{results['bare_engine_us']} µs"),
        ("worker run without IPC (context+prelude+call)", f"{results['worker_inline_us']} µs"),
        ("one run awaited through the pool", f"{results['pool_run_us']} µs"),
        ("ratio pool / bare", f"{results['ratio_pool_to_bare']} x"),
        (f"runs/s, {results['workers']} workers, 4 callers each", f"{results['runs_per_second']}"),
        ("  largest event-loop pause meanwhile", f"{results['max_loop_pause_ms']} ms"),
        ("  CPU per run: parent (event loop)", f"{results['parent_cpu_us_per_run']} µs"),
        ("  CPU per run: worker", f"{results['worker_cpu_us_per_run']} µs"),
        (f"runs/s, {args.runs} runs gathered at once", f"{results['burst_runs_per_second']}"),
        ("  largest event-loop pause meanwhile", f"{results['burst_max_loop_pause_ms']} ms"),
        ("pool start", f"{results['pool_start_ms']} ms"),
        ("respawn (kill → next answer), median of 5", f"{results['respawn_ms_median']} ms"),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"{results['machine']}, load average {results['load_average_at_start']:.2f}")
    for name, value in rows:
        print(f"  {name:<{width}}  {value:>12}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
