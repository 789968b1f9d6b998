"""A store written by an older release (schema version 1, or 2 before tasks had ``notify``) is
upgraded in place on open, keeping every task and run (SQLite and PostgreSQL)."""

import dataclasses
from pathlib import Path

import pytest

from arangotasks.models import NO_OPTIONS, Options, Overlap, Retries, RunQuery
from arangotasks.store import migrations as schema_migrations
from arangotasks.store.migrations import SCHEMA_VERSION, migrations
from arangotasks.store.postgres import PostgresStore
from arangotasks.store.schema import POSTGRES, SQLITE, SQLStore, Stmt
from arangotasks.store.sqlite import SQLiteStore
from tests.unit.test_store import pg_schema_dsn, run, task  # noqa: F401  (fixture)

V1_TASK = (
    "id, name, created, command, database, owner, period_ms, offset_ms, params_json, "
    "is_system, timeout, next_run_at"
)
V1_RUN = (
    "uid, task_id, task_name, database, owner, trigger, status, scheduled_at, enqueued_at, "
    "started_at, finished_at, result_json, output, error"
)


def _first_release(store: SQLStore) -> SQLStore:
    """``store`` opening as the first release did: version 1 tables, no migrations."""

    async def create_v1() -> None:
        await store._execute(store._schema(), write=True)

    store._create_schema = create_v1  # type: ignore[method-assign]
    return store


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def make(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "sqlite":
        return lambda: SQLiteStore(tmp_path / "store.sqlite3")
    dsn = request.getfixturevalue("pg_schema_dsn")
    return lambda: PostgresStore(dsn)


async def test_version_1_data_survives_the_migration(make) -> None:
    old = _first_release(make())
    await old.open()
    rows = [
        (
            "a",
            "alpha",
            1700000000.5,
            "return 1;",
            "_system",
            "",
            2500,
            0,
            '{"x":1}',
            0,
            3.0,
            9.5,
        ),
        ("b", "beta", 1700000001.0, "return 2;", "shop", "app", None, 100, None, 1, None, None),
    ]
    await old._execute(
        [
            Stmt(
                f"INSERT INTO tasks ({V1_TASK}, seq) "
                f"VALUES ({', '.join('?' * 12)}, {old._dialect.next_seq})",
                many=rows,
            ),
            Stmt(
                f"INSERT INTO runs ({V1_RUN}) VALUES ({', '.join('?' * 14)})",
                (
                    7,
                    "a",
                    "alpha",
                    "_system",
                    "",
                    "schedule",
                    "succeeded",
                    1.0,
                    1.0,
                    1.5,
                    2.0,
                    "1",
                    "[]",
                    None,
                ),
            ),
        ],
        write=True,
    )
    await old.close()

    store = make()
    await store.open()
    try:
        tasks = await store.load_tasks()
        assert [(t.id, t.name, t.period_ms, t.params_json, t.next_run_at) for t in tasks] == [
            ("a", "alpha", 2500, '{"x":1}', 9.5),
            ("b", "beta", None, None, None),
        ]
        assert all(t.options is NO_OPTIONS and t.revision == 1 for t in tasks)
        assert tasks[1].is_system and tasks[1].owner == "app" and tasks[0].timeout == 3.0
        (old_run,), total, _ = await store.query_runs(RunQuery())
        assert (old_run.uid, old_run.attempt, old_run.revision, total) == (7, 1, 1, 1)
        meta = "SELECT value FROM store_meta WHERE key = 'schema_version'"
        version = await store._one(Stmt(meta, fetch=True), write=False)
        assert version.rows[0][0] == SCHEMA_VERSION
        # The new columns work on the migrated tables.
        options = Options(
            cron="0 3 * * *",
            timezone="Europe/Berlin",
            jitter=1.5,
            start_at=10.0,
            end_at=20.0,
            retries=Retries(2, 1.0, 2.0, None),
            overlap=Overlap.BUFFER,
            misfire="skip",
            enabled=False,
        )
        changed = task("a", options=options, revision=4, created=tasks[0].created)
        assert await store.update_task(changed)
        await store.save_runs([run(8, "a", attempt=2, revision=4)])
    finally:
        await store.close()

    again = make()
    await again.open()  # a second open finds the latest version and changes nothing
    try:
        reloaded = {t.id: t for t in await again.load_tasks()}
        assert reloaded["a"].options == options and reloaded["a"].revision == 4
        newest = await again.get_run(8)
        assert newest is not None and (newest.attempt, newest.revision) == (2, 4)
    finally:
        await again.close()


# The tasks columns of schema version 2 (the schedule extensions), before ``notify``.
V2_TASK = (
    f"{V1_TASK}, cron, timezone, jitter, start_at, end_at, retries, overlap, misfire, enabled, "
    "revision"
)


def _notify_version() -> int:
    """The migration that adds tasks.notify (its number may move when others land first)."""
    found = [n for n, sqls in migrations(POSTGRES).items() if any(" notify " in s for s in sqls)]
    (version,) = found
    return version


async def test_version_2_tasks_gain_notify_and_look_as_before(make, monkeypatch) -> None:
    before = _notify_version() - 1
    limited = {n: s for n, s in migrations(SQLITE).items() if n <= before}
    monkeypatch.setattr(
        schema_migrations,
        "migrations",
        lambda d: {n: s for n, s in migrations(d).items() if n in limited},
    )
    old = make()
    await old.open()  # a store as the release before notify left it
    no_options = (None,) * 8
    rows = [
        ("a", "alpha", 1700000000.5, "return 1;", "_system", "", 2500, 0, None, 0, None, 9.5,
         *no_options, 1, 3),
        ("c", "cron", 1700000002.0, "return 3;", "shop", "app", None, 0, "[1]", 0, 2.0, 11.0,
         "0 3 * * *", "Europe/Berlin", None, None, None, None, None, None, 0, 1),
    ]  # fmt: skip
    await old._execute(
        [
            Stmt(
                f"INSERT INTO tasks ({V2_TASK}, seq) "
                f"VALUES ({', '.join('?' * 22)}, {old._dialect.next_seq})",
                many=rows,
            )
        ],
        write=True,
    )
    await old.close()
    monkeypatch.undo()

    store = make()
    await store.open()
    try:
        meta = "SELECT value FROM store_meta WHERE key = 'schema_version'"
        version = await store._one(Stmt(meta, fetch=True), write=False)
        assert version.rows[0][0] == SCHEMA_VERSION
        a, c = await store.load_tasks()
        assert (a.notify, c.notify) == (None, None)
        assert (a.revision, c.options.cron, c.options.enabled) == (3, "0 3 * * *", False)
        # What an ArangoDB client sees has not changed, key order included.
        assert list(a.to_api()) == [
            "id",
            "name",
            "created",
            "type",
            "period",
            "offset",
            "command",
            "database",
        ]
        assert list(c.to_api())[-2:] == ["cron", "timezone"]
        hooked = dataclasses.replace(a, notify="https://hooks.example.com/a", revision=4)
        assert await store.update_task(hooked)
        await store.insert_task(task("d", notify="http://127.0.0.1:9/d"))
    finally:
        await store.close()

    again = make()
    await again.open()
    try:
        reloaded = {t.id: t for t in await again.load_tasks()}
        assert reloaded["a"].notify == "https://hooks.example.com/a"
        assert reloaded["a"].to_api()["notify"] == "https://hooks.example.com/a"
        assert (reloaded["c"].notify, reloaded["d"].notify) == (None, "http://127.0.0.1:9/d")
    finally:
        await again.close()


@pytest.mark.postgres
async def test_a_single_server_postgresql_store_becomes_a_cluster_store(
    pg_schema_dsn: str,  # noqa: F811  (the fixture imported above)
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The last single-server version to the cluster's: tasks and runs stay, run uids continue
    after the highest one, and the tasks can be claimed and fenced."""
    from arangotasks.history import History
    from arangotasks.models import RunStatus, RunTrigger
    from arangotasks.store import migrations as versions
    from arangotasks.store.cluster_rows import Admission, Opening

    every = versions.migrations
    # The store as the last single-server release left it: every migration before the cluster's.
    cluster_version = SCHEMA_VERSION
    monkeypatch.setattr(
        versions, "migrations", lambda d: {n: s for n, s in every(d).items() if n < cluster_version}
    )
    old = PostgresStore(pg_schema_dsn)
    await old.open()
    await old.insert_task(task("a", next_run_at=9.5))
    await old._execute(
        [
            Stmt(
                f"INSERT INTO runs ({V1_RUN}) VALUES ({', '.join('?' * 14)})",
                (
                    41,
                    "a",
                    "a",
                    "_system",
                    "",
                    "schedule",
                    "processing",
                    1.0,
                    1.0,
                    1.5,
                    None,
                    None,
                    "[]",
                    None,
                ),
            )
        ],
        write=True,
    )
    await old.close()
    monkeypatch.setattr(versions, "migrations", every)

    store = PostgresStore(pg_schema_dsn)
    await store.open()
    try:
        (stored,) = await store.load_tasks()
        assert stored.id == "a" and stored.next_run_at == 9.5
        old_run = await store.get_run(41)
        assert old_run is not None and old_run.node is None
        # A run of the last life of a single server is a crash when a node starts.
        assert await store.fail_own_runs("n1", {"type": "crash"}) == 1
        await store.heartbeat("n1", "host:1", 1.0, 0, 3.0)  # n1 is alive: its leases hold
        [claimed] = await store.claim_due("n1", 1.0, 3.0, 10)
        assert (claimed.task.id, claimed.fence, claimed.last_slot) == ("a", 1, None)
        assert not claimed.taken_over
        assert await store.claim_due("n2", 1.0, 3.0, 10) == []  # held by n1
        build = History.build_run
        first = build(stored, RunTrigger.SCHEDULE, 9.5, status=RunStatus.ENQUEUED)
        again = build(stored, RunTrigger.SCHEDULE, 9.5, status=RunStatus.ENQUEUED)
        stale = build(stored, RunTrigger.SCHEDULE, 10.5, status=RunStatus.ENQUEUED)
        verdicts = await store.admit_runs("n1", [Opening(first, 1, 9.5)], 3.0)
        assert verdicts == [Admission.ADMITTED] and first.uid > 41 and first.node == "n1"
        taken = await store.admit_runs("n1", [Opening(again, 1, 9.5)], 3.0)
        assert taken == [Admission.SLOT_TAKEN]
        lost = await store.admit_runs("n1", [Opening(stale, 0, 10.5)], 3.0)
        assert lost == [Admission.CLAIM_LOST]
    finally:
        await store.close()
