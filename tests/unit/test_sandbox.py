"""QuickJSSandbox: ArangoDB's execution semantics (§1.6) and our extensions (output, results,
errors, promises)."""

import json
import logging
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from arangotasks.models import RunOutcome
from arangotasks.sandbox import Limits, QuickJSSandbox

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sandbox() -> AsyncIterator[QuickJSSandbox]:
    sandbox = QuickJSSandbox(workers=2, limits=Limits(timeout=2.0, memory_bytes=32 << 20))
    await sandbox.start()
    yield sandbox
    await sandbox.close()


def result(outcome: RunOutcome) -> object:
    assert outcome.ok, outcome.error
    assert outcome.result_json is not None
    return json.loads(outcome.result_json)


def error(outcome: RunOutcome) -> dict[str, str]:
    assert not outcome.ok
    assert outcome.error is not None
    assert outcome.result_json is None
    return outcome.error


DESCRIBE = """
const type = params === null ? 'null' : Array.isArray(params) ? 'array' : typeof params;
return {type: type, value: params};
"""


@pytest.mark.parametrize(
    ("params_json", "expected"),
    [
        ('"abc"', {"type": "string", "value": "abc"}),
        ('"{\\"a\\": 1}"', {"type": "string", "value": '{"a": 1}'}),  # no second JSON.parse
        ("42", {"type": "number", "value": 42}),
        ("1.5", {"type": "number", "value": 1.5}),
        ("true", {"type": "boolean", "value": True}),
        ("null", {"type": "null", "value": None}),
        ('[1, "x"]', {"type": "array", "value": [1, "x"]}),
        ('{"a": {"b": [1]}}', {"type": "object", "value": {"a": {"b": [1]}}}),
        (None, {"type": "undefined"}),
    ],
    ids=["string", "json-in-string", "int", "float", "bool", "null", "array", "object", "absent"],
)
async def test_params_keep_their_json_type(sandbox, params_json, expected):
    assert result(await sandbox.run(DESCRIBE, params_json)) == expected


async def test_proto_key_in_params_is_an_own_property(sandbox):
    outcome = await sandbox.run(
        "return [Object.getPrototypeOf(params) === Object.prototype, params.__proto__.x]",
        '{"__proto__": {"x": 1}}',
    )
    assert result(outcome) == [True, 1]


@pytest.mark.parametrize(
    ("command", "result_json"),
    [
        ("return params.a + params.b", "3"),
        ("return {n: 1, s: 'x', l: [true, null]}", '{"n":1,"s":"x","l":[true,null]}'),
        ("return 'text'", '"text"'),
        ("return null", "null"),
        ("return undefined", None),
        ("var x = 1", None),  # no return
        ("return function () {}", None),
        ("return {toJSON() { return 'custom' }}", '"custom"'),
    ],
)
async def test_the_returned_value_is_serialised_as_json(sandbox, command, result_json):
    outcome = await sandbox.run(command, '{"a": 1, "b": 2}')
    assert outcome == RunOutcome(ok=True, result_json=result_json)


@pytest.mark.parametrize(
    ("command", "line"),
    [
        (
            "print('a', 1, {b: 2}, [3], null, undefined, true)",
            'a 1 {"b":2} [3] null undefined true',
        ),
        ("console.log('log', 1)", "log 1"),
        ("console.info('info')", "info"),
        ("console.debug('debug')", "debug"),
        ("console.warn('careful')", "WARN: careful"),
        ("console.error('broken')", "ERROR: broken"),
        ("require('@arangodb').print('arangodb', {x: 1})", 'arangodb {"x":1}'),
        ("require('internal').print('internal')", "internal"),
        ("require('console').log('console module')", "console module"),
        ("require('console').error('e')", "ERROR: e"),
        ("print(new TypeError('bad'))", "TypeError: bad"),
        ("var a = [1]; a.push(a); print(a, {n: 1n})", '[1,"[Circular]"] {"n":"1"}'),
        ("print(NaN, 10n, Symbol('s'), function named() {})", "NaN 10 Symbol(s) [Function: named]"),
        ("print('\\ud800 lone surrogate')", "\ufffd lone surrogate"),
        ("print('ünïcödé ✓ 😀')", "ünïcödé ✓ 😀"),
    ],
)
async def test_print_and_console_write_output_lines(sandbox, command, line):
    outcome = await sandbox.run(command, None)
    assert outcome == RunOutcome(ok=True, output=[line])


async def test_output_lines_keep_their_order_and_are_not_logged_line_by_line(sandbox, caplog):
    # One task printing in a loop wrote 78 MB a minute to the server log: the registry logs one
    # line per failed run instead (tests/api/test_run_sizes.py).
    with caplog.at_level(logging.DEBUG):
        outcome = await sandbox.run(
            "print('one'); console.log('two'); return 3", None, label="t-42"
        )
    assert outcome.output == ["one", "two"]
    assert not [r for r in caplog.records if "one" in r.getMessage()]


async def test_require_of_another_module_throws(sandbox):
    err = error(await sandbox.run("return require('fs').readFileSync('/etc/passwd')", None))
    assert err["type"] == "exception"
    assert err["name"] == "Error"
    assert err["message"] == (
        "cannot find module 'fs' (arangotasks sandbox: only @arangodb, internal, console and "
        "@arangodb/request, @arangotasks/secrets are available)"
    )


@pytest.mark.parametrize("module", ["@arangodb", "internal"])
async def test_database_access_says_it_is_not_available(sandbox, module):
    err = error(await sandbox.run(f"return require('{module}').db._collection('x')", None))
    assert err["type"] == "exception"
    assert "database access" in err["message"]
    assert "not available in arangotasks" in err["message"]


@pytest.mark.parametrize("timer", ["setTimeout", "setInterval", "setImmediate"])
async def test_timers_throw_a_clear_error(sandbox, timer):
    err = error(await sandbox.run(f"{timer}(function () {{}}, 10)", None))
    assert err["message"].startswith(f"{timer} is not available in arangotasks")


async def test_clear_timers_are_no_ops(sandbox):
    assert (await sandbox.run("clearTimeout(1); clearInterval(2); return 1", None)).ok


async def test_compile_error_reports_syntax_errors(sandbox):
    message = await sandbox.compile_error("for (i")
    assert message == (
        "SyntaxError: expected 'of' or 'in' in for control expression (line 1, column 7)"
    )
    assert (await sandbox.compile_error("x ===")).startswith("SyntaxError: unexpected token")


@pytest.mark.parametrize(
    "command",
    ["print(Hello)", "return 1", "", "// only a comment", "undefinedFunction(); return params"],
)
async def test_runtime_errors_are_not_compile_errors(sandbox, command):
    assert await sandbox.compile_error(command) is None


async def test_a_body_closing_its_function_early_does_not_compile(sandbox):
    command = "} print('escaped'); function f() {"
    assert await sandbox.compile_error(command) == (
        "SyntaxError: the command closes its function body early"
    )
    command = "}); print('escaped'); (function () {"
    assert (await sandbox.compile_error(command)).startswith("SyntaxError: ")
    err = error(await sandbox.run(command, None))
    assert (err["type"], err["name"]) == ("exception", "SyntaxError")


async def test_running_a_syntax_error_fails_the_run(sandbox):
    err = error(await sandbox.run("for (i", None))
    assert (err["type"], err["name"]) == ("exception", "SyntaxError")


async def test_a_runtime_error_fails_the_run(sandbox):
    err = error(await sandbox.run("print(Hello)", None))
    assert err["type"] == "exception"
    assert err["name"] == "ReferenceError"
    assert err["message"] == "Hello is not defined"


async def test_an_exception_has_name_message_and_the_commands_stack(sandbox):
    command = """
    function inner() { throw new TypeError('bad thing'); }
    function outer() { inner(); }
    outer();
    """
    err = error(await sandbox.run(command, None))
    assert err["type"] == "exception"
    assert err["name"] == "TypeError"
    assert err["message"] == "bad thing"
    frames = err["stack"].splitlines()
    assert [frame.split()[1] for frame in frames] == ["inner", "outer", "anonymous"]
    assert "__arangotasks" not in err["stack"]


@pytest.mark.parametrize(
    ("command", "message"),
    [("throw 'oops'", "oops"), ("throw 42", "42"), ("throw {code: 7}", '{"code":7}')],
)
async def test_thrown_non_errors(sandbox, command, message):
    err = error(await sandbox.run(command, None))
    assert err == {"type": "exception", "name": "Error", "message": message, "stack": ""}


async def test_output_before_an_error_is_kept(sandbox):
    outcome = await sandbox.run("print('before'); throw new Error('after')", None)
    assert not outcome.ok
    assert outcome.output == ["before"]


async def test_a_resolved_promise_gives_its_value(sandbox):
    outcome = await sandbox.run("return Promise.resolve(params).then(v => v * 2)", "21")
    assert result(outcome) == 42


async def test_an_async_function_is_awaited(sandbox):
    command = """
    return (async () => {
      const a = await Promise.resolve(1);
      queueMicrotask(() => print('microtask'));
      const b = await new Promise(resolve => resolve(2));
      print('sum', a + b);
      return {sum: a + b};
    })();
    """
    outcome = await sandbox.run(command, None)
    assert outcome == RunOutcome(ok=True, result_json='{"sum":3}', output=["microtask", "sum 3"])


async def test_a_rejected_promise_fails_the_run(sandbox):
    command = "return (async () => { await null; throw new RangeError('nope'); })()"
    err = error(await sandbox.run(command, None))
    assert (err["type"], err["name"], err["message"]) == ("exception", "RangeError", "nope")


async def test_a_promise_rejected_with_a_string(sandbox):
    err = error(await sandbox.run("return Promise.reject('plain')", None))
    assert (err["name"], err["message"]) == ("Error", "plain")


async def test_a_promise_that_never_settles_fails_the_run(sandbox):
    err = error(await sandbox.run("print('waiting'); return new Promise(() => {})", None))
    assert err["type"] == "exception"
    assert "promise never settled" in err["message"]


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("var a = {}; a.self = a; return a", "circular reference"),
        ("return {n: 10n}", "BigInt are forbidden in JSON.stringify"),
        ("return {toJSON() { throw new Error('no JSON') }}", "no JSON"),
    ],
)
async def test_a_result_that_is_not_json_fails_with_type_result(sandbox, command, message):
    outcome = await sandbox.run("print('kept'); " + command, None)
    err = error(outcome)
    assert err["type"] == "result"
    assert err["message"] == message
    assert outcome.output == ["kept"]


async def test_this_is_the_sandbox_global(sandbox):
    assert result(await sandbox.run("return this === globalThis", None)) is True


async def test_per_run_limits_override_the_defaults(sandbox):
    outcome = await sandbox.run(
        "print('x'.repeat(100))", None, Limits(timeout=1.0, output_bytes=10)
    )
    assert outcome.output == ["x" * 9, "... output truncated (limit 10 bytes)"]
    assert outcome.output_truncated
