import pytest

from tests.e2e.server import ServerProcess


@pytest.fixture
def make_server(tmp_path, users_file):
    """Factory of real server processes; every one is stopped at the end of the test."""
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
