"""Settings: defaults, then ``ARANGOTASKS_*`` environment variables, then CLI flags."""

import os
import re
import secrets
import tomllib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from arangotasks.sandbox.base import Limits

SYSTEM_DATABASE = "_system"
# ArangoDB's traditional database names: a letter first, then letters, digits, _ and -.
_DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")


class Misfire(StrEnum):
    """What to do with runs whose time passed while the server was down."""

    RUN_ONCE = "run_once"  # run once right after start, then resume the cadence
    SKIP = "skip"  # record the missed run as canceled and wait for the next slot


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"  # one JSON object per line


class Settings(BaseSettings):
    """Every option of the service; each is also ``ARANGOTASKS_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="ARANGOTASKS_", frozen=True, extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8529, ge=0, le=65535)
    data_dir: Path = Path("./data")
    store: str | None = None  # sqlite:///path or postgresql://...; None = SQLite in data_dir
    log_level: str = "INFO"

    # Authentication (§1.7)
    no_auth: bool = False
    root_password: str = ""
    jwt_secret: str | None = None  # None = generated once and kept in data_dir
    jwt_ttl: float = 3600.0
    config: Path | None = None  # TOML file with [[users]] and databases
    any_database: bool = False  # accept every valid database name, not only configured ones
    tasks_enabled: bool = True  # False = ArangoDB's --javascript.tasks=false (§1.4 step 2)

    # Sandbox (per-run bounds; a task's own "timeout" overrides the default)
    workers: int | None = Field(default=None, ge=1)  # None = one per core
    timeout: float = Field(default=30.0, gt=0)
    max_timeout: float = Field(default=3600.0, gt=0)
    memory_mb: int = Field(default=64, ge=1)
    stack_kb: int = Field(default=1024, ge=64)
    output_kb: int = Field(default=64, ge=1)
    worker_address_space_mb: int = Field(default=1024, ge=128)

    # Scheduling
    misfire: Misfire = Misfire.RUN_ONCE
    min_period: float = Field(default=0.001, ge=0)  # a 0 ms period must not become a busy loop

    # Run history
    history: bool = True
    history_keep: int = Field(default=100, ge=1)
    history_max_age_days: float = Field(default=10.0, gt=0)
    history_flush_interval: float = Field(default=0.05, gt=0)
    prune_interval: float = Field(default=60.0, gt=0)

    # HTTP
    max_body_mb: float = Field(default=8.0, gt=0)

    # Operations: metrics, logs, failure notifications
    metrics_token: str | None = None  # bearer token that may read /_admin/metrics (scrapers)
    log_format: LogFormat = LogFormat.TEXT
    access_log: bool = False  # one line per HTTP request (logger arangotasks.access)
    webhook_url: str | None = None  # server-wide failure notifications (the operator's URL)
    webhook_secret: str | None = None  # HMAC-SHA256 key of X-Arangotasks-Signature
    webhook_timeout: float = Field(default=10.0, gt=0)  # seconds per delivery attempt
    webhook_attempts: int = Field(default=6, ge=1)  # deliveries tried before giving up
    webhook_backoff: float = Field(default=1.0, gt=0)  # first retry delay; doubles each time
    webhook_queue: int = Field(default=1000, ge=1)  # pending notifications; beyond: dropped

    # Secrets (arangotasks/vault.py)
    secrets_key: SecretStr | None = None  # a Fernet key; None = DATA_DIR/secrets.key
    secrets_max_value_kb: int = Field(default=64, ge=1)  # largest value of one secret
    secrets_max_count: int = Field(default=1000, ge=1)  # secrets per database

    # Connections (idle and half-sent connections are closed; at most max_connections open)
    keepalive_timeout: float = Field(default=75.0, gt=0)
    header_timeout: float = Field(default=10.0, gt=0)
    max_connections: int = Field(default=1000, ge=1)

    # Run sizes (what a run leaves behind: result, error, pages of the runs API)
    result_kb: int = Field(default=1024, ge=1)  # beyond it a run fails with error.type "result"
    error_message_kb: int = Field(default=16, ge=1)  # cut beyond it
    error_stack_kb: int = Field(default=16, ge=1)  # cut beyond it
    runs_page_mb: float = Field(default=8.0, gt=0)  # a runs API page stops before this size

    def limits(self, timeout: float | None = None) -> Limits:
        return Limits(
            timeout=timeout if timeout is not None else self.timeout,
            memory_bytes=self.memory_mb * 1024 * 1024,
            stack_bytes=self.stack_kb * 1024,
            output_bytes=self.output_kb * 1024,
            result_bytes=self.result_kb * 1024,
            error_message_bytes=self.error_message_kb * 1024,
            error_stack_bytes=self.error_stack_kb * 1024,
        )


class Access(StrEnum):
    READ_ONLY = "ro"
    READ_WRITE = "rw"


@dataclass(frozen=True, slots=True)
class User:
    name: str
    password: str
    access: Access = Access.READ_WRITE
    superuser: bool = False
    databases: frozenset[str] | None = None  # None = every database

    def may_use(self, database: str) -> bool:
        return self.databases is None or database in self.databases


@dataclass(frozen=True, slots=True)
class AccessConfig:
    """Users and databases, from the settings and the optional TOML config file."""

    users: dict[str, User]
    databases: frozenset[str]
    any_database: bool
    jwt_secret: str

    def database_exists(self, name: str) -> bool:
        if name in self.databases:
            return True
        return self.any_database and bool(_DB_NAME.match(name))


def _jwt_secret(settings: Settings) -> str:
    if settings.jwt_secret:
        return settings.jwt_secret
    path = settings.data_dir / "jwt-secret"
    if path.exists():
        return path.read_text().strip()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    # Written with 0600 from the start so the secret is never readable by others.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    return secret


def _parse_user(raw: Any) -> User:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
        raise ValueError(f"config: each [[users]] entry needs a non-empty 'name': {raw!r}")
    access = Access(raw.get("access", "rw"))
    dbs = raw.get("databases")
    if dbs is not None and not (isinstance(dbs, list) and all(isinstance(d, str) for d in dbs)):
        raise ValueError(f"config: user {raw['name']!r}: 'databases' must be a list of names")
    return User(
        name=raw["name"],
        password=str(raw.get("password", "")),
        access=access,
        superuser=bool(raw.get("superuser", False)),
        databases=frozenset(dbs) if dbs is not None else None,
    )


def load_access(settings: Settings) -> AccessConfig:
    """Read users and databases; raise ``ValueError`` with a clear message on a bad file."""
    users = {"root": User("root", settings.root_password, Access.READ_WRITE, superuser=True)}
    databases = {SYSTEM_DATABASE}
    any_database = settings.any_database
    if settings.config is not None:
        try:
            data = tomllib.loads(settings.config.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"config file {settings.config}: {exc}") from exc
        for raw in data.get("users", []):
            user = _parse_user(raw)
            users[user.name] = user
        for name in data.get("databases", []):
            if not isinstance(name, str) or not _DB_NAME.match(name):
                raise ValueError(f"config: invalid database name {name!r}")
            databases.add(name)
        any_database = any_database or bool(data.get("any_database", False))
    return AccessConfig(users, frozenset(databases), any_database, _jwt_secret(settings))
