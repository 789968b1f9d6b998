"""Secrets through a real server: task code reads its own database's secrets, never another's,
and no form of a value reaches a run record, an API answer or the server log."""

import base64
import json

import pytest

from tests.e2e.http import Http

pytestmark = pytest.mark.e2e

VALUE_A = "A-s3cret/of+testdb=&é"
VALUE_B = "B-s3cret/of+other=&é"
READER = """
var secrets = require('@arangotasks/secrets');
var v = secrets.get('token');
print('raw', v);
print('uri', encodeURIComponent(v));
console.log(JSON.stringify({nested: v}));
return {v: v, json: JSON.stringify(v), has: secrets.has('token'), missing: secrets.has('nope'),
        reversed: v.split('').reverse().join('')};
"""
THROWER = """
var v = require('@arangotasks/secrets').get('token');
function fail() { throw new Error('cannot log in with ' + v); }
fail();
"""


def run_once(http: Http, db: str, task_id: str, command: str) -> dict:
    prefix = f"/_db/{db}"
    body = {"command": command, "period": 3600, "offset": 3600}
    http.ok("PUT", f"{prefix}/_api/tasks/{task_id}", body)
    uid = http.ok("POST", f"{prefix}/_api/tasks/{task_id}/run")["uid"]
    page = http.wait_runs(f"taskIds={task_id}", 1)
    run = page["results"][0]
    assert run["uid"] == uid
    return run


def test_tasks_read_their_own_database_only(server):
    http = Http(server.url)
    http.ok("PUT", "/_db/testdb/_api/secrets/token", {"value": VALUE_A})
    http.ok("PUT", "/_db/other/_api/secrets/token", {"value": VALUE_B})
    http.ok("PUT", "/_db/other/_api/secrets/only-other", {"value": VALUE_B + "-2"})

    run = run_once(http, "testdb", "reader-a", READER)
    assert run["status"] == "succeeded", run
    assert run["output"] == ["raw ***", "uri ***", '{"nested":"***"}']
    result = run["result"]
    assert result["v"] == "***" and result["json"] == '"***"'
    assert (result["has"], result["missing"]) == (True, False)
    # Read the right value: a form redaction does not cover (documented) proves which.
    assert result["reversed"] == VALUE_A[::-1]

    run = run_once(http, "other", "reader-b", READER)
    assert run["result"]["reversed"] == VALUE_B[::-1]

    # A task of testdb cannot reach other's secret by any name.
    probe = run_once(
        http,
        "testdb",
        "probe",
        "var s = require('@arangotasks/secrets');"
        "return [s.has('only-other'), s.has('../other/only-other'),"
        " (function () { try { s.get('only-other'); } catch (e) { return e.message; } })()];",
    )
    assert probe["result"] == [
        False,
        False,
        "secret 'only-other' not found in database 'testdb'",
    ]

    run = run_once(http, "testdb", "thrower", THROWER)
    assert run["status"] == "failed"
    assert run["error"]["message"] == "cannot log in with ***"
    assert VALUE_A not in json.dumps(run)

    everything = json.dumps(http.ok("GET", "/_api/runs?limit=1000"), ensure_ascii=False)
    log = server.output()
    for value in (VALUE_A, VALUE_B):
        forms = (value, json.dumps(value)[1:-1], base64.b64encode(value.encode()).decode())
        for form in forms:
            assert form not in everything
            assert form not in log
    assert "failed (exception): Error: cannot log in with ***" in log
    http.close()
