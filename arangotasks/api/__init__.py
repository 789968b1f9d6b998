"""The route table: every route also under ``/_db/{database}/``."""

from collections.abc import Awaitable, Callable

from aiohttp import web

from arangotasks.api import (
    admin,
    metrics,
    nodes,
    openapi,
    runs,
    schedules,
    secrets,
    server,
    tasks,
)

DB_PREFIX = "/_db/{database}"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _both(method: str, path: str, handler: Handler) -> list[web.RouteDef]:
    return [web.route(method, path, handler), web.route(method, DB_PREFIX + path, handler)]


def routes() -> list[web.RouteDef]:
    table = _both("POST", "/_open/auth", server.open_auth)
    # Health, without authentication (see middleware.OPEN_PATHS).
    table += [web.get("/_admin/server/availability", admin.availability)]
    table += _both("GET", "/_api/health/live", admin.live)
    # What pyArango and the go-driver's tests call around tasks (arangotasks/api/admin.py).
    table += _both("GET", "/_admin/status", admin.status)
    table += _both("GET", "/_api/user", admin.users)
    table += _both("GET", "/_api/user/{user}", admin.user)
    table += _both("GET", "/_api/user/{user}/database", admin.user_databases)
    table += _both("GET", "/_api/database", admin.databases)
    table += _both("POST", "/_api/database", admin.create_database)
    table += _both("GET", "/_api/database/user", admin.own_databases)
    table += _both("GET", "/_api/gharial", admin.graphs)
    table += _both("GET", "/_api/foxx", admin.foxx_services)
    table += _both("GET", "/_api/version", server.version)
    table += _both("GET", "/_api/collection", server.collections)
    table += _both("GET", "/_api/database/current", server.current_database)
    # A prefix handler, as in ArangoDB: it splits the suffixes itself and answers 405 itself.
    for path in ("/_api/tasks", "/_api/tasks/{tail:[\\s\\S]*}"):
        table += _both("*", path, tasks.tasks_handler)
    table += _both("POST", "/_api/schedules/preview", schedules.preview)
    table += _both("GET", "/_api/runs", runs.runs_handler)
    table += _both("GET", "/_api/runs/{uid}", runs.runs_handler)
    table += _both("GET", "/_api/openapi.json", openapi.openapi_spec)
    for path in ("/_admin/metrics", "/_admin/metrics/v2"):
        table += _both("GET", path, metrics.metrics_handler)
    table += _both("GET", "/_api/nodes", nodes.list_nodes)
    table += _both("GET", "/_api/secrets", secrets.list_secrets)
    table += _both("GET", "/_api/secrets/{name}", secrets.get_secret)
    table += _both("PUT", "/_api/secrets/{name}", secrets.put_secret)
    table += _both("DELETE", "/_api/secrets/{name}", secrets.delete_secret)
    return table
