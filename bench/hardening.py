"""Before/after figures of issue 10's connection and size items, against a real server.

``python -m bench.hardening [--src DIR] [--seconds S]`` starts ``arangotasks serve`` from the
source tree DIR (default: this one), so that the same script measures an older checkout too:

- ``flood``: with an open file limit of 1,024, 1,100 connections each send half a request line;
  then the time until a normal client's GET is answered (30 s at most).
- ``growth_*``: one task returning a 12 MiB string (and one at the result cap) every 0.2 s for
  S seconds: SQLite file growth (file + WAL) per minute, and runs recorded.
- ``runs_page``: ``GET /_api/runs?limit=20`` over those runs: its latency, and the worst latency
  of ``GET /_api/version`` probes sent every 10 ms meanwhile (the event loop's block).
- ``prune``: a SQLite store with 300 runs of 1 MiB of one task pruned to 5: how long the store
  made a concurrent ``max_run_uid`` (a tiny read) wait at worst, and the file size before and after.
"""

import argparse
import json
import os
import resource
import selectors
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[1]
HALF_LINE = b"GET /_api/vers"


class Server:
    def __init__(self, src: Path, data: Path, nofile: int | None = None, **env: str) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.data = data
        environ = {**os.environ, "ARANGOTASKS_NO_AUTH": "1", "ARANGOTASKS_WORKERS": "2", **env}
        environ["PYTHONPATH"] = str(src)

        def limit() -> None:
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.log = open(data.parent / f"server-{self.port}.log", "wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "arangotasks",
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(data),
            ],
            cwd=src,
            env=environ,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            preexec_fn=limit,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + "/_api/version", timeout=1)
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server did not start")

    def call(self, method: str, path: str, body: Any = None, timeout: float = 60) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def store_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.data.glob("arangotasks.sqlite3*"))


def flood(src: Path, tmp: Path) -> dict[str, Any]:
    server = Server(src, tmp / "flood", nofile=1024, ARANGOTASKS_HEADER_TIMEOUT="120")
    socks: list[socket.socket] = []
    try:
        selector = selectors.DefaultSelector()
        for _ in range(1100):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", server.port))
            selector.register(sock, selectors.EVENT_WRITE)
            socks.append(sock)
        pending, deadline = len(socks), time.monotonic() + 20
        while pending and time.monotonic() < deadline:  # each sends once it is connected
            for key, _ in selector.select(timeout=0.5):
                selector.unregister(key.fileobj)
                pending -= 1
                try:
                    key.fileobj.send(HALF_LINE)  # type: ignore[union-attr]
                except OSError:
                    pass
        selector.close()
        started = time.monotonic()
        try:
            server.call("GET", "/_api/version", timeout=30)
            answered = round((time.monotonic() - started) * 1000, 1)
        except OSError as exc:
            answered = f"no answer within 30 s ({type(exc).__name__})"
        return {"normal_client_ms": answered}
    finally:
        for sock in socks:
            sock.close()
        server.stop()


def _probe(server: Server, stop: threading.Event, worst: list[float]) -> None:
    while not stop.is_set():
        started = time.monotonic()
        try:
            server.call("GET", "/_api/version", timeout=60)
        except OSError:
            pass
        worst.append(time.monotonic() - started)
        time.sleep(0.01)


def growth(src: Path, tmp: Path, name: str, size: int, seconds: float) -> dict[str, Any]:
    server = Server(src, tmp / name, ARANGOTASKS_MEMORY_MB="256")
    try:
        before = server.store_bytes()
        command = f"return 'x'.repeat({size});"
        task = server.call("POST", "/_api/tasks", {"command": command, "period": 0.2})
        time.sleep(seconds)
        server.call("DELETE", f"/_api/tasks/{task['id']}")
        time.sleep(1)
        after = server.store_bytes()
        page = server.call("GET", "/_api/runs?limit=1")
        figures: dict[str, Any] = {
            "runs": page["total"],
            "store_mb_per_min": round((after - before) / 1e6 * 60 / seconds, 1),
        }
        last = page["results"][0] if page["results"] else {}
        figures["last_status"] = last.get("status")
        figures["last_error_type"] = (last.get("error") or {}).get("type")
        worst: list[float] = []
        stop = threading.Event()
        probe = threading.Thread(target=_probe, args=(server, stop, worst))
        probe.start()
        time.sleep(0.2)
        latencies = []
        body_bytes = 0
        for _ in range(3):
            started = time.monotonic()
            with urllib.request.urlopen(server.url + "/_api/runs?limit=20", timeout=120) as r:
                body_bytes = len(r.read())
            latencies.append(time.monotonic() - started)
        time.sleep(0.2)
        stop.set()
        probe.join()
        figures["runs_page_ms"] = [round(x * 1000, 1) for x in latencies]
        figures["runs_page_bytes"] = body_bytes
        figures["probe_worst_ms"] = round(max(worst) * 1000, 1)
        return figures
    finally:
        server.stop()


_PRUNE_SCRIPT = """
import asyncio, json, os, sys, time
from pathlib import Path
from arangotasks.models import Run, RunStatus, RunTrigger
from arangotasks.store.sqlite import SQLiteStore

async def main(path):
    store = SQLiteStore(path)
    await store.open()
    big = json.dumps("b" * (1 << 20))
    for start in range(1, 301, 20):
        batch = range(start, start + 20)
        await store.save_runs([Run(uid, "t", "t", "_system", "", RunTrigger.SCHEDULE, 1.0,
                                   1.0, RunStatus.SUCCEEDED, 1.0, 2.0, big) for uid in batch])
    await asyncio.sleep(2)  # a background checkpoint
    size = lambda: sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    before = size()
    waits, done = [], asyncio.Event()
    async def probe():
        while not done.is_set():
            t = time.monotonic()
            await store.max_run_uid()
            waits.append(time.monotonic() - t)
            await asyncio.sleep(0.005)
    task = asyncio.create_task(probe())
    t = time.monotonic()
    removed = await store.prune_runs(5, 0.0)
    took = time.monotonic() - t
    done.set()
    await task
    await asyncio.sleep(2)
    await store.close()
    print(json.dumps({"removed": removed, "prune_s": round(took, 2),
                      "worst_store_wait_ms": round(max(waits) * 1000, 1),
                      "file_mb_before": round(before / 1e6, 1),
                      "file_mb_after": round(size() / 1e6, 1)}))

asyncio.run(main(Path(sys.argv[1])))
"""


def prune(src: Path, tmp: Path) -> dict[str, Any]:
    path = tmp / "prune" / "store.sqlite3"
    path.parent.mkdir(parents=True)
    out = subprocess.run(
        [sys.executable, "-c", _PRUNE_SCRIPT, str(path)],
        cwd=src,
        env={**os.environ, "PYTHONPATH": str(src)},
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hardening")
    parser.add_argument("--src", type=Path, default=HERE)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--only", default="flood,growth_12mib,growth_cap,prune")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if "flood" in only:
            results["flood"] = flood(args.src, Path(tmp))
            print(json.dumps({"flood": results["flood"]}), flush=True)
        if "growth_12mib" in only:
            results["growth_12mib"] = growth(
                args.src, Path(tmp), "big", 12 * 1024 * 1024, args.seconds
            )
            print(json.dumps({"growth_12mib": results["growth_12mib"]}), flush=True)
        if "growth_cap" in only:
            # Just under the 1 MiB result cap (the JSON text adds two quotes).
            results["growth_cap"] = growth(
                args.src, Path(tmp), "cap", 1024 * 1024 - 16, args.seconds
            )
            print(json.dumps({"growth_cap": results["growth_cap"]}), flush=True)
        if "prune" in only:
            results["prune"] = prune(args.src, Path(tmp))
            print(json.dumps({"prune": results["prune"]}), flush=True)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
