"""A throwaway PostgreSQL cluster for tests.

``postgres_server()`` runs ``initdb`` in a temporary directory, starts the server on a free
loopback port (fsync off, socket in the temporary directory), creates a database and yields its
DSN; at the end the server is stopped and the directory removed. ``ARANGOTASKS_TEST_PG_DSN``
names an existing server to use instead.

PostgreSQL refuses to run as root. Under root the server commands run as the ``postgres`` OS
user when it exists (else as a throwaway system user created for the session) through
``runuser -u USER --`` (or ``su USER -s /bin/sh -c`` without runuser); the temporary directory is
created in /tmp and owned by that user.

Register the session fixture in a conftest with ``pg_dsn = pg_dsn_fixture()``.
"""

import contextlib
import glob
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

DSN_ENV = "ARANGOTASKS_TEST_PG_DSN"
SUPERUSER = "postgres"
DATABASE = "arangotasks_test"


def find_bindir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``: PATH first, then the newest Debian one."""
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).resolve().parent
    bindirs = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    bindirs = [b for b in bindirs if b.parent.name.isdigit() and (b / "pg_ctl").exists()]
    return max(bindirs, key=lambda b: int(b.parent.name), default=None)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _RunAs:
    """Runs commands as ``user`` (None = as ourselves)."""

    def __init__(self, user: str | None):
        self.user = user

    def __call__(self, cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        if self.user is not None:
            if shutil.which("runuser"):
                cmd = ["runuser", "-u", self.user, "--", *cmd]
            else:
                cmd = ["su", self.user, "-s", "/bin/sh", "-c", shlex.join(cmd)]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kwargs)


@contextlib.contextmanager
def _server_user() -> Iterator[str | None]:
    """The OS user to run the server as; created and removed here if needed."""
    if os.geteuid() != 0:
        yield None
        return
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pass
    else:
        yield "postgres"
        return
    if not shutil.which("useradd"):
        pytest.skip("running as root without a postgres user or useradd")
    name = f"atpg{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/bin/sh", name],
        check=True,
        capture_output=True,
    )
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)


def _check(result: subprocess.CompletedProcess[str], what: str, log: Path | None = None) -> None:
    if result.returncode != 0:
        details = result.stdout + result.stderr
        if log is not None and log.exists():
            details += log.read_text(errors="replace")
        raise RuntimeError(f"{what} failed ({result.returncode}):\n{details}")


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Yield the DSN of an empty database on a fresh cluster (or on ``ARANGOTASKS_TEST_PG_DSN``)."""
    if os.environ.get(DSN_ENV):
        yield os.environ[DSN_ENV]
        return
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries")
    with _server_user() as user:
        run = _RunAs(user)
        # Another user must reach the directory: /tmp rather than a possibly private TMPDIR.
        base = Path(tempfile.mkdtemp(prefix="arangotasks-pg-", dir="/tmp" if user else None))
        try:
            if user is not None:
                entry = pwd.getpwnam(user)
                os.chown(base, entry.pw_uid, entry.pw_gid)
            data, log = base / "data", base / "server.log"
            initdb = [str(bindir / "initdb"), "-D", str(data), "-U", SUPERUSER]
            initdb += ["--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"]
            _check(run(initdb), "initdb")
            dsn = _start(run, bindir, data, log, base)
            try:
                with psycopg.connect(make_conninfo(dsn, dbname="postgres"), autocommit=True) as c:
                    c.execute(f"CREATE DATABASE {DATABASE}")
                yield make_conninfo(dsn, dbname=DATABASE)
            finally:
                stop = [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
                run(stop)
        finally:
            shutil.rmtree(base, ignore_errors=True)


def _start(run: _RunAs, bindir: Path, data: Path, log: Path, socket_dir: Path) -> str:
    """Start the server on a free port (retrying if another process took it); return a DSN."""
    for attempt in range(3):
        port = _free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={socket_dir}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        cmd = [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options]
        result = run([*cmd, "-w", "-t", "30", "start"])
        if result.returncode == 0:
            return make_conninfo(host="127.0.0.1", port=port, user=SUPERUSER)
        if attempt == 2:
            _check(result, "pg_ctl start", log)
    raise AssertionError("unreachable")


@contextlib.contextmanager
def isolated_schema(dsn: str) -> Iterator[str]:
    """Yield a DSN whose ``search_path`` is a new, empty schema; the schema is dropped after."""
    schema = f"t_{uuid.uuid4().hex}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    options = conninfo_to_dict(dsn).get("options") or ""
    try:
        yield make_conninfo(dsn, options=f"{options} -c search_path={schema}".strip())
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def pg_dsn_fixture(name: str = "pg_dsn") -> Callable[[], Iterator[str]]:
    """A session-scoped fixture called ``name`` yielding the DSN of a throwaway database."""

    @pytest.fixture(scope="session", name=name)
    def fixture() -> Iterator[str]:
        with postgres_server() as dsn:
            yield dsn

    return fixture
