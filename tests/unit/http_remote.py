"""Stand-ins for remote services on loopback: an aiohttp app answering what outbound HTTP tests
need, and a bare listener that counts the connections it accepts."""

import asyncio
import contextlib
import json
import queue
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

from aiohttp import web

from arangotasks.config import Settings
from arangotasks.outbound import Outbound
from arangotasks.sandbox.host import HostCalls


async def _echo(request: web.Request) -> web.Response:
    body = await request.text()
    return web.json_response(
        {
            "method": request.method,
            "path": request.path,
            "query": request.rel_url.raw_query_string,
            "headers": {k.lower(): v for k, v in request.headers.items()},
            "body": body,
        }
    )


async def _status(request: web.Request) -> web.Response:
    code = int(request.match_info["code"])
    return web.Response(status=code, text=f"status {code}")


async def _redirect(request: web.Request) -> web.Response:
    left = int(request.match_info["n"])
    code = int(request.query.get("code", "302"))
    target = "/echo" if left <= 1 else f"/redirect/{left - 1}?code={code}"
    return web.Response(status=code, headers={"Location": target})


async def _to(request: web.Request) -> web.Response:
    return web.Response(status=302, headers={"Location": request.query["url"]})


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("s", "60")))
    return web.Response(text="late")


async def _big(request: web.Request) -> web.Response:
    return web.Response(body=b"x" * int(request.query["bytes"]))


async def _headers(request: web.Request) -> web.Response:
    response = web.Response(text="not json {")
    response.headers.add("X-Multi", "a")
    response.headers.add("X-Multi", "b")
    response.headers["X-Case"] = "Value"
    return response


async def _json(request: web.Request) -> web.Response:
    return web.Response(text=json.dumps({"x": 1, "s": "ü"}), content_type="application/json")


def remote_app() -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/echo", _echo)
    app.router.add_route("*", "/status/{code}", _status)
    app.router.add_route("*", "/redirect/{n}", _redirect)
    app.router.add_route("*", "/to", _to)
    app.router.add_get("/slow", _slow)
    app.router.add_get("/big", _big)
    app.router.add_get("/headers", _headers)
    app.router.add_get("/json", _json)
    return app


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[int]:
    """Serve ``app`` on 127.0.0.1 (a free port, yielded) for the length of the block."""
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    port: int = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield port
    finally:
        await runner.cleanup()


class Listener:
    """A TCP listener on 127.0.0.1 that counts accepted connections (and closes them)."""

    def __init__(self) -> None:
        self.accepted = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def use_outbound(calls: HostCalls, **settings: object) -> Outbound:
    """A fresh ``http.request`` handler on ``calls`` under these settings (replacing the last)."""
    outbound = Outbound(Settings(**settings))  # type: ignore[arg-type]
    outbound.register(calls)
    return outbound


@contextlib.contextmanager
def remote_in_a_thread() -> Iterator[int]:
    """The loopback stand-in remote served from a thread of its own (run_file runs its loop)."""
    loop = asyncio.new_event_loop()
    ready: queue.Queue[int] = queue.Queue()
    stop = asyncio.Event()

    async def main() -> None:
        async with serve(remote_app()) as port:
            ready.put(port)
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    try:
        yield ready.get(timeout=30)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        loop.close()
