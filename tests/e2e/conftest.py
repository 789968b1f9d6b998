"""Fixtures of the end-to-end tests."""

import pytest


@pytest.fixture
def pg_url(pg_dsn):
    """A fresh PostgreSQL database, as the URL a user would pass to ``--store``."""
    import uuid

    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(pg_dsn)
    name = f"e2e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield f"postgresql://{info.get('user', 'postgres')}@{info['host']}:{info['port']}/{name}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
