"""HTTP load generators: wrk (when installed) and an aiohttp one in its own process.

Both return the same figures: ``{"requests", "seconds", "rps", "errors", "p50_ms", "p99_ms",
"max_ms"}``. ``errors`` counts failed connections and non-2xx answers. Every ``__N__`` in a
request body becomes a number unique to that request (distinct task commands, say).

    python -m bench.loadgen URL [--method POST --body JSON] [-c 16] [-d 5] [--rate R]

runs the aiohttp generator and prints its figures as one JSON line: closed loop (``-c``
connections, each sending its next request when the previous one answered) or, with ``--rate``,
an open loop at a fixed request rate whose latencies count from each request's scheduled send
time (no coordinated omission).
"""

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import REPO_ROOT, percentile, python_env

_WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nWRKJSON {"requests":%d,"duration_us":%d,"errors":%d,'
    .. '"p50_us":%d,"p99_us":%d,"max_us":%d}\\n',
    summary.requests, summary.duration,
    e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


UNIQUE = "__N__"
_WRK_UNIQUE = """
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format(nil, nil, nil, (string.gsub(wrk.body, "__N__", "SALT" .. counter)))
end
"""


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def wrk(
    url: str,
    scratch: Path,
    *,
    method: str = "GET",
    body: str | None = None,
    connections: int = 16,
    seconds: float = 5.0,
) -> dict[str, Any]:
    """One closed-loop wrk run (one thread) and its figures."""
    script = scratch / f"wrk-{method.lower()}.lua"
    lua = f'wrk.method = "{method}"\n'
    if body is not None:
        lua += f"wrk.body = {json.dumps(body)}\n"
        lua += 'wrk.headers["Content-Type"] = "application/json"\n'
    if body is not None and UNIQUE in body:
        lua += _WRK_UNIQUE.replace("SALT", str(time.time_ns()))
    script.write_text(lua + _WRK_DONE)
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
    command += ["--timeout", "10s", "-s", str(script), url]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("WRKJSON "))
    raw = json.loads(line.removeprefix("WRKJSON "))
    duration = raw["duration_us"] / 1e6
    return {
        "tool": "wrk",
        "requests": raw["requests"],
        "seconds": round(duration, 2),
        "rps": round(raw["requests"] / duration, 1),
        "errors": raw["errors"],
        "p50_ms": raw["p50_us"] / 1e3,
        "p99_ms": raw["p99_us"] / 1e3,
        "max_ms": raw["max_us"] / 1e3,
    }


def aiohttp_load(
    url: str,
    *,
    method: str = "GET",
    body: str | None = None,
    connections: int = 16,
    seconds: float = 5.0,
    rate: float = 0.0,
) -> dict[str, Any]:
    """The aiohttp generator, run in a separate process (so it does not share this one's GIL)."""
    command = [sys.executable, "-m", "bench.loadgen", url, "--method", method]
    command += ["-c", str(connections), "-d", str(seconds), "--rate", str(rate)]
    if body is not None:
        command += ["--body", body]
    out = subprocess.run(
        command, capture_output=True, text=True, check=True, cwd=REPO_ROOT, env=python_env()
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def load(url: str, scratch: Path, **options: Any) -> dict[str, Any]:
    """wrk when installed (closed loop only), else the aiohttp generator."""
    if have_wrk() and not options.get("rate"):
        return wrk(url, scratch, **options)
    return aiohttp_load(url, **options)


async def _generate(
    url: str, method: str, body: str | None, connections: int, seconds: float, rate: float
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    headers = {"Content-Type": "application/json"} if body is not None else {}
    salt, counter = time.time_ns(), 0

    def payload() -> bytes | None:
        nonlocal counter
        if body is None:
            return None
        counter += 1
        return body.replace(UNIQUE, f"{salt}{counter}").encode()

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(scheduled: float) -> None:
            nonlocal errors
            try:
                async with session.request(method, url, data=payload(), headers=headers) as resp:
                    await resp.read()
                    if not 200 <= resp.status < 300:
                        errors += 1
            except aiohttp.ClientError:
                errors += 1
            latencies.append(time.perf_counter() - scheduled)

        started = time.perf_counter()
        end = started + seconds
        if rate > 0:
            pending: set[asyncio.Task[None]] = set()
            sent = 0
            while (at := started + sent / rate) < end:
                await asyncio.sleep(max(0.0, at - time.perf_counter()))
                task = asyncio.create_task(one(at))
                pending.add(task)
                task.add_done_callback(pending.discard)
                sent += 1
            await asyncio.gather(*pending)
        else:

            async def client() -> None:
                while time.perf_counter() < end:
                    await one(time.perf_counter())

            await asyncio.gather(*(client() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    return {
        "tool": "aiohttp",
        "requests": len(latencies),
        "seconds": round(elapsed, 2),
        "rps": round(len(latencies) / elapsed, 1),
        "errors": errors,
        "p50_ms": round(percentile(latencies, 50) * 1e3, 3),
        "p99_ms": round(percentile(latencies, 99) * 1e3, 3),
        "max_ms": round(max(latencies) * 1e3, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen")
    parser.add_argument("url")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--body")
    parser.add_argument("-c", "--connections", type=int, default=16)
    parser.add_argument("-d", "--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=0.0, help="requests/s (0: closed loop)")
    args = parser.parse_args()
    result = asyncio.run(
        _generate(args.url, args.method, args.body, args.connections, args.seconds, args.rate)
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
