"""Starting a real server: one server per data directory, private modes, clear one-line errors."""

import hashlib
import os
import stat
import subprocess
import sys

import pytest

from tests.e2e.http import Http
from tests.e2e.server import ServerProcess

pytestmark = pytest.mark.e2e


def serve(data_dir, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``arangotasks serve`` expecting it to refuse to start (it would block otherwise)."""
    cmd = [sys.executable, "-m", "arangotasks", "serve", "--port", "0", "--data-dir", str(data_dir)]
    return subprocess.run(
        [*cmd, *args], capture_output=True, text=True, timeout=60, env={**os.environ, **env}
    )


def test_second_server_on_the_same_data_dir_refuses_to_start(server):
    done = serve(server.data_dir)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert str(server.data_dir.absolute()) in lines[0]
    assert f"pid {server.proc.pid}" in lines[0]
    # The first one is unharmed and, once it stopped, the directory is free again.
    assert Http(server.url).ok("GET", "/_api/tasks") == []
    assert server.stop() == 0
    server.start()


def test_data_dir_and_its_files_are_private(server):
    Http(server.url).ok("PUT", "/_api/tasks/t", {"command": "return 1;", "period": 0.05})
    Http(server.url).wait_runs("taskIds=t", 1)
    data = server.data_dir
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    files = sorted(p.name for p in data.iterdir())
    assert "arangotasks.sqlite3-wal" in files and "arangotasks.sqlite3-shm" in files
    for path in data.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_loose_modes_of_an_earlier_version_are_tightened(tmp_path, users_file):
    first = ServerProcess(tmp_path / "data", users_file, ARANGOTASKS_JWT_SECRET="")
    first.start()
    first.stop()
    data = tmp_path / "data"
    os.chmod(data, 0o755)
    for path in data.iterdir():
        os.chmod(path, 0o644)
    first.start()
    try:
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        for name in ("arangotasks.sqlite3", "jwt-secret"):
            assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
    finally:
        first.stop()


def test_corrupt_sqlite_file_gives_one_line_and_is_left_alone(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    db = data / "arangotasks.sqlite3"
    db.write_bytes(b"this is not a database " * 500)
    os.chmod(db, 0o600)
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    done = serve(data, ARANGOTASKS_JWT_SECRET="x" * 40)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "not a database" in lines[0] and str(db) in lines[0]
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in data.iterdir()) == ["arangotasks.lock", "arangotasks.sqlite3"]


def test_short_jwt_secret_file_is_refused_in_one_line(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "jwt-secret").write_text("short\n")
    os.chmod(data / "jwt-secret", 0o600)
    done = serve(data, ARANGOTASKS_JWT_SECRET="")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "jwt-secret" in lines[0] and "5 characters" in lines[0]
    assert (data / "jwt-secret").read_text() == "short\n"
