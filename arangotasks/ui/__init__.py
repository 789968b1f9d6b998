"""The web dashboard at ``/ui/``: server-rendered pages (aiohttp-jinja2), a CSS file, no build step
and nothing fetched at run time. Log in with the same users as the API."""

from collections.abc import Awaitable, Callable

import aiohttp_jinja2
import jinja2
from aiohttp import web

from arangotasks.ui import render, views
from arangotasks.ui.paths import PREFIX, is_ui
from arangotasks.ui.static import STATIC_DIR


@web.middleware
async def ui_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Dashboard errors as pages, not ArangoDB JSON bodies."""
    if not is_ui(request.path):
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        context = {
            "title": exc.reason,
            "message": exc.text or exc.reason,
            "user": "",
            "superuser": False,
            "csrf": "",
            "auth_off": True,
        }
        return aiohttp_jinja2.render_template("error.html", request, context, status=exc.status)


def setup(app: web.Application) -> None:
    """Add the dashboard's templates and routes to ``app``."""
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("arangotasks.ui", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
    )
    env.globals.update(
        schedule_text=render.schedule_text,
        when=render.when,
        relative=render.relative,
        duration=render.duration,
        highlight=render.highlight,
        timeline=render.timeline,
        last_status=views.last_status,
    )
    app.add_routes(
        [
            web.get(PREFIX, views.root_redirect),
            web.get(PREFIX + "/", views.tasks_page),
            web.get(PREFIX + "/login", views.login_page),
            web.post(PREFIX + "/login", views.login_submit),
            web.post(PREFIX + "/logout", views.logout),
            web.get(PREFIX + "/failures", views.failures_page),
            web.get(PREFIX + "/tasks/{id}", views.task_page),
            web.post(PREFIX + "/tasks/{id}/{action:run|pause|resume|delete}", views.task_action),
            web.get(PREFIX + "/runs/{uid:\\d+}", views.run_page),
            web.static(PREFIX + "/static", STATIC_DIR, append_version=True),
        ]
    )
