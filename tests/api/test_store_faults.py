"""A read-only store: writes answer 503 with a clear error, reads keep working, and the
service recovers by itself when the fault clears."""

import json

from arangotasks.app import create_app
from arangotasks.store.sqlite import SQLiteStore
from tests.conftest import ROOT


async def test_read_only_store_gives_503_and_recovers(aiohttp_client, make_settings, tmp_path):
    store = SQLiteStore(tmp_path / "db.sqlite3")
    client = await aiohttp_client(create_app(make_settings(), store=store))
    body = json.dumps({"command": "return 1;", "offset": 3600})
    assert (await client.put("/_api/tasks/before", data=body, headers=ROOT)).status == 200

    periodic = json.dumps({"command": "return 1;", "period": 3600})
    resp = await client.put("/_api/tasks/runs", data=periodic, headers=ROOT)
    assert resp.status == 200
    await store._set_read_only(True)  # what a non-writable file gives a non-root server
    for method, path in (("PUT", "/_api/tasks/ro"), ("DELETE", "/_api/tasks/before")):
        resp = await client.request(method, path, data=body, headers=ROOT)
        data = await resp.json()
        assert (resp.status, data["errorNum"], data["code"]) == (503, 503, 503)
        # The log has the path; the client is told only what is wrong.
        assert data["errorMessage"] == "task store unavailable: read-only"
        assert str(tmp_path) not in json.dumps(data)
        assert "Traceback" not in data["errorMessage"]
    assert (await client.get("/_api/tasks/before", headers=ROOT)).status == 200
    # The run of "runs" may not be written yet: the history still answers, from the store.
    assert (await client.get("/_api/runs", headers=ROOT)).status == 200
    assert (await client.get("/_api/tasks?details=true", headers=ROOT)).status == 200

    await store._set_read_only(False)
    assert (await client.delete("/_api/tasks/before", headers=ROOT)).status == 200
    assert (await client.put("/_api/tasks/after", data=body, headers=ROOT)).status == 200
    listed = await (await client.get("/_api/tasks", headers=ROOT)).json()
    assert [t["id"] for t in listed] == ["runs", "after"]
    assert [t.id for t in await store.load_tasks()] == ["runs", "after"]
    runs = await (await client.get("/_api/runs?taskIds=runs", headers=ROOT)).json()
    assert runs["total"] == 1  # written once the store was writable again
