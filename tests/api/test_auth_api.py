"""Authentication (§1.7) and the non-task routes python-arango needs."""

import json
import time

import jwt
import pytest

from tests.conftest import CAROL, JWT_SECRET, ROOT, basic

UNAUTHORIZED = {
    "error": True,
    "errorNum": 11,
    "errorMessage": "not authorized to execute this request",
    "code": 401,
}

ROUTES = [
    ("GET", "/_api/tasks"),
    ("GET", "/_api/tasks/x"),
    ("POST", "/_api/tasks"),
    ("PUT", "/_api/tasks/x"),
    ("DELETE", "/_api/tasks/x"),
    ("GET", "/_db/testdb/_api/tasks"),
    ("GET", "/_api/version"),
    ("GET", "/_db/_system/_api/collection"),
    ("GET", "/_api/runs"),
    ("GET", "/_api/runs/1"),
    ("GET", "/_api/tasks/x/runs"),
    ("POST", "/_api/tasks/x/run"),
]


def token(claims: dict, secret: str = JWT_SECRET) -> dict[str, str]:
    return {"Authorization": "bearer " + jwt.encode(claims, secret, algorithm="HS256")}


def claims(**extra) -> dict:
    now = int(time.time())
    return {"iss": "arangodb", "iat": now, "exp": now + 60, **extra}


BAD_CREDENTIALS = {
    "none": {},
    "wrong-password": basic("root", "wrong"),
    "unknown-user": basic("mallory", "x"),
    "garbage-basic": {"Authorization": "Basic !!!"},
    "no-colon": {"Authorization": "Basic cm9vdA=="},
    "unknown-scheme": {"Authorization": "Digest abc"},
    "forged-jwt": token(claims(), secret="not-the-secret-at-all-but-long-enough-xx"),
    "expired-jwt": token({"iss": "arangodb", "iat": 1, "exp": 2}),
    "wrong-issuer": token(claims(iss="someone")),
    "unknown-jwt-user": token(claims(preferred_username="mallory")),
    "not-a-jwt": {"Authorization": "bearer abc.def.ghi"},
}


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize("headers", BAD_CREDENTIALS.values(), ids=BAD_CREDENTIALS.keys())
async def test_every_route_needs_credentials(client, method, path, headers):
    resp = await client.request(method, path, headers=headers, data="{}")
    assert resp.status == 401
    assert await resp.json() == UNAUTHORIZED
    assert "WWW-Authenticate" in resp.headers


async def test_jwt_login_and_use(client):
    resp = await client.post("/_open/auth", json={"username": "alice", "password": "alice-pw"})
    assert resp.status == 200
    token_text = (await resp.json())["jwt"]
    decoded = jwt.decode(token_text, JWT_SECRET, algorithms=["HS256"], issuer="arangodb")
    assert decoded["preferred_username"] == "alice"
    assert decoded["exp"] > decoded["iat"]
    headers = {"Authorization": f"bearer {token_text}"}
    created = await client.post("/_api/tasks", json={"command": "1", "offset": 99}, headers=headers)
    assert created.status == 200
    listed = await (await client.get("/_api/tasks", headers=ROOT)).json()
    assert len(listed) == 1


@pytest.mark.parametrize(
    "body",
    [{"username": "alice", "password": "nope"}, {"username": "nobody"}, {"password": "x"}],
    ids=["wrong-password", "unknown-user", "no-user"],
)
async def test_jwt_login_failure(client, body):
    resp = await client.post("/_open/auth", json=body)
    assert resp.status == 401
    assert await resp.json() == {
        "error": True,
        "errorNum": 401,
        "errorMessage": "Wrong credentials",
        "code": 401,
    }


async def test_superuser_jwt_without_username_sees_everything(client):
    alice = await client.post(
        "/_api/tasks", json={"command": "1", "offset": 99}, headers=basic("alice", "alice-pw")
    )
    alice_id = (await alice.json())["id"]
    headers = token(claims(server_id="client"))
    resp = await client.get(f"/_api/tasks/{alice_id}", headers=headers)
    assert resp.status == 200
    assert (await client.delete(f"/_api/tasks/{alice_id}", headers=headers)).status == 200


async def test_user_restricted_to_a_database(client):
    assert (await client.get("/_db/other/_api/tasks", headers=CAROL)).status == 200
    resp = await client.get("/_db/testdb/_api/tasks", headers=CAROL)
    assert await resp.json() == UNAUTHORIZED


async def test_auth_off(make_client):
    client = await make_client(no_auth=True)
    resp = await client.post("/_api/tasks", json={"command": "1", "offset": 99})
    assert resp.status == 200
    assert len(await (await client.get("/_api/tasks")).json()) == 1


async def test_version(client):
    resp = await client.get("/_api/version?details=0", headers=ROOT)
    assert await resp.json() == {"server": "arango", "version": "3.12.4", "license": "community"}
    detailed = await (
        await client.get("/_db/_system/_api/version?details=true", headers=ROOT)
    ).json()
    assert detailed["details"]["tasks"] == "0"


async def test_collection_and_current_database(client):
    resp = await client.get("/_db/testdb/_api/collection", headers=ROOT)
    assert await resp.json() == {"error": False, "code": 200, "result": []}
    current = await (await client.get("/_db/testdb/_api/database/current", headers=ROOT)).json()
    assert current["result"]["name"] == "testdb"
    assert current["result"]["isSystem"] is False


async def test_any_database_setting(make_client):
    client = await make_client(any_database=True)
    assert (await client.get("/_db/whatever-db/_api/tasks", headers=ROOT)).status == 200
    bad = await client.get("/_db/1-bad%20name/_api/tasks", headers=ROOT)
    assert (await bad.json())["errorNum"] == 1228


async def test_open_auth_bad_body(client):
    resp = await client.post("/_open/auth", data="not json")
    assert (await resp.json())["errorNum"] == 600
    resp = await client.post("/_open/auth", data=json.dumps([1]))
    assert resp.status == 400
