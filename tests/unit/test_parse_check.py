"""The compile check parses only: no part of a command ever runs, and its verdict is the one
``new Function("params", command)`` would give, with positions in the command as written."""

import pytest

from arangotasks.sandbox import engine, parse_check
from arangotasks.sandbox.runner import Runner, load_prelude

LIMITS = {"timeout": 1.0, "memory": 32 << 20, "stack": 1 << 20}


@pytest.fixture(scope="module")
def runner() -> Runner:
    return Runner(load_prelude())


def check(runner: Runner, command: str) -> str | None:
    return runner.compile_error({"command": command, **LIMITS})


def ran_during_check(command: str) -> int:
    """Run the check in a context whose global ``ran`` counts what the command did."""
    context = engine.Context(memory_bytes=32 << 20, stack_bytes=1 << 20, time_limit=1.0)
    context.eval(parse_check.SETUP)
    context.eval("globalThis.ran = 0; undefined")
    with pytest.raises(engine.EngineError):
        context.eval(parse_check.script(command))
    ran = context.eval("ran")
    assert isinstance(ran, int)
    return ran


ESCAPES = [
    "}); ran = 1; (function () {",
    "}); for (;;) {} (function () {",
    "} ran = 1; function f() {",
    "} ran = 1; {",
    "}\nran = 1;\n{",
    "} class A { static { ran = 1; } } {",
    "} function __arangotasks_verdict() { ran = 1; } function f() {",
    "} function anonymous(params\n) {\nran = 1;",
    "} let x = (ran = 1); {",
    "} throw (ran = 1); {",
]


@pytest.mark.parametrize("command", ESCAPES)
def test_a_body_closing_its_function_never_runs(command):
    assert ran_during_check(command) == 0


@pytest.mark.parametrize("command", ESCAPES)
def test_a_body_closing_its_function_does_not_compile(runner, command):
    message = check(runner, command)
    assert message is not None
    assert message.startswith(("SyntaxError: ", "TypeError: "))


@pytest.mark.parametrize(
    "command",
    [
        "return 1;",
        "",
        "\n",
        "// a comment at the end",
        "print(Hello)",
        "var params = 1; return params;",
        "function params() {} return params;",
        "return arguments.length + (new.target === undefined);",
        "<!-- an HTML-like comment\nreturn 1",
        "a: for (;;) break a;",
        "if (1) function f() {}",
        "return import('x');",
        "class A { static { this.x = 1; } } return A.x;",
        "async function f() { await 1; } return function* () { yield 1; };",
        "return 08;",
        "return `${params}` + '\U0001f600é';",
        "return new Function('}');",
        "while (true) {}",
    ],
)
def test_valid_bodies_compile(runner, command):
    assert check(runner, command) is None


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("x x", "expecting ';' (line 1, column 3)"),
        ("for (i", "expected 'of' or 'in' in for control expression (line 1, column 7)"),
        ("return 1;\n  a b", "expecting ';' (line 2, column 5)"),
        ("é = 1 +;", "unexpected token in expression: ';' (line 1, column 8)"),
        ("let a; let a;", "invalid redefinition of lexical identifier (line 1, column 13)"),
        ("let params;", "invalid redefinition of parameter name (line 1, column 11)"),
        ("break;", "break must be inside loop or switch (line 1, column 6)"),
        ("'use strict'; with (a) {}", "invalid keyword: with (line 1, column 15)"),
        ("return await 1", "expecting ';' (line 1, column 14)"),
        ("super.x", "'super' is only valid in a method (line 1, column 6)"),
        ("import.meta", "import.meta only valid in module code (line 1, column 8)"),
        ("export default 1", "unsupported keyword: export (line 1, column 1)"),
        ("return 1; /*", "unexpected end of comment (line 1, column 11)"),
        ("{", "unexpected token in expression: '' (line 1, column 2)"),
    ],
)
def test_syntax_errors_name_the_reason_and_position(runner, command, expected):
    assert check(runner, command) == f"SyntaxError: {expected}"


def test_positions_past_the_command_point_at_its_end():
    assert parse_check.position("a\nbc", 5, 1) == (2, 3)
    assert parse_check.position("abc", 3, 3) == (1, 3)


def run_error(runner: Runner, command: str) -> dict[str, str]:
    request = {"command": command, "params": None, "output": 1024, **LIMITS}
    answer = runner.run(request)
    assert not answer["ok"]
    error: dict[str, str] = answer["error"]
    return error


def test_stack_lines_point_into_the_command_as_written(runner):
    command = "var a = 1;\nfunction inner() {\n  null.x;\n}\n  inner();"
    stack = run_error(runner, command)["stack"]
    assert stack == "    at inner (<task>:3:3)\n    at anonymous (<task>:5:3)\n"


def test_columns_count_characters_not_bytes(runner):
    stack = run_error(runner, "var é = 'ü'; null.x;")["stack"]
    assert stack == "    at anonymous (<task>:1:14)\n"  # "null" starts at character 14


@pytest.mark.parametrize(
    ("command", "top"),
    [
        ("\nrequire('fs');", "    at anonymous (<task>:2:1)"),
        ("var x = 1;\n  require('@arangodb').db;", "    at anonymous (<task>:2:3)"),
        ("\n\nsetTimeout(function () {}, 1);", "    at anonymous (<task>:3:12)"),
    ],
)
def test_errors_of_the_sandbox_builtins_start_at_the_commands_call(runner, command, top):
    stack = run_error(runner, command)["stack"]
    assert stack.splitlines() == [top]
