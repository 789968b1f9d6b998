"""``/_api/tasks``: ArangoDB's prefix handler (§1.3-1.5) plus our run and schedule extensions."""

import logging
from typing import Any

from aiohttp import web

from arangotasks.api import schedules
from arangotasks.api.common import bool_param, iso, json_response, json_text, suffixes
from arangotasks.api.runs import run_text, runs_page
from arangotasks.errors import ArangoError, ErrorCode
from arangotasks.keys import OUTBOUND, REGISTRY, SETTINGS, database_of, principal_of
from arangotasks.models import Task
from arangotasks.notify import check_task_url
from arangotasks.registry import Registry
from arangotasks.sandbox.base import SandboxUnavailableError
from arangotasks.validation import parse_json_body, parse_task_body

PREFIX = "/_api/tasks"
log = logging.getLogger(__name__)


def _log_change(what: str, task_id: str, user: str, database: str) -> None:
    """One INFO line per create and delete; the fields also go to JSON logs as keys."""
    log.info(
        "task %s %s by %s in %s",
        task_id,
        what,
        user or "(superuser)",
        database,
        extra={"event": f"task.{what}", "task_id": task_id, "user": user, "database": database},
    )


async def _with_details(registry: Registry, tasks: list[Task]) -> list[dict[str, Any]]:
    """The task objects plus our extension fields (``?details=true`` only)."""
    stats = await registry.history.stats([t.id for t in tasks])
    bodies = []
    for task in tasks:
        count, failures, last = stats.get(task.id, (0, 0, None))
        body = schedules.details(registry, task)
        body["runs"] = count
        body["failures"] = failures
        body["lastRun"] = (
            None
            if last is None
            else {"uid": last.uid, "status": last.status.value, "startedAt": iso(last.started_at)}
        )
        bodies.append(body)
    return bodies


async def tasks_handler(request: web.Request) -> web.StreamResponse:
    method = request.method
    if method == "GET":
        return await _get(request)
    if method == "POST":
        return await _post(request)
    if method == "PUT":
        return await _put(request)
    if method == "DELETE":
        return await _delete(request)
    if method == "PATCH":
        parts = suffixes(request, PREFIX)
        if len(parts) == 1:  # extension: change a task; elsewhere PATCH is ArangoDB's 405
            return await schedules.patch_task(request, parts[0])
    raise ArangoError(ErrorCode.METHOD_NOT_ALLOWED)


async def _get(request: web.Request) -> web.StreamResponse:
    parts = suffixes(request, PREFIX)
    registry = request.app[REGISTRY]
    principal = principal_of(request)
    details = bool_param(request, "details")
    if len(parts) == 2 and parts[1] == "runs":
        task = await registry.lookup(parts[0], principal)
        return await runs_page(request, task_id=task.id)
    if len(parts) == 2 and parts[1] == "next":
        return await schedules.next_runs(request, parts[0])
    if len(parts) > 1:
        raise ArangoError(
            ErrorCode.SUPERFLUOUS_SUFFICES, "superfluous parameter, expecting /_api/tasks[/<id>]"
        )
    if not parts:
        # Every task the caller may see, from every database (§1.3).
        tasks = await registry.listing(principal)
        if details:
            return json_response(await _with_details(registry, tasks))
        # Pre-serialised task objects: a list of 10,000 tasks is one join, not 10,000 dumps.
        return json_text("[" + ",".join(registry.api_json(t) for t in tasks) + "]")
    task = await registry.lookup(parts[0], principal)
    if details:
        return json_response((await _with_details(registry, [task]))[0])
    return json_text(registry.api_json(task))


async def _register(request: web.Request, url_id: str | None) -> web.StreamResponse:
    """§1.4 steps 1-15 for POST and PUT (one code path, as in ArangoDB)."""
    settings = request.app[SETTINGS]
    registry = request.app[REGISTRY]
    principal = principal_of(request)
    body = parse_json_body(await request.read())  # step 1
    if not settings.tasks_enabled:  # step 2
        raise ArangoError(ErrorCode.FORBIDDEN, "JavaScript tasks are disabled")
    if url_id is not None and url_id == "":  # step 3 (PUT)
        raise ArangoError(ErrorCode.BAD_PARAMETER, "expected PUT /_api/tasks/<task-id>")
    if not principal.writable:  # step 4
        raise ArangoError(
            ErrorCode.FORBIDDEN,
            f"registering a task needs db RW permissions: user '{principal.name}' has "
            f"read-only access to database '{database_of(request)}'",
        )
    allowed = registry.allowance(principal.name)  # the caller's own limits (quotas.py)
    spec = parse_task_body(  # steps 5-11, 13
        body, url_id=url_id, caller=principal.name, max_timeout=allowed.max_timeout
    )
    # Extension: quotas, before the compile check spends a worker on an oversized command.
    registry.check_quota(principal.name, spec.command, spec.params_json)
    # Extension: a task's own webhook must pass its database's outbound HTTP allowlist.
    database = database_of(request)
    await check_task_url(request.app[OUTBOUND].allowlist(database), spec.notify)
    try:  # step 12, parse only; checks are shared fairly between users
        compile_error = await registry.sandbox.compile_error(spec.command, owner=principal.name)
    except SandboxUnavailableError as exc:  # the worker's fault, not the command's
        log.warning("create refused: %s", exc)
        raise ArangoError(
            ErrorCode.SERVICE_UNAVAILABLE, "the compile check is unavailable, try again later"
        ) from None
    if compile_error is not None:
        # ArangoDB says only "cannot compile command"; the reason and position follow it.
        raise ArangoError(ErrorCode.BAD_PARAMETER, f"cannot compile command: {compile_error}")
    task = await registry.create(spec, database, principal.name)  # steps 14-15
    _log_change("created", task.id, principal.name, task.database)
    return json_text(registry.api_json(task))


async def _post(request: web.Request) -> web.StreamResponse:
    parts = suffixes(request, PREFIX)
    if len(parts) == 2 and parts[1] == "run":
        # Extension: run a task now, outside its schedule.
        registry = request.app[REGISTRY]
        principal = principal_of(request)
        if not principal.writable:
            raise ArangoError(ErrorCode.FORBIDDEN, "running a task needs db RW permissions")
        run = await registry.run_now(parts[0], principal)
        return json_text(run_text(run), status=202)
    if len(parts) == 2 and parts[1] in ("pause", "resume"):
        return await schedules.pause_or_resume(request, parts[0], parts[1] == "resume")
    # POST ignores URL suffixes entirely (§1.4 step 5); python-arango relies on it.
    return await _register(request, None)


async def _put(request: web.Request) -> web.StreamResponse:
    parts = suffixes(request, PREFIX)
    # Suffixes are never empty, so "" stands for a bad suffix count; step 3 rejects it after the
    # body has been parsed (ArangoDB's order).
    return await _register(request, parts[0] if len(parts) == 1 else "")


async def _delete(request: web.Request) -> web.StreamResponse:
    parts = suffixes(request, PREFIX)
    if len(parts) != 1:
        raise ArangoError(
            ErrorCode.SUPERFLUOUS_SUFFICES, "bad parameter, expecting /_api/tasks/<id>"
        )
    principal = principal_of(request)
    if not principal.writable:
        raise ArangoError(
            ErrorCode.FORBIDDEN,
            f"unregister task needs db RW permissions: user '{principal.name}' has "
            f"read-only access to database '{database_of(request)}'",
        )
    registry = request.app[REGISTRY]
    database = (await registry.lookup(parts[0], principal)).database
    await registry.delete(parts[0], principal)
    _log_change("deleted", parts[0], principal.name, database)
    return json_response({"error": False, "code": 200})
