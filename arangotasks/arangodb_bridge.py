"""The ``db`` bridge: task code's ArangoDB calls, sent by the server to the user's real ArangoDB.

Task JavaScript (``arangotasks/sandbox/arangodb_db.js``) sees arangosh's ``db`` API; each of its
calls reaches :meth:`BridgeScope.call` as ``(method, path, body)`` with a path relative to the
database (``/_api/cursor``, ``/_api/document/...``, ``/_api/collection/...``). Only those
endpoints, methods and query options are forwarded, to the ArangoDB configured for the task's
database, with the configured credentials: task code never sees them (they are added here, and no
error text carries them). Cursors a run leaves unfinished are deleted when the run ends.

Configuration: ``ARANGOTASKS_ARANGODB_URL``/``_USER``/``_PASSWORD`` (or ``_PASSWORD_SECRET``, the
name of a secret), and per database in the config file::

    [arangodb.databases.sales]
    url = "http://sales-db:8529"
    database = "sales"          # the ArangoDB database, default: the task's database name
    user = "tasks"
    password = "..."            # or password_secret = "name"
"""

import asyncio
import base64
import logging
import re
import time
import tomllib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import aiohttp
import yarl

from arangotasks.vault import SecretError, SecretNotFoundError, Vault

log = logging.getLogger(__name__)

# What task code may ask for: method -> path pattern (relative to /_db/{database}).
_ALLOWED: dict[str, re.Pattern[str]] = {
    "GET": re.compile(r"^/_api/(document/[^/]+/[^/]+|collection(/[^/]+(/(count|properties))?)?)$"),
    "POST": re.compile(r"^/_api/(cursor(/[^/]+)?|document/[^/]+|collection)$"),
    "PUT": re.compile(r"^/_api/(cursor/[^/]+|document/[^/]+/[^/]+|collection/[^/]+/truncate)$"),
    "PATCH": re.compile(r"^/_api/document/[^/]+/[^/]+$"),
    "DELETE": re.compile(r"^/_api/(cursor/[^/]+|document/[^/]+/[^/]+|collection/[^/]+)$"),
}
_QUERY_OPTIONS = frozenset(
    {
        "waitForSync", "returnNew", "returnOld", "silent", "keepNull", "mergeObjects",
        "overwrite", "overwriteMode", "ignoreRevs", "excludeSystem",
    }
)  # fmt: skip
_MAX_BODY = 64 * 1024 * 1024
_CURSOR_PATH = re.compile(r"^/_api/cursor(?:/([^/]+))?$")

SECRETS_DATABASE = "_system"  # where password secrets live
SecretLookup = Callable[[str, str], Awaitable[str | None]]  # (database, name) -> value


class BridgeError(Exception):
    """A call the bridge refuses or cannot make; its message is safe to show to task code."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where one arangotasks database's ``db`` goes."""

    url: str
    user: str = "root"
    password: str | None = None
    password_secret: str | None = None
    database: str | None = None  # None = the task's database name


@dataclass(frozen=True, slots=True)
class BridgeConfig:
    """The default target and the per-database overrides; ``default`` None = no bridge."""

    default: Target | None = None
    databases: dict[str, Target] = field(default_factory=dict)

    def target(self, database: str) -> Target | None:
        return self.databases.get(database, self.default)

    @property
    def enabled(self) -> bool:
        return self.default is not None or bool(self.databases)


def _target(raw: Any, where: str, base: Target | None) -> Target:
    if not isinstance(raw, dict):
        raise ValueError(f"config: {where} must be a table")
    allowed = {"url", "user", "password", "password_secret", "database"}
    unknown = set(raw) - allowed
    if unknown:
        raise ValueError(
            f"config: {where}: unknown field(s) {sorted(unknown)}; allowed: {sorted(allowed)}"
        )
    for key, value in raw.items():
        if not isinstance(value, str):
            raise ValueError(f"config: {where}.{key} must be a string")
    url = raw.get("url", base.url if base else None)
    if not url:
        raise ValueError(f"config: {where} needs a url (or ARANGOTASKS_ARANGODB_URL)")
    _check_url(url, f"{where}.url")
    url = url.rstrip("/")
    # Credentials of the default target go only to the default target's own URL.
    inherit = base if base is not None and url == base.url else None
    if "password" in raw or "password_secret" in raw:
        password, secret = raw.get("password"), raw.get("password_secret")
    elif inherit is not None:
        password, secret = inherit.password, inherit.password_secret
    else:
        password = secret = None
    user = raw.get("user", inherit.user if inherit is not None else "root")
    return Target(url, user, password, secret, raw.get("database"))


def _check_url(url: str, where: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{where}: {url!r} is not an http(s) URL")
    if parts.username or parts.password:
        raise ValueError(f"{where}: put credentials in the user/password settings, not the URL")


def load_bridge_config(
    url: str | None,
    user: str,
    password: str | None,
    password_secret: str | None,
    config_file: Path | None,
) -> BridgeConfig:
    """The bridge's settings, with the ``[arangodb]`` table of the config file."""
    default = None
    if url:
        _check_url(url, "ARANGOTASKS_ARANGODB_URL")
        default = Target(url.rstrip("/"), user, password, password_secret)
    databases: dict[str, Target] = {}
    if config_file is not None:
        data = tomllib.loads(config_file.read_text())
        section = data.get("arangodb", {})
        if not isinstance(section, dict):
            raise ValueError("config: [arangodb] must be a table")
        if set(section) - {"databases"}:
            raise ValueError("config: [arangodb] holds only [arangodb.databases.NAME] tables")
        for name, raw in section.get("databases", {}).items():
            databases[name] = _target(raw, f"[arangodb.databases.{name}]", default)
    return BridgeConfig(default, databases)


@dataclass(slots=True)
class CallRecord:
    """One forwarded call, as a run record's ``requests`` entry shows it."""

    method: str
    url: str
    status: int | None
    duration_ms: float
    error: str | None

    def to_api(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "url": self.url,
            "status": self.status,
            "durationMs": round(self.duration_ms, 3),
            "error": self.error,
        }


class Bridge:
    """Forwards ``db`` calls; one per app (its HTTP session is shared by every run)."""

    def __init__(self, config: BridgeConfig, secrets: SecretLookup | None = None) -> None:
        self.config = config
        self._secrets = secrets
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def use_vault(self, vault: "Vault") -> None:
        """Read password secrets from ``vault`` (the app's secret store)."""

        async def lookup(database: str, name: str) -> str | None:
            try:
                return await vault.reveal(database, name)
            except SecretNotFoundError:
                return None
            except SecretError as exc:  # e.g. the key is lost: say so, never a crash
                raise BridgeError(f"the ArangoDB password secret {name!r}: {exc}") from None

        self._secrets = lookup

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            # No cookies: nothing one task's calls receive may reach another's.
            self._session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    def scope(self, database: str, deadline: float) -> "BridgeScope":
        """The calls of one run of a task of ``database``, which must end by ``deadline``
        (``time.monotonic()`` seconds)."""
        return BridgeScope(self, database, deadline)

    async def authorization(self, target: Target, database: str) -> str:
        """The ``Authorization`` header value for ``target``."""
        password = await self._password(target, database)
        token = base64.b64encode(f"{target.user}:{password}".encode()).decode()
        return f"Basic {token}"

    async def _password(self, target: Target, database: str) -> str:
        if target.password_secret is None:
            return target.password or ""
        # Always a secret of _system (the operator's): a secret of the task's own database
        # could be read by its tasks.
        value = None
        if self._secrets is not None:
            value = await self._secrets(SECRETS_DATABASE, target.password_secret)
        if value is None:
            raise BridgeError(
                f"the ArangoDB password secret {target.password_secret!r} is not set"
                f" (in database {SECRETS_DATABASE!r})"
            )
        return value

    def reserved_secrets(self) -> frozenset[str]:
        """Secret names that hold bridge passwords: task code may not read them."""
        targets = [self.config.default, *self.config.databases.values()]
        return frozenset(t.password_secret for t in targets if t and t.password_secret)


class BridgeScope:
    """The ``db`` calls of one run: enforces the endpoint list, records every call and deletes
    the cursors the run did not finish (:meth:`close`)."""

    def __init__(self, bridge: Bridge, database: str, deadline: float) -> None:
        self._bridge = bridge
        self._database = database
        self._deadline = deadline
        self._cursors: set[str] = set()
        self.records: list[CallRecord] = []
        self.passwords: set[str] = set()  # what the run's record must mask, like secrets

    async def call(self, method: str, path: str, body: str | None) -> dict[str, Any]:
        """Send one call; ``{"status", "body"}`` (body: the response text). Raises
        :class:`BridgeError` with a message for task code when refused or failed."""
        target = self._bridge.config.target(self._database)
        if target is None:
            raise BridgeError(
                "no ArangoDB is configured for this database (ARANGOTASKS_ARANGODB_URL)"
            )
        method = method.upper()
        route, query = _checked(method, path)
        remote_db = target.database or self._database
        url = f"{target.url}/_db/{quote(remote_db, safe='')}{route}"
        shown = url + (f"?{query}" if query else "")
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise BridgeError("the run's time is up")
        started = time.perf_counter()
        status: int | None = None
        try:
            auth = await self._bridge.authorization(target, self._database)
            self.passwords.add(await self._bridge._password(target, self._database))
            # encoded=True: the path goes out exactly as checked (no dot-segment folding).
            async with self._bridge.session().request(
                method,
                yarl.URL(url + (f"?{query}" if query else ""), encoded=True),
                data=body.encode() if body is not None else None,
                headers=_headers(auth, body is not None),
                timeout=aiohttp.ClientTimeout(total=remaining),
                allow_redirects=False,
            ) as resp:
                status = resp.status
                text = (await resp.content.read(_MAX_BODY + 1)).decode("utf-8", "replace")
                if len(text) > _MAX_BODY:
                    raise BridgeError("ArangoDB's answer exceeds 64 MiB")
        except TimeoutError:
            self._record(method, shown, status, started, "timeout")
            raise BridgeError(f"ArangoDB at {_host(target.url)} did not answer in time") from None
        except aiohttp.ClientError as exc:
            reason = type(exc).__name__
            self._record(method, shown, status, started, reason)
            raise BridgeError(
                f"ArangoDB at {_host(target.url)} cannot be reached: {reason}"
            ) from None
        except BridgeError as exc:
            self._record(method, shown, status, started, str(exc))
            raise
        self._record(method, shown, status, started, None)
        self._track(method, route, status, text)
        return {"status": status, "body": text}

    def _record(
        self, method: str, url: str, status: int | None, started: float, error: str | None
    ) -> None:
        elapsed = (time.perf_counter() - started) * 1000
        self.records.append(CallRecord(method, url, status, elapsed, error))

    def _track(self, method: str, route: str, status: int, text: str) -> None:
        match = _CURSOR_PATH.match(route)
        if match is None:
            return
        if method == "DELETE" or status >= 400:
            if match.group(1):
                self._cursors.discard(match.group(1))
            return
        # Cursors answer small headers first: a regex is enough, and avoids a second parse.
        more = re.search(r'"hasMore"\s*:\s*(true|false)', text)
        ident = re.search(r'"id"\s*:\s*"([^"]+)"', text)
        if ident is None:
            return
        if more is not None and more.group(1) == "true":
            self._cursors.add(ident.group(1))
        else:
            self._cursors.discard(ident.group(1))

    async def close(self) -> None:
        """Delete the cursors this run left open (best effort, 2 s at most)."""
        if not self._cursors:
            return
        target = self._bridge.config.target(self._database)
        if target is None:
            return
        remote_db = quote(target.database or self._database, safe="")
        try:
            auth = await self._bridge.authorization(target, self._database)
            async with asyncio.timeout(2.0):
                for cursor in list(self._cursors):
                    url = f"{target.url}/_db/{remote_db}/_api/cursor/{quote(cursor, safe='')}"
                    async with self._bridge.session().delete(url, headers=_headers(auth)) as resp:
                        await resp.read()
                    self._cursors.discard(cursor)
        except (TimeoutError, aiohttp.ClientError, BridgeError) as exc:
            log.warning("db bridge: could not delete %d cursor(s): %s", len(self._cursors), exc)


def _checked(method: str, path: str) -> tuple[str, str]:
    """The route and the filtered query string of ``path``, or :class:`BridgeError`."""
    if not isinstance(path, str) or not path.startswith("/_api/"):
        raise BridgeError(f"the db bridge does not forward {path!r}")
    route, _, query = path.partition("?")
    pattern = _ALLOWED.get(method)
    if pattern is None or not pattern.match(route) or {".", ".."} & set(route.split("/")):
        raise BridgeError(f"the db bridge does not forward {method} {route}")
    kept = [(k, v) for k, v in parse_qsl(query) if k in _QUERY_OPTIONS]
    return route, urlencode(kept)


def _headers(authorization: str, json_body: bool = False) -> dict[str, str]:
    headers = {"Authorization": authorization}
    if json_body:
        headers["Content-Type"] = "application/json"
    return headers


def _host(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc


def with_database(target: Target, database: str) -> Target:
    """``target`` pointed at another ArangoDB database (tests against a real server)."""
    return replace(target, database=database)
