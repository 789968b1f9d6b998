"""Schedule extensions of the tasks API: PATCH, pause/resume, next slots, preview, details.

``tasks.py`` (ArangoDB's prefix handler) dispatches to these; the preview route is its own.
"""

import time
from typing import Any

from aiohttp import web

from arangotasks import cron, schedule
from arangotasks.api.common import iso, json_response, json_text
from arangotasks.auth import Principal
from arangotasks.errors import ArangoError, ErrorCode
from arangotasks.keys import OUTBOUND, REGISTRY, SETTINGS, database_of, principal_of
from arangotasks.models import Task, to_ms
from arangotasks.notify import check_task_url
from arangotasks.options import bad, options_to_body, parse_time
from arangotasks.patch import patched_spec
from arangotasks.registry import Registry
from arangotasks.validation import MAX_SECONDS, is_number, parse_json_body


def details(registry: Registry, task: Task) -> dict[str, Any]:
    """The task object plus every schedule field, ``notify``, ``nextRunAt``, ``revision`` and
    ``timeout``."""
    body = task.to_api()
    body.pop("notify", None)  # at the same place whether set or not
    body.update(options_to_body(task.options, registry.settings.misfire))
    body["notify"] = task.notify
    body["timeout"] = task.timeout if task.timeout is not None else registry.settings.timeout
    body["revision"] = task.revision
    body["nextRunAt"] = iso(task.next_run_at) if task.options.enabled else None
    return body


def _writable(request: web.Request, what: str) -> None:
    if not request.app[SETTINGS].tasks_enabled:
        raise ArangoError(ErrorCode.FORBIDDEN, "JavaScript tasks are disabled")
    principal = principal_of(request)
    if not principal.writable:
        raise ArangoError(
            ErrorCode.FORBIDDEN,
            f"{what} needs db RW permissions: user '{principal.name}' has "
            f"read-only access to database '{database_of(request)}'",
        )


async def change_task(
    app: web.Application, principal: Principal, task: Task, patch: dict[str, Any]
) -> Task:
    """Apply a PATCH body to ``task`` (validated as at create); the changed task. The API's
    PATCH, pause and resume and the dashboard's pause/resume all come here."""
    registry = app[REGISTRY]
    settings = app[SETTINGS]
    spec = patched_spec(
        task, patch, caller=principal.name, max_timeout=settings.max_timeout, now=time.time()
    )
    if spec.command != task.command:
        if await registry.sandbox.compile_error(spec.command) is not None:
            raise ArangoError(ErrorCode.BAD_PARAMETER, "cannot compile command")
    if spec.notify != task.notify:  # an unchanged URL is not asked again (like the command)
        await check_task_url(app[OUTBOUND].allowlist(task.database), spec.notify)
    return await registry.update(task.id, principal, spec)


async def _change(request: web.Request, task: Task, patch: dict[str, Any]) -> web.Response:
    changed = await change_task(request.app, principal_of(request), task, patch)
    return json_text(request.app[REGISTRY].api_json(changed))


async def patch_task(request: web.Request, task_id: str) -> web.Response:
    """``PATCH /_api/tasks/{id}``: the changed task object (ArangoDB's shape)."""
    _writable(request, "changing a task")
    task = await request.app[REGISTRY].lookup(task_id, principal_of(request))  # 404 before the body
    body = parse_json_body(await request.read())
    return await _change(request, task, body)


async def pause_or_resume(request: web.Request, task_id: str, enabled: bool) -> web.Response:
    """``POST /_api/tasks/{id}/pause`` and ``/resume``: PATCH ``{"enabled": ...}``."""
    _writable(request, "pausing a task" if not enabled else "resuming a task")
    task = await request.app[REGISTRY].lookup(task_id, principal_of(request))
    return await _change(request, task, {"enabled": enabled})


def _count(request: web.Request) -> int:
    raw = request.query.get("count", "10")
    try:
        count = int(raw)
    except ValueError:
        raise bad("count", "expected an integer from 1 to 100") from None
    if not 1 <= count <= schedule.MAX_PREVIEW:
        raise bad("count", "expected an integer from 1 to 100")
    return count


async def next_runs(request: web.Request, task_id: str) -> web.Response:
    """``GET /_api/tasks/{id}/next?count=N``: the next slots (before jitter)."""
    registry = request.app[REGISTRY]
    task = await registry.lookup(task_id, principal_of(request))
    slots = registry.next_runs(task, _count(request))
    return json_response({"nextRuns": [iso(at) for at in slots]})


async def preview(request: web.Request) -> web.StreamResponse:
    """``POST /_api/schedules/preview`` with ``{"cron" or "period", "timezone", "count",
    "from"}``: the slots a task with that schedule would have, after ``from`` (default now)."""
    body = parse_json_body(await request.read())
    unknown = [key for key in body if key not in ("cron", "period", "timezone", "count", "from")]
    if unknown:
        raise bad(unknown[0], "unknown field (expected cron, period, timezone, count, from)")
    count = body.get("count", 10)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 100:
        raise bad("count", "expected an integer from 1 to 100")
    start = parse_time(body["from"], "from") if body.get("from") is not None else time.time()
    expression, period = body.get("cron"), body.get("period")
    zone_name = body.get("timezone")
    if (expression is None) == (period is None):
        raise bad("cron", "give either cron or period")
    if zone_name is not None and expression is None:
        raise bad("timezone", "only a cron schedule has a time zone")
    if expression is not None:
        if zone_name is not None:
            try:
                cron.zone(zone_name)
            except cron.CronError as exc:
                raise bad("timezone", str(exc)) from None
        if not isinstance(expression, str):
            raise bad("cron", "expected a string such as '*/5 * * * *' or '@daily'")
        try:
            parsed = cron.parse(expression, zone_name or "UTC")
        except cron.CronError as exc:
            raise bad("cron", str(exc)) from None
        slots = schedule.preview(parsed, None, start, count)
    else:
        if not is_number(period) or not 0 < period <= MAX_SECONDS or to_ms(period) <= 0:
            raise bad("period", "expected a positive number of seconds (at least 0.001)")
        slots = schedule.preview(None, to_ms(period) / 1000, start, count)
    return json_response({"nextRuns": [iso(at) for at in slots]})
