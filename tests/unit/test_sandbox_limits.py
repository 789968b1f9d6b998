"""QuickJSSandbox under hostile commands: limits, escape attempts, dying and stuck workers."""

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from arangotasks.models import RunOutcome
from arangotasks.sandbox import Limits, QuickJSSandbox
from arangotasks.sandbox.pool import WorkerStartError

pytestmark = pytest.mark.asyncio(loop_scope="module")

LIMITS = Limits(timeout=0.5, memory_bytes=16 << 20, stack_bytes=256 << 10, output_bytes=1024)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sandbox() -> AsyncIterator[QuickJSSandbox]:
    sandbox = QuickJSSandbox(workers=2, limits=LIMITS)
    await sandbox.start()
    yield sandbox
    await sandbox.close()


@pytest_asyncio.fixture(loop_scope="module")
async def solo() -> AsyncIterator[QuickJSSandbox]:
    """A one-worker sandbox, for tests that kill its worker."""
    sandbox = QuickJSSandbox(workers=1, limits=LIMITS)
    await sandbox.start()
    yield sandbox
    await sandbox.close()


async def timed_run(sandbox: QuickJSSandbox, command: str) -> tuple[RunOutcome, float]:
    started = time.monotonic()
    outcome = await sandbox.run(command, None)
    return outcome, time.monotonic() - started


@pytest.mark.parametrize(
    "command",
    [
        "while (true) {}",
        "try { while (true) {} } finally { while (true) {} }",
        "try { while (true) {} } catch (e) {} return 'swallowed'",
        "for (;;) { try { while (true) {} } catch (e) { print('caught') } }",
        "return /(a+)+$/.test('a'.repeat(40) + 'b')",
        "(function spin() { Promise.resolve().then(spin); })(); return 1",
        "return (async () => { for (;;) await null; })()",
    ],
    ids=["loop", "loop-in-finally", "catch", "catch-in-loop", "redos", "microtasks", "async-loop"],
)
async def test_cpu_bombs_end_as_timeouts(sandbox, command):
    outcome, elapsed = await timed_run(sandbox, command)
    assert outcome.error is not None
    assert outcome.error["type"] == "timeout"
    assert outcome.error["message"] == "interrupted: CPU time limit of 0.5 s exceeded"
    assert outcome.output == []
    assert elapsed > 0.45  # the CPU limit cannot fire before 0.5 s of CPU time


async def test_output_before_a_timeout_is_kept(sandbox):
    outcome = await sandbox.run("print('started'); while (true) {}", None)
    assert outcome.error is not None
    assert outcome.error["type"] == "timeout"
    assert outcome.output == ["started"]


@pytest.mark.parametrize(
    "command",
    [
        "var a = []; while (true) a.push({x: a.length});",
        "var a = []; while (true) a.push(1);",
        "(function () { var a = []; while (true) a.push('v' + a.length); })()",
        "var o = {}; for (var i = 0; ; i++) o['k' + i] = i;",
        "var s = 'x'; while (true) s += s;",
        "var s = 'xy'; while (true) { s = s + s; s.indexOf('z'); }",
        "return 'x'.repeat(1e8).length",
        "return new ArrayBuffer(1e8).byteLength",
        "return Array.prototype.fill.call({length: 2 ** 32 - 1}, 0)",
    ],
    ids=[
        "push-objects",
        "push",
        "push-local",
        "object",
        "doubling",
        "doubling-flat",
        "repeat",
        "arraybuffer",
        "fill",
    ],
)
async def test_memory_bombs_end_as_memory_errors(sandbox, command):
    outcome = await sandbox.run("print('before the bomb'); " + command, None)
    assert outcome.error is not None
    assert outcome.error["type"] == "memory", outcome.error
    assert outcome.error["name"] == "InternalError"
    assert outcome.output == ["before the bomb"]  # kept even when the context is exhausted


async def test_memory_error_message_names_the_limit(sandbox):
    outcome = await sandbox.run("var a = []; while (true) a.push(1);", None)
    assert outcome.error is not None
    assert outcome.error["message"] == f"out of memory (memory limit {16 << 20} bytes)"


@pytest.mark.parametrize(
    "command",
    [
        "(function f() { f(); })()",
        "var o = {}; for (var i = 0; i < 1e5; i++) o = {o: o}; JSON.stringify(o)",
        "JSON.parse('['.repeat(1e5) + ']'.repeat(1e5))",
    ],
    ids=["recursion", "deep-stringify", "deep-parse"],
)
async def test_deep_recursion_is_a_stack_overflow(sandbox, command):
    outcome = await sandbox.run(command, None)
    assert outcome.error is not None
    assert outcome.error["type"] == "exception"
    assert outcome.error["name"] == "RangeError"
    assert outcome.error["message"] == "stack overflow: maximum call stack size exceeded"


async def test_a_stack_overflow_can_be_caught_by_the_command(sandbox):
    command = "try { (function f() { f(); })(); } catch (e) { return e.name; }"
    assert await sandbox.run(command, None) == RunOutcome(ok=True, result_json='"RangeError"')


async def test_huge_output_is_truncated_with_a_marker(sandbox):
    outcome = await sandbox.run(
        "for (var i = 0; i < 2e4; i++) print('line ' + i + ' ' + 'é'.repeat(10)); return i", None
    )
    assert outcome.ok
    assert outcome.result_json == "20000"
    assert outcome.output_truncated
    assert outcome.output[-1] == "... output truncated (limit 1024 bytes)"
    kept = outcome.output[:-1]
    assert kept[:2] == ["line 0 éééééééééé", "line 1 éééééééééé"]
    assert sum(len(line.encode()) + 1 for line in kept) <= 1024


async def test_one_huge_line_is_cut_to_the_limit(sandbox):
    outcome = await sandbox.run("print('😀'.repeat(1e6))", None)
    assert outcome.output == ["😀" * 255, "... output truncated (limit 1024 bytes)"]


# --- escape attempts ---------------------------------------------------------------------------


async def test_no_host_objects(sandbox):
    # fetch is ours: it goes through the server's allowlist (tests/unit/test_http_*.py).
    command = """return [typeof std, typeof os, typeof process, typeof XMLHttpRequest,
                         typeof WebAssembly, typeof scriptArgs, typeof Deno, typeof Bun,
                         typeof __arangotasks_host]"""
    outcome = await sandbox.run(command, None)
    assert outcome.result_json == '["undefined"' + ',"undefined"' * 8 + "]"


@pytest.mark.parametrize("module", ["std", "os", "/etc/passwd", "qjs:std"])
async def test_dynamic_import_is_refused(sandbox, module):
    command = f"return import('{module}').then(() => 'loaded', e => e.name + ': ' + e.message)"
    outcome = await sandbox.run(command, None)
    assert outcome.result_json == f"\"ReferenceError: could not load module '{module}'\""


@pytest.mark.parametrize("module", ["fs", "child_process", "std", "@arangodb/tasks"])
async def test_require_offers_nothing_else(sandbox, module):
    outcome = await sandbox.run(f"return require('{module}')", None)
    assert outcome.error is not None
    assert outcome.error["message"].startswith(f"cannot find module '{module}'")


async def test_the_global_from_function_constructor_has_nothing_dangerous(sandbox):
    command = """
    const g = Function('return this')();
    const names = Object.getOwnPropertyNames(g);
    const suspicious = /^(std|os|process|Python|py|import|load|read|write|exec)/i;
    return [g === globalThis, names.filter(n => suspicious.test(n))]
    """
    assert (await sandbox.run(command, None)).result_json == "[true,[]]"


async def test_prototype_tampering_does_not_reach_the_next_run(sandbox):
    tamper = """
    Object.prototype.x = 1;
    Object.prototype.toJSON = function () { return 'hijacked'; };
    Array.prototype.push = null;
    Array.prototype.join = null;
    JSON.stringify = null;
    String.prototype.slice = null;
    globalThis.print = null;
    console.log('console still works');
    return {fine: true};
    """
    check = """return [({}).x === undefined, typeof [].push, typeof JSON.stringify,
                       typeof print, Object.prototype.hasOwnProperty('toJSON')]"""
    # Both workers get a tampering run, then both get a checking run (the pool is FIFO).
    for _ in range(2):
        outcome = await sandbox.run(tamper, None)
        assert outcome.ok
        assert outcome.output == ["console still works"]
        assert outcome.result_json == '"hijacked"'  # the command's own toJSON applies to it
    for _ in range(2):
        outcome = await sandbox.run(check, None)
        assert outcome.result_json == '[true,"function","function","function",false]'


async def test_the_run_machinery_cannot_be_replaced(sandbox):
    command = """
    try { __arangotasks = null; } catch (e) {}
    try { __arangotasks.finish = () => '{"ok":true,"result":"\\\\"forged\\\\""}'; } catch (e) {}
    return 'genuine';
    """
    assert (await sandbox.run(command, None)).result_json == '"genuine"'


async def test_the_output_limit_cannot_be_lifted_by_restarting_the_run(sandbox):
    command = """
    try { __arangotasks.start('', undefined, 1e9); } catch (e) { print(e.message); }
    print('x'.repeat(5000));
    """
    outcome = await sandbox.run(command, None)
    assert outcome.output[0] == "__arangotasks.start runs once per context"
    assert outcome.output[-1] == "... output truncated (limit 1024 bytes)"


# --- workers that die or hang ------------------------------------------------------------------


async def test_a_worker_killed_mid_run_is_a_crash_and_is_respawned(solo):
    [pid] = solo.pids
    run = asyncio.create_task(solo.run("while (true) {}", None, Limits(timeout=30)))
    await asyncio.sleep(0.3)  # the worker is busy in the loop by now
    os.kill(pid, signal.SIGKILL)
    outcome = await asyncio.wait_for(run, 5)
    assert outcome.error is not None
    assert outcome.error["type"] == "crash"
    assert outcome.error["name"] == "WorkerCrash"
    assert outcome.error["message"].startswith("worker died (signal 9")
    after = await solo.run("return 'alive'", None)
    assert after.result_json == '"alive"'
    assert solo.pids != [pid]


async def test_a_worker_that_died_while_idle_is_replaced(solo):
    [pid] = solo.pids
    os.kill(pid, signal.SIGKILL)
    async with asyncio.timeout(5):
        while pid in solo.pids:
            await asyncio.sleep(0.01)
    assert (await solo.run("return 1", None)).result_json == "1"


@pytest.mark.parametrize(
    "command",
    ["return Array.prototype.reverse.call({length: 2 ** 32 - 1})"],
)
async def test_a_builtin_ignoring_the_cpu_limit_is_killed_at_the_deadline(solo, command):
    [pid] = solo.pids
    outcome, elapsed = await timed_run(solo, command)
    assert outcome.error is not None
    assert outcome.error["type"] == "timeout"
    assert outcome.error["name"] == "WorkerTimeout"
    assert "wall-clock deadline of 4 s" in outcome.error["message"]
    assert elapsed >= 3.9  # never before the deadline
    assert (await solo.run("return 'next'", None)).result_json == '"next"'
    assert solo.pids != [pid]


async def test_a_cancelled_run_does_not_leave_its_answer_to_the_next_run(solo):
    [pid] = solo.pids
    run = asyncio.create_task(solo.run("var t = Date.now(); while (Date.now() - t < 300) {}", None))
    await asyncio.sleep(0.1)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert (await solo.run("return 'mine'", None)).result_json == '"mine"'
    assert solo.pids != [pid]


async def test_many_runs_at_once_all_complete(sandbox):
    command = "var t = 0; for (var i = 0; i < 1e4; i++) t += i; return params * 2"
    outcomes = await asyncio.gather(*(sandbox.run(command, str(n)) for n in range(40)))
    assert [outcome.result_json for outcome in outcomes] == [str(n * 2) for n in range(40)]


async def test_runs_queue_behind_a_slow_one(sandbox):
    slow = asyncio.create_task(sandbox.run("while (true) {}", None))
    quick = await asyncio.gather(*(sandbox.run("return 1", None) for _ in range(10)))
    assert all(outcome.ok for outcome in quick)
    assert (await slow).error is not None


async def test_close_ends_runs_in_progress_and_stops_every_worker():
    sandbox = QuickJSSandbox(workers=2, limits=LIMITS)
    await sandbox.start()
    pids = sandbox.pids
    assert len(pids) == 2
    run = asyncio.create_task(sandbox.run("while (true) {}", None, Limits(timeout=30)))
    await asyncio.sleep(0.2)
    await sandbox.close()
    outcome = await run
    assert outcome.error is not None
    assert outcome.error["type"] == "crash"
    assert sandbox.pids == []
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # reaped, not a zombie
    with pytest.raises(RuntimeError, match="closed"):
        await sandbox.run("return 1", None)


async def test_a_worker_that_cannot_start_fails_start():
    sandbox = QuickJSSandbox(workers=2, worker_address_space=8 << 20)  # too small for Python
    # Python exits, or (rarely) crashes, when it cannot map its memory.
    with pytest.raises(WorkerStartError, match=r"exit code 1|signal 11"):
        await sandbox.start()
    assert sandbox.pids == []
