"""The versioned migrations of the store's schema: ``migrations(d)[n]`` takes a store from
version ``n - 1`` to ``n`` and keeps every row (``SQLStore._create_schema`` runs them, one
transaction per version, and stamps the version in ``store_meta``)."""

from arangotasks.store.schema import UNFINISHED, Dialect

SCHEMA_VERSION = 4


def migrations(d: Dialect) -> dict[int, list[str]]:
    """The statements that take a store from version ``n - 1`` to ``n``, keeping every row."""
    add_task, add_run = f"ALTER TABLE tasks {d.add_clause}", f"ALTER TABLE runs {d.add_clause}"
    return {
        2: [
            # Schedule extensions (cron, retries, pause, ...) and revisions.
            f"{add_task} cron TEXT",
            f"{add_task} timezone TEXT",
            f"{add_task} jitter {d.real}",
            f"{add_task} start_at {d.real}",
            f"{add_task} end_at {d.real}",
            f"{add_task} retries TEXT",
            f"{add_task} overlap TEXT",
            f"{add_task} misfire TEXT",
            f"{add_task} enabled INTEGER NOT NULL DEFAULT 1",
            f"{add_task} revision {d.bigint} NOT NULL DEFAULT 1",
            f"{add_run} attempt INTEGER NOT NULL DEFAULT 1",
            f"{add_run} revision {d.bigint} NOT NULL DEFAULT 1",
        ],
        3: [
            # A task's own failure webhook URL (Task.notify); NULL for every older task.
            f"{add_task} notify TEXT",
        ],
        4: [f"{add_run} node TEXT", *(_cluster_schema(d) if d.shared else [])],
    }


def _cluster_schema(d: Dialect) -> list[str]:
    """Several nodes on one PostgreSQL (see arangotasks/claims.py): the lease of each task, the
    occurrence fence of each scheduled run, run uids from a sequence, and the nodes."""
    add_task, add_run = f"ALTER TABLE tasks {d.add_clause}", f"ALTER TABLE runs {d.add_clause}"
    return [
        f"{add_task} lease_owner TEXT",
        f"{add_task} lease_until {d.real}",
        f"{add_task} fence {d.bigint} NOT NULL DEFAULT 0",
        # The slot a scheduled run stands for; unique per task and attempt: one run per slot.
        f"{add_run} fence_slot {d.real}",
        "CREATE UNIQUE INDEX IF NOT EXISTS runs_occurrence ON runs (task_id, fence_slot, attempt)"
        " WHERE fence_slot IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS tasks_due ON tasks (next_run_at) WHERE next_run_at IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS tasks_lease_owner ON tasks (lease_owner)",
        "CREATE INDEX IF NOT EXISTS runs_node_unfinished ON runs (node) WHERE status IN "
        f"({UNFINISHED})",
        # Uids continue after the highest one a single server allocated.
        "CREATE SEQUENCE IF NOT EXISTS run_uids AS BIGINT",
        "SELECT setval('run_uids', GREATEST((SELECT COALESCE(MAX(uid), 0) FROM runs),"
        " (SELECT value FROM store_meta WHERE key = 'max_run_uid')) + 1, false)",
        f"""CREATE TABLE IF NOT EXISTS nodes (
            id TEXT PRIMARY KEY,
            address TEXT NOT NULL,
            started_at {d.real} NOT NULL,
            heartbeat_at {d.real} NOT NULL,
            held {d.bigint} NOT NULL DEFAULT 0,
            stopped INTEGER NOT NULL DEFAULT 0)""",
    ]
