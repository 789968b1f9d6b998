"""Shared fixtures: settings on a temp folder, a users file, an in-process app factory."""

import base64
from pathlib import Path

import pytest

from arangotasks.app import create_app
from arangotasks.config import Settings
from tests.pgserver import pg_dsn_fixture

# A throwaway PostgreSQL cluster for the whole session (skips where none can be started).
pg_dsn = pg_dsn_fixture()

ROOT_PASSWORD = "root-pw"
JWT_SECRET = "test-jwt-secret-which-is-long-enough-for-hs256"

USERS_TOML = """
databases = ["testdb", "other"]

[[users]]
name = "alice"
password = "alice-pw"
access = "rw"

[[users]]
name = "bob"
password = "bob-pw"
access = "ro"

[[users]]
name = "carol"
password = "carol-pw"
access = "rw"
databases = ["other"]
"""


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


ROOT = basic("root", ROOT_PASSWORD)
ALICE = basic("alice", "alice-pw")
BOB = basic("bob", "bob-pw")
CAROL = basic("carol", "carol-pw")


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    path = tmp_path / "users.toml"
    path.write_text(USERS_TOML)
    return path


@pytest.fixture
def make_settings(tmp_path: Path, users_file: Path):
    def make(**overrides) -> Settings:
        values = {
            "data_dir": tmp_path / "data",
            "root_password": ROOT_PASSWORD,
            "jwt_secret": JWT_SECRET,
            "config": users_file,
            "workers": 1,
            "timeout": 5.0,
            "history_flush_interval": 0.01,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def make_client(aiohttp_client, make_settings):
    """Start the real app in-process (real SQLite store, real QuickJS workers)."""

    async def make(**overrides):
        return await aiohttp_client(create_app(make_settings(**overrides)))

    return make


@pytest.fixture
async def client(make_client):
    return await make_client()


@pytest.fixture
def make_server(tmp_path, users_file):
    """Factory of real server processes; every one is stopped at the end of the test."""
    from tests.e2e.server import ServerProcess  # it imports the constants above

    servers: list[ServerProcess] = []

    def make(**env: str) -> ServerProcess:
        server = ServerProcess(tmp_path / "data", users_file, **env)
        servers.append(server)
        server.start()
        return server

    yield make
    for server in servers:
        if server.proc is not None and server.proc.poll() is None:
            server.stop()


@pytest.fixture
def server(make_server):
    return make_server()
