"""Contract tests of the TaskStore implementations: every test runs against SQLite and
PostgreSQL (the latter marked ``postgres``; its server comes from tests.pgserver)."""

import dataclasses
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from arangotasks.errors import DuplicateTaskError, StoreUnavailableError
from arangotasks.models import Run, RunQuery, RunStatus, RunTrigger, Task
from arangotasks.store import TaskStore, open_store
from arangotasks.store.postgres import PostgresStore
from arangotasks.store.schema import SQLStore
from arangotasks.store.sqlite import SQLiteStore
from tests.pgserver import isolated_schema

Factory = Callable[[], SQLStore]
S, P, F, E, C = (
    RunStatus.SUCCEEDED,
    RunStatus.PROCESSING,
    RunStatus.FAILED,
    RunStatus.ENQUEUED,
    RunStatus.CANCELED,
)


@pytest.fixture
def pg_schema_dsn(pg_dsn: str) -> Iterator[str]:
    with isolated_schema(pg_dsn) as dsn:
        yield dsn


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Factory:
    """Builds unopened stores that all point at the same (fresh) database."""
    if request.param == "sqlite":
        return lambda: SQLiteStore(tmp_path / "data" / "store.sqlite3")
    dsn = request.getfixturevalue("pg_schema_dsn")
    return lambda: PostgresStore(dsn)


@pytest.fixture
async def store(make_store: Factory) -> AsyncIterator[SQLStore]:
    opened = make_store()
    await opened.open()
    yield opened
    await opened.close()


def task(id_: str, **changes: object) -> Task:
    base = Task(
        id=id_, name=f"name {id_}", created=1700000000.25, command="return 1;", database="_system"
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def run(uid: int, task_id: str = "t1", status: RunStatus = S, **changes: object) -> Run:
    base = Run(
        uid=uid,
        task_id=task_id,
        task_name=f"name {task_id}",
        database="_system",
        owner="",
        trigger=RunTrigger.SCHEDULE,
        scheduled_at=1000.0 + uid,
        enqueued_at=1000.5 + uid,
        status=status,
        started_at=None if status is E else 1001.0 + uid,
        finished_at=1002.0 + uid if status not in (E, P) else None,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def uids(runs: list[Run]) -> list[int]:
    return [r.uid for r in runs]


# --- tasks ---------------------------------------------------------------------------------
async def test_task_round_trip_keeps_every_field(store: SQLStore) -> None:
    tasks = [
        task("a", created=0.1 + 0.2, params_json=None),  # a float with no short decimal form
        task("b", created=1732357401.123456789, params_json="null", owner="alice"),
        task("c", params_json='"str"', period_ms=1500, offset_ms=250, is_system=True),
        task("d", params_json='{"a": [1, 2.5]}', timeout=2.5, next_run_at=1732357402.987654321),
        task("e", name="ünïcödé ☃", command="return 'x';\n", database="db2", offset_ms=-1),
        task("f", period_ms=9_000_000_000_000, timeout=None, next_run_at=None),
    ]
    for t in tasks:
        await store.insert_task(t)
    loaded = await store.load_tasks()
    assert loaded == tasks
    assert [type(t.is_system) for t in loaded] == [bool] * len(tasks)
    assert [t.params_json for t in loaded[:3]] == [None, "null", '"str"']


async def test_duplicate_task_id_is_rejected(store: SQLStore) -> None:
    await store.insert_task(task("x", name="first"))
    with pytest.raises(DuplicateTaskError) as info:
        await store.insert_task(task("x", name="second"))
    assert info.value.task_id == "x"
    assert [t.name for t in await store.load_tasks()] == ["first"]


async def test_delete_task_and_creation_order(store: SQLStore) -> None:
    for id_ in ["c", "a", "b", "d"]:
        await store.insert_task(task(id_))
    assert await store.delete_task("a") is True
    assert await store.delete_task("a") is False
    assert await store.delete_task("missing") is False
    assert await store.delete_task("d") is True  # the newest: its position must not be reused
    await store.insert_task(task("a"))
    await store.insert_task(task("d"))
    assert [t.id for t in await store.load_tasks()] == ["c", "b", "a", "d"]


async def test_insert_tasks_in_one_call_reports_duplicates_per_task(store: SQLStore) -> None:
    await store.insert_task(task("b", name="first"))
    assert await store.insert_tasks([task("a"), task("b", name="second"), task("c")]) == [
        True,
        False,
        True,
    ]
    assert await store.insert_tasks([]) == []
    assert [(t.id, t.name) for t in await store.load_tasks()] == [
        ("b", "first"),
        ("a", "name a"),
        ("c", "name c"),
    ]


async def test_delete_tasks_in_one_call(store: SQLStore) -> None:
    for id_ in ["a", "b", "c", "d"]:
        await store.insert_task(task(id_))
    await store.delete_tasks(["b", "missing", "d"])
    await store.delete_tasks([])
    assert [t.id for t in await store.load_tasks()] == ["a", "c"]


async def test_set_next_runs(store: SQLStore) -> None:
    await store.insert_task(task("a", next_run_at=10.0))
    await store.insert_task(task("b", next_run_at=20.0))
    await store.insert_task(task("c", next_run_at=30.0))
    await store.set_next_runs([("a", 11.125), ("c", None), ("unknown", 5.0)])
    await store.set_next_runs([])
    loaded = {t.id: t.next_run_at for t in await store.load_tasks()}
    assert loaded == {"a": 11.125, "b": 20.0, "c": None}


# --- runs ----------------------------------------------------------------------------------
async def test_save_runs_inserts_then_updates(store: SQLStore) -> None:
    assert await store.max_run_uid() == 0
    assert await store.get_run(1) is None
    first = run(1, status=E)
    await store.save_runs([first, run(2, status=P)])
    assert await store.get_run(1) == first
    done = dataclasses.replace(
        first,
        status=F,
        started_at=1.5,
        finished_at=2.75,
        result_json='{"r": "\\u0000"}',
        output=["line 1", "", "ünï \ud800 \x00"],  # lone surrogate and NUL survive
        error={"type": "exception", "name": "Error", "message": "boom", "stack": "at x"},
    )
    await store.save_runs([done])
    assert await store.get_run(1) == done
    assert (await store.get_run(2)) == run(2, status=P)
    assert await store.max_run_uid() == 2
    await store.save_runs([run(7, trigger=RunTrigger.MANUAL)])
    assert await store.max_run_uid() == 7
    assert (await store.get_run(7)) == run(7, trigger=RunTrigger.MANUAL)


async def test_max_run_uid_survives_pruning(store: SQLStore) -> None:
    await store.save_runs([run(5), run(9)])
    assert await store.prune_runs(keep_per_task=0, older_than=0) == 2
    assert await store.max_run_uid() == 9


def _history() -> list[Run]:
    """Runs over three tasks, two owners, two databases, both triggers and every status."""
    statuses = [S, F, P, E, C, S, S, F]
    runs = []
    for uid in range(1, 41):
        status = statuses[uid % len(statuses)]
        runs.append(
            run(
                uid,
                task_id=f"t{uid % 3}",
                status=status,
                owner="alice" if uid % 4 == 0 else "",
                database="db2" if uid % 5 == 0 else "_system",
                trigger=RunTrigger.MANUAL if uid % 6 == 0 else RunTrigger.SCHEDULE,
            )
        )
    return runs


def _matches(r: Run, q: RunQuery) -> bool:
    started = r.started_at
    return (
        (q.statuses is None or r.status in q.statuses)
        and (q.task_ids is None or r.task_id in q.task_ids)
        and (q.trigger is None or r.trigger == q.trigger)
        and (q.before_started_at is None or (started is not None and started < q.before_started_at))
        and (q.after_started_at is None or (started is not None and started > q.after_started_at))
        and (q.owner is None or r.owner == q.owner)
        and (q.database is None or r.database == q.database)
    )


QUERIES = [
    RunQuery(),
    RunQuery(limit=5),
    RunQuery(limit=5, reverse=True),
    RunQuery(limit=7, from_uid=30),
    RunQuery(limit=7, from_uid=30, reverse=True),
    RunQuery(limit=100, from_uid=1),
    RunQuery(limit=3, from_uid=99),
    RunQuery(statuses=frozenset({F, C})),
    RunQuery(statuses=frozenset({E}), limit=2, reverse=True),
    RunQuery(statuses=frozenset()),
    RunQuery(task_ids=frozenset({"t1", "t2"}), limit=4),
    RunQuery(task_ids=frozenset({"nope"})),
    RunQuery(trigger=RunTrigger.MANUAL),
    RunQuery(before_started_at=1011.0),  # run 10 starts at exactly 1011.0: excluded
    RunQuery(after_started_at=1031.0, reverse=True),
    RunQuery(after_started_at=1005.0, before_started_at=1020.0, limit=3, from_uid=15),
    RunQuery(owner="alice"),
    RunQuery(owner=""),
    RunQuery(database="db2", limit=3),
    RunQuery(owner="alice", database="db2", task_ids=frozenset({"t2"})),
    RunQuery(limit=0),
    RunQuery(limit=0, statuses=frozenset({S})),
]


@pytest.mark.parametrize("q", QUERIES, ids=[str(i) for i in range(len(QUERIES))])
async def test_query_runs_matches_reference(store: SQLStore, q: RunQuery) -> None:
    history = _history()
    await store.save_runs(history)
    expected = [r for r in history if _matches(r, q)]
    total = len(expected)
    if not q.reverse:
        expected.reverse()
    if q.from_uid is not None:
        expected = [
            r for r in expected if (r.uid >= q.from_uid if q.reverse else r.uid <= q.from_uid)
        ]
    page, got_total, next_uid = await store.query_runs(q)
    assert page == expected[: q.limit]
    assert got_total == total
    assert next_uid == (expected[q.limit].uid if len(expected) > q.limit else None)


async def test_query_runs_by_hand(store: SQLStore) -> None:
    await store.save_runs(_history())
    page, total, next_uid = await store.query_runs(RunQuery(limit=3))
    assert (uids(page), total, next_uid) == ([40, 39, 38], 40, 37)
    page, total, next_uid = await store.query_runs(RunQuery(limit=3, from_uid=37))
    assert (uids(page), total, next_uid) == ([37, 36, 35], 40, 34)
    page, total, next_uid = await store.query_runs(RunQuery(limit=3, from_uid=3))
    assert (uids(page), total, next_uid) == ([3, 2, 1], 40, None)
    page, total, next_uid = await store.query_runs(RunQuery(limit=3, reverse=True, from_uid=38))
    assert (uids(page), total, next_uid) == ([38, 39, 40], 40, None)
    q = RunQuery(owner="alice", database="db2")
    page, total, next_uid = await store.query_runs(q)
    assert (uids(page), total, next_uid) == ([40, 20], 2, None)
    page, total, next_uid = await store.query_runs(RunQuery(before_started_at=1011.0, limit=20))
    # Run 10 starts at exactly 1011.0; run 3 is enqueued and has no start time.
    assert (uids(page), total) == ([9, 8, 7, 6, 5, 4, 2, 1], 8)
    page, total, next_uid = await store.query_runs(RunQuery(limit=0))
    assert (page, total, next_uid) == ([], 40, 40)


async def test_query_runs_pages_through_everything(store: SQLStore) -> None:
    history = _history()
    await store.save_runs(history)
    for reverse in (False, True):
        seen: list[int] = []
        from_uid: int | None = None
        while True:
            q = RunQuery(limit=7, from_uid=from_uid, reverse=reverse, task_ids=frozenset({"t0"}))
            page, total, from_uid = await store.query_runs(q)
            seen += uids(page)
            assert total == 13
            if from_uid is None:
                break
        expected = [r.uid for r in history if r.task_id == "t0"]
        assert seen == (expected if reverse else expected[::-1])


async def test_query_runs_on_empty_store(store: SQLStore) -> None:
    assert await store.query_runs(RunQuery()) == ([], 0, None)
    assert await store.query_runs(RunQuery(limit=0, reverse=True)) == ([], 0, None)


async def test_fail_unfinished_runs(store: SQLStore) -> None:
    await store.save_runs([run(1, status=E), run(2, status=P), run(3, status=S), run(4, status=C)])
    error = {"type": "crash", "name": "Crash", "message": "server restarted", "stack": ""}
    assert await store.fail_unfinished_runs(5000.5, error) == 2
    enqueued, processing = await store.get_run(1), await store.get_run(2)
    assert enqueued == dataclasses.replace(
        run(1, status=E), status=F, finished_at=5000.5, error=error
    )
    assert processing == dataclasses.replace(
        run(2, status=P), status=F, finished_at=5000.5, error=error
    )
    assert enqueued.started_at is None and processing.started_at == 1003.0
    assert await store.get_run(3) == run(3, status=S)
    assert await store.get_run(4) == run(4, status=C)
    assert await store.fail_unfinished_runs(6000.0, error) == 0


async def test_prune_by_count_keeps_unfinished(store: SQLStore) -> None:
    runs = [run(uid, "a") for uid in range(1, 7)] + [run(7, "b"), run(8, "b")]
    runs[0] = run(1, "a", status=P)  # oldest of a, beyond the count, but still running
    runs[1] = run(2, "a", status=E)
    await store.save_runs(runs)
    assert await store.prune_runs(keep_per_task=3, older_than=0) == 1  # only run 3
    assert uids((await store.query_runs(RunQuery(limit=100)))[0]) == [8, 7, 6, 5, 4, 2, 1]
    assert await store.prune_runs(keep_per_task=1, older_than=0) == 3  # 4, 5 and 7
    assert uids((await store.query_runs(RunQuery(limit=100)))[0]) == [8, 6, 2, 1]


async def test_prune_by_age_keeps_unfinished(store: SQLStore) -> None:
    # finished_at = 1002 + uid; run 4 has an old enqueued time but is still running.
    await store.save_runs([run(1), run(2, status=F), run(3, status=C), run(4, status=P), run(5)])
    assert await store.prune_runs(keep_per_task=100, older_than=1005.0) == 2  # 1, 2; 3 is equal
    assert uids((await store.query_runs(RunQuery(limit=100)))[0]) == [5, 4, 3]
    assert await store.prune_runs(keep_per_task=100, older_than=1e12) == 2
    assert uids((await store.query_runs(RunQuery(limit=100)))[0]) == [4]


async def test_run_stats(store: SQLStore) -> None:
    await store.save_runs(
        [run(1, "a", F), run(2, "b"), run(3, "a"), run(4, "a", F), run(6, "b", E), run(5, "a")]
    )
    stats = await store.run_stats(["a", "b", "none", "a"])
    assert stats == {"a": (4, 2, run(5, "a")), "b": (2, 0, run(6, "b", E)), "none": (0, 0, None)}
    assert await store.run_stats([]) == {}
    many = [f"x{i}" for i in range(1200)] + ["b"]  # more ids than one IN list takes
    stats = await store.run_stats(many)
    assert len(stats) == 1201 and stats["b"][0] == 2 and stats["x7"] == (0, 0, None)


async def test_data_survives_reopen(make_store: Factory) -> None:
    first = make_store()
    await first.open()
    await first.insert_task(task("kept", params_json="null"))
    await first.save_runs([run(3, "kept")])
    await first.close()
    with pytest.raises(StoreUnavailableError):
        await first.load_tasks()  # closed
    second = make_store()
    await second.open()  # the schema exists already
    try:
        assert await second.load_tasks() == [task("kept", params_json="null")]
        assert await second.get_run(3) == run(3, "kept")
        assert await second.max_run_uid() == 3
    finally:
        await second.close()


# --- failures and recovery -----------------------------------------------------------------
async def test_sqlite_read_only_fails_then_recovers(tmp_path: Path) -> None:
    # Tests run as root, which ignores file modes, so the hook reopens the file with mode=ro:
    # SQLite then reports SQLITE_READONLY exactly as for a file its user cannot write.
    store = SQLiteStore(tmp_path / "ro.sqlite3")
    await store.open()
    try:
        await store.insert_task(task("before"))
        await store._set_read_only(True)
        with pytest.raises(StoreUnavailableError, match="readonly"):
            await store.insert_task(task("during"))
        with pytest.raises(StoreUnavailableError):
            await store.save_runs([run(1)])  # still read-only: a new connection is read-only too
        assert [t.id for t in await store.load_tasks()] == ["before"]  # reads still work
        await store._set_read_only(False)
        await store.insert_task(task("after"))
        assert [t.id for t in await store.load_tasks()] == ["before", "after"]
    finally:
        await store.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
async def test_sqlite_unwritable_file_fails_then_recovers(tmp_path: Path) -> None:
    path = tmp_path / "dir" / "perm.sqlite3"
    setup = SQLiteStore(path)
    await setup.open()
    await setup.close()
    path.chmod(0o444)
    path.parent.chmod(0o555)
    store = SQLiteStore(path)
    try:
        try:
            await store.open()
        except StoreUnavailableError:
            pass  # refusing to open is fine too, as long as it is this error
        with pytest.raises(StoreUnavailableError):
            await store.insert_task(task("during"))
        path.parent.chmod(0o755)
        path.chmod(0o644)
        await store.insert_task(task("after"))
        assert [t.id for t in await store.load_tasks()] == ["after"]
    finally:
        path.parent.chmod(0o755)
        path.chmod(0o644)
        await store.close()


async def test_sqlite_locked_database_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "locked.sqlite3"
    store = SQLiteStore(path, busy_timeout=0.05)
    await store.open()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreUnavailableError, match="locked"):
            await store.insert_task(task("x"))
        other.execute("COMMIT")
        await store.insert_task(task("x"))
        assert [t.id for t in await store.load_tasks()] == ["x"]
    finally:
        other.close()
        await store.close()


async def test_sqlite_creates_directories_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "c.sqlite3"
    store = SQLiteStore(path)
    await store.open()
    await store.close()
    await store.close()  # idempotent
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_sqlite_unopenable_path_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    store = SQLiteStore(tmp_path / "file" / "db.sqlite3")
    with pytest.raises(StoreUnavailableError):
        await store.open()
    await store.close()
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"this is not an SQLite database, not at all" * 100)
    store = SQLiteStore(garbage)
    with pytest.raises(StoreUnavailableError):
        await store.open()
    await store.close()


@pytest.mark.postgres
async def test_postgres_reconnects_after_lost_connection(pg_schema_dsn: str) -> None:
    store = PostgresStore(pg_schema_dsn)
    await store.open()
    try:
        await store.insert_task(task("before"))
        with psycopg.connect(pg_schema_dsn, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        with pytest.raises(StoreUnavailableError):
            await store.load_tasks()
        await store.insert_task(task("after"))
        assert [t.id for t in await store.load_tasks()] == ["before", "after"]
    finally:
        await store.close()


@pytest.mark.postgres
async def test_postgres_read_only_is_unavailable(pg_schema_dsn: str) -> None:
    writable = PostgresStore(pg_schema_dsn)
    await writable.open()
    await writable.insert_task(task("x"))
    await writable.close()
    options = conninfo_to_dict(pg_schema_dsn)["options"]
    ro_dsn = make_conninfo(pg_schema_dsn, options=f"{options} -c default_transaction_read_only=on")
    store = PostgresStore(ro_dsn)
    try:
        with pytest.raises(StoreUnavailableError, match="read-only"):
            await store.open()
        with pytest.raises(StoreUnavailableError, match="read-only"):
            await store.insert_task(task("y"))
        assert [t.id for t in await store.load_tasks()] == ["x"]
    finally:
        await store.close()


async def test_postgres_unreachable_server_is_unavailable() -> None:
    store = PostgresStore("host=127.0.0.1 port=1 dbname=x user=x", connect_timeout=2)
    with pytest.raises(StoreUnavailableError):
        await store.open()
    await store.close()


# --- open_store ----------------------------------------------------------------------------
def test_open_store_urls(tmp_path: Path) -> None:
    default = open_store(None, tmp_path)
    assert isinstance(default, SQLiteStore)
    assert default.path == tmp_path / "arangotasks.sqlite3"
    relative = open_store("sqlite:///rel/dir/x.db", tmp_path)
    assert isinstance(relative, SQLiteStore) and relative.path == Path("rel/dir/x.db")
    absolute = open_store("sqlite:////abs/my%20dir/x.db", str(tmp_path))
    assert isinstance(absolute, SQLiteStore) and absolute.path == Path("/abs/my dir/x.db")
    for url in ("postgresql://u:p@h:5/db", "postgres://h/db", "POSTGRESQL://h/db"):
        pg = open_store(url, tmp_path)
        assert isinstance(pg, PostgresStore) and pg._dsn == url


@pytest.mark.parametrize(
    "url",
    [
        "",
        "/var/lib/x.db",
        "mysql://h/db",
        "sqlite://host/x.db",
        "sqlite:///",
        "sqlite:////",
        "sqlite:///dir/",
        "sqlite:x.db",
        "sqlite:///x.db?mode=ro",
    ],
)
def test_open_store_rejects_bad_urls(url: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="URL"):
        open_store(url, tmp_path)


def test_open_store_hides_credentials() -> None:
    with pytest.raises(ValueError) as info:
        open_store("mysql://user:secret@h/db", ".")
    assert "secret" not in str(info.value)


async def test_open_store_default_is_usable(tmp_path: Path) -> None:
    store: TaskStore = open_store(None, tmp_path / "data")
    await store.open()
    await store.insert_task(task("t"))
    await store.close()
    assert (tmp_path / "data" / "arangotasks.sqlite3").is_file()


def test_a_postgresql_url_without_psycopg_is_one_line_naming_the_extra(tmp_path: Path) -> None:
    """Without the ``[postgres]`` extra, ``serve --store postgresql://...`` used to end in a
    26-line ImportError traceback; now it is one line that says what to install."""
    import subprocess
    import sys

    # psycopg is installed here (dev extra): hide it the way a missing package looks.
    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        "from arangotasks.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    args = ["serve", "--port", "0", "--data-dir", str(tmp_path), "--store", "postgresql://h/db"]
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "arangotasks[postgres]" in lines[0]
