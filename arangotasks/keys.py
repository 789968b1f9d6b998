"""Application keys: the only way handlers reach shared resources (a leaf module)."""

from aiohttp import web

from arangotasks.auth import Authenticator, Principal
from arangotasks.config import AccessConfig, Settings
from arangotasks.lifecycle import Lifecycle
from arangotasks.metrics import Metrics
from arangotasks.outbound import Outbound
from arangotasks.registry import Registry
from arangotasks.sandbox.host import HostCalls

SETTINGS = web.AppKey("settings", Settings)
ACCESS = web.AppKey("access", AccessConfig)
AUTHENTICATOR = web.AppKey("authenticator", Authenticator)
REGISTRY = web.AppKey("registry", Registry)
METRICS = web.AppKey("metrics", Metrics)
LIFECYCLE = web.AppKey("lifecycle", Lifecycle)
# The sandbox's host-call handlers (outbound HTTP, ...): a feature registers its kind here.
HOST_CALLS = web.AppKey("host_calls", HostCalls)
# Outbound HTTP: its per-database allowlists (Outbound.allowlist) serve other callers too.
OUTBOUND = web.AppKey("outbound", Outbound)

# Per-request values set by the auth middleware.
PRINCIPAL_KEY = web.RequestKey("principal", Principal)
DATABASE_KEY = web.RequestKey("database", str)


def principal_of(request: web.Request) -> Principal:
    return request[PRINCIPAL_KEY]


def database_of(request: web.Request) -> str:
    return request[DATABASE_KEY]
