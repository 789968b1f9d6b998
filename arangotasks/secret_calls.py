"""The host calls of ``require('@arangotasks/secrets')``: ``secrets.get`` and ``secrets.has``.

Both act on the database of the run (``HostRun.database``, the task's), never on one the
command names, so a task can only reach its own database's secrets. Every value a run reads is
added to its ``redact`` set: the pool masks it in everything the run shows (arangotasks.redact).
"""

from typing import Any

from arangotasks.errors import StoreUnavailableError
from arangotasks.sandbox.host import HostCallError, HostCalls, HostRun
from arangotasks.vault import SecretKeyError, SecretNotFoundError, Vault

GET = "secrets.get"
HAS = "secrets.has"


def _name(args: Any) -> str:
    name = args.get("name") if isinstance(args, dict) else None
    if not isinstance(name, str):
        raise HostCallError("a secret's name must be a string", name="TypeError")
    return name


def register_secret_calls(calls: HostCalls, vault: Vault) -> None:
    """Register the handlers of the secrets module on ``calls``."""

    async def get(run: HostRun, args: Any) -> str:
        name = _name(args)
        try:
            value = await vault.reveal(run.database, name)
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
            return await vault.exists(run.database, _name(args))
        except StoreUnavailableError as exc:
            raise HostCallError(f"secrets unavailable: the task store failed ({exc})") from None

    calls.register(GET, get)
    calls.register(HAS, has)
