"""The cluster's statements on a real PostgreSQL (claims.py decides, cluster_rows.py says it in
SQL): a node admits runs only while its own heartbeat is fresh, a claim learns the last slot the
fence admitted, and a claimer never starts a periodic task sooner than a period after it."""

import asyncio
import dataclasses
import math
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from arangotasks.claims import ClusterClaims
from arangotasks.config import Settings
from arangotasks.history import CRASH_ERROR, History
from arangotasks.leases import _takeover_floor
from arangotasks.models import NO_OPTIONS, RunStatus, RunTrigger, Task
from arangotasks.store.cluster_rows import CRASH_NAME, Admission, Claimed, Opening
from arangotasks.store.postgres import PostgresStore
from tests.unit.test_store import pg_schema_dsn, task  # noqa: F401  (fixture)

pytestmark = pytest.mark.postgres

LEASE = 3.0


@pytest_asyncio.fixture
async def store(pg_schema_dsn: str) -> AsyncIterator[PostgresStore]:  # noqa: F811
    store = PostgresStore(pg_schema_dsn)
    await store.open()
    yield store
    await store.close()


def opening(t: Task, fence: int, slot: float) -> Opening:
    run = History.build_run(t, RunTrigger.SCHEDULE, slot, status=RunStatus.ENQUEUED)
    return Opening(run, fence=fence, slot=slot)


async def test_a_node_whose_heartbeat_is_stale_admits_nothing_though_it_holds_the_lease(store):
    periodic = task("p", period_ms=1000, next_run_at=time.time())
    await store.insert_task(periodic)
    await store.heartbeat("n1", "host:1", 1.0, 0, LEASE)
    [claimed] = await store.claim_due("n1", 1.0, LEASE, 10)
    fence = claimed.fence
    assert await store.admit_runs("n1", [opening(periodic, fence, 1.0)], LEASE) == [
        Admission.ADMITTED
    ]
    # n1 paused: its heartbeat is older than the lease. It still is the lease owner in the
    # table (nobody claimed yet), but another node may claim at any moment: no admission.
    await asyncio.sleep(0.2)
    assert await store.admit_runs("n1", [opening(periodic, fence, 2.0)], 0.1) == [
        Admission.CLAIM_LOST
    ]
    # A heartbeat later, the same lease admits again.
    await store.heartbeat("n1", "host:1", 1.0, 1, LEASE)
    assert await store.admit_runs("n1", [opening(periodic, fence, 2.0)], LEASE) == [
        Admission.ADMITTED
    ]


async def test_a_claim_reports_the_last_admitted_slot_and_whether_it_was_a_takeover(store):
    now = time.time()
    for name in "pqr":
        await store.insert_task(task(name, period_ms=1000, next_run_at=now - 10))
    await store.heartbeat("n1", "host:1", 1.0, 0, LEASE)
    claimed = {c.task.id: c for c in await store.claim_due("n1", 1.0, LEASE, 10)}
    assert not any(c.taken_over for c in claimed.values())  # nobody held them
    p, r = claimed["p"], claimed["r"]
    for slot in (now - 3, now - 2):
        admitted = await store.admit_runs("n1", [opening(p.task, p.fence, slot)], LEASE)
        assert admitted == [Admission.ADMITTED]
    ended = opening(r.task, r.fence, now - 2)
    assert await store.admit_runs("n1", [ended], LEASE) == [Admission.ADMITTED]
    ended.run.status, ended.run.finished_at = RunStatus.SUCCEEDED, now - 1.5
    await store.save_runs([ended.run])
    # n1 stops heartbeating (it paused): n2 takes its leases over.
    await store.heartbeat("n2", "host:2", 1.0, 0, LEASE)
    await asyncio.sleep(0.2)
    again = {c.task.id: c for c in await store.claim_due("n2", 1.0, 0.1, 10)}
    assert sorted(again) == ["p", "q", "r"] and all(c.taken_over for c in again.values())
    assert again["p"].last_slot == pytest.approx(now - 2) and again["p"].last_ended is None
    assert again["q"].last_slot is None
    assert again["r"].last_ended == pytest.approx(now - 1.5)


def _claimed(taken_over: bool, last_slot, last_ended=None, **fields) -> Claimed:
    t = task("p", **({"period_ms": 2000} | fields))
    return Claimed(t, 1, taken_over, last_slot, last_ended)


def test_the_next_run_after_a_claim_never_comes_too_soon():
    now = 1000.0
    assert _takeover_floor(_claimed(False, None), now) is None  # never ran
    assert _takeover_floor(_claimed(False, 990.0), now) == 992.0  # a lease given back
    # Taken over: a period after the last run ended (its node wrote it), else after now (the
    # old holder may have started it late, but before now).
    assert _takeover_floor(_claimed(True, 990.0, 995.5), now) == 997.5
    assert _takeover_floor(_claimed(True, 990.0), now) == 1002.0
    assert _takeover_floor(_claimed(True, 990.0, period_ms=None), now) is None  # timed
    cron = dataclasses.replace(NO_OPTIONS, cron="* * * * * *")
    assert _takeover_floor(_claimed(True, 990.0, options=cron), now) is None  # its own slots


def test_the_crash_the_reaper_writes_is_the_one_a_claim_tells_apart():
    assert CRASH_ERROR["name"] == CRASH_NAME


async def test_a_takeover_starts_a_periodic_task_a_period_after_its_last_admitted_slot(store):
    # The dead holder wrote its next run time long ago (next-run times are written every few
    # seconds); its last run came later. The new holder must not start a run at the stale time,
    # close to the dead node's last start.
    now = time.time()
    stale = task("p", period_ms=2000, next_run_at=now - 6)
    await store.insert_task(stale)
    await store.heartbeat("n1", "host:1", 1.0, 0, LEASE)
    [claimed] = await store.claim_due("n1", 1.0, LEASE, 10)
    fence = claimed.fence
    last_slot = now - 0.5
    await store.admit_runs("n1", [opening(stale, fence, last_slot)], LEASE)
    await store.leave("n1")

    settings = Settings(cluster_lease=LEASE)
    claims = ClusterClaims(store, History(store, settings), settings, "n2")
    adopted: list[Task] = []
    claims._adopt = lambda t, _fence: adopted.append(t)
    await store.heartbeat("n2", "host:2", 1.0, 0, LEASE)
    await claims._claim()
    assert [t.id for t in adopted] == ["p"]
    assert adopted[0].next_run_at == pytest.approx(last_slot + 2.0)


async def test_the_start_gate_closes_when_the_heartbeat_is_old_or_the_lease_is_lost(store):
    settings = Settings(cluster_lease=LEASE)
    claims = ClusterClaims(store, History(store, settings), settings, "n1")
    claims._adopt = lambda _t, _fence: None
    claims._lost = lambda _id: None
    await store.insert_task(task("p", period_ms=1000, next_run_at=time.time()))
    await store.heartbeat("n1", "host:1", 1.0, 0, LEASE)
    await claims._claim()
    gate = claims.start_gate("p")
    assert gate is not None
    assert gate() == -math.inf  # no heartbeat seen yet: nothing may start
    sent, sent_mono = time.time(), time.monotonic()
    beat = await store.heartbeat("n1", "host:1", 1.0, 1, LEASE)
    claims.renewed(beat, sent, time.time(), sent_mono)
    assert gate() == pytest.approx(sent_mono + LEASE * 0.9)
    claims._drop("p")  # the heartbeat found the lease taken over
    assert gate() == -math.inf
    claims._hold("p", 99)  # claimed again, with a new fence: the old run still must not start
    assert gate() == -math.inf
    # Lost between its admission and its turn at the run lock: closed, not absent.
    unheld = claims.start_gate("not-held")
    assert unheld is not None and unheld() == -math.inf


async def test_a_lease_taken_over_is_dropped_even_with_its_next_run_time_waiting(store):
    """Held tasks' next-run times wait up to ADVANCE_EVERY to be written; the heartbeat that
    finds such a lease taken over must still drop it, or a run admitted before a pause starts
    after it under the old fence (the 361,627-run audit found 13 such close starts)."""
    settings = Settings(cluster_lease=LEASE)
    claims = ClusterClaims(store, History(store, settings), settings, "n1")
    claims._adopt = lambda _t, _fence: None
    lost: list[str] = []
    claims._lost = lost.append
    periodic = task("p", period_ms=1000, next_run_at=time.time())
    await store.insert_task(periodic)
    await store.heartbeat("n1", "host:1", 1.0, 0, LEASE)
    await claims._claim()
    gate = claims.start_gate("p")
    assert gate is not None
    claims.next_run(periodic, time.time() + 1)  # an advance waits to be written
    await store.take("n2", "p", LEASE)  # n1 paused; n2 took the task over
    sent, sent_mono = time.time(), time.monotonic()
    beat = await store.heartbeat("n1", "host:1", 1.0, 1, LEASE)
    claims.renewed(beat, sent, time.time(), sent_mono)
    assert lost == ["p"] and not claims.holds("p")
    assert gate() == -math.inf


async def _claimed_by_n1(store: PostgresStore, name: str = "p") -> None:
    await store.insert_task(task(name, period_ms=1000, next_run_at=time.time()))
    await store.heartbeat("n1", "host:1", 1.0, 0, LEASE)
    assert [c.task.id for c in await store.claim_due("n1", 1.0, LEASE, 10)] == [name]


async def test_a_claim_waits_for_a_heartbeat_being_written_and_then_claims_nothing(
    store,
    pg_schema_dsn: str,  # noqa: F811
):
    """n1 looks dead (its heartbeat is old) while its new heartbeat is being written: a claim
    that read the old one must not take n1's task once that heartbeat is in."""
    import psycopg

    await _claimed_by_n1(store)
    with psycopg.connect(pg_schema_dsn) as other:
        other.execute("UPDATE nodes SET heartbeat_at = heartbeat_at - 60 WHERE id = 'n1'")
        other.commit()
        await store.heartbeat("n2", "host:2", 1.0, 0, LEASE)
        # n1's heartbeat, in a transaction not yet committed.
        other.execute(
            "UPDATE nodes SET heartbeat_at = extract(epoch FROM clock_timestamp()) WHERE id = 'n1'"
        )
        claim = asyncio.create_task(store.claim_due("n2", 1.0, LEASE, 10))
        await asyncio.sleep(0.3)
        assert not claim.done()  # it waits for the heartbeat
        other.commit()
        assert await claim == []


async def test_a_heartbeat_waits_for_a_claim_in_flight_and_reads_its_lease_back_lost(
    store,
    pg_schema_dsn: str,  # noqa: F811
):
    import psycopg

    await _claimed_by_n1(store)
    with psycopg.connect(pg_schema_dsn) as other:
        # n2's claim of n1's task, not yet committed.
        other.execute("UPDATE tasks SET lease_owner = 'n2', fence = fence + 1 WHERE id = 'p'")
        beat = asyncio.create_task(store.heartbeat("n1", "host:1", 1.0, 1, LEASE))
        await asyncio.sleep(0.3)
        assert not beat.done()  # it waits for the claim
        other.commit()
        assert "p" not in (await beat).held
