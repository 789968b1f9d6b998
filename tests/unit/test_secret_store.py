"""The secret methods of both stores (SQLite and PostgreSQL), on the contract fixtures."""

from arangotasks.store.secret_rows import SecretRecord
from tests.unit.test_store import make_store, pg_schema_dsn, store  # noqa: F401 (fixtures)


def rec(name: str, database: str = "_system", token: str = "tok", at: float = 100.0):
    return SecretRecord(database, name, token, "key-1", at, at)


async def test_put_get_list_delete(store):  # noqa: F811
    assert await store.put_secret(rec("b"), 10) == rec("b")
    assert await store.put_secret(rec("a"), 10) == rec("a")
    assert await store.put_secret(rec("a", "testdb", "t2"), 10) == rec("a", "testdb", "t2")
    assert await store.get_secret("_system", "a") == rec("a")
    assert await store.get_secret("_system", "c") is None
    assert await store.get_secret("other", "a") is None
    assert await store.list_secrets("_system") == [rec("a"), rec("b")]
    assert await store.list_secrets("testdb") == [rec("a", "testdb", "t2")]
    assert await store.list_secrets("none") == []
    assert await store.secret_key_ids() == {"key-1": 3}
    assert await store.delete_secret("_system", "a") is True
    assert await store.delete_secret("_system", "a") is False
    assert await store.list_secrets("_system") == [rec("b")]
    assert await store.get_secret("testdb", "a") is not None


async def test_replacing_keeps_created(store):  # noqa: F811
    await store.put_secret(rec("a", at=100.0), 10)
    new = SecretRecord("_system", "a", "tok2", "key-2", 200.0, 200.0)
    assert await store.put_secret(new, 10) == SecretRecord(
        "_system", "a", "tok2", "key-2", 100.0, 200.0
    )
    assert await store.secret_key_ids() == {"key-2": 1}


async def test_count_limit_per_database(store):  # noqa: F811
    assert await store.put_secret(rec("a"), 2) is not None
    assert await store.put_secret(rec("b"), 2) is not None
    assert await store.put_secret(rec("c"), 2) is None
    assert await store.put_secret(rec("b", token="new"), 2) is not None  # a replacement
    assert await store.put_secret(rec("c", "testdb"), 2) is not None
    assert [r.name for r in await store.list_secrets("_system")] == ["a", "b"]


async def test_secrets_survive_a_reopen(make_store):  # noqa: F811
    first = make_store()
    await first.open()
    await first.put_secret(rec("kept"), 10)
    await first.close()
    second = make_store()
    await second.open()
    try:
        assert await second.get_secret("_system", "kept") == rec("kept")
    finally:
        await second.close()
