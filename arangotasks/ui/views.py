"""The dashboard's pages and actions (server-rendered; forms post back and redirect)."""

import math
import time
from typing import Any
from urllib.parse import quote

import aiohttp_jinja2
from aiohttp import web

from arangotasks.api.schedules import change_task
from arangotasks.errors import ArangoError
from arangotasks.keys import ACCESS, AUTHENTICATOR, REGISTRY, SETTINGS
from arangotasks.models import Run, RunQuery, RunStatus, RunTrigger, Task
from arangotasks.registry import Registry
from arangotasks.ui import session as sessions

PAGE_TASKS = 50
PAGE_RUNS = 25
TIMELINE_RUNS = 60


def _session(request: web.Request) -> sessions.Session:
    found = sessions.current(request, request.app[ACCESS], request.app[SETTINGS].no_auth)
    if found is None:
        raise web.HTTPSeeOther(f"/ui/login?next={request.rel_url.path_qs}")
    return found


def _context(request: web.Request, session: sessions.Session, **values: Any) -> dict[str, Any]:
    values.update(
        user=session.principal.name or "superuser",
        superuser=session.principal.superuser,
        csrf=session.csrf(request.app[ACCESS]),
        auth_off=request.app[SETTINGS].no_auth,
        now=time.time(),
    )
    return values


async def _visible_task(request: web.Request, session: sessions.Session) -> Task:
    try:
        return await request.app[REGISTRY].lookup(request.match_info["id"], session.principal)
    except ArangoError:
        raise web.HTTPNotFound(text="no such task") from None


# --- login ---------------------------------------------------------------------------------
async def login_page(request: web.Request) -> web.StreamResponse:
    context = {"next": request.query.get("next", "/ui/"), "error": None}
    return aiohttp_jinja2.render_template("login.html", request, context)


async def login_submit(request: web.Request) -> web.StreamResponse:
    if not sessions.same_origin(request):
        raise web.HTTPForbidden(text="cross-site login refused")
    form = await request.post()
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    target = str(form.get("next", "/ui/"))
    if not target.startswith("/ui/") or target.startswith("//"):
        target = "/ui/"
    try:
        # The same checks, hashes and failed-login throttle as the API's logins.
        principal = await request.app[AUTHENTICATOR].login(username, password, request.remote or "")
    except ArangoError as exc:  # too many failed logins (429)
        context = {"next": target, "error": exc.message}
        return aiohttp_jinja2.render_template("login.html", request, context, status=exc.status)
    if principal is None:
        context = {"next": target, "error": "Wrong user name or password."}
        return aiohttp_jinja2.render_template("login.html", request, context, status=401)
    response = web.HTTPSeeOther(target)
    sessions.issue(response, request.app[ACCESS], username, secure=request.secure)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    session = await _checked_post(request)
    del session
    response = web.HTTPSeeOther("/ui/login")
    sessions.clear(response)
    raise response


# --- pages ---------------------------------------------------------------------------------
@aiohttp_jinja2.template("tasks.html")
async def tasks_page(request: web.Request) -> dict[str, Any]:
    session = _session(request)
    registry = request.app[REGISTRY]
    needle = request.query.get("q", "").strip().lower()
    tasks = await registry.listing(session.principal)
    if needle:
        tasks = [
            t
            for t in tasks
            if needle in t.name.lower() or needle in t.id.lower() or needle in t.database.lower()
        ]
    tasks.sort(key=lambda t: t.created, reverse=True)
    pages = max(1, math.ceil(len(tasks) / PAGE_TASKS))
    page = min(max(_int(request.query.get("page"), 1), 1), pages)
    shown = tasks[(page - 1) * PAGE_TASKS : page * PAGE_TASKS]
    stats = await registry.history.stats([t.id for t in shown])
    rows = [(task, stats.get(task.id, (0, 0, None))) for task in shown]
    return _context(request, session, rows=rows, q=needle, page=page, pages=pages, total=len(tasks))


@aiohttp_jinja2.template("task.html")
async def task_page(request: web.Request) -> dict[str, Any]:
    session = _session(request)
    task = await _visible_task(request, session)
    registry = request.app[REGISTRY]
    status = request.query.get("status") or None
    trigger = request.query.get("trigger") or None
    query = RunQuery(
        task_ids=frozenset([task.id]),
        statuses=_status_filter(status),
        trigger=_trigger_filter(trigger),
        from_uid=_int(request.query.get("from"), 0) or None,
        limit=PAGE_RUNS,
    )
    runs, total, next_uid = await registry.history.query(query)
    recent, _, _ = await registry.history.query(
        RunQuery(task_ids=frozenset([task.id]), limit=TIMELINE_RUNS)
    )
    return _context(
        request,
        session,
        task=task,
        runs=runs,
        total=total,
        next_uid=next_uid,
        recent=recent,
        status=status or "",
        trigger=trigger or "",
        statuses=[s.value for s in RunStatus],
        triggers=[t.value for t in RunTrigger],
        next_runs=_next_runs(registry, task),
    )


@aiohttp_jinja2.template("run.html")
async def run_page(request: web.Request) -> dict[str, Any]:
    session = _session(request)
    uid = _int(request.match_info["uid"], -1)
    run = await request.app[REGISTRY].history.get(uid) if uid >= 0 else None
    if run is None or not session.principal.may_see(run.owner):
        raise web.HTTPNotFound(text="no such run")
    return _context(request, session, run=run)


@aiohttp_jinja2.template("failures.html")
async def failures_page(request: web.Request) -> dict[str, Any]:
    session = _session(request)
    principal = session.principal
    query = RunQuery(
        statuses=frozenset([RunStatus.FAILED]),
        owner=None if principal.superuser else principal.name,
        from_uid=_int(request.query.get("from"), 0) or None,
        limit=PAGE_RUNS * 2,
    )
    runs, total, next_uid = await request.app[REGISTRY].history.query(query)
    return _context(request, session, runs=runs, total=total, next_uid=next_uid)


# --- actions -------------------------------------------------------------------------------
async def _checked_post(request: web.Request) -> sessions.Session:
    session = _session(request)
    form = await request.post()
    csrf = form.get("csrf")
    if not sessions.same_origin(request) or not sessions.csrf_ok(
        session, request.app[ACCESS], csrf if isinstance(csrf, str) else None
    ):
        raise web.HTTPForbidden(text="invalid form token: reload the page and try again")
    return session


async def task_action(request: web.Request) -> web.StreamResponse:
    session = await _checked_post(request)
    task = await _visible_task(request, session)
    registry = request.app[REGISTRY]
    action = request.match_info["action"]
    if not session.principal.writable:
        raise web.HTTPForbidden(text="read-only users cannot change tasks")
    if action == "run":
        run = await registry.run_now(task.id, session.principal)
        raise web.HTTPSeeOther(f"/ui/tasks/{_quote(task.id)}?started={run.uid}")
    if action in ("pause", "resume"):
        await change_task(request.app, session.principal, task, {"enabled": action == "resume"})
        raise web.HTTPSeeOther(f"/ui/tasks/{_quote(task.id)}")
    if action == "delete":
        await registry.delete(task.id, session.principal)
        raise web.HTTPSeeOther("/ui/?deleted=" + _quote(task.id))
    raise web.HTTPNotFound(text="unknown action")


async def root_redirect(request: web.Request) -> web.StreamResponse:
    raise web.HTTPMovedPermanently("/ui/")


def _next_runs(registry: Registry, task: Task) -> list[float]:
    try:
        return registry.next_runs(task, 5)
    except ArangoError:  # e.g. a timed task that fired
        return []


def _status_filter(text: str | None) -> frozenset[RunStatus] | None:
    values = {s.value: s for s in RunStatus}
    return frozenset([values[text]]) if text in values else None


def _trigger_filter(text: str | None) -> RunTrigger | None:
    values = {t.value: t for t in RunTrigger}
    return values[text] if text in values else None


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def _quote(text: str) -> str:
    return quote(text, safe="")


def last_status(latest: Run | None) -> str:
    return latest.status.value if latest is not None else "—"
