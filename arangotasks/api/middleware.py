"""Middlewares: ArangoDB error bodies for everything, then authentication and database checks."""

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from arangotasks.api.common import error_response
from arangotasks.api.origin import check_same_origin
from arangotasks.auth import ANONYMOUS_SUPERUSER, not_authorized
from arangotasks.config import SYSTEM_DATABASE
from arangotasks.errors import ArangoError, ErrorCode, StoreUnavailableError
from arangotasks.keys import ACCESS, AUTHENTICATOR, DATABASE_KEY, PRINCIPAL_KEY, SETTINGS
from arangotasks.ui.paths import is_ui

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Routes reachable without credentials, as in ArangoDB (also under /_db/{database}/).
OPEN_PREFIXES = ("/_open/",)
OPEN_PATHS = frozenset({"/_admin/server/availability", "/_api/health/live"})
_DB_PREFIX = "/_db/{database}"


def _is_open(request: web.Request) -> bool:
    resource = request.match_info.route.resource
    path = resource.canonical if resource is not None else request.path
    path = path.removeprefix(_DB_PREFIX)
    return path.startswith(OPEN_PREFIXES) or path in OPEN_PATHS


def _http_error(exc: web.HTTPException, request: web.Request) -> ArangoError:
    if exc.status == 404:
        return ArangoError(ErrorCode.HTTP_NOT_FOUND, f"unknown path '{request.path}'")
    if exc.status == 405:
        return ArangoError(ErrorCode.METHOD_NOT_ALLOWED)
    if exc.status == 413:
        return ArangoError(
            ErrorCode.REQUEST_TOO_LARGE,
            f"request body too large (limit {request.app[SETTINGS].max_body_mb:g} MiB)",
        )
    return ArangoError(ErrorCode.BAD_PARAMETER, exc.reason, status=exc.status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render every failure as ``{"error":true,"errorNum",..}``; never leak a traceback."""
    try:
        return await handler(request)
    except ArangoError as exc:
        return error_response(exc)
    except StoreUnavailableError as exc:
        # The details name the file or the host and port: they stay in the log.
        log.warning("store unavailable: %s", exc)
        return error_response(
            ArangoError(ErrorCode.SERVICE_UNAVAILABLE, f"task store unavailable: {exc.reason}")
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(_http_error(exc, request))
    except Exception:
        log.exception("unexpected error in %s %s", request.method, request.path)
        return error_response(ArangoError(ErrorCode.INTERNAL))


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolve the database of ``/_db/{database}/`` and the caller, as ArangoDB does (§1.7)."""
    if is_ui(request.path):  # the dashboard has its own sessions (arangotasks/ui/session.py)
        return await handler(request)
    access = request.app[ACCESS]
    database = request.match_info.get("database", SYSTEM_DATABASE)
    if not access.database_exists(database):
        raise ArangoError(ErrorCode.DATABASE_NOT_FOUND)
    request[DATABASE_KEY] = database
    settings = request.app[SETTINGS]
    if settings.no_auth:
        check_same_origin(request, settings)
    if settings.no_auth or _is_open(request):
        request[PRINCIPAL_KEY] = ANONYMOUS_SUPERUSER
        return await handler(request)
    principal = await request.app[AUTHENTICATOR].authenticate(
        request.headers.get("Authorization"), request.remote or ""
    )
    if not principal.may_use(database):
        raise not_authorized()
    request[PRINCIPAL_KEY] = principal
    return await handler(request)
