"""The non-task routes other drivers call around tasks: health, status, users, databases.

Each answers truthfully and minimally: the users of the users file, the databases that are
configured, empty lists for features that do not exist here (graphs, Foxx services), and an
ArangoDB error body where an operation cannot be done (creating a database).
"""

import os
import socket

from aiohttp import web

from arangotasks.api.common import json_response
from arangotasks.api.server import ARANGODB_VERSION
from arangotasks.auth import Principal
from arangotasks.config import SYSTEM_DATABASE, AccessConfig, User
from arangotasks.errors import ArangoError, ErrorCode
from arangotasks.keys import ACCESS, LIFECYCLE, database_of, principal_of
from arangotasks.validation import parse_json_body


def _ok(result: object) -> web.Response:
    return json_response({"error": False, "code": 200, "result": result})


# --- health (no authentication) ---------------------------------------------------------------
async def availability(request: web.Request) -> web.StreamResponse:
    """``GET /_admin/server/availability``: ArangoDB's readiness answer."""
    if not request.app[LIFECYCLE].ready:
        raise ArangoError(ErrorCode.SERVICE_UNAVAILABLE)
    return json_response({"mode": "default"})


async def live(request: web.Request) -> web.StreamResponse:
    """``GET /_api/health/live``: 200 as long as the process answers at all."""
    return json_response({"status": "ok"})


# --- server -----------------------------------------------------------------------------------
async def status(request: web.Request) -> web.StreamResponse:
    """``GET /_admin/status``: a single server, serving (or starting / shutting down)."""
    phase = request.app[LIFECYCLE].phase
    state = {"starting": "STARTUP", "ready": "SERVING", "stopping": "SHUTDOWN"}[phase]
    host = socket.gethostname()
    return json_response(
        {
            "server": "arango",
            "version": ARANGODB_VERSION,
            "pid": os.getpid(),
            "license": "community",
            "mode": "server",
            "operationMode": "server",
            "foxxApi": False,
            "host": host,
            "hostname": host,
            "serverInfo": {
                "progress": {"phase": "in wait", "feature": "", "recoveryTick": 0},
                "maintenance": False,
                "role": "SINGLE",
                "writeOpsEnabled": True,
                "readOnly": False,
                "state": state,
            },
        }
    )


# --- users ------------------------------------------------------------------------------------
def _user_object(user: User) -> dict[str, object]:
    return {"user": user.name, "active": True, "extra": {}}


def _user_databases(access: AccessConfig, user: User) -> dict[str, str]:
    level = "rw" if user.superuser or user.access == "rw" else "ro"
    names = access.databases if user.databases is None else user.databases
    return {name: level for name in sorted(names) if access.database_exists(name)}


def _named_user(request: web.Request) -> User:
    """The user of ``/_api/user/{user}``: oneself, or anyone for a superuser (else 403)."""
    principal = principal_of(request)
    name = request.match_info["user"]
    if not principal.superuser and name != principal.name:
        raise ArangoError(ErrorCode.FORBIDDEN, status=403)
    user = request.app[ACCESS].users.get(name)
    if user is None:
        raise ArangoError(ErrorCode.USER_NOT_FOUND)
    return user


def _visible_users(access: AccessConfig, principal: Principal) -> list[User]:
    if principal.superuser:
        return list(access.users.values())
    own = access.users.get(principal.name)
    return [own] if own is not None else []


async def users(request: web.Request) -> web.StreamResponse:
    """``GET /_api/user``: every user for a superuser, else only oneself (as in ArangoDB)."""
    found = _visible_users(request.app[ACCESS], principal_of(request))
    return _ok([_user_object(u) for u in found])


async def user(request: web.Request) -> web.StreamResponse:
    """``GET /_api/user/{user}``."""
    found = _named_user(request)
    return json_response({"error": False, "code": 200, **_user_object(found)})


async def user_databases(request: web.Request) -> web.StreamResponse:
    """``GET /_api/user/{user}/database``: database name -> access level."""
    return _ok(_user_databases(request.app[ACCESS], _named_user(request)))


# --- databases --------------------------------------------------------------------------------
def _principal_databases(access: AccessConfig, principal: Principal) -> list[str]:
    names = access.databases if principal.databases is None else principal.databases
    return sorted(name for name in names if access.database_exists(name))


async def databases(request: web.Request) -> web.StreamResponse:
    """``GET /_api/database``: every configured database (superusers, from ``_system``)."""
    if database_of(request) != SYSTEM_DATABASE:
        raise ArangoError(ErrorCode.USE_SYSTEM_DATABASE)
    if not principal_of(request).superuser:
        raise ArangoError(ErrorCode.FORBIDDEN, status=403)
    return _ok(sorted(request.app[ACCESS].databases))


async def own_databases(request: web.Request) -> web.StreamResponse:
    """``GET /_api/database/user``: the databases the caller may use."""
    return _ok(_principal_databases(request.app[ACCESS], principal_of(request)))


async def create_database(request: web.Request) -> web.StreamResponse:
    """``POST /_api/database``: databases come from the users file, so none can be made here;
    one that exists already is ArangoDB's 409 (drivers' "ensure database" accept it), a new
    one 403/11."""
    body = parse_json_body(await request.read())
    if database_of(request) != SYSTEM_DATABASE:
        raise ArangoError(ErrorCode.USE_SYSTEM_DATABASE)
    if not principal_of(request).superuser:
        raise ArangoError(ErrorCode.FORBIDDEN, status=403)
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise ArangoError(ErrorCode.DATABASE_NAME_INVALID)
    if request.app[ACCESS].database_exists(name):
        raise ArangoError(ErrorCode.DUPLICATE_NAME, "duplicate database name")
    # 403, not 501: a client asked for something this server refuses, and no 5xx answers
    # a client's request here (the fuzz suite holds the API to that).
    raise ArangoError(
        ErrorCode.FORBIDDEN,
        "arangotasks cannot create databases: list them in the users file "
        "(databases = [...]) or set ARANGOTASKS_ANY_DATABASE",
        status=403,
    )


# --- features that do not exist here -----------------------------------------------------------
async def graphs(request: web.Request) -> web.StreamResponse:
    """``GET /_api/gharial``: no graphs live here."""
    return json_response({"error": False, "code": 200, "graphs": []})


async def foxx_services(request: web.Request) -> web.StreamResponse:
    """``GET /_api/foxx``: no Foxx services either (ArangoDB answers a bare list)."""
    return json_response([])
