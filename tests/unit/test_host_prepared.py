"""A worker prepares its next host-mode context ahead (host function bound, the host machinery
compiled) after a host-mode run: the next such run starts from it, and it is as fresh and as
bounded as one made for the run."""

import io
import json
from typing import Any

from arangotasks.sandbox.runner import Runner, load_prelude
from arangotasks.sandbox.worker import HostLink

REPLY = {"status": 200, "message": "OK", "headers": {}, "body": '{"n": 1}'}
LIMITS = {"timeout": 5.0, "memory": 32 << 20, "stack": 1 << 20, "output": 65536}
GET = "var n = require('@arangodb/request').get('http://example.test/').json.n;"


def runner(replies: int = 10) -> tuple[Runner, io.BytesIO]:
    """A runner whose host calls all get REPLY; the second value collects the call lines."""
    line = json.dumps({"value": REPLY}).encode() + b"\n"
    calls = io.BytesIO()
    return Runner(load_prelude(), link=HostLink(io.BytesIO(line * replies), calls).call), calls


def host_run(runner: Runner, command: str, **limits: Any) -> dict[str, Any]:
    request = {"op": "run", "command": command, "params": None, "host": True}
    return runner.run(request | LIMITS | limits)


def test_after_a_host_mode_run_the_next_host_context_is_made_ahead():
    run, calls = runner()
    assert host_run(run, GET + "return n")["result"] == "1"
    assert run._next_host is None
    run.prepare()
    assert run._next_host is not None
    answer = host_run(run, GET + "return n + 1")
    assert answer["ok"] and answer["result"] == "2" and answer["host"]
    assert run._next_host is None  # that run took it
    assert calls.getvalue().count(b'{"call":"http.request"') == 2


def test_a_prepared_host_context_is_fresh():
    run, _ = runner()
    assert host_run(run, GET + "globalThis.left = n; return n")["ok"]
    run.prepare()
    answer = host_run(run, GET + "return typeof left")
    assert answer["result"] == '"undefined"'


def test_a_prepared_host_context_keeps_the_runs_output_limit():
    run, _ = runner()
    assert host_run(run, GET + "return n")["ok"]
    run.prepare()
    answer = host_run(run, GET + "print('x'.repeat(100)); return n", output=20)
    assert answer["truncated"] is True
    assert answer["output"] == ["x" * 19, "... output truncated (limit 20 bytes)"]


def test_a_prepared_host_context_keeps_the_runs_memory_limit():
    run, _ = runner()
    assert host_run(run, GET + "return n")["ok"]
    run.prepare()
    command = GET + "var a = []; for (;;) a.push('x'.repeat(1000));"
    answer = host_run(run, command, memory=8 << 20)
    assert answer["error"]["type"] == "memory"


def test_a_fast_path_run_after_a_host_mode_run_still_works():
    run, _ = runner()
    assert host_run(run, GET + "return n")["ok"]
    run.prepare()
    fast = run.run({"op": "run", "command": "return 40 + 2", "params": None} | LIMITS)
    assert fast["result"] == "42" and "host" not in fast
