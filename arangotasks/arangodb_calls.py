"""The ``arangodb.*`` host calls: task code's ``db`` (arangotasks/sandbox/arangodb_db.js) reaches
the :class:`~arangotasks.arangodb_bridge.Bridge` through them.

- ``arangodb.info``: ``{"database": name}`` when an ArangoDB is configured for the run's database,
  else the clear error that ``require('@arangodb').db`` has always thrown.
- ``arangodb.request``: ``{"method", "path", "body"}`` -> ``{"status", "body"}``; every call is
  recorded in the run's ``requests``; the run's unfinished cursors are deleted when it ends.
"""

import time
from typing import Any

from arangotasks.arangodb_bridge import Bridge, BridgeError, BridgeScope, load_bridge_config
from arangotasks.config import Settings
from arangotasks.sandbox.host import HostCallError, HostCalls, HostRun

NOT_CONFIGURED = (
    "database access (require('@arangodb').db) is not available in arangotasks: no ArangoDB is "
    "configured for "
    "database {database!r} (set ARANGOTASKS_ARANGODB_URL, or [arangodb.databases.{database}] in "
    "the config file)"
)
_STATE = "arangodb"
MAX_RECORDED = 1000  # entries of a run's requests list that db calls may fill


class ArangoCalls:
    """Registers the handlers; one per app, around the app's :class:`Bridge`.

    :param max_calls: db calls one run may make (beyond: the run fails, type ``db_limit``).
    """

    def __init__(self, bridge: Bridge, max_calls: int) -> None:
        self.bridge = bridge
        self.max_calls = max_calls

    def register(self, calls: HostCalls) -> None:
        calls.register("arangodb.info", self.info)
        calls.register("arangodb.request", self.request)

    async def info(self, run: HostRun, args: Any) -> dict[str, Any]:
        target = self.bridge.config.target(run.database)
        if target is None:
            raise HostCallError(NOT_CONFIGURED.format(database=run.database))
        return {"database": run.database}

    def _scope(self, run: HostRun) -> BridgeScope:
        scope = run.state.get(_STATE)
        if scope is None:
            scope = self.bridge.scope(run.database, time.monotonic() + run.remaining())
            run.state[_STATE] = scope
            run.closers.append(scope.close)
        assert isinstance(scope, BridgeScope)
        return scope

    async def request(self, run: HostRun, args: Any) -> dict[str, Any]:
        if not isinstance(args, dict):
            raise HostCallError("arangodb.request: expecting {method, path, body}")
        method, path, body = args.get("method"), args.get("path"), args.get("body")
        if not (isinstance(method, str) and isinstance(path, str)):
            raise HostCallError("arangodb.request: method and path must be strings")
        if body is not None and not isinstance(body, str):
            raise HostCallError("arangodb.request: body must be JSON text")
        run.check_time()
        scope = self._scope(run)
        if len(scope.records) >= self.max_calls:
            raise HostCallError(
                f"more than {self.max_calls} db calls in one run (ARANGOTASKS_ARANGODB_MAX_CALLS)",
                fatal="db_limit",
            )
        before = len(scope.records)
        try:
            return await scope.call(method, path, body)
        except BridgeError as exc:
            if run.remaining() <= 0:
                raise HostCallError(str(exc), name="InternalError", fatal="timeout") from None
            raise HostCallError(str(exc)) from None
        finally:
            run.redact.update(scope.passwords)  # masked in everything the run shows
            for record in scope.records[before:]:
                if len(run.requests) < MAX_RECORDED:
                    run.requests.append(record.to_api())


def install(settings: Settings, calls: HostCalls) -> Bridge:
    """The app's bridge, from the settings and the config file, with its handlers registered;
    the app closes it on cleanup."""
    config = load_bridge_config(
        settings.arangodb_url,
        settings.arangodb_user,
        settings.arangodb_password,
        settings.arangodb_password_secret,
        settings.config,
    )
    bridge = Bridge(config)
    ArangoCalls(bridge, settings.arangodb_max_calls).register(calls)
    return bridge
