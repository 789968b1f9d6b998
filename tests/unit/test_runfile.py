"""``run_file``: the ``arangotasks run FILE.js`` command."""

from pathlib import Path

import pytest

from arangotasks.runfile import run_file
from tests.unit.http_remote import remote_in_a_thread

SAMPLES = Path(__file__).resolve().parents[2] / "sample_commands"


def write(tmp_path: Path, source: str) -> str:
    path = tmp_path / "command.js"
    path.write_text(source, encoding="utf-8")
    return str(path)


def test_a_successful_run_prints_output_and_result(tmp_path, capsys):
    path = write(tmp_path, "print('hello', params.name); print('two\\nlines'); return {n: 1};")
    assert run_file(path, '{"name": "world"}', None) == 0
    assert capsys.readouterr().out == ('output:\n  hello world\n  two\n  lines\nresult: {"n":1}\n')


def test_params_keep_their_type_and_absent_params_are_undefined(tmp_path, capsys):
    path = write(tmp_path, "return typeof params;")
    assert run_file(path, '"abc"', None) == 0
    assert run_file(path, None, None) == 0
    assert capsys.readouterr().out == 'result: "string"\nresult: "undefined"\n'


def test_no_return_value_prints_undefined(tmp_path, capsys):
    assert run_file(write(tmp_path, "var x = 1;"), None, None) == 0
    assert capsys.readouterr().out == "result: undefined\n"


def test_a_failed_run_prints_the_error_and_exits_1(capsys):
    assert run_file(str(SAMPLES / "deliberate_error.js"), None, None) == 1
    out = capsys.readouterr().out
    assert out.startswith("output:\n  checking the nightly report...\n")
    assert "error (exception): Error: deliberate failure: the upstream report was empty\n" in out
    assert "    at checkReport (" in out


def test_a_syntax_error_is_reported_as_not_compiling(tmp_path, capsys):
    assert run_file(write(tmp_path, "for (i"), None, None) == 1
    assert capsys.readouterr().out == (
        "cannot compile command: SyntaxError: expected 'of' or 'in' in for control expression"
        " (line 1, column 7)\n"
    )


def test_the_timeout_option_bounds_the_run(tmp_path, capsys):
    assert run_file(write(tmp_path, "print('spinning'); while (true) {}"), None, 0.3) == 1
    out = capsys.readouterr().out
    assert "error (timeout): InternalError: interrupted: CPU time limit of 0.3 s exceeded" in out
    assert "spinning" in out


@pytest.mark.parametrize(
    ("path", "params_json", "timeout", "message"),
    [
        ("/nonexistent/command.js", None, None, "error: cannot read /nonexistent/command.js"),
        (str(SAMPLES / "heartbeat.js"), "{not json", None, "error: --params is not JSON"),
        (str(SAMPLES / "heartbeat.js"), None, 0.0, "error: --timeout must be a positive"),
    ],
    ids=["missing-file", "bad-params", "bad-timeout"],
)
def test_usage_problems_exit_2(capsys, path, params_json, timeout, message):
    assert run_file(path, params_json, timeout) == 2
    assert capsys.readouterr().out.startswith(message)


def test_run_uses_the_server_sandbox_settings(tmp_path, monkeypatch, capsys):
    """``arangotasks run`` reads ARANGOTASKS_OUTPUT_KB / _MEMORY_MB / _STACK_KB / _TIMEOUT as
    ``serve`` does (it used to run with the built-in defaults whatever the environment said)."""
    from arangotasks.cli import main

    monkeypatch.setenv("ARANGOTASKS_OUTPUT_KB", "1")
    monkeypatch.setenv("ARANGOTASKS_MEMORY_MB", "8")
    path = write(tmp_path, "for (var i = 0; i < 100; i++) print('x'.repeat(100)); return 1;")
    assert main(["run", path]) == 0
    out = capsys.readouterr().out
    assert out.count("x" * 100) < 20  # 1 KiB of output kept, not 10 KiB
    # 8 MiB of heap: a 32 MiB string cannot be built (the default 64 MiB allows it).
    big = write(tmp_path, "var s = 'y'.repeat(32 * 1024 * 1024); return s.length;")
    assert main(["run", big]) == 1
    assert "memory" in capsys.readouterr().out.lower()


def test_run_refuses_an_invalid_setting(tmp_path, monkeypatch, capsys):
    from arangotasks.cli import main

    monkeypatch.setenv("ARANGOTASKS_MEMORY_MB", "0")
    assert main(["run", write(tmp_path, "return 1;")]) == 2
    assert "invalid setting" in capsys.readouterr().err


def test_a_command_can_call_out_under_the_servers_allowlist(tmp_path, capsys, monkeypatch):
    with remote_in_a_thread() as port:
        monkeypatch.setenv("ARANGOTASKS_HTTP_ALLOW", f"127.0.0.1:{port}")
        url = f"http://127.0.0.1:{port}/echo"
        path = write(tmp_path, f"return require('@arangodb/request').post('{url}').json.method;")
        assert run_file(path, None, None) == 0
    assert capsys.readouterr().out == f'request: POST {url} -> 200\nresult: "POST"\n'


def test_without_an_allowlist_a_command_cannot_call_out(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ARANGOTASKS_HTTP_ALLOW", raising=False)
    path = write(tmp_path, "return require('@arangodb/request').get('http://127.0.0.1:9/');")
    assert run_file(path, None, None) == 1
    out = capsys.readouterr().out
    assert (
        "request to 127.0.0.1 refused: outbound HTTP is off (ARANGOTASKS_HTTP_ALLOW is empty)"
        in out
    )
