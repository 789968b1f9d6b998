"""The host calls of ``require('@arangotasks/secrets')``: ``secrets.get`` and ``secrets.has``.

Both act on the database of the run (``HostRun.database``, the task's), never on one the
command names, so a task can only reach its own database's secrets. Every value a run reads is
added to its ``redact`` set: the pool masks it in everything the run shows (arangotasks.redact).
"""

from collections.abc import Awaitable, Callable
from typing import Any

from arangotasks.config import Settings
from arangotasks.errors import StoreUnavailableError
from arangotasks.sandbox.host import HostCallError, HostCalls, HostRun
from arangotasks.store import TaskStore, open_store
from arangotasks.store.sqlite import SQLiteStore
from arangotasks.vault import SecretKeyError, SecretNotFoundError, Vault

GET = "secrets.get"
HAS = "secrets.has"


def _name(args: Any) -> str:
    name = args.get("name") if isinstance(args, dict) else None
    if not isinstance(name, str):
        raise HostCallError("a secret's name must be a string", name="TypeError")
    return name


def register_secret_calls(
    calls: HostCalls,
    vault: Vault | Callable[[], Awaitable[Vault]],
    reserved: frozenset[str] = frozenset(),
) -> None:
    """Register the handlers of the secrets module on ``calls``; ``vault`` may be a coroutine
    function that gives the vault on first use (see :class:`StoreVault`). ``reserved``: names of
    ``_system`` secrets that task code may not read (the db bridge's ArangoDB passwords)."""

    async def the_vault() -> Vault:
        return vault if isinstance(vault, Vault) else await vault()

    async def get(run: HostRun, args: Any) -> str:
        name = _name(args)
        if run.database == "_system" and name in reserved:
            raise HostCallError(
                f"secret '{name}' holds the db bridge's ArangoDB password: task code cannot read it"
            )
        try:
            value = await (await the_vault()).reveal(run.database, name)
        except SecretNotFoundError as exc:
            raise HostCallError(str(exc)) from None
        except SecretKeyError as exc:
            raise HostCallError(str(exc), name="SecretKeyError") from None
        except StoreUnavailableError as exc:
            raise HostCallError(f"secrets unavailable: the task store failed ({exc})") from None
        run.redact.add(value)
        return value

    async def has(run: HostRun, args: Any) -> bool:
        try:
            return await (await the_vault()).exists(run.database, _name(args))
        except StoreUnavailableError as exc:
            raise HostCallError(f"secrets unavailable: the task store failed ({exc})") from None

    calls.register(GET, get)
    calls.register(HAS, has)


class StoreVault:
    """The server's secrets for ``arangotasks run``: its store (the same settings) is opened
    when the command first reads a secret, and never created: a command that reads none, or a
    machine without a store, leaves no file behind."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._store: TaskStore | None = None
        self._vault: Vault | None = None

    async def __call__(self) -> Vault:
        if self._vault is None:
            store = open_store(self._settings.store, self._settings.data_dir)
            if isinstance(store, SQLiteStore) and not store.path.exists():
                raise HostCallError(
                    f"no secrets: there is no store at {store.path} (arangotasks run reads the "
                    "secrets of _system from the server's store: set ARANGOTASKS_DATA_DIR or "
                    "ARANGOTASKS_STORE)"
                )
            await store.open()
            self._store = store
            self._vault = Vault(store, self._settings)
        return self._vault

    async def close(self) -> None:
        if self._store is not None:
            await self._store.close()
