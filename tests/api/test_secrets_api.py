"""``/_api/secrets``: bodies, permissions, input checks, encryption at rest and key handling.

Every response a test sees is recorded and checked, at the end, not to contain any value."""

import json
import os
import stat
from pathlib import Path

import pytest
from dirty_equals import IsStr

from arangotasks.app import create_app
from tests.conftest import ALICE, BOB, CAROL, ROOT

ISO = IsStr(regex=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
VALUE = "s3cr3t-Válue/with+chars=&"
OTHER = "another-secret-value-42"


class Recorder:
    """Wraps a test client; keeps every response body seen."""

    def __init__(self, client):
        self.client = client
        self.bodies: list[str] = []

    async def call(self, method: str, path: str, headers=ROOT, **kwargs):
        resp = await self.client.request(method, path, headers=headers, **kwargs)
        text = await resp.text()
        self.bodies.append(text + "\n" + "\n".join(f"{k}: {v}" for k, v in resp.headers.items()))
        return resp.status, (json.loads(text) if text else None)

    def assert_no_value(self, *values: str) -> None:
        for body in self.bodies:
            for value in values:
                assert value not in body


@pytest.fixture
async def api(client):
    recorder = Recorder(client)
    yield recorder
    recorder.assert_no_value(VALUE, OTHER)


def put(api, name, value=VALUE, headers=ROOT, db=""):
    return api.call("PUT", f"{db}/_api/secrets/{name}", headers=headers, json={"value": value})


async def test_put_get_list_delete(api):
    status, body = await put(api, "smtp.password")
    assert status == 200
    assert body == {"name": "smtp.password", "database": "_system", "created": ISO, "updated": ISO}
    assert body["created"] == body["updated"]
    assert list(body) == ["name", "database", "created", "updated"]
    assert await api.call("GET", "/_api/secrets/smtp.password") == (200, body)

    status, replaced = await put(api, "smtp.password", OTHER)
    assert status == 200
    assert replaced["created"] == body["created"]
    assert replaced["updated"] > body["updated"]
    await put(api, "API_KEY")
    status, listed = await api.call("GET", "/_api/secrets")
    assert status == 200
    assert listed == {
        "error": False,
        "code": 200,
        "result": [
            {"name": "API_KEY", "database": "_system", "created": ISO, "updated": ISO},
            replaced,
        ],
    }
    assert await api.call("DELETE", "/_api/secrets/API_KEY") == (200, {"error": False, "code": 200})
    for method in ("GET", "DELETE"):
        assert await api.call(method, "/_api/secrets/API_KEY") == (
            404,
            {
                "error": True,
                "errorNum": 1860,
                "errorMessage": "secret 'API_KEY' not found in database '_system'",
                "code": 404,
            },
        )
    assert (await api.call("GET", "/_api/secrets"))[1]["result"] == [replaced]


async def test_databases_are_separate(api):
    await put(api, "token", VALUE)
    status, body = await put(api, "token", OTHER, db="/_db/testdb")
    assert status == 200
    assert body["database"] == "testdb"
    listed = (await api.call("GET", "/_db/testdb/_api/secrets"))[1]["result"]
    assert [s["database"] for s in listed] == ["testdb"]
    assert (await api.call("DELETE", "/_db/testdb/_api/secrets/token"))[0] == 200
    assert (await api.call("GET", "/_db/testdb/_api/secrets/token"))[0] == 404
    assert (await api.call("GET", "/_api/secrets/token"))[0] == 200
    assert (await api.call("GET", "/_db/_system/_api/secrets/token"))[0] == 200
    # Database names from the path only: an unknown one is ArangoDB's 404/1228.
    status, body = await api.call("GET", "/_db/nope/_api/secrets")
    assert (status, body["errorNum"]) == (404, 1228)


async def test_permissions(api):
    await put(api, "shared", db="/_db/testdb")
    # Read-write users manage secrets; read-only users only see names.
    assert (await put(api, "by-alice", headers=ALICE, db="/_db/testdb"))[0] == 200
    assert (await api.call("DELETE", "/_db/testdb/_api/secrets/by-alice", headers=ALICE))[0] == 200
    for method, path in (("GET", "/_api/secrets"), ("GET", "/_api/secrets/shared")):
        assert (await api.call(method, "/_db/testdb" + path, headers=BOB))[0] == 200
    status, body = await put(api, "shared", OTHER, headers=BOB, db="/_db/testdb")
    assert (status, body["errorNum"]) == (403, 11)
    assert "read-only access to database 'testdb'" in body["errorMessage"]
    status, body = await api.call("DELETE", "/_db/testdb/_api/secrets/shared", headers=BOB)
    assert (status, body["errorNum"]) == (403, 11)
    # carol may only use "other": anything in testdb is ArangoDB's 401/11.
    for method, path in (
        ("GET", "/_api/secrets"),
        ("GET", "/_api/secrets/shared"),
        ("DELETE", "/_api/secrets/shared"),
    ):
        status, body = await api.call(method, "/_db/testdb" + path, headers=CAROL)
        assert (status, body["errorNum"]) == (401, 11)
    assert (await put(api, "shared", headers=CAROL, db="/_db/testdb"))[0] == 401
    assert (await put(api, "own", headers=CAROL, db="/_db/other"))[0] == 200
    assert (await api.call("GET", "/_api/secrets", headers={}))[0] == 401
    # Nothing changed by the refused calls.
    listed = (await api.call("GET", "/_db/testdb/_api/secrets"))[1]["result"]
    assert [s["name"] for s in listed] == ["shared"]


@pytest.mark.parametrize(
    ("name", "body", "status", "num", "message"),
    [
        ("bad name", {"value": VALUE}, 400, 10, "invalid secret name"),
        (".hidden", {"value": VALUE}, 400, 10, "invalid secret name"),
        ("x" * 129, {"value": VALUE}, 400, 10, "invalid secret name"),
        ("ok", {"value": 42}, 400, 10, "'value' must be a non-empty string"),
        ("ok", {"value": ""}, 400, 10, "'value' must be a non-empty string"),
        ("ok", {"valeu": VALUE}, 400, 10, "'value' must be a non-empty string"),
        ("ok", [VALUE], 400, 600, "expecting a JSON object body"),
        ("ok", '{"value": "\\ud800-lone"}', 400, 10, "'value' must be valid Unicode"),
        ("ok", b'{"value": "\xff' + VALUE.encode() + b'"}', 400, 600, "expecting a JSON object"),
        ("ok", '{"value": "' + VALUE + '"', 400, 600, "expecting a JSON object"),
        ("ok", "", 400, 600, "expecting a JSON object"),
    ],
    ids="space dot long number empty typo array surrogate utf8 cut none".split(),
)
async def test_bad_input_names_the_field(api, name, body, status, num, message):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    got_status, got = await api.call("PUT", f"/_api/secrets/{name}", data=data)
    assert (got_status, got["errorNum"], got["code"]) == (status, num, status)
    assert got["errorMessage"].startswith(message)
    assert (await api.call("GET", "/_api/secrets"))[1]["result"] == []


async def test_size_and_count_limits(make_client):
    api = Recorder(await make_client(secrets_max_value_kb=1, secrets_max_count=2))
    assert (await put(api, "big", "é" * 512))[0] == 200  # 1,024 bytes
    status, body = await put(api, "bigger", "x" * 1025)
    assert (status, body["errorNum"]) == (400, 10)
    assert body["errorMessage"] == (
        "'value' is longer than 1024 bytes (ARANGOTASKS_SECRETS_MAX_VALUE_KB)"
    )
    assert (await put(api, "second"))[0] == 200
    status, body = await put(api, "third")
    assert (status, body["errorNum"]) == (400, 10)
    assert "maximum of 2 secrets" in body["errorMessage"]
    assert (await put(api, "second", OTHER))[0] == 200  # replacing is not adding
    assert (await put(api, "third", db="/_db/testdb"))[0] == 200  # per database
    api.assert_no_value(VALUE, OTHER)


async def test_other_methods_are_405(api):
    for method in ("POST", "PATCH"):
        status, body = await api.call(method, "/_api/secrets/x", json={"value": VALUE})
        assert (status, body["errorNum"]) == (405, 405)


def _store_bytes(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(data_dir.glob("arangotasks.sqlite3*")))


async def test_encrypted_at_rest_with_a_0600_key_file(make_client, make_settings):
    api = Recorder(await make_client())
    data_dir = make_settings().data_dir
    assert not (data_dir / "secrets.key").exists()  # created on first use
    assert (await put(api, "token"))[0] == 200
    key = data_dir / "secrets.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(key.read_bytes().strip()) == 44
    assert [p.name for p in data_dir.iterdir() if p.name.startswith(".secrets")] == []
    raw = _store_bytes(data_dir)
    assert b"token" in raw  # the name is stored in the clear...
    for form in (VALUE.encode(), VALUE.encode("utf-16-le"), b"s3cr3t"):
        assert form not in raw  # ...the value is not


async def _lost_key_app(make_client, make_settings, **settings):
    """A second app on the data dir of a first one that stored a secret; the key then goes."""
    first = Recorder(await make_client())
    assert (await put(first, "token"))[0] == 200
    assert (await put(first, "other", db="/_db/testdb"))[0] == 200
    key = make_settings().data_dir / "secrets.key"
    old = key.read_bytes()
    key.unlink()
    return Recorder(await make_client(**settings)), key, old


async def test_lost_key_is_a_clear_error(make_client, make_settings):
    api, key, old = await _lost_key_app(make_client, make_settings)
    status, body = await api.call("GET", "/_api/secrets/token")
    assert (status, body["errorNum"]) == (500, 1861)
    assert body["errorMessage"] == (
        "secret 'token' of database '_system' cannot be decrypted: no secrets key (the key "
        "file secrets.key in the data directory is missing: restore it from its backup, or set "
        "ARANGOTASKS_SECRETS_KEY)"
    )
    # Names stay listed, so that one knows what to restore or store again.
    assert [s["name"] for s in (await api.call("GET", "/_api/secrets"))[1]["result"]] == ["token"]
    # No new key while secrets of the lost one remain.
    status, body = await put(api, "new")
    assert (status, body["errorNum"]) == (500, 1861)
    assert "the store holds 2 secret(s) encrypted with key" in body["errorMessage"]
    assert not key.exists()
    # Deleting works without a key; then a new key is made.
    assert (await api.call("DELETE", "/_api/secrets/token"))[0] == 200
    assert (await api.call("DELETE", "/_db/testdb/_api/secrets/other"))[0] == 200
    assert (await put(api, "new"))[0] == 200
    assert key.exists() and key.read_bytes() != old
    api.assert_no_value(VALUE, OTHER)


async def test_restored_key_reads_again(make_client, make_settings):
    api, key, old = await _lost_key_app(make_client, make_settings)
    assert (await api.call("GET", "/_api/secrets/token"))[0] == 500
    key.write_bytes(old)
    os.chmod(key, 0o600)
    api = Recorder(await make_client())
    assert (await api.call("GET", "/_api/secrets/token"))[0] == 200


async def test_wrong_key_from_the_setting(make_client, make_settings):
    from cryptography.fernet import Fernet

    other = Fernet.generate_key().decode()
    api, _key, _old = await _lost_key_app(make_client, make_settings, secrets_key=other)
    status, body = await api.call("GET", "/_api/secrets/token")
    assert (status, body["errorNum"]) == (500, 1861)
    assert body["errorMessage"].startswith(
        "secret 'token' of database '_system' cannot be decrypted: it was stored with key "
    )
    assert "but ARANGOTASKS_SECRETS_KEY is key" in body["errorMessage"]
    assert other not in body["errorMessage"]
    # A deliberately set key encrypts new secrets (the old ones stay unreadable, and say so).
    assert (await put(api, "fresh"))[0] == 200
    assert (await api.call("GET", "/_api/secrets/fresh"))[0] == 200


async def test_damaged_key_file(make_client, make_settings):
    api = Recorder(await make_client())
    assert (await put(api, "token"))[0] == 200
    (make_settings().data_dir / "secrets.key").write_text("not a key\n")
    api = Recorder(await make_client())
    status, body = await api.call("GET", "/_api/secrets/token")
    assert (status, body["errorNum"]) == (500, 1861)
    assert body["errorMessage"].startswith(
        "the key file secrets.key in the data directory is not a Fernet key"
    )


def test_malformed_key_setting_stops_the_start(make_settings):
    with pytest.raises(ValueError, match="ARANGOTASKS_SECRETS_KEY is not a Fernet key"):
        create_app(make_settings(secrets_key="too-short"))


async def test_bodies_match_the_openapi_schemas(api):
    from tests.api.test_openapi import SPEC, assert_matches

    _status, body = await put(api, "documented")
    assert_matches("Secret", body)
    assert_matches("Secret", (await api.call("GET", "/_api/secrets/documented"))[1])
    assert_matches("SecretList", (await api.call("GET", "/_db/testdb/_api/secrets"))[1])
    assert_matches("SecretList", (await api.call("GET", "/_api/secrets"))[1])
    for method, path in (("GET", "/_api/secrets/x"), ("PUT", "/_api/secrets/bad%20name")):
        _status, error = await api.call(method, path, json={"value": VALUE})
        assert_matches("ArangoError", error)
    assert_matches("DeleteResult", (await api.call("DELETE", "/_api/secrets/documented"))[1])
    # The description shows no value anywhere: no "value" but the request body's placeholder.
    text = json.dumps(SPEC)
    assert text.count('"value": "') == text.count('"value": "********"') == 2  # both PUTs
    put_op = SPEC["paths"]["/_api/secrets/{name}"]["put"]
    assert put_op["requestBody"]["content"]["application/json"]["example"] == {"value": "********"}
    assert "value" not in SPEC["components"]["schemas"]["Secret"]["properties"]
