"""Connections against a real server whose open file limit is 1,024: a flood of half-sent
requests neither keeps a normal client out nor starves worker respawns of descriptors."""

import errno
import os
import resource
import selectors
import signal
import socket
import time

import pytest

from tests.e2e.http import Http
from tests.e2e.server import ServerProcess

pytestmark = pytest.mark.e2e

FD_LIMIT = 1024
FLOOD = 1100
HALF_LINE = b"GET /_api/vers"


def _low_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


@pytest.fixture
def server(tmp_path):
    # A header deadline longer than the test: only the connection cap and the spare
    # descriptors can keep the server usable while the flood is open.
    process = ServerProcess(tmp_path / "data", ARANGOTASKS_HEADER_TIMEOUT="120")
    process.preexec_fn = _low_fd_limit
    process.start()
    yield process
    process.stop()


def flood(port: int, count: int, within: float = 20.0) -> list[socket.socket]:
    """``count`` connections that each send half a request line and stop (non-blocking, so
    that a server that no longer accepts cannot stall the test)."""
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < count + 200:
        pytest.skip("the test process itself needs more open files")
    selector = selectors.DefaultSelector()
    socks = []
    for _ in range(count):
        sock = socket.socket()
        sock.setblocking(False)
        assert sock.connect_ex(("127.0.0.1", port)) in (0, errno.EINPROGRESS)
        selector.register(sock, selectors.EVENT_WRITE)
        socks.append(sock)
    deadline = time.monotonic() + within
    pending = len(socks)
    while pending and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.5):
            selector.unregister(key.fileobj)
            pending -= 1
            try:
                key.fileobj.send(HALF_LINE)
            except OSError:
                pass  # closed by the server already
    selector.close()
    return socks


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as file:
        return [int(word) for word in file.read().split()]


def test_flood_of_half_sent_requests(server):
    http = Http(server.url)
    task = http.ok(
        "POST", "/_api/tasks", {"command": "return 41 + 1;", "period": 3600, "offset": 3600}
    )
    socks = flood(server.port, FLOOD)
    try:
        started = time.monotonic()
        fresh = Http(server.url)
        status, body = fresh.call("GET", "/_api/version")  # 30 s timeout: generous
        latency = time.monotonic() - started
        print(f"\nnormal client under {FLOOD} half-sent requests: {latency * 1000:.1f} ms")
        assert status == 200 and body["server"] == "arango"
        # Every worker (the compile worker too) is killed: the next runs and creates respawn.
        # (Once the server has reaped them: a run that meets a worker killed a moment ago fails
        # as a crash, with or without a flood.)
        killed = children(server.proc.pid)
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while any(os.path.exists(f"/proc/{pid}") for pid in killed):
            assert time.monotonic() < deadline, "the server did not reap its killed workers"
            time.sleep(0.05)
        for _ in range(3):
            run = fresh.ok("POST", f"/_api/tasks/{task['id']}/run")
            deadline = time.monotonic() + 30
            while True:
                record = fresh.ok("GET", f"/_api/runs/{run['uid']}")
                if record["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert record["status"] == "succeeded", (record, server.output()[-3000:])
            assert record["result"] == 42
        created = fresh.ok("POST", "/_api/tasks", {"command": "return 2;", "offset": 3600})
        assert created["id"]
    finally:
        for sock in socks:
            sock.close()
    assert "Too many open files" not in server.output()
