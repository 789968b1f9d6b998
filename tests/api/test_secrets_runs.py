"""Task code reads secrets through the whole in-process service: its own database's only, and
every form of a value it read is masked in the run record and the server log."""

import base64
import json
import logging

from tests.api.helpers import wait_runs
from tests.conftest import ALICE, ROOT

VALUE = "pa$$/wörd+?&=42"
COMMAND = r"""
var s = require('@arangotasks/secrets');
var v = s.get('api');
print('raw', v);
console.log('json', JSON.stringify({k: v}), 'uri', encodeURIComponent(v));
if (params && params.fail) { throw new Error('login failed for ' + v); }
return {v: v, has: [s.has('api'), s.has('nope')], reversed: v.split('').reverse().join(''),
        b64: params && params.b64};
"""


async def put(client, db: str, name: str, value: str, headers=ROOT):
    resp = await client.put(
        f"/_db/{db}/_api/secrets/{name}", json={"value": value}, headers=headers
    )
    assert resp.status == 200, await resp.text()


async def run_task(client, db: str, task_id: str, command: str, params=None, headers=ROOT):
    body = {"command": command, "period": 3600, "offset": 3600, "params": params}
    resp = await client.put(f"/_db/{db}/_api/tasks/{task_id}", json=body, headers=headers)
    assert resp.status == 200, await resp.text()
    resp = await client.post(f"/_db/{db}/_api/tasks/{task_id}/run", headers=headers)
    assert resp.status == 202, await resp.text()
    return (await wait_runs(client, f"taskIds={task_id}", 1))["results"][0]


async def test_a_run_reads_its_secret_and_shows_it_masked(client, caplog):
    await put(client, "testdb", "api", VALUE)
    with caplog.at_level(logging.INFO):
        run = await run_task(client, "testdb", "reader", COMMAND)
        failed = await run_task(client, "testdb", "failer", COMMAND, {"fail": True})
    assert run["status"] == "succeeded", run
    assert run["output"] == ["raw ***", 'json {"k":"***"} uri ***']
    assert run["result"] == {"v": "***", "has": [True, False], "reversed": VALUE[::-1], "b64": None}
    assert failed["status"] == "failed"
    assert failed["error"]["message"] == "login failed for ***"
    assert VALUE not in failed["error"]["stack"]
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "task failer run" in logged and "login failed for ***; output: raw ***" in logged
    everything = json.dumps([run, failed], ensure_ascii=False) + logged
    for form in (VALUE, json.dumps(VALUE)[1:-1], base64.b64encode(VALUE.encode()).decode()):
        assert form not in everything


async def test_a_task_cannot_read_another_databases_secret(client):
    await put(client, "other", "api", VALUE)
    await put(client, "other", "only-other", VALUE + "2")
    probe = (
        "var s = require('@arangotasks/secrets'); var out = [s.has('api'), s.has('only-other')];"
        "['api', 'only-other', '../other/api', 'other/api'].forEach(function (n) {"
        "  try { out.push(s.get(n)); } catch (e) { out.push(e.message); } });"
        "return out;"
    )
    run = await run_task(client, "testdb", "probe", probe, headers=ALICE)
    assert run["result"] == [
        False,
        False,
        "secret 'api' not found in database 'testdb'",
        "secret 'only-other' not found in database 'testdb'",
        "secret '../other/api' not found in database 'testdb'",
        "secret 'other/api' not found in database 'testdb'",
    ]
    # The same command in "other" reads other's value (shown masked; reversed proves which).
    run = await run_task(client, "other", "reader-other", COMMAND)
    assert run["result"]["reversed"] == VALUE[::-1]


async def test_the_secrets_module_errors(client):
    await put(client, "_system", "api", VALUE)
    command = (
        "var s = require('@arangotasks/secrets'); var out = [];"
        "[function () { return s.get(42); }, function () { return s.has(); },"
        " function () { return s.get('missing'); }].forEach(function (f) {"
        "  try { out.push(f()); } catch (e) { out.push(e.name + ': ' + e.message); } });"
        "return out;"
    )
    run = await run_task(client, "_system", "errors", command)
    assert run["result"] == [
        "TypeError: a secret's name must be a string",
        "TypeError: a secret's name must be a string",
        "Error: secret 'missing' not found in database '_system'",
    ]


async def test_a_lost_key_fails_the_run_clearly(make_client, make_settings):
    first = await make_client()
    await put(first, "_system", "api", VALUE)
    (make_settings().data_dir / "secrets.key").unlink()
    client = await make_client()
    run = await run_task(
        client, "_system", "lost", "return require('@arangotasks/secrets').get('api');"
    )
    assert run["status"] == "failed"
    assert run["error"]["name"] == "SecretKeyError"
    assert run["error"]["message"] == (
        "secret 'api' of database '_system' cannot be decrypted: no secrets key (the key file "
        "secrets.key in the data directory is missing: restore it from its backup, or set "
        "ARANGOTASKS_SECRETS_KEY)"
    )


async def test_requests_of_a_run_are_masked(make_client):
    from tests.unit.http_remote import remote_app, serve

    async with serve(remote_app()) as port:
        client = await make_client(http_allow=f"127.0.0.1:{port}")
        await put(client, "_system", "api", VALUE)
        url = f"http://127.0.0.1:{port}"
        command = f"""
var v = require('@arangotasks/secrets').get('api');
var r = require('@arangodb/request');
var res = r.get('{url}/echo', {{qs: {{key: v}}, auth: {{username: 'me', password: v}}}});
try {{ r.get('http://127.0.0.1:1/?key=' + encodeURIComponent(v)); }}
catch (e) {{ print(e.message); }}
return {{query: res.json.query, auth: res.json.headers.authorization,
        sent: decodeURIComponent(res.json.query.slice(4)).split('').reverse().join('')}};
"""
        run = await run_task(client, "_system", "caller", command)
    assert run["status"] == "succeeded", run
    assert [r["url"] for r in run["requests"]] == [
        f"{url}/echo?key=***",
        "http://127.0.0.1:1/?key=***",
    ]
    # The remote got the real value; the record shows it masked in every form (in the Basic
    # header, "me:" is not secret: its base64 stays).
    assert run["result"] == {"query": "key=***", "auth": "Basic bWU6***", "sent": VALUE[::-1]}
    assert VALUE not in json.dumps(run, ensure_ascii=False)
