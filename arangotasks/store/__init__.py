"""Durable storage of tasks and runs: SQLite (default) or PostgreSQL."""

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from arangotasks.store.base import TaskStore

__all__ = ["TaskStore", "open_store"]

DEFAULT_SQLITE_NAME = "arangotasks.sqlite3"
_FORMS = "sqlite:///relative/path, sqlite:////absolute/path, postgresql://... or postgres://..."


def open_store(url: str | None, data_dir: str | Path, **postgres: Any) -> TaskStore:
    """The store that ``url`` names (not opened yet).

    ``None`` is SQLite at ``<data_dir>/arangotasks.sqlite3``; ``sqlite:///rel`` is a path relative
    to the working directory and ``sqlite:////abs`` an absolute one; ``postgresql://`` and
    ``postgres://`` URLs go to libpq unchanged. Anything else raises ``ValueError``.

    :param postgres: options of :class:`~arangotasks.store.postgres.PostgresStore` (timeouts,
        ``exclusive``), ignored for SQLite.
    """
    if url is None:
        from arangotasks.store.sqlite import SQLiteStore

        return SQLiteStore(Path(data_dir) / DEFAULT_SQLITE_NAME)
    scheme, sep, _ = url.partition("://")
    scheme = scheme.lower()
    if sep and scheme in ("postgresql", "postgres"):
        # Imported here so that psycopg stays optional for SQLite deployments.
        try:
            from arangotasks.store.postgres import PostgresStore
        except ImportError as exc:
            raise ValueError(
                f"a PostgreSQL store needs psycopg, which is not installed ({exc}); "
                "install the extra: pip install 'arangotasks[postgres]'"
            ) from None

        return PostgresStore(url, **postgres)
    if sep and scheme == "sqlite":
        from arangotasks.store.sqlite import SQLiteStore

        return SQLiteStore(_sqlite_path(url))
    shown = f"scheme {scheme!r}" if sep else "a value without a scheme"
    raise ValueError(f"unsupported store URL ({shown}); expected one of: {_FORMS}")


def _sqlite_path(url: str) -> Path:
    parts = urlsplit(url)
    # sqlite:///x has the path "/x" (relative x); sqlite:////x has "//x" (absolute /x).
    if parts.netloc or not parts.path.startswith("/") or parts.query or parts.fragment:
        raise ValueError(f"invalid SQLite store URL {url!r}; expected {_FORMS}")
    path = unquote(parts.path[1:])
    if not path or path.endswith("/"):
        raise ValueError(f"SQLite store URL {url!r} names no file")
    return Path(path)
