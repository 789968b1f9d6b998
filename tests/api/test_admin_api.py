"""Health, status, users and databases routes (pyArango, go-driver; issues 11 and 16)."""

from arangotasks.keys import LIFECYCLE
from arangotasks.lifecycle import Phase
from tests.api.test_openapi import assert_matches
from tests.conftest import ALICE, BOB, CAROL, ROOT


async def body_of(resp, status: int):
    assert resp.status == status, await resp.text()
    return await resp.json()


async def test_availability_is_open_and_says_ready(client):
    body = await body_of(await client.get("/_admin/server/availability"), 200)
    assert body == {"mode": "default"}
    assert await body_of(await client.get("/_api/health/live"), 200) == {"status": "ok"}
    assert await body_of(await client.get("/_db/testdb/_api/health/live"), 200) == {"status": "ok"}


async def test_availability_is_503_while_starting_and_stopping(make_client):
    client = await make_client()
    app = client.server.app
    app[LIFECYCLE].phase = Phase.STARTING
    body = await body_of(await client.get("/_admin/server/availability"), 503)
    assert body == {
        "error": True,
        "errorNum": 503,
        "errorMessage": "service unavailable",
        "code": 503,
    }
    app[LIFECYCLE].phase = Phase.READY
    await body_of(await client.get("/_admin/server/availability"), 200)
    await app.shutdown()  # the on_shutdown hook a stop runs first
    assert app[LIFECYCLE].phase is Phase.STOPPING
    await body_of(await client.get("/_admin/server/availability"), 503)
    assert await body_of(await client.get("/_api/health/live"), 200) == {"status": "ok"}
    status = await body_of(await client.get("/_admin/status", headers=ROOT), 200)
    assert status["serverInfo"]["state"] == "SHUTDOWN"


async def test_open_auth_under_a_database_prefix(client):
    resp = await client.post(
        "/_db/testdb/_open/auth", json={"username": "alice", "password": "alice-pw"}
    )
    token = (await body_of(resp, 200))["jwt"]
    headers = {"Authorization": f"bearer {token}"}
    assert await body_of(await client.get("/_db/testdb/_api/tasks", headers=headers), 200) == []
    bad = {"username": "alice", "password": "x"}
    await body_of(await client.post("/_db/testdb/_open/auth", json=bad), 401)


async def test_status(client):
    status = await body_of(await client.get("/_admin/status", headers=ROOT), 200)
    assert_matches("ServerStatus", status)
    assert status["serverInfo"]["role"] == "SINGLE" and status["serverInfo"]["state"] == "SERVING"
    await body_of(await client.get("/_admin/status"), 401)


async def test_users_lists_everyone_for_a_superuser_and_oneself_otherwise(client):
    everyone = await body_of(await client.get("/_api/user", headers=ROOT), 200)
    assert_matches("UserList", everyone)
    assert [u["user"] for u in everyone["result"]] == ["root", "alice", "bob", "carol"]
    own = await body_of(await client.get("/_db/testdb/_api/user", headers=ALICE), 200)
    assert own == {
        "error": False,
        "code": 200,
        "result": [{"user": "alice", "active": True, "extra": {}}],
    }
    one = await body_of(await client.get("/_api/user/bob", headers=ROOT), 200)
    assert one == {"error": False, "code": 200, "user": "bob", "active": True, "extra": {}}
    await body_of(await client.get("/_api/user/bob", headers=ALICE), 403)


async def test_user_databases(client):
    alice = await body_of(await client.get("/_api/user/alice/database", headers=ALICE), 200)
    assert_matches("UserDatabases", alice)
    assert alice["result"] == {"_system": "rw", "other": "rw", "testdb": "rw"}
    bob = await body_of(await client.get("/_api/user/bob/database", headers=ROOT), 200)
    assert bob["result"] == {"_system": "ro", "other": "ro", "testdb": "ro"}
    carol = await body_of(
        await client.get("/_db/other/_api/user/carol/database", headers=CAROL), 200
    )
    assert carol["result"] == {"other": "rw"}
    forbidden = await body_of(await client.get("/_api/user/bob/database", headers=ALICE), 403)
    assert forbidden["errorNum"] == 11
    missing = await body_of(await client.get("/_api/user/nobody/database", headers=ROOT), 404)
    assert (missing["errorNum"], missing["errorMessage"]) == (1703, "user not found")


async def test_databases(client):
    listed = await body_of(await client.get("/_api/database", headers=ROOT), 200)
    assert listed["result"] == ["_system", "other", "testdb"]
    await body_of(await client.get("/_api/database", headers=ALICE), 403)
    wrong_db = await body_of(await client.get("/_db/testdb/_api/database", headers=ROOT), 403)
    assert wrong_db["errorNum"] == 1230
    own = await body_of(await client.get("/_db/other/_api/database/user", headers=CAROL), 200)
    assert own["result"] == ["other"]


async def test_creating_a_database_is_409_for_known_and_403_for_new_names(client):
    known = await body_of(
        await client.post("/_api/database", json={"name": "testdb"}, headers=ROOT), 409
    )
    assert (known["errorNum"], known["errorMessage"]) == (1207, "duplicate database name")
    new = await body_of(
        await client.post("/_api/database", json={"name": "fresh"}, headers=ROOT), 403
    )
    assert new["errorNum"] == 11 and "users file" in new["errorMessage"]
    await body_of(await client.post("/_api/database", json={"name": "x"}, headers=BOB), 403)
    await body_of(await client.post("/_api/database", json={}, headers=ROOT), 400)


async def test_graphs_and_foxx_are_empty(client):
    graphs = await body_of(await client.get("/_db/testdb/_api/gharial", headers=ALICE), 200)
    assert graphs == {"error": False, "code": 200, "graphs": []}
    foxx = await client.get("/_db/testdb/_api/foxx?excludeSystem=False", headers=ALICE)
    assert await body_of(foxx, 200) == []
