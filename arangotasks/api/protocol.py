"""ArangoDB error bodies for requests aiohttp rejects before any middleware sees them
(unparseable request lines, bad method tokens, oversized URLs or headers)."""

from http import HTTPStatus

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from arangotasks.api.common import error_response
from arangotasks.errors import ArangoError, ErrorCode


class _ArangoRequestHandler(RequestHandler):
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
    def __call__(self) -> RequestHandler:
        return _ArangoRequestHandler(self, loop=self._loop, **self._kwargs)


class ArangoAppRunner(web.AppRunner):
    """``web.AppRunner`` whose connections answer even protocol errors with ArangoDB bodies.

    It relies on aiohttp's ``_make_server`` hook (checked on 3.13 and 3.14)."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _ArangoServer
        return server
