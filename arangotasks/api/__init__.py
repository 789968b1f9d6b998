"""The route table: every route also under ``/_db/{database}/``."""

from collections.abc import Awaitable, Callable

from aiohttp import web

from arangotasks.api import metrics, openapi, runs, secrets, server, tasks

DB_PREFIX = "/_db/{database}"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _both(method: str, path: str, handler: Handler) -> list[web.RouteDef]:
    return [web.route(method, path, handler), web.route(method, DB_PREFIX + path, handler)]


def routes() -> list[web.RouteDef]:
    table = [web.post("/_open/auth", server.open_auth)]
    table += _both("GET", "/_api/version", server.version)
    table += _both("GET", "/_api/collection", server.collections)
    table += _both("GET", "/_api/database/current", server.current_database)
    # A prefix handler, as in ArangoDB: it splits the suffixes itself and answers 405 itself.
    for path in ("/_api/tasks", "/_api/tasks/{tail:[\\s\\S]*}"):
        table += _both("*", path, tasks.tasks_handler)
    table += _both("GET", "/_api/runs", runs.runs_handler)
    table += _both("GET", "/_api/runs/{uid}", runs.runs_handler)
    table += _both("GET", "/_api/openapi.json", openapi.openapi_spec)
    for path in ("/_admin/metrics", "/_admin/metrics/v2"):
        table += _both("GET", path, metrics.metrics_handler)
    table += _both("GET", "/_api/secrets", secrets.list_secrets)
    table += _both("GET", "/_api/secrets/{name}", secrets.get_secret)
    table += _both("PUT", "/_api/secrets/{name}", secrets.put_secret)
    table += _both("DELETE", "/_api/secrets/{name}", secrets.delete_secret)
    return table
