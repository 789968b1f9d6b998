"""What a real server's worker processes hold: no secrets, no privileges, no life of their own."""

import os
import pwd
import time
from pathlib import Path

import pytest

from tests.conftest import JWT_SECRET, ROOT_PASSWORD
from tests.e2e.http import Http

pytestmark = pytest.mark.e2e


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def alive(pid: int) -> bool:
    try:
        return status(pid)["State"][0] != "Z"
    except (OSError, KeyError):
        return False


def wait_for(condition, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_workers_hold_no_secrets(server):
    workers = children(server.proc.pid)
    assert len(workers) >= 3  # two run workers and the compile worker(s)
    for pid in workers:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        assert ROOT_PASSWORD.encode() not in environ
        assert JWT_SECRET.encode() not in environ
        assert b"ARANGOTASKS_" not in environ


@pytest.mark.skipif(os.geteuid() != 0, reason="needs a server running as root")
def test_workers_of_a_root_server_run_as_nobody_without_capabilities(server):
    nobody = pwd.getpwnam("nobody")
    for pid in children(server.proc.pid):
        fields = status(pid)
        assert fields["Uid"].split() == [str(nobody.pw_uid)] * 4
        assert fields["Gid"].split() == [str(nobody.pw_gid)] * 4
        assert fields["Groups"] == ""
        for caps in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
            assert int(fields[caps], 16) == 0, caps
        assert fields["NoNewPrivs"] == "1"
    # They still run tasks.
    http = Http(server.url)
    http.ok("PUT", "/_api/tasks/t", {"command": "return 6 * 7;", "offset": 0})
    assert http.wait_runs("taskIds=t", 1)["results"][0]["result"] == 42


def test_workers_die_with_a_killed_server(server):
    http = Http(server.url)
    http.ok("PUT", "/_api/tasks/busy", {"command": "for (;;) {}", "offset": 0, "timeout": 600})
    wait_for(lambda: http.ok("GET", "/_api/runs?taskIds=busy&statuses=processing")["total"] == 1)
    workers = children(server.proc.pid)
    assert workers
    server.kill9()
    wait_for(lambda: not any(alive(pid) for pid in workers))
