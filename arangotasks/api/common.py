"""Response helpers shared by the handlers."""

from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from arangotasks.errors import ArangoError, ErrorCode
from arangotasks.models import dumps


def json_text(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="application/json", charset="utf-8")


def json_response(data: Any, status: int = 200) -> web.Response:
    return json_text(dumps(data), status)


def error_response(error: ArangoError) -> web.Response:
    response = json_response(error.body(), status=error.status)
    response.headers.update(error.headers)
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Basic, realm="ArangoDB"'
    return response


def bool_param(request: web.Request, name: str) -> bool:
    """``?name=true``: ArangoDB's boolean query parameters (true/1/yes, case-insensitive)."""
    value = request.query.get(name)
    return value is not None and value.strip().lower() in ("true", "1", "yes", "on")


def suffixes(request: web.Request, prefix_end: str) -> list[str]:
    """URL-decoded path suffixes after ``prefix_end`` (e.g. "/_api/tasks"), empty ones dropped.

    Split on the raw path first, so that an encoded ``%2F`` stays inside one suffix (§1.1).
    """
    raw = request.rel_url.raw_path
    index = raw.find(prefix_end)
    if index < 0:
        raise ArangoError(ErrorCode.HTTP_NOT_FOUND, f"unknown path '{request.path}'")
    tail = raw[index + len(prefix_end) :]
    try:
        return [unquote(part, errors="strict") for part in tail.split("/") if part]
    except UnicodeDecodeError:
        raise ArangoError(ErrorCode.BAD_PARAMETER, "invalid URL encoding in path") from None


def iso(ts: float | None) -> str | None:
    """RFC 3339 in UTC with microseconds, as the run history writes times."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
