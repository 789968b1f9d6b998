"""Run an ArangoDB for the bridge tests: the contract double on loopback in a thread of its own,
or the real server named by ``ARANGOTASKS_TEST_ARANGODB_URL`` (``_USER``, ``_PASSWORD``)."""

import asyncio
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from aiohttp import web

from tests.arangodb.double import Double

REAL_URL = os.environ.get("ARANGOTASKS_TEST_ARANGODB_URL")


@dataclass
class Arango:
    """Where the tests' ArangoDB is, and (for the double) its state."""

    url: str
    user: str
    password: str
    database: str
    double: Double | None = None


@contextmanager
def run_double(double: Double) -> Iterator[str]:
    """Serve ``double`` on a free loopback port from a background thread; yield its URL."""
    loop = asyncio.new_event_loop()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    runner = web.AppRunner(double.app(), access_log=None)
    loop.run_until_complete(runner.setup())
    site = web.SockSite(runner, sock)
    loop.run_until_complete(site.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@contextmanager
def arango(database: str = "tasksdb") -> Iterator[Arango]:
    """An ArangoDB with an empty ``database`` (a fresh one on a real server, dropped after)."""
    if REAL_URL:
        yield from _real(database)
        return
    double = Double(user="root", password="double-pw", databases=(database, "other"))
    with run_double(double) as url:
        yield Arango(url, "root", "double-pw", database, double)


def _real(database: str) -> Iterator[Arango]:
    from arango import ArangoClient  # python-arango, a dev dependency

    user = os.environ.get("ARANGOTASKS_TEST_ARANGODB_USER", "root")
    password = os.environ.get("ARANGOTASKS_TEST_ARANGODB_PASSWORD", "")
    name = f"{database}_{uuid.uuid4().hex[:8]}"
    client = ArangoClient(hosts=REAL_URL)
    system = client.db("_system", username=user, password=password)
    system.create_database(name)
    try:
        yield Arango(REAL_URL or "", user, password, name)
    finally:
        system.delete_database(name, ignore_missing=True)
        client.close()
