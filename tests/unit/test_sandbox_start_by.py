"""A run's start deadline (``start_by``): the pool asks it when a worker is about to take the
run, not when the run was queued, and the worker checks it again on receipt. Several nodes use
it so that a run admitted just before its node paused does not begin after another node took
the task over (see claims.py)."""

import asyncio
import io
import json
import math
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from arangotasks.sandbox import Limits, QuickJSSandbox
from arangotasks.sandbox.base import NotStartedError
from arangotasks.sandbox.runner import Runner, load_prelude
from arangotasks.sandbox.worker import serve

LIMITS = Limits(timeout=30, memory_bytes=16 << 20, stack_bytes=256 << 10, output_bytes=1024)
REQUEST = {"op": "run", "params": None, "timeout": 5.0, "memory": 16 << 20, "stack": 1 << 18}
REQUEST |= {"output": 1024, "result": 1 << 20, "error_message": 4096, "error_stack": 4096}


@pytest_asyncio.fixture
async def sandbox() -> AsyncIterator[QuickJSSandbox]:
    sandbox = QuickJSSandbox(workers=1, limits=LIMITS, compile_workers=0)
    await sandbox.start()
    yield sandbox
    await sandbox.close()


async def test_a_run_past_its_start_deadline_does_not_start(sandbox):
    started = []
    with pytest.raises(NotStartedError):
        await sandbox.run(
            "print('ran'); return 1;",
            None,
            on_start=lambda: started.append(True),
            start_by=lambda: time.monotonic() - 1,
        )
    assert started == []
    # The worker is free for the next run.
    outcome = await sandbox.run("return 2;", None, start_by=lambda: time.monotonic() + 60)
    assert outcome.ok and outcome.result_json == "2"


async def test_the_deadline_is_asked_when_a_worker_takes_the_run_not_when_it_was_queued(sandbox):
    # The only worker is busy; the second run waits for it. Its deadline is open while it is
    # queued and closed by the time the worker is free (a lease lost meanwhile).
    latest = [math.inf]
    busy = asyncio.create_task(
        sandbox.run("var t = Date.now(); while (Date.now() - t < 500) {} return 1;", None)
    )
    await asyncio.sleep(0.1)
    waiting = asyncio.create_task(
        sandbox.run("print('ran'); return 2;", None, start_by=lambda: latest[0])
    )
    await asyncio.sleep(0.1)
    assert not waiting.done()
    latest[0] = -math.inf
    assert (await busy).ok
    with pytest.raises(NotStartedError):
        await waiting
    # A deadline that moved on while the run waited (a renewed lease) lets it start.
    latest[0] = time.monotonic() - 1
    busy = asyncio.create_task(
        sandbox.run("var t = Date.now(); while (Date.now() - t < 300) {} return 1;", None)
    )
    await asyncio.sleep(0.05)
    waiting = asyncio.create_task(sandbox.run("return 3;", None, start_by=lambda: latest[0]))
    await asyncio.sleep(0.05)
    latest[0] = time.monotonic() + 60
    await busy
    assert (await waiting).result_json == "3"


def _serve(request: dict) -> dict:
    answers = io.BytesIO()
    serve(Runner(load_prelude()), io.BytesIO(json.dumps(request).encode() + b"\n"), answers)
    return json.loads(answers.getvalue())


def test_a_worker_that_reads_a_request_past_its_deadline_runs_nothing():
    # The server checked in time, then paused before the line was written: the worker sees it
    # late and must not begin.
    late = _serve(REQUEST | {"command": "return 1;", "start_by": time.monotonic() - 0.01})
    assert late == {"not_started": True}
    in_time = _serve(REQUEST | {"command": "return 1;", "start_by": time.monotonic() + 60})
    assert in_time["ok"] and in_time["result"] == "1"
    assert _serve(REQUEST | {"command": "return 1;"})["result"] == "1"  # no deadline
