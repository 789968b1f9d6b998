"""The application factory: everything the server needs is built here and reached via AppKeys."""

import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from arangotasks import api, arangodb_calls, ui
from arangotasks.api.metrics import http_metrics_middleware
from arangotasks.api.middleware import auth_middleware, error_middleware
from arangotasks.api.runs import run_to_api
from arangotasks.auth import ANONYMOUS_SUPERUSER, Authenticator
from arangotasks.config import AccessConfig, Settings, load_access
from arangotasks.errors import ArangoError
from arangotasks.keys import (
    ACCESS,
    AUTHENTICATOR,
    HOST_CALLS,
    LIFECYCLE,
    METRICS,
    OUTBOUND,
    REGISTRY,
    SETTINGS,
)
from arangotasks.lifecycle import Lifecycle, Phase
from arangotasks.metrics import Metrics, counting
from arangotasks.notify import Notifier
from arangotasks.outbound import Outbound, load_overrides
from arangotasks.registry import Registry
from arangotasks.sandbox import QuickJSSandbox
from arangotasks.sandbox.base import Sandbox
from arangotasks.sandbox.hardening import worker_identity
from arangotasks.sandbox.host import HostCalls
from arangotasks.secret_calls import register_secret_calls
from arangotasks.store import TaskStore, open_store

log = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    *,
    sandbox: Sandbox | None = None,
    store: TaskStore | None = None,
    access: AccessConfig | None = None,
) -> web.Application:
    """Build the server. Store, sandbox and users come from ``settings`` unless given.

    :param sandbox: a ready sandbox (tests share one pool across apps); started and closed here.
    :param store: a store that is not opened yet.
    """
    app = web.Application(
        middlewares=[http_metrics_middleware, error_middleware, auth_middleware, ui.ui_errors],
        client_max_size=int(settings.max_body_mb * 1024 * 1024),
    )
    app[SETTINGS] = settings
    app[ACCESS] = access if access is not None else load_access(settings)
    app[AUTHENTICATOR] = Authenticator(app[ACCESS], settings)
    # A shared sandbox brings its own host-call registry; this app's handlers replace its last.
    host_calls = getattr(sandbox, "host", None)
    if not isinstance(host_calls, HostCalls):
        host_calls = HostCalls()
    app[HOST_CALLS] = host_calls
    outbound = Outbound(settings, load_overrides(settings))
    outbound.register(host_calls)
    app[OUTBOUND] = outbound
    bridge = arangodb_calls.install(settings, host_calls)
    if sandbox is None:
        sandbox = QuickJSSandbox(
            workers=settings.workers,
            limits=settings.limits(),
            worker_address_space=settings.worker_address_space_mb * 1024 * 1024,
            host=host_calls,
            host_workers=settings.http_workers,
            compile_workers=settings.compile_workers,
            identity=worker_identity(settings.worker_user),
        )
    if store is None:
        store = open_store(settings.store, settings.data_dir, **settings.store_options())
    store, store_counter = counting(store)
    app[REGISTRY] = Registry(store, sandbox, settings, app[ACCESS])
    register_secret_calls(
        host_calls, app[REGISTRY].vault, bridge.reserved_secrets()
    )  # require('@arangotasks/secrets')
    bridge.use_vault(app[REGISTRY].vault)  # for ARANGOTASKS_ARANGODB_PASSWORD_SECRET
    app[METRICS] = Metrics(app[REGISTRY], store_errors=lambda: store_counter.errors)
    # Started before the registry and stopped after it: runs that end while it stops notify too.
    notifier = Notifier(
        settings, run_to_api, task_url=_task_url(app[REGISTRY]), allowlist=outbound.allowlist
    )
    app[REGISTRY].run_listeners.append(notifier.on_run)
    app[METRICS].extra_counters += notifier.counters()
    app.cleanup_ctx.append(notifier.lifecycle)
    app[LIFECYCLE] = Lifecycle()
    app.cleanup_ctx.append(_registry_ctx)
    app.on_shutdown.append(_stopping)

    async def close_outbound(app: web.Application) -> None:
        await outbound.close()
        await bridge.close()

    app.on_cleanup.append(close_outbound)
    app.add_routes(api.routes())
    ui.setup(app)
    return app


def _task_url(registry: Registry) -> Callable[[str], str | None]:
    """A task's own ``notify`` URL, for the notifier (a deleted task has none)."""

    def url(task_id: str) -> str | None:
        try:
            return registry.get(task_id, ANONYMOUS_SUPERUSER).notify
        except ArangoError:
            return None

    return url


async def _registry_ctx(app: web.Application) -> AsyncIterator[None]:
    registry = app[REGISTRY]
    await registry.start()
    app[LIFECYCLE].phase = Phase.READY
    yield
    app[LIFECYCLE].phase = Phase.STOPPING
    await registry.close()


async def _stopping(app: web.Application) -> None:
    # Before connections are drained: a load balancer stops sending here at once.
    app[LIFECYCLE].phase = Phase.STOPPING
