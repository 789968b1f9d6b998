"""The store's disk fills up: the API answers 503 with a clear error and recovers by itself
when space is freed (needs root for a small tmpfs; skipped otherwise). A read-only store is
tested in-process (tests/api/test_store_faults.py): a mount cannot turn read-only while the
server holds its database open for writing."""

import contextlib
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.http import Http
from tests.e2e.server import ServerProcess

pytestmark = pytest.mark.e2e


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with open(filler, "wb") as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 65536)
            f.flush()
    return filler


def assert_503(http: Http, method: str, path: str, body=None) -> None:
    status, data = http.call(method, path, body)
    assert status == 503, (status, data)
    assert data["error"] is True and data["errorNum"] == 503 and data["code"] == 503
    assert data["errorMessage"] == "task store unavailable: disk full"  # no path


def wait_ok(http: Http, method: str, path: str, body=None, within: float = 10) -> dict:
    deadline = time.monotonic() + within
    while True:
        status, data = http.call(method, path, body)
        if status == 200:
            return data
        assert time.monotonic() < deadline, (status, data)
        time.sleep(0.1)


@pytest.fixture
def disk_server(small_disk, users_file):
    server = ServerProcess(small_disk / "data", users_file)
    server.log_path = small_disk.parent / "server.log"
    server.start()
    yield server
    server.stop()


def test_disk_full_gives_503_and_recovers(disk_server, small_disk):
    http = Http(disk_server.url)
    http.ok("PUT", "/_api/tasks/before", {"command": "return 1;", "offset": 3600})
    filler = fill(small_disk)
    big = {"command": "return 1;", "offset": 3600, "params": "x" * 200_000}
    for i in range(20):  # SQLite may still find room in free pages for a small write
        status, data = http.call("PUT", f"/_api/tasks/full{i}", big)
        if status == 503:
            break
        assert status == 200, (status, data)
    assert_503(http, "PUT", "/_api/tasks/full-final", big)
    # Reads keep working from memory; the server still serves.
    assert http.ok("GET", "/_api/tasks/before")["id"] == "before"
    filler.unlink()
    wait_ok(http, "PUT", "/_api/tasks/after", {"command": "return 1;", "offset": 3600})
    ids = {t["id"] for t in http.ok("GET", "/_api/tasks")}
    assert {"before", "after"} <= ids
    assert "full-final" not in ids
    disk_server.stop()
    disk_server.start()
    assert {t["id"] for t in Http(disk_server.url).ok("GET", "/_api/tasks")} == ids
