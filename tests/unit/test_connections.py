"""The connection layer in-process: header deadline, connection cap, descriptor limits."""

import asyncio
import subprocess
import sys

import pytest
from aiohttp import web

from arangotasks.api.protocol import ArangoAppRunner, ConnectionPolicy
from arangotasks.fds import connection_cap, spare_descriptors

REQUEST = b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n"
DEADLINE = 20.0  # generous: the machine is shared


async def _serve(policy: ConnectionPolicy, handler=None, **kwargs):
    async def ok(request: web.Request) -> web.Response:
        if handler is not None:
            await handler()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/x", ok)
    runner = ArangoAppRunner(app, policy=policy, access_log=None, **kwargs)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, port


async def _closed(reader: asyncio.StreamReader) -> bool:
    """Whether the server closes the connection (EOF or reset) within the deadline."""
    try:
        async with asyncio.timeout(DEADLINE):
            while await reader.read(1 << 16):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


async def _answered(port: int) -> bool:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(REQUEST)
        async with asyncio.timeout(DEADLINE):
            line = await reader.readline()
        return line.startswith(b"HTTP/1.1 200")
    finally:
        writer.close()


async def test_half_sent_request_is_closed_after_the_header_deadline():
    runner, port = await _serve(ConnectionPolicy(header_timeout=0.3), keepalive_timeout=3600)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /x HT")
        assert await _closed(reader)
        # Also a further request on a kept-alive connection.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(REQUEST)
        assert (await reader.readline()).startswith(b"HTTP/1.1 200")
        writer.write(b"GET /x HTTP/1.1\r\nHo")
        assert await _closed(reader)
    finally:
        await runner.cleanup()


async def test_a_slow_handler_is_not_cut_by_the_header_deadline():
    async def slow() -> None:
        await asyncio.sleep(1.0)

    runner, port = await _serve(ConnectionPolicy(header_timeout=0.2), slow)
    try:
        assert await _answered(port)
    finally:
        await runner.cleanup()


async def test_connection_cap_drops_the_oldest_waiting_connection():
    runner, port = await _serve(ConnectionPolicy(header_timeout=3600, max_connections=5))
    try:
        flood = [await asyncio.open_connection("127.0.0.1", port) for _ in range(5)]
        for _, writer in flood:
            writer.write(b"GET /x HT")
            await writer.drain()
        assert await _answered(port)  # the 6th connection gets in
        assert await _closed(flood[0][0])  # by closing the oldest waiting one
    finally:
        await runner.cleanup()


async def test_connection_cap_refuses_when_every_connection_is_busy():
    release = asyncio.Event()
    runner, port = await _serve(ConnectionPolicy(max_connections=3), release.wait)
    try:
        busy = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        for _, writer in busy:
            writer.write(REQUEST)
        while sum(1 for c in runner.server.connections if not c.waiting_for_request) < 3:
            await asyncio.sleep(0.01)
        reader, _ = await asyncio.open_connection("127.0.0.1", port)
        assert await _closed(reader)  # refused at once
        release.set()
        for reader, _ in busy:  # the busy ones are not starved
            async with asyncio.timeout(DEADLINE):
                assert (await reader.readline()).startswith(b"HTTP/1.1 200")
    finally:
        await runner.cleanup()


def test_soft_fd_limit_is_raised_to_the_hard_one():
    code = (
        "import resource; from arangotasks.fds import raise_nofile_limit;"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, 1024));"
        "print(raise_nofile_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, text=True)
    assert out.stdout.split() == ["1024", "1024"]


@pytest.mark.parametrize(
    ("setting", "limit", "expected"),
    [(1000, 1 << 20, 1000), (1000, 1024, 1024 - spare_descriptors(2)), (1000, 100, 16)],
)
def test_connection_cap_leaves_spare_descriptors(setting, limit, expected):
    assert connection_cap(setting, limit, 2) == expected
