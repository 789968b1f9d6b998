"""The db bridge's server side against the contract double: only the documented endpoints are
forwarded, with the configured credentials, every call is recorded, cursors left open are
deleted, and the run's deadline bounds every call."""

import json
import time
from pathlib import Path

import pytest

from arangotasks.arangodb_bridge import (
    Bridge,
    BridgeConfig,
    BridgeError,
    Target,
    load_bridge_config,
)
from tests.arangodb.double import Double
from tests.arangodb.server import run_double


@pytest.fixture
def double_url():
    double = Double(user="tasks", password="s3cret-pw", databases=("sales", "other"))
    with run_double(double) as url:
        yield double, url


async def test_forwards_with_credentials_and_records(double_url):
    double, url = double_url
    bridge = Bridge(BridgeConfig(Target(url, "tasks", "s3cret-pw")))
    scope = bridge.scope("sales", time.monotonic() + 10)
    created = await scope.call("POST", "/_api/collection", json.dumps({"name": "logs"}))
    assert created["status"] == 200
    saved = await scope.call("POST", "/_api/document/logs?returnNew=true&evil=1", '{"a":1}')
    assert json.loads(saved["body"])["new"]["a"] == 1
    assert ("POST", "/_db/sales/_api/document/logs") in double.log
    assert [r.to_api()["url"] for r in scope.records] == [
        f"{url}/_db/sales/_api/collection",
        f"{url}/_db/sales/_api/document/logs?returnNew=true",  # unknown options dropped
    ]
    assert all(r.status in (200, 202) and r.error is None for r in scope.records)
    assert "s3cret" not in repr([r.to_api() for r in scope.records])
    await bridge.close()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/_api/user"),
        ("POST", "/_api/database"),
        ("DELETE", "/_api/collection"),
        ("GET", "/_admin/metrics"),
        ("GET", "/_api/document/logs/.."),
        ("POST", "/_api/transaction"),
        ("GET", "http://elsewhere/_api/collection"),
    ],
)
async def test_refuses_other_endpoints(double_url, method, path):
    double, url = double_url
    bridge = Bridge(BridgeConfig(Target(url, "tasks", "s3cret-pw")))
    scope = bridge.scope("sales", time.monotonic() + 10)
    before = len(double.log)
    with pytest.raises(BridgeError, match="does not forward"):
        await scope.call(method, path, None)
    assert len(double.log) == before  # nothing was sent
    await bridge.close()


async def test_unfinished_cursors_are_deleted_at_the_end(double_url):
    double, url = double_url
    bridge = Bridge(BridgeConfig(Target(url, "tasks", "s3cret-pw")))
    scope = bridge.scope("sales", time.monotonic() + 10)
    body = json.dumps({"query": "FOR i IN 1..10 RETURN i", "batchSize": 3})
    first = json.loads((await scope.call("POST", "/_api/cursor", body))["body"])
    finished = json.loads(
        (await scope.call("POST", "/_api/cursor", json.dumps({"query": "RETURN 1"})))["body"]
    )
    assert first["hasMore"] and not finished["hasMore"]
    assert first["id"] in double.cursors
    await scope.close()
    assert double.cursors == {}
    assert ("DELETE", f"/_db/sales/_api/cursor/{first['id']}") in double.log
    await bridge.close()


async def test_deadline_and_unreachable_server(double_url):
    _, url = double_url
    bridge = Bridge(BridgeConfig(Target(url, "tasks", "s3cret-pw")))
    with pytest.raises(BridgeError, match="time is up"):
        await bridge.scope("sales", time.monotonic() - 1).call("GET", "/_api/collection", None)
    dead = Bridge(BridgeConfig(Target("http://127.0.0.1:9", "tasks", "s3cret-pw")))
    scope = dead.scope("sales", time.monotonic() + 5)
    with pytest.raises(BridgeError, match="cannot be reached") as exc:
        await scope.call("GET", "/_api/collection", None)
    assert "s3cret" not in str(exc.value)
    assert scope.records[0].error and scope.records[0].status is None
    await bridge.close()
    await dead.close()


async def test_per_database_targets_and_password_secret(double_url, tmp_path: Path):
    double, url = double_url
    config = tmp_path / "users.toml"
    config.write_text(
        f"""
[arangodb.databases.reports]
url = "{url}"
database = "other"
user = "tasks"
password_secret = "arango-pw"
"""
    )
    loaded = load_bridge_config("http://127.0.0.1:9", "root", "pw", None, config)
    assert loaded.target("anything") == Target("http://127.0.0.1:9", "root", "pw")
    assert loaded.target("reports") == Target(url, "tasks", None, "arango-pw", "other")

    async def secrets(database: str, name: str) -> str | None:
        return {("_system", "arango-pw"): "s3cret-pw"}.get((database, name))

    bridge = Bridge(loaded, secrets)
    listed = await bridge.scope("reports", time.monotonic() + 5).call(
        "GET", "/_api/collection", None
    )
    assert listed["status"] == 200
    assert ("GET", "/_db/other/_api/collection") in double.log
    assert bridge.reserved_secrets() == {"arango-pw"}
    missing = Bridge(load_bridge_config(url, "tasks", None, "absent", None), secrets)
    with pytest.raises(BridgeError, match="'absent' is not set"):
        await missing.scope("sales", time.monotonic() + 5).call("GET", "/_api/collection", None)
    await bridge.close()
    await missing.close()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[arangodb.databases.x]\nurl = "ftp://h"\n', "not an http"),
        ('[arangodb.databases.x]\nurl = "http://u:p@h"\n', "not the URL"),
        ('[arangodb.databases.x]\nurl = "http://h"\nport = "1"\n', "unknown field"),
        ('[arangodb.databases.x]\nuser = "u"\n', "needs a url"),
        ('[arangodb]\nurl = "http://h"\n', "holds only"),
    ],
)
def test_bad_config_is_refused(tmp_path: Path, text: str, message: str):
    config = tmp_path / "users.toml"
    config.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_bridge_config(None, "root", None, None, config)


def test_other_url_does_not_inherit_credentials(tmp_path: Path):
    config = tmp_path / "users.toml"
    config.write_text('[arangodb.databases.x]\nurl = "http://other:8529"\n')
    loaded = load_bridge_config("http://main:8529", "admin", "main-pw", None, config)
    assert loaded.target("x") == Target("http://other:8529", "root", None, None)
