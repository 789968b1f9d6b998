"""The timing engine: near fire times go to APScheduler, far ones are parked and swept in."""

import asyncio
import gc
import math
import time

import pytest

from arangotasks.scheduler import JobScheduler, instant


@pytest.fixture
async def scheduler():
    sched = JobScheduler()
    sched.HORIZON = 0.3
    sched.SWEEP = 0.05
    sched.start()
    yield sched
    sched.shutdown()


def recorder(fired: asyncio.Queue, key: str):
    async def fire() -> None:
        fired.put_nowait((key, time.time()))

    return fire


async def test_near_and_far_fire_times_both_fire_on_time(scheduler):
    fired: asyncio.Queue = asyncio.Queue()
    now = time.time()
    scheduler.schedule("near", now + 0.05, recorder(fired, "near"))
    scheduler.schedule("far", now + 0.6, recorder(fired, "far"))
    assert scheduler.pending() == 2
    assert len(scheduler._aps.get_jobs()) == 1  # "far" is parked
    async with asyncio.timeout(3):
        first = await fired.get()
        second = await fired.get()
    assert [first[0], second[0]] == ["near", "far"]
    assert second[1] >= now + 0.6
    assert scheduler.pending() == 0


async def test_cancel_and_reschedule_parked(scheduler):
    fired: asyncio.Queue = asyncio.Queue()
    now = time.time()
    scheduler.schedule("gone", now + 0.5, recorder(fired, "gone"))
    scheduler.schedule("moved", now + 5, recorder(fired, "moved-late"))
    assert scheduler.cancel("gone") is True
    assert scheduler.cancel("gone") is False
    scheduler.schedule("moved", now + 0.1, recorder(fired, "moved"))  # replaces the parked one
    async with asyncio.timeout(3):
        assert (await fired.get())[0] == "moved"
    await asyncio.sleep(0.7)  # past the cancelled fire time: nothing else may fire
    assert fired.empty()
    assert scheduler.pending() == 0


async def test_a_job_due_before_the_pending_timer_moves_it_earlier(scheduler):
    fired: asyncio.Queue = asyncio.Queue()
    now = time.time()
    scheduler.schedule("later", now + 0.25, recorder(fired, "later"))
    await asyncio.sleep(0.02)  # the timer is now set for "later"
    scheduler.schedule("sooner", now + 0.06, recorder(fired, "sooner"))
    scheduler.schedule("last", now + 0.28, recorder(fired, "last"))  # the timer need not move
    async with asyncio.timeout(3):
        got = [await fired.get() for _ in range(3)]
    assert [key for key, _ in got] == ["sooner", "later", "last"]
    assert got[0][1] < now + 0.2  # it did not wait for the earlier timer
    for (key, at), due in zip(got, (0.06, 0.25, 0.28), strict=True):
        assert at >= now + due, key


async def test_keys_due_at_one_instant_share_one_job(scheduler):
    """1,000 cron tasks of one expression are due at the same whole second: one APScheduler job
    to add and process, not 1,000 (that made the last of such a burst fire ~150 ms late)."""
    fired: asyncio.Queue = asyncio.Queue()
    at = time.time() + 0.1
    for i in range(50):
        scheduler.schedule(f"k{i}", at, recorder(fired, f"k{i}"))
    scheduler.schedule("other", at + 0.01, recorder(fired, "other"))
    scheduler.schedule("k0", at + 0.02, recorder(fired, "k0-moved"))  # leaves the bucket
    assert scheduler.cancel("k1") is True
    assert scheduler.pending() == 50
    assert len(scheduler._aps.get_jobs()) == 3
    async with asyncio.timeout(5):
        got = [(await fired.get())[0] for _ in range(50)]
    assert sorted(got) == sorted([f"k{i}" for i in range(2, 50)] + ["other", "k0-moved"])
    assert got[-2:] == ["other", "k0-moved"]
    assert scheduler.pending() == 0 and not scheduler._aps.get_jobs()
    await asyncio.sleep(0.1)
    assert fired.empty()  # k1 was cancelled


async def test_a_failing_fire_does_not_stop_the_others_of_its_instant(scheduler, caplog):
    fired: asyncio.Queue = asyncio.Queue()

    async def boom() -> None:
        raise RuntimeError("boom")

    at = time.time() + 0.05
    scheduler.schedule("bad", at, boom)
    scheduler.schedule("good", at, recorder(fired, "good"))
    async with asyncio.timeout(5):
        assert (await fired.get())[0] == "good"
        while "boom" not in caplog.text:
            await asyncio.sleep(0.01)


async def test_a_fire_started_by_its_bucket_but_not_begun_does_not_run_after_shutdown():
    """The registry waits for fires that began and then closes the sandbox: a fire its bucket
    had started just before the shutdown must not begin after it ("the sandbox is closed")."""
    sched = JobScheduler()
    sched.start()
    fired: asyncio.Queue = asyncio.Queue()
    at = instant(time.time() - 1)  # due at once
    for i in range(20):
        sched.schedule(f"k{i}", at, recorder(fired, f"k{i}"))
    await sched._fire_bucket(at)  # as its job would: the fires are created, not begun
    sched.pause()  # as the registry's close() does first
    await asyncio.sleep(0.1)
    assert fired.empty()
    sched.shutdown()


def gc_recorder(seen: list[bool], key: str):
    async def fire() -> None:
        seen.append(gc.isenabled())  # in the fire's first step, before it yields

    return fire


async def test_no_garbage_collection_while_a_bucket_hands_on_its_fires(scheduler):
    """A full collection inside a burst of 1,000 cron fires made every fire after it 40-100 ms
    late: the collector is off for the fires' first steps and on again right after them."""
    assert gc.isenabled()
    seen: list[bool] = []
    at = time.time() + 0.05
    for i in range(30):
        scheduler.schedule(f"k{i}", at, gc_recorder(seen, f"k{i}"))
    async with asyncio.timeout(5):
        while len(seen) < 30:
            await asyncio.sleep(0.01)
    assert seen == [False] * 30
    assert gc.isenabled()


async def test_a_bucket_leaves_a_collector_that_was_off_alone(scheduler):
    seen: list[bool] = []
    at = time.time() + 0.05
    for i in range(10):
        scheduler.schedule(f"k{i}", at, gc_recorder(seen, f"k{i}"))
    gc.disable()  # as an embedding application may have done
    try:
        async with asyncio.timeout(5):
            while len(seen) < 10:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert not gc.isenabled()  # not turned on by the bucket
    finally:
        gc.enable()


async def test_a_shutdown_right_after_a_bucket_turns_the_collector_on_again():
    """The collector comes back with a callback queued behind the fires; a loop that stops
    before running it must not leave the process without garbage collection."""
    sched = JobScheduler()
    sched.start()
    at = instant(time.time() - 1)
    for i in range(5):
        sched.schedule(f"k{i}", at, recorder(asyncio.Queue(), f"k{i}"))
    await sched._fire_bucket(at)  # as its job would; the callback is queued, not run
    assert not gc.isenabled()
    sched.shutdown()
    assert gc.isenabled()


async def test_a_pass_calls_every_fire_of_an_instant_before_it_starts_what_they_returned():
    """The registry takes every slot of an instant in one pass of plain calls; the runs the
    fires return start after it (and after ``after_pass``), so the last slot of a burst is not
    taken only once a task was made for every run before it."""
    events: list[str] = []
    sched = JobScheduler(after_pass=lambda: events.append("after_pass"))
    sched.start()

    def fire(key: str):
        def call():
            events.append(f"call {key}")

            async def run() -> None:
                events.append(f"run {key}")

            return run() if key != "k1" else None  # k1 did its work in the call

        return call

    at = instant(time.time() - 1)
    for i in range(4):
        sched.schedule(f"k{i}", at, fire(f"k{i}"))
    await sched._fire_bucket(at)
    await asyncio.sleep(0.05)
    sched.shutdown()
    calls = [f"call k{i}" for i in range(4)]
    assert events == [*calls, "after_pass", "run k0", "run k2", "run k3"]


async def test_a_fire_that_raises_in_its_call_does_not_stop_the_pass(caplog):
    got: list[str] = []
    sched = JobScheduler(after_pass=lambda: got.append("after_pass"))
    sched.start()

    def boom():
        raise RuntimeError("boom in the call")

    at = instant(time.time() - 1)
    sched.schedule("bad", at, boom)
    sched.schedule("good", at, lambda: got.append("good"))
    await sched._fire_bucket(at)
    sched.shutdown()
    assert got == ["good", "after_pass"]
    assert "boom in the call" in caplog.text


async def test_a_failing_after_pass_still_starts_the_runs(caplog):
    """Runs the pass admitted must start even when what comes after the pass fails: an
    admitted run that never starts would stay 'enqueued' for ever."""
    started: list[str] = []

    def after_pass() -> None:
        raise RuntimeError("after_pass failed")

    sched = JobScheduler(after_pass=after_pass)
    sched.start()

    async def run() -> None:
        started.append("run")

    at = instant(time.time() - 1)
    sched.schedule("k", at, run)
    await sched._fire_bucket(at)
    await asyncio.sleep(0.05)
    sched.shutdown()
    assert started == ["run"]
    assert "after_pass failed" in caplog.text


async def test_a_burst_is_woken_early_and_no_fire_begins_before_its_time(scheduler):
    """epoll wakes the loop's timer up to ~1 ms late, and a burst's wake-up adds to every fire
    in it: a bucket of BURST fires is woken LEAD early and sleeps the rest precisely."""
    at = instant(time.time() + 0.2)
    called: list[float] = []
    for i in range(JobScheduler.BURST - 1):
        scheduler.schedule(f"k{i}", at, lambda: called.append(time.time()))
    job = scheduler._aps.get_job(f"at {at!r}")
    assert job.next_run_time.timestamp() == pytest.approx(at, abs=1e-6)  # not a burst yet
    scheduler.schedule("last", at, lambda: called.append(time.time()))
    job = scheduler._aps.get_job(f"at {at!r}")
    assert job.next_run_time.timestamp() == pytest.approx(at - JobScheduler.LEAD, abs=1e-6)
    async with asyncio.timeout(5):
        while len(called) < JobScheduler.BURST:
            await asyncio.sleep(0.01)
    assert min(called) >= at


async def test_the_early_wait_of_a_burst_is_bounded_when_the_clock_was_set_back(monkeypatch):
    """A bucket found 'early' because the wall clock was set back must not block the loop for
    what the clock moved: it waits LEAD at most."""
    import arangotasks.scheduler as module

    slept: list[float] = []
    monkeypatch.setattr(module.time, "sleep", slept.append)
    sched = JobScheduler()
    sched.start()
    at = instant(time.time() + 30)  # as if the clock was set back 30 s after the timer was armed
    called: list[str] = []
    sched.schedule("k", at, lambda: called.append("k"))
    await sched._fire_bucket(at)
    sched.shutdown()
    assert called == ["k"]
    assert slept and max(slept) <= JobScheduler.LEAD


def test_an_instant_is_its_millisecond_rounded_up():
    assert instant(1796218685.0) == 1796218685.0  # a cron slot stays exact
    assert instant(1796218685.0004) == 1796218685.001
    assert instant(1796218685.0004) >= 1796218685.0004  # never before its time


async def test_fire_times_within_one_millisecond_share_one_job(scheduler):
    """1,000 periodic tasks whose runs ended together re-arm microseconds apart: one job for
    the millisecond, not one each."""
    fired: asyncio.Queue = asyncio.Queue()
    at = math.floor(time.time() * 1000) / 1000 + 0.1002  # 0.2-0.65 ms into a millisecond
    for i in range(10):
        scheduler.schedule(f"k{i}", at + i * 0.00005, recorder(fired, f"k{i}"))
    assert len(scheduler._aps.get_jobs()) == 1
    async with asyncio.timeout(5):
        got = [await fired.get() for _ in range(10)]
    assert min(when for _, when in got) >= at + 9 * 0.00005
