"""The run history API, in the style of Meilisearch's tasks API (namespaced beside ArangoDB's)."""

import json
from datetime import datetime
from typing import Any

from aiohttp import web

from arangotasks.api.common import bool_param, iso, json_text
from arangotasks.errors import ArangoError, ErrorCode
from arangotasks.keys import REGISTRY, SETTINGS, principal_of
from arangotasks.models import Run, RunQuery, RunStatus, RunTrigger, StoredRun, dumps

MAX_LIMIT = 1000
DEFAULT_LIMIT = 20
KNOWN_PARAMS = frozenset(
    {
        "statuses",
        "taskIds",
        "trigger",
        "beforeStartedAt",
        "afterStartedAt",
        "from",
        "limit",
        "reverse",
        "database",
    }
)


def iso_duration(seconds: float) -> str:
    """ISO 8601 duration with millisecond precision, e.g. ``PT0.004S``, ``PT1M2.5S``."""
    ms = max(0, round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs = f"{ms / 1000:.3f}".rstrip("0").rstrip(".")
    text = "PT"
    if hours:
        text += f"{hours}H"
    if minutes:
        text += f"{minutes}M"
    if ms or not (hours or minutes):
        text += f"{secs}S"
    return text


def _head(run: Run) -> dict[str, Any]:
    """The fields of a run record before its result."""
    duration = None
    if run.started_at is not None and run.finished_at is not None:
        duration = iso_duration(run.finished_at - run.started_at)
    return {
        "uid": run.uid,
        "taskId": run.task_id,
        "taskName": run.task_name,
        "database": run.database,
        "status": run.status.value,
        "trigger": run.trigger.value,
        "scheduledAt": iso(run.scheduled_at),
        "enqueuedAt": iso(run.enqueued_at),
        "startedAt": iso(run.started_at),
        "finishedAt": iso(run.finished_at),
        "duration": duration,
        "attempt": run.attempt,
        "revision": run.revision,
        "node": run.node,
    }


def run_text(
    run: Run,
    output_json: str | None = None,
    error_json: str | None = None,
    requests_json: str | None = None,
) -> str:
    """The run record as JSON text. Its result (and, from the store, its output, error and
    requests) is the JSON text kept, passed through: a big result is never parsed and encoded
    again."""
    if output_json is None:  # a run in memory
        output_json = json.dumps(run.output)
        error_json = None if run.error is None else json.dumps(run.error)
        requests_json = json.dumps(run.requests) if run.requests else None
    result = run.result_json if run.result_json is not None else "null"
    error = error_json if error_json is not None else "null"
    requests = requests_json if requests_json is not None else "[]"
    return (
        f'{dumps(_head(run))[:-1]},"result":{result},"output":{output_json},"error":{error},'
        f'"requests":{requests}}}'
    )


def run_to_api(run: Run) -> dict[str, Any]:
    """The run record as a dict (its result parsed), for callers that need one (notifications)."""
    result = None if run.result_json is None else json.loads(run.result_json)
    return {
        **_head(run),
        "result": result,
        "output": run.output,
        "error": run.error,
        "requests": run.requests,
    }


def _stored_text(stored: StoredRun) -> str:
    return run_text(stored.run, stored.output_json, stored.error_json, stored.requests_json)


def _bad(name: str, why: str) -> ArangoError:
    return ArangoError(
        ErrorCode.BAD_PARAMETER, f"invalid value for query parameter '{name}': {why}"
    )


def _list(request: web.Request, name: str) -> list[str] | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    items = [item.strip() for item in raw.split(",") if item.strip()]
    if not items:
        raise _bad(name, "expected a comma-separated list")
    return items


def _time(request: web.Request, name: str) -> float | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise _bad(name, "expected an RFC 3339 date such as 2026-11-23T10:00:00Z") from None
    if value.tzinfo is None:
        raise _bad(name, "the date needs a time zone (Z or +hh:mm)")
    return value.timestamp()


def _int(request: web.Request, name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _bad(name, "expected an integer") from None
    if not low <= value <= high:
        raise _bad(name, f"expected an integer from {low} to {high}")
    return value


def parse_run_query(request: web.Request, task_id: str | None) -> RunQuery:
    unknown = sorted(set(request.query) - KNOWN_PARAMS - {"details"})
    if unknown:
        raise ArangoError(ErrorCode.BAD_PARAMETER, f"unknown query parameter '{unknown[0]}'")
    statuses = _list(request, "statuses")
    try:
        status_set = frozenset(RunStatus(s) for s in statuses) if statuses else None
    except ValueError:
        raise _bad(
            "statuses", f"expected some of {', '.join(s.value for s in RunStatus)}"
        ) from None
    trigger = request.query.get("trigger")
    try:
        trigger_value = RunTrigger(trigger) if trigger is not None else None
    except ValueError:
        raise _bad("trigger", "expected schedule or manual") from None
    task_ids = _list(request, "taskIds")
    if task_id is not None:
        task_ids = [task_id]
    reverse_raw = request.query.get("reverse")
    if reverse_raw is not None and reverse_raw.lower() not in ("true", "false", "1", "0"):
        raise _bad("reverse", "expected true or false")
    limit = _int(request, "limit", DEFAULT_LIMIT, 0, MAX_LIMIT)
    assert limit is not None
    principal = principal_of(request)
    return RunQuery(
        statuses=status_set,
        task_ids=frozenset(task_ids) if task_ids else None,
        trigger=trigger_value,
        before_started_at=_time(request, "beforeStartedAt"),
        after_started_at=_time(request, "afterStartedAt"),
        owner=None if principal.superuser else principal.name,
        database=request.query.get("database"),
        from_uid=_int(request, "from", None, 0, 2**62),
        limit=limit,
        reverse=bool_param(request, "reverse"),
    )


async def runs_page(request: web.Request, task_id: str | None = None) -> web.StreamResponse:
    query = parse_run_query(request, task_id)
    max_bytes = int(request.app[SETTINGS].runs_page_mb * 1024 * 1024)
    runs, total, next_uid = await request.app[REGISTRY].history.query_page(query, max_bytes)
    tail = dumps(
        {
            "total": total,
            "limit": query.limit,
            "from": runs[0].run.uid if runs else None,
            "next": next_uid,
        }
    )
    results = ",".join(_stored_text(stored) for stored in runs)
    return json_text(f'{{"results":[{results}],{tail[1:]}')


async def runs_handler(request: web.Request) -> web.StreamResponse:
    """``GET /_api/runs`` and ``GET /_api/runs/{uid}``."""
    uid_text = request.match_info.get("uid")
    if uid_text is None:
        return await runs_page(request)
    try:
        uid = int(uid_text)
    except ValueError:
        raise ArangoError(ErrorCode.BAD_PARAMETER, "run uid must be an integer") from None
    principal = principal_of(request)
    if not 0 <= uid < 2**63:  # beyond any stored uid (and SQLite's integers)
        raise ArangoError(ErrorCode.HTTP_NOT_FOUND, "run not found")
    run = await request.app[REGISTRY].history.get(uid)
    if run is None or not principal.may_see(run.owner):
        raise ArangoError(ErrorCode.HTTP_NOT_FOUND, "run not found")
    return json_text(run_text(run))
