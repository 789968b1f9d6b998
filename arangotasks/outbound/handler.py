"""The ``http.request`` host-call handler: the allowlist of the run's database, the per-run
limits, and the one HTTP client session of the server."""

import tomllib
from typing import Any

import aiohttp

from arangotasks.config import Settings
from arangotasks.outbound.allowlist import Allowlist
from arangotasks.outbound.client import Limits, Request, perform
from arangotasks.sandbox.host import HostCalls, HostRun

SETTING = "ARANGOTASKS_HTTP_ALLOW"
# The config file's table of per-database allowlists: [http_allow] NAME = ["rule", ...]
CONFIG_TABLE = "http_allow"
USER_AGENT = "arangotasks"


def load_overrides(settings: Settings) -> dict[str, list[str]]:
    """The per-database allowlists of the config file (``[http_allow]`` table), checked."""
    if settings.config is None:
        return {}
    try:
        data = tomllib.loads(settings.config.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"config file {settings.config}: {exc}") from exc
    table = data.get(CONFIG_TABLE, {})
    if not isinstance(table, dict):
        raise ValueError(f"config: [{CONFIG_TABLE}] must be a table of database = [rules]")
    overrides: dict[str, list[str]] = {}
    for database, rules in table.items():
        if not (isinstance(rules, list) and all(isinstance(rule, str) for rule in rules)):
            raise ValueError(f"config: [{CONFIG_TABLE}] {database}: a list of rule strings")
        overrides[database] = rules
    return overrides


class Outbound:
    """Carries out the ``http.request`` host calls of every run.

    :param overrides: per-database rules replacing ``ARANGOTASKS_HTTP_ALLOW`` for that database
        (see :func:`load_overrides`); a rule that does not parse is a :class:`ValueError` here.
    """

    def __init__(self, settings: Settings, overrides: dict[str, list[str]] | None = None) -> None:
        own = [(settings.host, settings.port)]
        self._default = Allowlist.from_text(settings.http_allow, SETTING, own)
        self._per_database = {
            database: Allowlist(rules, f"the config file's [{CONFIG_TABLE}] {database}", own)
            for database, rules in (overrides or {}).items()
        }
        self._limits = Limits(
            settings.http_max_requests, int(settings.http_max_response_mb * 1024 * 1024)
        )
        self._session: aiohttp.ClientSession | None = None

    def register(self, calls: HostCalls) -> None:
        calls.register("http.request", self.request)

    def allowlist(self, database: str) -> Allowlist:
        return self._per_database.get(database, self._default)

    async def request(self, run: HostRun, args: Any) -> dict[str, Any]:
        """The handler: one request of ``run`` (its redirects included)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=256, use_dns_cache=False),
                cookie_jar=aiohttp.DummyCookieJar(),  # no cookies shared between runs
                trust_env=False,  # no proxy from the environment: we connect where we checked
                headers={"user-agent": USER_AGENT},
            )
        request = Request.from_args(args)
        return await perform(
            self._session, self.allowlist(run.database), self._limits, run, request
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
