"""SQL of the secret store: one row per (database, name), the value only as a Fernet token.

A mixin of ``SQLStore`` (both backends), kept apart from the task and run SQL so that each
concern stays in its own module. Encryption happens above the store (``arangotasks.vault``):
nothing here ever sees a plain value.
"""

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Row = tuple[Any, ...]

SECRET_COLUMNS = ("database", "name", "token", "key_id", "created", "updated")
_SELECT = ", ".join(SECRET_COLUMNS)


def secret_schema(real: str) -> list[str]:
    """DDL of the secrets table (``real`` is the dialect's 8-byte float column type)."""
    return [
        f"""CREATE TABLE IF NOT EXISTS secrets (
            database TEXT NOT NULL,
            name TEXT NOT NULL,
            token TEXT NOT NULL,
            key_id TEXT NOT NULL,
            created {real} NOT NULL,
            updated {real} NOT NULL,
            PRIMARY KEY (database, name))""",
    ]


@dataclass(frozen=True, slots=True)
class SecretRecord:
    """A stored secret. ``token`` is the Fernet token of the value, ``key_id`` names the key
    that made it (a fingerprint, so that a lost or replaced key is recognised as such)."""

    database: str
    name: str
    token: str
    key_id: str
    created: float  # epoch seconds
    updated: float


# Insert or replace the value; ``created`` survives a replacement. The WHERE clause refuses a
# new name once the database holds the maximum number of other secrets (SQLite needs a WHERE
# on an INSERT ... SELECT with ON CONFLICT in any case).
_UPSERT = f"""INSERT INTO secrets ({_SELECT})
    SELECT ?, ?, ?, ?, ?, ? WHERE (
        SELECT COUNT(*) FROM secrets WHERE database = ? AND name <> ?) < ?
    ON CONFLICT (database, name) DO UPDATE SET
        token = excluded.token, key_id = excluded.key_id, updated = excluded.updated
    RETURNING {_SELECT}"""


class SecretRows(ABC):
    """The secret methods of ``TaskStore`` on top of ``SQLStore._execute``."""

    @abstractmethod
    async def _execute(self, stmts: Sequence[Any], *, write: bool) -> list[Any]: ...

    async def _secret_sql(self, sql: str, params: Sequence[Any], *, write: bool) -> Any:
        # schema.py imports this module for the mixin: import its Stmt when first used.
        from arangotasks.store.schema import Stmt

        return (await self._execute([Stmt(sql, params, fetch=True)], write=write))[0]

    async def put_secret(self, record: SecretRecord, max_count: int) -> SecretRecord | None:
        row = (*(getattr(record, c) for c in SECRET_COLUMNS), record.database, record.name)
        result = await self._secret_sql(_UPSERT, (*row, max_count), write=True)
        return SecretRecord(*result.rows[0]) if result.rows else None

    async def get_secret(self, database: str, name: str) -> SecretRecord | None:
        sql = f"SELECT {_SELECT} FROM secrets WHERE database = ? AND name = ?"
        result = await self._secret_sql(sql, (database, name), write=False)
        return SecretRecord(*result.rows[0]) if result.rows else None

    async def list_secrets(self, database: str) -> list[SecretRecord]:
        sql = f"SELECT {_SELECT} FROM secrets WHERE database = ? ORDER BY name"
        result = await self._secret_sql(sql, (database,), write=False)
        return [SecretRecord(*row) for row in result.rows]

    async def delete_secret(self, database: str, name: str) -> bool:
        sql = "DELETE FROM secrets WHERE database = ? AND name = ? RETURNING name"
        result = await self._secret_sql(sql, (database, name), write=True)
        return bool(result.rows)

    async def secret_key_ids(self) -> dict[str, int]:
        sql = "SELECT key_id, COUNT(*) FROM secrets GROUP BY key_id ORDER BY key_id"
        result = await self._secret_sql(sql, (), write=False)
        return {str(key_id): int(count) for key_id, count in result.rows}
