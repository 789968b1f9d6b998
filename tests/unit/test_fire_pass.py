"""The registry's pass of fires (``RunPath._fire_now``) on one server: every slot of an instant
is taken (decided, its run admitted with its ``enqueuedAt``, the next cron slot armed) before
the first of their runs is handed to the sandbox. That is what keeps the last of 1,000 cron
slots at one instant within a few milliseconds (``make bench``, cron).

The registry and its SQLite store are real; the sandbox records when runs reach it and answers
at once (QuickJS is not what is tested here).
"""

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from arangotasks.config import Settings
from arangotasks.models import Run, RunStatus, RunTrigger
from arangotasks.registry import Registry
from arangotasks.store import open_store
from arangotasks.validation import parse_task_body
from bench.precision import NullSandbox  # the benchmark's sandbox: every run succeeds at once

COUNT = 100


class RecordingSandbox(NullSandbox):
    """Answers every run at once; notes what the registry had done when the first run came."""

    def __init__(self) -> None:
        self.registry: Registry | None = None
        self.first_call: float | None = None
        self.armed_at_first_call = -1

    async def run(self, command: str, params_json: str | None, limits: Any = None, **kw: Any):
        if self.first_call is None:
            self.first_call = time.time()
            assert self.registry is not None
            self.armed_at_first_call = self.registry.scheduled()
        return await super().run(command, params_json, limits, **kw)


def spec(**body: Any):
    body.setdefault("command", "return 1;")
    return parse_task_body(body, url_id=None, caller="", max_timeout=3600)


async def burst(tmp_path, **body: Any) -> tuple[RecordingSandbox, list[Run]]:
    """COUNT tasks of ``body`` due at one instant; the runs of that instant."""
    sandbox = RecordingSandbox()
    settings = Settings(data_dir=tmp_path, history_flush_interval=0.01)
    registry = Registry(open_store(None, tmp_path), sandbox, settings)
    sandbox.registry = registry
    finished: list[Run] = []
    registry.run_listeners.append(finished.append)
    await registry.start()
    try:
        # All due at one instant: a whole second (a cron slot), as their startAt.
        # Far enough ahead for the creates on a loaded machine (group-committed, at once).
        slot = float(int(time.time()) + 4)
        start_at = datetime.fromtimestamp(slot, UTC).isoformat().replace("+00:00", "Z")
        await asyncio.gather(
            *(registry.create(spec(startAt=start_at, **body), "_system", "") for _ in range(COUNT))
        )
        assert time.time() < slot, "the creates took longer than the test allows"
        assert registry.scheduled() == COUNT
        async with asyncio.timeout(15):
            while sum(1 for run in finished if run.scheduled_at == slot) < COUNT:
                await asyncio.sleep(0.01)
        return sandbox, [run for run in finished if run.scheduled_at == slot]
    finally:
        await registry.close()


async def test_every_cron_slot_of_an_instant_is_taken_before_any_of_its_runs_starts(tmp_path):
    sandbox, runs = await burst(tmp_path, cron="* * * * * *")
    assert sandbox.first_call is not None
    assert all(run.status is RunStatus.SUCCEEDED for run in runs)
    assert {run.trigger for run in runs} == {RunTrigger.SCHEDULE}
    # Every run was admitted (its record made) before the first one reached the sandbox ...
    assert max(run.enqueued_at for run in runs) <= sandbox.first_call
    # ... and every task's next slot was armed by then (fixed rate).
    assert sandbox.armed_at_first_call == COUNT
    assert len({run.uid for run in runs}) == COUNT


async def test_every_periodic_slot_of_an_instant_is_taken_before_any_of_its_runs_starts(tmp_path):
    sandbox, runs = await burst(tmp_path, period=1)
    assert sandbox.first_call is not None
    assert max(run.enqueued_at for run in runs) <= sandbox.first_call
    # Fixed delay: a periodic task's next run is armed after its run, not in the pass.
    assert sandbox.armed_at_first_call == 0
