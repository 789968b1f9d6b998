"""Scheduling rules (§1.6) and restarts, on a real SQLite store and real QuickJS workers.

Waits are deadlines on events (``asyncio.timeout``), never bare sleeps.
"""

import asyncio
import contextlib
import itertools

import pytest

from arangotasks.auth import ANONYMOUS_SUPERUSER
from arangotasks.config import Misfire, Settings
from arangotasks.errors import ArangoError
from arangotasks.models import Run, RunStatus, RunTrigger
from arangotasks.registry import Registry
from arangotasks.sandbox import QuickJSSandbox
from arangotasks.store import open_store
from arangotasks.validation import parse_task_body

SU = ANONYMOUS_SUPERUSER


def spec(**body):
    body.setdefault("command", "return 1;")
    return parse_task_body(body, url_id=None, caller="", max_timeout=3600)


class Harness:
    """A registry plus a queue of every finished run."""

    def __init__(self, tmp_path, **overrides):
        values = {
            "data_dir": tmp_path,
            "workers": 2,
            "timeout": 5.0,
            "history_flush_interval": 0.01,
        }
        values.update(overrides)
        self.settings = Settings(**values)
        self.registry: Registry | None = None
        self.runs: asyncio.Queue[Run] = asyncio.Queue()

    async def start(self) -> Registry:
        self.registry = Registry(
            open_store(None, self.settings.data_dir),
            QuickJSSandbox(workers=self.settings.workers, limits=self.settings.limits()),
            self.settings,
        )
        self.registry.run_listeners.append(self.runs.put_nowait)
        await self.registry.start()
        return self.registry

    async def stop(self) -> None:
        if self.registry is not None:
            await self.registry.close()
            self.registry = None

    async def next_run(self, task_id: str | None = None, within: float = 5.0) -> Run:
        async with asyncio.timeout(within):
            while True:
                run = await self.runs.get()
                if task_id is None or run.task_id == task_id:
                    return run

    async def no_run(self, within: float) -> None:
        with contextlib.suppress(TimeoutError):
            run = await self.next_run(within=within)
            pytest.fail(f"unexpected run {run}")


@pytest.fixture
async def harness(tmp_path):
    h = Harness(tmp_path)
    await h.start()
    yield h
    await h.stop()


async def test_offset_delays_the_first_run(harness):
    task = await harness.registry.create(spec(offset=0.3), "_system", "")
    run = await harness.next_run(task.id)
    assert run.started_at - task.created >= 0.3
    assert run.scheduled_at == pytest.approx(task.created + 0.3)
    assert run.status is RunStatus.SUCCEEDED and run.result_json == "1"


async def test_offset_zero_or_negative_runs_at_once(harness):
    for offset in (0, -10):
        task = await harness.registry.create(spec(offset=offset), "_system", "")
        run = await harness.next_run(task.id)
        assert run.started_at - task.created < 1.0


async def test_timed_task_runs_once_then_is_removed(harness):
    registry = harness.registry
    task = await registry.create(spec(id="once"), "_system", "")
    await harness.next_run(task.id)
    async with asyncio.timeout(3):
        while len(registry):
            await asyncio.sleep(0.01)
    with pytest.raises(ArangoError) as err:
        registry.get("once", SU)
    assert err.value.code == 1852
    assert [t.id for t in await registry.store.load_tasks()] == []
    again = await registry.create(spec(id="once", offset=100), "_system", "")
    assert again.id == "once"


async def test_periodic_fixed_delay_and_no_overlap(harness):
    # Each run busy-waits 50 ms; the period is 20 ms: the next start is one period after the end.
    body = "var t = Date.now(); while (Date.now() - t < 50) {} return Date.now();"
    task = await harness.registry.create(spec(command=body, period=0.02), "_system", "")
    runs = [await harness.next_run(task.id) for _ in range(4)]
    for before, after in itertools.pairwise(runs):
        assert after.started_at >= before.finished_at
        assert after.started_at - before.finished_at >= 0.02 - 0.002
    await harness.registry.delete(task.id, SU)


async def test_manual_runs_do_not_overlap_scheduled_runs(harness):
    body = "var t = Date.now(); while (Date.now() - t < 100) {} return 1;"
    task = await harness.registry.create(spec(command=body, period=0.05), "_system", "")
    manual = await harness.registry.run_now(task.id, SU)
    assert manual.trigger is RunTrigger.MANUAL
    runs = [await harness.next_run(task.id) for _ in range(3)]
    runs.sort(key=lambda r: r.started_at)
    for before, after in itertools.pairwise(runs):
        assert after.started_at >= before.finished_at
    assert manual.uid in {r.uid for r in runs}


async def test_delete_stops_future_runs_and_lets_the_current_one_finish(harness):
    body = "var t = Date.now(); while (Date.now() - t < 300) {} return 'done';"
    task = await harness.registry.create(spec(command=body, period=0.01), "_system", "")
    async with asyncio.timeout(5):
        while not harness.registry._run_locks.get(task.id, asyncio.Lock()).locked():
            await asyncio.sleep(0.005)
    await harness.registry.delete(task.id, SU)
    run = await harness.next_run(task.id)
    assert (run.status, run.result_json) == (RunStatus.SUCCEEDED, '"done"')
    await harness.no_run(within=0.5)


async def test_failing_periodic_task_keeps_running(harness):
    task = await harness.registry.create(
        spec(command="throw new Error('x')", period=0.01), "_system", ""
    )
    runs = [await harness.next_run(task.id) for _ in range(3)]
    assert all(r.status is RunStatus.FAILED for r in runs)
    assert runs[0].error["message"] == "x"


async def test_restart_keeps_tasks_and_their_fields(tmp_path):
    first = Harness(tmp_path)
    registry = await first.start()
    made = [
        await registry.create(
            spec(id="p", name="per", period=3600, offset=1800, params={"a": [1]}), "testdb", "alice"
        ),
        await registry.create(
            spec(id="t", command="return params;", offset=3600, params="s"), "_system", ""
        ),
    ]
    before = {t.id: (t.to_api(), t.params_json, t.owner, t.next_run_at) for t in made}
    await first.stop()

    second = Harness(tmp_path)
    registry = await second.start()
    try:
        after = {
            t.id: (t.to_api(), t.params_json, t.owner, t.next_run_at) for t in registry.visible(SU)
        }
        assert after == before
    finally:
        await second.stop()


async def test_periodic_cadence_resumes_after_restart(tmp_path):
    first = Harness(tmp_path)
    registry = await first.start()
    task = await registry.create(spec(id="p", period=0.5), "_system", "")
    await first.next_run("p")
    await first.stop()
    second = Harness(tmp_path)
    await second.start()
    try:
        run = await second.next_run("p", within=3)
        assert run.status is RunStatus.SUCCEEDED
        assert run.scheduled_at > task.created
    finally:
        await second.stop()


@pytest.mark.parametrize("policy", [Misfire.RUN_ONCE, Misfire.SKIP])
async def test_missed_timed_task(tmp_path, policy):
    first = Harness(tmp_path)
    registry = await first.start()
    await registry.create(spec(id="late", offset=0.3), "_system", "")
    await first.stop()  # stopped before it was due
    await asyncio.sleep(0.4)  # the downtime being simulated, not a wait for a result
    second = Harness(tmp_path, misfire=policy)
    registry = await second.start()
    try:
        if policy is Misfire.RUN_ONCE:
            run = await second.next_run("late")
            assert run.status is RunStatus.SUCCEEDED
        else:
            await second.no_run(within=0.5)
            runs, total, _ = await registry.history.query(_query("late"))
            assert total == 1 and runs[0].status is RunStatus.CANCELED
        async with asyncio.timeout(3):
            while len(registry):
                await asyncio.sleep(0.01)
    finally:
        await second.stop()


def _query(task_id):
    from arangotasks.models import RunQuery

    return RunQuery(task_ids=frozenset({task_id}))


async def test_timed_task_never_runs_twice_after_a_crash_mid_run(tmp_path):
    """Simulates a server dying during a timed run: the run is marked fired before it starts."""
    first = Harness(tmp_path, timeout=30)
    registry = await first.start()
    await registry.create(spec(id="slow", command="while(true){}"), "_system", "")
    async with asyncio.timeout(5):
        while not registry._run_locks.get("slow", asyncio.Lock()).locked():
            await asyncio.sleep(0.005)
    stored = {t.id: t.next_run_at for t in await registry.store.load_tasks()}
    assert stored == {"slow": None}
    # Abandon this registry as a crash would: no clean close of scheduler or history.
    registry._scheduler.shutdown()
    await registry.history.flush()
    await registry.sandbox.close()  # the run in progress dies with its worker
    await registry.store.close()

    second = Harness(tmp_path)
    registry = await second.start()
    try:
        assert len(registry) == 0
        await second.no_run(within=0.5)
    finally:
        await second.stop()


async def test_concurrent_creates_and_deletes_stay_consistent(harness):
    registry = harness.registry

    async def create(i):
        with contextlib.suppress(ArangoError):
            await registry.create(spec(id=f"c{i % 40}", offset=3600), "_system", "")

    async def delete(i):
        with contextlib.suppress(ArangoError):
            await registry.delete(f"c{i % 40}", SU)

    await asyncio.gather(*(create(i) if i % 3 else delete(i) for i in range(400)))
    in_memory = {t.id for t in registry.visible(SU)}
    in_store = {t.id for t in await registry.store.load_tasks()}
    assert in_memory == in_store
    assert registry._scheduler.pending() == len(in_memory)


async def test_many_tasks_start_quickly(tmp_path):
    first = Harness(tmp_path)
    registry = await first.start()
    for i in range(2000):
        await registry.create(spec(id=f"t{i}", period=3600, offset=3600), "_system", "")
    await first.stop()
    second = Harness(tmp_path)
    registry = await second.start()
    try:
        assert len(registry) == 2000
        assert registry._scheduler.pending() == 2000
    finally:
        await second.stop()
