"""``arangotasks run`` reads the secrets of _system from the server's store (same settings)."""

import asyncio

from arangotasks.config import Settings
from arangotasks.runfile import run_file
from arangotasks.store.sqlite import SQLiteStore
from arangotasks.vault import Vault

VALUE = "run-file-s3cret"
COMMAND = (
    "var s = require('@arangotasks/secrets'); print(s.get('api'));"
    " return [s.has('api'), s.get('api').split('').reverse().join('')];"
)


async def _store_secret(data_dir) -> None:
    store = SQLiteStore(data_dir / "arangotasks.sqlite3")
    await store.open()
    try:
        await Vault(store, Settings(data_dir=data_dir)).put("_system", "api", VALUE)
    finally:
        await store.close()


def test_run_reads_the_servers_secret_masked(tmp_path, capsys, monkeypatch):
    data_dir = tmp_path / "data"
    asyncio.run(_store_secret(data_dir))
    monkeypatch.setenv("ARANGOTASKS_DATA_DIR", str(data_dir))
    path = tmp_path / "c.js"
    path.write_text(COMMAND)
    assert run_file(str(path), None, None) == 0
    out = capsys.readouterr().out
    assert out == f'output:\n  ***\nresult: [true,"{VALUE[::-1]}"]\n'


def test_without_a_store_it_says_so_and_creates_nothing(tmp_path, capsys, monkeypatch):
    data_dir = tmp_path / "none"
    monkeypatch.setenv("ARANGOTASKS_DATA_DIR", str(data_dir))
    path = tmp_path / "c.js"
    path.write_text("return require('@arangotasks/secrets').has('api');")
    assert run_file(str(path), None, None) == 1
    out = capsys.readouterr().out
    assert "error (exception): Error: no secrets: there is no store at" in out
    assert not data_dir.exists()
