"""Hostile JavaScript through the whole service: each attempt is contained, recorded as a
failed run with a clear reason, and the API keeps answering (issue 7)."""

import asyncio

import pytest

from tests.api.helpers import create, wait_runs
from tests.conftest import ROOT

# name -> (command, expected error type, a fragment of the message; None = any)
HOSTILE = {
    "infinite-loop": ("while (true) {}", "timeout", "interrupted"),
    "loop-in-finally": ("try { throw 1 } finally { while (true) {} }", "timeout", None),
    "catch-the-interrupt": (
        "while (true) { try { while (true) {} } catch (e) {} }",
        "timeout",
        None,
    ),
    "memory-bomb": (
        "var a = []; while (true) a.push({x: new Array(1000).fill(7)});",
        "memory",
        None,
    ),
    "string-doubling": ("var s = 'x'; while (true) s = s + s;", "memory", None),
    "deep-recursion": ("function f(n) { return f(n + 1) + 1; } return f(0);", "exception", "stack"),
    "catastrophic-regex": ("return /(a+)+$/.test('a'.repeat(40) + '!');", "timeout", None),
    "std-module": (
        "return import('std').then(m => m.loadFile('/etc/passwd'));",
        "exception",
        "std",
    ),
    "require-fs": ("return require('fs').readFileSync('/etc/passwd');", "exception", "fs"),
    "database": ("return require('@arangodb').db._collections();", "exception", "database"),
    "never-settles": ("return new Promise(function () {});", "exception", "never settled"),
    "rejects": ("return Promise.reject(new RangeError('no'));", "exception", "no"),
    "atomics-wait": (
        "var a = new Int32Array(new SharedArrayBuffer(4)); Atomics.wait(a, 0, 0); return 1;",
        "exception",
        None,
    ),
    "cyclic-result": ("var o = {}; o.o = o; return o;", "result", None),
    "bigint-result": ("return 10n;", "result", None),
}


@pytest.mark.parametrize("name", HOSTILE)
async def test_hostile_command_is_contained(make_client, name):
    command, error_type, fragment = HOSTILE[name]
    client = await make_client(workers=2, timeout=0.5, memory_mb=16)
    task = await create(client, id=name, command=command)
    page = await wait_runs(client, f"taskIds={task['id']}", 1, within=15)
    run = page["results"][0]
    assert run["status"] == "failed", run
    assert run["error"]["type"] == error_type, run["error"]
    if fragment:
        assert fragment in run["error"]["message"] + run["error"]["name"]
    # Still serving, and a normal task still runs.
    ok = await create(client, command="return 6 * 7;")
    assert (await wait_runs(client, f"taskIds={ok['id']}", 1))["results"][0]["result"] == 42


async def test_prototype_pollution_does_not_reach_the_next_run(client):
    pollute = "Object.prototype.polluted = 1; Array.prototype.map = null; JSON.stringify = null;"
    await create(client, id="pollute", command=pollute + " return 1;")
    await wait_runs(client, "taskIds=pollute", 1)
    check = "return [({}).polluted === undefined, typeof [].map, typeof JSON.stringify];"
    await create(client, id="check", command=check)
    page = await wait_runs(client, "taskIds=check", 1)
    assert page["results"][0]["result"] == [True, "function", "function"]


async def test_thousands_of_console_lines_are_capped(make_client):
    client = await make_client(output_kb=4)
    await create(
        client,
        id="chatty",
        command="for (var i = 0; i < 100000; i++) console.log('line ' + i); return 'done';",
    )
    run = (await wait_runs(client, "taskIds=chatty", 1))["results"][0]
    assert run["status"] == "succeeded" and run["result"] == "done"
    assert sum(len(line) + 1 for line in run["output"]) < 4 * 1024 + 200
    assert "truncated" in run["output"][-1]


async def test_api_keeps_answering_during_a_storm(make_client):
    client = await make_client(workers=2, timeout=0.5, memory_mb=16)
    for i, (command, _, _) in enumerate(HOSTILE.values()):
        await create(client, id=f"storm{i}", command=command, period=0.05)
    for _ in range(50):
        resp = await client.get("/_api/tasks", headers=ROOT)
        assert resp.status == 200
        assert len(await resp.json()) == len(HOSTILE)
        await asyncio.sleep(0.02)
    await wait_runs(client, "statuses=failed", 2 * len(HOSTILE), within=30)
