"""Host calls: a command calls the server synchronously through its worker's pipe, and every limit
of the run still holds (the mechanism; outbound HTTP itself is tested in test_http_*.py).

The handler here stands in for the server's HTTP handler: what is under test is the way there
and back (fast path, re-run in host mode, CPU bound, fatal replies, output kept on a kill).
"""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from arangotasks.sandbox import Limits, QuickJSSandbox
from arangotasks.sandbox.host import HostCallError, HostCalls, HostRun

pytestmark = pytest.mark.asyncio(loop_scope="module")

CALLS: list[tuple[str, Any]] = []


async def echo(run: HostRun, args: Any) -> Any:
    """Answers like an HTTP response whose body is the request's arguments."""
    CALLS.append((run.database, args))
    if args["url"].endswith("/limit"):
        raise HostCallError("too many", name="HttpLimitError", fatal="http_limit")
    if args["url"].endswith("/fail"):
        raise HostCallError("connection refused by example.test")
    if args["url"].endswith("/slow"):
        await asyncio.sleep(min(0.5, run.check_time()))
    run.requests.append({"method": args["method"], "url": args["url"]})
    body = json.dumps({"method": args["method"], "url": args["url"]})
    return {"status": 200, "message": "OK", "headers": {"x-echo": "1"}, "body": body}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sandbox() -> AsyncIterator[QuickJSSandbox]:
    calls = HostCalls()
    calls.register("http.request", echo)
    sandbox = QuickJSSandbox(
        workers=2,
        limits=Limits(timeout=2.0, memory_bytes=32 << 20),
        compile_workers=0,
        host=calls,
    )
    await sandbox.start()
    yield sandbox
    await sandbox.close()


GET = "var request = require('@arangodb/request'); var URL = 'http://example.test/';"


async def test_a_command_calls_the_host_synchronously(sandbox):
    command = GET + "print('before'); var res = request.get(URL + 'a'); return res.json"
    outcome = await sandbox.run(command, None, database="db1")
    assert outcome.ok, outcome.error
    assert json.loads(outcome.result_json) == {"method": "GET", "url": "http://example.test/a"}
    assert outcome.output == ["before"]  # the fast path's attempt printed it too: not twice
    assert outcome.requests == [{"method": "GET", "url": "http://example.test/a"}]
    assert CALLS[-1][0] == "db1"
    # The sandbox remembers the command: its next run starts in host mode.
    assert command in sandbox._host_commands
    again = await sandbox.run(command, None, database="db1")
    assert again.ok and again.output == ["before"]


async def test_a_caught_host_call_on_the_fast_path_still_runs_again(sandbox):
    command = (
        GET
        + """
        var got;
        try { got = request.get(URL + 'caught').status; } catch (e) { got = 'caught'; }
        return got;"""
    )
    outcome = await sandbox.run(command, None)
    assert outcome.result_json == "200"


async def test_a_host_error_is_an_exception_the_command_can_catch(sandbox):
    command = (
        GET
        + """
        try { request.get(URL + 'fail'); } catch (e) { return e.message; }"""
    )
    outcome = await sandbox.run(command, None)
    assert outcome.result_json == '"connection refused by example.test"'


async def test_a_fatal_reply_fails_the_run_even_when_caught(sandbox):
    command = (
        GET
        + """
        try { request.get(URL + 'limit'); } catch (e) {}
        print('after');
        return 'survived';"""
    )
    outcome = await sandbox.run(command, None)
    assert not outcome.ok
    assert outcome.error == {
        "type": "http_limit",
        "name": "HttpLimitError",
        "message": "too many",
        "stack": "",
    }
    assert outcome.output == ["after"]


async def test_a_busy_loop_after_a_host_call_stops_at_its_timeout(sandbox):
    command = GET + "print('before'); request.get(URL + 'x'); print('after'); for (;;) {}"
    outcome = await sandbox.run(command, None, Limits(timeout=0.5, memory_bytes=32 << 20))
    assert not outcome.ok
    assert outcome.error is not None
    assert outcome.error["type"] == "timeout"
    # The worker's CPU watch ends it (SIGXCPU) after 0.5 s of CPU; on a machine so loaded that the
    # worker gets less than that in 4 s, the parent's wall-clock kill comes first.
    assert outcome.error["name"] in ("InternalError", "WorkerTimeout"), outcome.error
    # Lines printed before a host call go to the server with it; the kill loses the rest.
    assert outcome.output == ["before"]
    # The pool replaced the worker: the next run works.
    assert (await sandbox.run("return 1", None)).result_json == "1"


async def test_the_memory_limit_holds_in_host_mode(sandbox):
    command = GET + "request.get(URL + 'x'); var a = []; for (;;) a.push('x'.repeat(1000));"
    outcome = await sandbox.run(command, None)
    assert outcome.error is not None and outcome.error["type"] == "memory"


async def test_the_stack_limit_holds_in_host_mode(sandbox):
    command = GET + "request.get(URL + 'x'); function f() { return f() + 1; } f();"
    outcome = await sandbox.run(command, None)
    assert outcome.error is not None
    assert outcome.error["name"] == "RangeError"


async def test_waiting_on_the_host_counts_against_the_wall_clock_not_the_cpu(sandbox):
    # Four waits of 0.5 s under a 1 s limit: the third finds no time left.
    command = GET + "for (var i = 0; i < 4; i++) request.get(URL + 'slow'); return i"
    outcome = await sandbox.run(command, None, Limits(timeout=1.0, memory_bytes=32 << 20))
    assert outcome.error is not None
    assert outcome.error["type"] == "timeout"
    assert "time limit of 1 s passed while waiting" in outcome.error["message"]


async def test_fetch_returns_a_promise_and_await_works(sandbox):
    command = """
        return (async () => {
          const res = await fetch('http://example.test/f', {method: 'post', body: 'x'});
          return [res.status, res.ok, res.headers.get('X-Echo'), (await res.json()).method];
        })();"""
    outcome = await sandbox.run(command, None)
    assert outcome.ok, outcome.error
    assert json.loads(outcome.result_json) == [200, True, "1", "POST"]


async def test_a_command_without_host_calls_stays_on_the_fast_path(sandbox):
    command = "print('plain'); return 42"
    outcome = await sandbox.run(command, None)
    assert outcome.result_json == "42"
    assert command not in sandbox._host_commands


async def test_without_a_handler_the_call_throws():
    sandbox = QuickJSSandbox(workers=1, compile_workers=0)
    await sandbox.start()
    try:
        outcome = await sandbox.run(GET + "request.get('http://example.test/')", None)
    finally:
        await sandbox.close()
    assert outcome.error is not None
    assert outcome.error["message"] == "unknown host call 'http.request'"
