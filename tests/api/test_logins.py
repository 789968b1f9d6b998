"""Failed logins are throttled per user and per address; long-lived JWTs are refused (issue 11)."""

import time

import jwt

from arangotasks.throttle import LoginThrottle
from tests.conftest import ALICE, JWT_SECRET, ROOT, basic


def bearer(claims: dict) -> dict[str, str]:
    return {"Authorization": "bearer " + jwt.encode(claims, JWT_SECRET, algorithm="HS256")}


async def test_failed_basic_logins_get_429_then_even_the_right_password_waits(make_client):
    client = await make_client(login_burst=3, login_rate=0.01)
    for _ in range(3):
        resp = await client.get("/_api/tasks", headers=basic("alice", "wrong"))
        assert resp.status == 401
    resp = await client.get("/_api/tasks", headers=ALICE)
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) >= 1
    body = await resp.json()
    assert (body["error"], body["errorNum"], body["code"]) == (True, 429, 429)
    assert body["errorMessage"].startswith("too many failed logins; try again in ")
    # /_open/auth is throttled by the same buckets.
    resp = await client.post("/_open/auth", json={"username": "alice", "password": "alice-pw"})
    assert resp.status == 429
    # Nothing sleeps: a caller with a token is served at once.
    now = int(time.time())
    token = bearer({"iss": "arangodb", "iat": now, "exp": now + 60})
    assert (await client.get("/_api/tasks", headers=token)).status == 200


async def test_failed_open_auth_logins_are_throttled_too(make_client):
    client = await make_client(login_burst=2, login_rate=0.01)
    for _ in range(2):
        resp = await client.post("/_open/auth", json={"username": "root", "password": "x"})
        assert resp.status == 401
    assert (await client.get("/_api/version", headers=ROOT)).status == 429
    # Successful logins take no token.
    fresh = await make_client(login_burst=1, login_rate=0.01)
    for _ in range(5):
        assert (await fresh.get("/_api/version", headers=ROOT)).status == 200


def test_buckets_are_per_user_and_per_address_and_refill():
    now = [0.0]
    throttle = LoginThrottle(burst=2, rate=0.5, clock=lambda: now[0])
    a_alice = [("addr", "a"), ("user", "alice")]
    throttle.failed(a_alice)
    throttle.failed(a_alice)
    assert throttle.retry_after(a_alice) == 2.0  # one token back after 1 / 0.5 s
    # Another user from another address is not slowed down.
    assert throttle.retry_after([("addr", "b"), ("user", "bob")]) == 0
    # The same user from another address is (per user), and so is another user from "a".
    assert throttle.retry_after([("addr", "b"), ("user", "alice")]) == 2.0
    assert throttle.retry_after([("addr", "a"), ("user", "bob")]) == 2.0
    now[0] = 2.0
    assert throttle.retry_after(a_alice) == 0


def test_address_buckets_stay_bounded(monkeypatch):
    monkeypatch.setattr("arangotasks.throttle.MAX_BUCKETS", 100)
    throttle = LoginThrottle(burst=5, rate=1.0)
    for i in range(1000):
        throttle.failed([("addr", str(i))])
    assert len(throttle._buckets) <= 100


async def test_jwts_living_longer_than_the_maximum_are_refused(make_client):
    client = await make_client(jwt_max_ttl=3600)
    now = int(time.time())
    ok = bearer({"iss": "arangodb", "iat": now, "exp": now + 3600})
    assert (await client.get("/_api/tasks", headers=ok)).status == 200
    too_long = bearer({"iss": "arangodb", "iat": now, "exp": now + 3601})
    assert (await client.get("/_api/tasks", headers=too_long)).status == 401
    # Without iat, what is left of it counts.
    no_iat = bearer({"iss": "arangodb", "exp": now + 7200})
    assert (await client.get("/_api/tasks", headers=no_iat)).status == 401
    no_iat_short = bearer({"iss": "arangodb", "exp": now + 600})
    assert (await client.get("/_api/tasks", headers=no_iat_short)).status == 200
    # An old iat does not lengthen the window.
    backdated = bearer({"iss": "arangodb", "iat": now - 86400 * 365, "exp": now + 60})
    assert (await client.get("/_api/tasks", headers=backdated)).status == 401


async def test_the_default_maximum_refuses_a_year_long_token(client):
    now = int(time.time())
    year = bearer({"iss": "arangodb", "iat": now, "exp": now + 365 * 86400})
    assert (await client.get("/_api/tasks", headers=year)).status == 401
    resp = await client.post("/_open/auth", json={"username": "root", "password": "root-pw"})
    issued = {"Authorization": "bearer " + (await resp.json())["jwt"]}
    assert (await client.get("/_api/tasks", headers=issued)).status == 200
