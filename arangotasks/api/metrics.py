"""``GET /_admin/metrics[/v2]`` and the middleware that counts HTTP requests."""

import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from arangotasks.errors import ArangoError, ErrorCode
from arangotasks.keys import ACCESS, METRICS, SETTINGS, principal_of

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _exposition(request: web.Request) -> web.Response:
    response = web.Response(body=request.app[METRICS].exposition())
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


async def metrics_handler(request: web.Request) -> web.StreamResponse:
    """The Prometheus text format; superusers only (scrapers use the metrics token)."""
    if not principal_of(request).superuser:
        raise ArangoError(ErrorCode.FORBIDDEN, "metrics are for superusers only")
    return _exposition(request)


def _scrape_token(request: web.Request) -> bool:
    """Whether the request carries ``Authorization: Bearer <ARANGOTASKS_METRICS_TOKEN>``."""
    token = request.app[SETTINGS].metrics_token
    if not token:
        return False
    scheme, _, value = request.headers.get("Authorization", "").strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        value.strip().encode(errors="surrogatepass"), token.encode()
    )


@web.middleware
async def http_metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every answer by method and status (outermost, so that it sees error bodies too).

    A metrics request with the scrape token is answered here: the token is no JWT, so the
    authentication further in would refuse it.
    """
    metrics = request.app[METRICS]
    try:
        match_handler = getattr(request.match_info, "handler", None)
        database = request.match_info.get("database")
        if (
            match_handler is metrics_handler
            and _scrape_token(request)
            and (database is None or request.app[ACCESS].database_exists(database))
        ):
            response: web.StreamResponse = _exposition(request)
        else:
            response = await handler(request)
    except web.HTTPException as exc:
        metrics.count_request(request.method, exc.status)
        raise
    except Exception:
        metrics.count_request(request.method, 500)
        raise
    metrics.count_request(request.method, response.status)
    return response
