"""The few non-task routes ArangoDB clients call before they use tasks."""

from aiohttp import web

from arangotasks import __version__
from arangotasks.api.common import bool_param, json_response
from arangotasks.auth import issue_jwt
from arangotasks.config import SYSTEM_DATABASE
from arangotasks.errors import ArangoError, ErrorCode
from arangotasks.keys import ACCESS, AUTHENTICATOR, REGISTRY, SETTINGS, database_of
from arangotasks.validation import parse_json_body

# Below 4.0, so that drivers keep their task APIs on (python-arango skips them from 4.0).
ARANGODB_VERSION = "3.12.4"


async def version(request: web.Request) -> web.StreamResponse:
    body: dict[str, object] = {
        "server": "arango",
        "version": ARANGODB_VERSION,
        "license": "community",
    }
    if bool_param(request, "details"):
        registry = request.app[REGISTRY]
        body["details"] = {
            "arangotasks-version": __version__,
            "mode": "server",
            "role": "SINGLE",
            "tasks": str(len(registry)),
            "scheduled": str(registry.scheduled()),
        }
    return json_response(body)


async def collections(request: web.Request) -> web.StreamResponse:
    # No collections live here; an empty list satisfies ``db(verify=True)``.
    return json_response({"error": False, "code": 200, "result": []})


async def current_database(request: web.Request) -> web.StreamResponse:
    name = database_of(request)
    result = {"name": name, "id": "1", "isSystem": name == SYSTEM_DATABASE, "path": "none"}
    return json_response({"error": False, "code": 200, "result": result})


async def open_auth(request: web.Request) -> web.StreamResponse:
    """``POST /_open/auth``: trade a username and password for a JWT."""
    body = parse_json_body(await request.read())
    username, password = body.get("username"), body.get("password", "")
    if not (isinstance(username, str) and isinstance(password, str)):
        raise ArangoError(ErrorCode.HTTP_UNAUTHORIZED, "Wrong credentials")
    authenticator = request.app[AUTHENTICATOR]
    if await authenticator.login(username, password, request.remote or "") is None:
        raise ArangoError(ErrorCode.HTTP_UNAUTHORIZED, "Wrong credentials")
    token = issue_jwt(request.app[ACCESS], username, request.app[SETTINGS].jwt_ttl)
    return json_response({"jwt": token})
