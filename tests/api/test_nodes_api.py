"""``GET /_api/nodes`` on a store of one server: this server alone, for superusers only (the
cluster's list is tested against real nodes in tests/e2e/test_cluster.py)."""

from datetime import datetime

from tests.conftest import ALICE, ROOT


async def test_one_server_lists_itself(client):
    resp = await client.get("/_api/nodes", headers=ROOT)
    assert resp.status == 200
    body = await resp.json()
    assert list(body) == ["error", "code", "node", "result"]
    (node,) = body["result"]
    assert list(node) == ["id", "address", "startedAt", "heartbeatAt", "alive"]
    assert node["id"] == body["node"] and node["alive"] is True
    assert datetime.fromisoformat(node["startedAt"]) <= datetime.fromisoformat(node["heartbeatAt"])
    again = await (await client.get("/_db/_system/_api/nodes", headers=ROOT)).json()
    assert again["node"] == body["node"]  # the same id for the life of the server


async def test_the_node_list_is_for_superusers(client):
    resp = await client.get("/_api/nodes", headers=ALICE)
    assert resp.status == 403
    body = await resp.json()
    assert body["error"] is True and body["code"] == 403
