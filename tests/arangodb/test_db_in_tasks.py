"""Task commands that use ``db`` through the whole service (in-process app, real QuickJS workers)
against the contract double, or a real ArangoDB when ARANGOTASKS_TEST_ARANGODB_URL is set."""

import json

import pytest

from tests.api.helpers import wait_runs
from tests.arangodb.server import arango
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def arangodb():
    with arango() as found:
        yield found


@pytest.fixture
async def client(make_client, arangodb):
    return await make_client(
        arangodb_url=arangodb.url,
        arangodb_user=arangodb.user,
        arangodb_password=arangodb.password,
        any_database=True,
        timeout=10.0,
    )


async def run_command(client, arangodb, command: str, params=None, timeout=None) -> dict:
    """Create a one-shot task in the ArangoDB's database, run it now and return its run record."""
    body = {"command": command, "offset": 3600, "params": params}
    if timeout is not None:
        body["timeout"] = timeout
    path = f"/_db/{arangodb.database}/_api/tasks"
    resp = await client.post(path, json=body, headers=ROOT)
    assert resp.status == 200, await resp.text()
    task = await resp.json()
    resp = await client.post(f"{path}/{task['id']}/run", headers=ROOT)
    assert resp.status == 202, await resp.text()
    page = await wait_runs(client, f"taskIds={task['id']}", 1, within=30)
    return page["results"][0]


def result(run: dict):
    assert run["status"] == "succeeded", run["error"]
    return run["result"]


async def test_collections_documents_and_queries(client, arangodb):
    run = await run_command(
        client,
        arangodb,
        """
        const { db, aql } = require('@arangodb');
        db._createDocumentCollection('items');
        const metas = db.items.save([{_key: 'a', n: 1}, {_key: 'b', n: 2}, {n: 3}]);
        const out = {
          saved: metas.length,
          name: db._name(),
          sameObject: require('internal').db._name() === db._name(),
          byProperty: db.items.name(),
          missing: db.nothere === undefined && db._collection('nothere') === null,
          doc: db.items.document('a').n,
          exists: [db.items.exists('a')._key, db.items.exists('zz')],
          count: db.items.count(),
          names: db._collections().map(c => c.name()).filter(n => n === 'items'),
        };
        db.items.update('a', {m: 1});
        db.items.replace('b', {n: 20});
        db.items.remove({_key: 'a'});
        out.afterWrites = db._query('FOR d IN items SORT d.n RETURN d.n').toArray();
        out.aql = db._query(aql`FOR d IN ${db.items} FILTER d.n > ${5} RETURN d.n`).toArray();
        out.queryTag = require('@arangodb').query`FOR d IN items RETURN 1`.toArray().length;
        out.firstExample = db.items.firstExample({n: 20}).n;
        out.byExample = db.items.byExample('n', 3).toArray().length;
        out.all = db.items.all().toArray().length;
        out.updated = db.items.updateByExample({n: 3}, {tag: 'x'});
        out.removed = db.items.removeByExample({tag: 'x'});
        db.items.truncate();
        out.truncated = db.items.count();
        db._drop('items');
        out.dropped = db._collection('items');
        return out;
        """,
    )
    assert result(run) == {
        "saved": 3,
        "name": arangodb.database,
        "sameObject": True,
        "byProperty": "items",
        "missing": True,
        "doc": 1,
        "exists": ["a", False],
        "count": 3,
        "names": ["items"],
        "afterWrites": [3, 20],
        "aql": [20],
        "queryTag": 2,
        "firstExample": 20,
        "byExample": 1,
        "all": 2,
        "updated": 1,
        "removed": 1,
        "truncated": 0,
        "dropped": None,
    }
    methods = [(r["method"], r["url"].split("/_api/")[1].split("?")[0]) for r in run["requests"]]
    assert ("POST", "collection") in methods and ("POST", "cursor") in methods
    assert all(r["status"] and r["error"] is None for r in run["requests"])


async def test_cursor_pages_through_batches_and_cleans_up(client, arangodb):
    run = await run_command(
        client,
        arangodb,
        """
        const db = require('@arangodb').db;
        const all = db._query('FOR i IN 1..10 RETURN i', {}, {batchSize: 3, count: true});
        const count = all.count();
        const seen = [];
        while (all.hasNext()) seen.push(all.next());
        const open = db._query('FOR i IN 1..10 RETURN i', {}, {batchSize: 2});
        const first = open.next();
        return {count, seen, first, extra: typeof open.getExtra().stats};
        """,
    )
    assert result(run) == {"count": 10, "seen": list(range(1, 11)), "first": 1, "extra": "object"}
    follow_ups = [
        r for r in run["requests"] if r["method"] == "POST" and "/_api/cursor/" in r["url"]
    ]
    assert len(follow_ups) == 3  # batches 2-4 of the first query
    deletes = [r for r in run["requests"] if r["method"] == "DELETE"]
    assert deletes == []  # the run's leftover cursor is deleted by the server after the run
    if arangodb.double is not None:
        assert arangodb.double.cursors == {}
        assert any(m == "DELETE" and "/_api/cursor/" in p for m, p in arangodb.double.log)


async def test_arango_errors_reach_task_code(client, arangodb):
    run = await run_command(
        client,
        arangodb,
        """
        const { db, ArangoError } = require('@arangodb');
        const out = [];
        for (const attempt of [
          () => db._query('FOR d IN nowhere RETURN d'),
          () => db._collection('_graphs') && db._query('FOR x IN RETURN'),
          () => { db._create('dups'); db.dups.save({_key: 'k'}); db.dups.save({_key: 'k'}); },
          () => db.dups.document('missing'),
        ]) {
          try { attempt(); out.push('no error'); }
          catch (e) {
            out.push([e instanceof ArangoError, e.name, e.errorNum, e.code,
                      e.message === e.errorMessage]);
          }
        }
        db._drop('dups');
        return out;
        """,
    )
    got = result(run)
    assert got[0] == [True, "ArangoError", 1203, 404, True]
    assert got[2] == [True, "ArangoError", 1210, 409, True]
    assert got[3] == [True, "ArangoError", 1202, 404, True]


async def test_credentials_never_reach_task_code(client, arangodb):
    run = await run_command(
        client,
        arangodb,
        """
        const db = require('@arangodb').db;
        const seen = [JSON.stringify(db), String(db), Object.keys(db).join(),
                      JSON.stringify(require('@arangodb'))];
        try { db._query('FOR x IN nowhere RETURN x'); } catch (e) { seen.push(e.stack, e.message); }
        return seen.join('\\n');
        """,
    )
    text = result(run)
    assert arangodb.password not in text and arangodb.password not in json.dumps(run)
    assert f'{{"name":"{arangodb.database}"}}' in text


async def test_a_slow_database_call_counts_against_the_timeout(client, arangodb):
    run = await run_command(
        client,
        arangodb,
        "require('@arangodb').db._query('RETURN SLEEP(6)'); return 'finished'",
        timeout=1.5,
    )
    assert run["status"] == "failed"
    assert run["error"]["type"] == "timeout", run["error"]


async def test_without_a_configured_arangodb_db_throws_clearly(make_client):
    client = await make_client()
    resp = await client.post(
        "/_api/tasks",
        json={"command": "return require('@arangodb').db._name()", "offset": 3600},
        headers=ROOT,
    )
    task = await resp.json()
    await client.post(f"/_api/tasks/{task['id']}/run", headers=ROOT)
    run = (await wait_runs(client, f"taskIds={task['id']}", 1))["results"][0]
    assert run["status"] == "failed"
    assert "no ArangoDB is configured" in run["error"]["message"]
    assert "ARANGOTASKS_ARANGODB_URL" in run["error"]["message"]


async def test_the_password_can_come_from_a_secret_of_system(make_client, arangodb):
    client = await make_client(
        arangodb_url=arangodb.url,
        arangodb_user=arangodb.user,
        arangodb_password_secret="arangodb-password",
        any_database=True,
    )
    before = await run_command(
        client, arangodb, "return require('@arangodb').db._collections().length"
    )
    assert before["status"] == "failed"
    assert "'arangodb-password' is not set" in before["error"]["message"]
    resp = await client.put(
        "/_api/secrets/arangodb-password", json={"value": arangodb.password}, headers=ROOT
    )
    assert resp.status == 200, await resp.text()
    after = await run_command(client, arangodb, "return require('@arangodb').db._name()")
    assert result(after) == arangodb.database
    assert arangodb.password not in json.dumps(after)


async def test_tasks_cannot_read_the_password_secret(make_client, arangodb):
    client = await make_client(
        arangodb_url=arangodb.url,
        arangodb_user=arangodb.user,
        arangodb_password_secret="arangodb-password",
    )
    resp = await client.put(
        "/_api/secrets/arangodb-password", json={"value": arangodb.password}, headers=ROOT
    )
    assert resp.status == 200, await resp.text()
    resp = await client.post(
        "/_api/tasks",
        json={
            "command": "return require('@arangotasks/secrets').get('arangodb-password')",
            "offset": 3600,
        },
        headers=ROOT,
    )
    task = await resp.json()
    await client.post(f"/_api/tasks/{task['id']}/run", headers=ROOT)
    run = (await wait_runs(client, f"taskIds={task['id']}", 1))["results"][0]
    assert run["status"] == "failed"
    assert "task code cannot read it" in run["error"]["message"]
    assert arangodb.password not in json.dumps(run)


async def test_the_password_is_masked_like_a_secret(client, arangodb):
    # A command cannot learn the password; should it appear anyway (here: echoed in a message),
    # the run record masks it like a secret.
    run = await run_command(
        client,
        arangodb,
        "require('@arangodb').db._collections(); print(params.echo); return params.echo",
        params={"echo": arangodb.password},
    )
    assert arangodb.password not in json.dumps(run)
    assert run["output"] == ["***"]
