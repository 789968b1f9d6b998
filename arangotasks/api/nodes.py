"""``GET /_api/nodes`` (extension, superusers): the nodes that share this store."""

from aiohttp import web

from arangotasks.api.common import json_response
from arangotasks.errors import ArangoError, ErrorCode
from arangotasks.keys import REGISTRY, principal_of


async def list_nodes(request: web.Request) -> web.StreamResponse:
    """Every node known to the store, alive or not (a node dead for an hour is forgotten):
    ``{"id", "address", "startedAt", "heartbeatAt", "alive"}``, by id."""
    if not principal_of(request).superuser:
        raise ArangoError(ErrorCode.FORBIDDEN, "the node list is for superusers only")
    registry = request.app[REGISTRY]
    nodes = await registry.nodes()
    return json_response({"error": False, "code": 200, "node": registry.node_id, "result": nodes})
