"""aiohttp's connection layer, hardened: ArangoDB error bodies for requests aiohttp rejects before
any middleware sees them (unparseable request lines, bad method tokens, oversized URLs or
headers), a deadline for a request's headers, and a cap on open connections."""

import asyncio
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from arangotasks.api.common import error_response
from arangotasks.errors import ArangoError, ErrorCode


@dataclass(frozen=True, slots=True)
class ConnectionPolicy:
    """How long a request's headers may take, and how many connections may be open at once."""

    header_timeout: float = 10.0
    max_connections: int = 1000


class _ArangoRequestHandler(RequestHandler):
    """One connection. Beside aiohttp's keep-alive timer (idle between requests), a header
    timer runs from the connection's opening, and again from the first byte of each further
    request, until the request's headers are complete: a client that sends half a request
    line and stops (slowloris) is closed after ``header_timeout``, not after the keep-alive
    timeout."""

    def __init__(self, manager: "_ArangoServer", **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._header_timeout = manager.policy.header_timeout
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._arm_header_timer()
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        parsed = self._request_count
        super().data_received(data)
        if self._request_count != parsed:  # a request's headers are complete
            self._cancel_header_timer()
        elif data and self._header_timer is None and self.waiting_for_request:
            self._arm_header_timer()  # the first bytes of the next request

    @property
    def waiting_for_request(self) -> bool:
        """No request is being handled or queued: closing the connection loses nothing."""
        return not (self._request_in_progress or self._messages)

    def _arm_header_timer(self) -> None:
        self._header_timer = self._loop.call_later(self._header_timeout, self._headers_late)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.waiting_for_request and self._waiter is not None:
            self.force_close()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        super().handle_error(request, status, exc, message)  # logs, and checks nothing was sent
        code = ErrorCode.INTERNAL if status >= 500 else ErrorCode.BAD_PARAMETER
        try:
            phrase = HTTPStatus(status).phrase.lower()
        except ValueError:
            phrase = "bad request"
        response = error_response(ArangoError(code, phrase, status=status))
        response.force_close()
        return response


class _ArangoServer(web.Server):
    """Counts connections: beyond ``max_connections`` a new one first closes the oldest
    connection that waits for a request (a half-sent or idle one, as nginx drains its
    reusable connections), so that a flood of them cannot keep a normal client out; when
    every connection is busy with a request, the new one is closed at once instead."""

    policy: ConnectionPolicy = ConnectionPolicy()

    def __call__(self) -> RequestHandler:
        return _ArangoRequestHandler(self, loop=self._loop, **self._kwargs)

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        if len(self._connections) <= self.policy.max_connections:
            return
        # Oldest first (dict order is connection order); a flood's connections are oldest.
        # A closed connection leaves the count at once, not when its task has ended.
        for other in self._connections:
            if (
                other is not handler
                and isinstance(other, _ArangoRequestHandler)
                and other.waiting_for_request
            ):
                break
        else:
            other = handler  # every other connection is busy with a request
        other.force_close()
        del self._connections[other]


class ArangoAppRunner(web.AppRunner):
    """``web.AppRunner`` whose connections follow ``policy`` and answer even protocol errors
    with ArangoDB bodies.

    It relies on aiohttp's ``_make_server`` hook and on ``RequestHandler``'s request count,
    request queue and waiter (checked on 3.13 and 3.14)."""

    def __init__(
        self, app: web.Application, *, policy: ConnectionPolicy | None = None, **kwargs: Any
    ) -> None:
        super().__init__(app, **kwargs)
        self._policy = policy or ConnectionPolicy()

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _ArangoServer
        assert isinstance(server, _ArangoServer)
        server.policy = self._policy
        return server
