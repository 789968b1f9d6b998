"""The contract double answers python-arango's collection, document and AQL calls as ArangoDB
does (these tests also pass against a real server: set ARANGOTASKS_TEST_ARANGODB_URL)."""

import pytest
import requests
from arango import ArangoClient
from arango.exceptions import (
    AQLQueryExecuteError,
    CollectionCreateError,
    DocumentGetError,
    DocumentInsertError,
)

from tests.arangodb.server import arango


@pytest.fixture(scope="module")
def server():
    with arango() as found:
        yield found


@pytest.fixture(scope="module")
def db(server):
    client = ArangoClient(hosts=server.url)
    yield client.db(server.database, username=server.user, password=server.password)
    client.close()


def test_collections_lifecycle(db):
    col = db.create_collection("lifecycle")
    assert col.name == "lifecycle"
    assert db.has_collection("lifecycle")
    assert "lifecycle" in [c["name"] for c in db.collections()]
    with pytest.raises(CollectionCreateError) as exc:
        db.create_collection("lifecycle")
    assert exc.value.error_code == 1207
    assert db.delete_collection("lifecycle")
    assert not db.has_collection("lifecycle")
    assert not db.delete_collection("lifecycle", ignore_missing=True)


def test_documents(db):
    col = db.create_collection("docs")
    meta = col.insert({"_key": "a", "n": 1})
    assert meta["_id"] == "docs/a" and meta["_key"] == "a" and meta["_rev"]
    assert col.get("a")["n"] == 1
    assert col.has("a") and not col.has("missing")
    assert col.get("missing") is None
    with pytest.raises(DocumentInsertError) as exc:
        col.insert({"_key": "a"})
    assert exc.value.error_code == 1210 and exc.value.http_code == 409
    updated = col.update({"_key": "a", "m": 2})
    assert updated["_old_rev"] == meta["_rev"]
    assert col.get("a") | {"_rev": None} == {
        "_id": "docs/a",
        "_key": "a",
        "_rev": None,
        "n": 1,
        "m": 2,
    }
    col.replace({"_key": "a", "x": 3})
    assert "n" not in col.get("a")
    col.insert_many([{"_key": "b"}, {"_key": "c"}])
    assert col.count() == 3
    col.delete("b")
    assert col.count() == 2
    assert sorted(d["_key"] for d in col.all()) == ["a", "c"]
    col.truncate()
    assert col.count() == 0


def test_find_and_aql(db):
    col = db.create_collection("people")
    col.insert_many(
        [{"name": f"p{i}", "age": i % 5, "team": "x" if i % 2 else "y"} for i in range(30)]
    )
    found = list(col.find({"age": 3}))
    assert sorted(d["name"] for d in found) == ["p13", "p18", "p23", "p28", "p3", "p8"]
    assert len(list(col.find({"team": "x"}, skip=2, limit=5))) == 5
    cursor = db.aql.execute(
        "FOR p IN @@c FILTER p.age >= @min SORT p.name LIMIT 7 RETURN p.name",
        bind_vars={"@c": "people", "min": 4},
        count=True,
        batch_size=2,
    )
    assert cursor.count() == 6
    assert list(cursor) == ["p14", "p19", "p24", "p29", "p4", "p9"]
    cursor = db.aql.execute("FOR i IN 1..5 RETURN i * 2", batch_size=2)
    assert cursor.batch() is not None and list(cursor) == [2, 4, 6, 8, 10]
    stats = db.aql.execute("FOR p IN people FILTER p.team == 'y' REMOVE p IN people").statistics()
    assert stats["modified"] == 15
    assert col.count() == 15


def test_aql_errors(db):
    with pytest.raises(AQLQueryExecuteError) as exc:
        db.aql.execute("FOR x IN nowhere RETURN x")
    assert exc.value.error_code == 1203 and exc.value.http_code == 404
    with pytest.raises(AQLQueryExecuteError) as exc:
        db.aql.execute("FOR x IN RETURN")
    assert exc.value.error_code == 1501
    with pytest.raises(AQLQueryExecuteError) as exc:
        db.aql.execute("RETURN @missing")
    assert exc.value.error_code == 1551
    with pytest.raises(AQLQueryExecuteError) as exc:
        db.aql.execute("RETURN 1", bind_vars={"extra": 1})
    assert exc.value.error_code == 1552


def test_missing_document_error(db):
    db.create_collection("gets")
    with pytest.raises(DocumentGetError) as exc:
        db.collection("nothere").get("x")
    assert exc.value.error_code == 1203


def test_cursor_paging_and_not_found(server):
    """Raw HTTP, as the bridge sends it: batches, then 404/1600 once the cursor is gone."""
    http = requests.Session()
    http.auth = (server.user, server.password)
    base = f"{server.url}/_db/{server.database}/_api/cursor"
    first = http.post(base, json={"query": "FOR i IN 1..5 RETURN i", "batchSize": 2}).json()
    assert (first["result"], first["hasMore"], first["code"]) == ([1, 2], True, 201)
    second = http.post(f"{base}/{first['id']}").json()
    assert (second["result"], second["hasMore"], second["code"]) == ([3, 4], True, 200)
    deleted = http.delete(f"{base}/{first['id']}")
    assert deleted.status_code == 202
    gone = http.post(f"{base}/{first['id']}")
    assert gone.status_code == 404 and gone.json()["errorNum"] == 1600
