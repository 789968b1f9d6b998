"""Settings: defaults, then ``ARANGOTASKS_*`` environment variables, then CLI flags."""

import logging
import re
import tomllib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from arangotasks import datadir
from arangotasks.passwords import check_hash_format, is_hash
from arangotasks.sandbox.base import Limits

log = logging.getLogger(__name__)

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

    # Users and logins
    jwt_max_ttl: float = Field(default=86400.0, gt=0)  # longest accepted exp - iat of a JWT
    login_burst: int = Field(default=10, ge=1)  # failed logins at once, per user and per address
    login_rate: float = Field(default=1.0, gt=0)  # failed logins per second after the burst
    allowed_hosts: str = ""  # with no_auth: more Host names (comma-separated) that are this server

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

    # Stopping: runs in progress at SIGTERM/SIGINT get this many seconds to finish
    shutdown_grace: float = Field(default=5.0, ge=0)
    # Stopping, one server per store, worker privileges (issue 11)
    worker_user: str | None = None  # None = "nobody" when the server runs as root
    # PostgreSQL: a hung or unreachable server answers 503 within these bounds (seconds)
    pg_connect_timeout: float = Field(default=5.0, gt=0)
    pg_operation_timeout: float = Field(default=5.0, gt=0)  # one store call, waits included
    pg_statement_timeout: float = Field(default=5.0, ge=0)  # the server's; 0 = none
    pg_keepalive_idle: float = Field(default=10.0, ge=1)
    # Run records held while the store cannot be written, and the most written per transaction
    history_max_pending: int = Field(default=10_000, ge=1)
    history_batch: int = Field(default=1_000, ge=1)

    # Several nodes on one PostgreSQL (arangotasks/claims.py, README "Several nodes")
    node_id: str | None = Field(default=None, min_length=1, max_length=128)  # None: generated
    node_address: str | None = None  # shown in /_api/nodes; None: this host's name and port
    cluster_lease: float = Field(default=3.0, gt=0)  # seconds a node's claims outlive it
    cluster_poll: float = Field(default=0.25, gt=0)  # seconds between claims of due tasks
    cluster_ahead: float = Field(default=1.0, gt=0)  # tasks due within it are claimed
    cluster_claim_batch: int = Field(default=500, ge=1)  # tasks claimed per poll at most
    cluster_fence: bool = True  # test-only: False turns the occurrence fence off (a control)

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

    # Outbound HTTP (task code calling out; see the README's "Calling out")
    http_allow: str = ""  # comma-separated host, host:port, *.domain, IP/CIDR; "" = no HTTP
    http_max_requests: int = Field(default=100, ge=0)  # per run, redirect hops included
    http_max_response_mb: float = Field(default=10.0, gt=0)
    # Workers of their own for commands that call out (started on first use); 0 = share. More
    # than the cores: a run that calls out spends most of its time waiting on the remote.
    http_workers: int = Field(default=4, ge=0)

    # Fairness and quotas (per user: the users file may override each; superusers are exempt
    # from these defaults, not from their own overrides)
    user_max_timeout: float = Field(default=300.0, gt=0)  # capped by max_timeout
    user_max_runs: int = Field(default=0, ge=0)  # 0 = one less than the workers, at least 1
    user_max_tasks: int = Field(default=1000, ge=1)
    user_max_command_kb: int = Field(default=16 * 1024, ge=1)  # all of a user's commands
    user_max_params_kb: int = Field(default=16 * 1024, ge=1)  # all of a user's params
    max_queued_manual_runs: int = Field(default=1000, ge=1)
    max_queued_manual_runs_per_task: int = Field(default=10, ge=1)
    compile_workers: int = Field(default=2, ge=1)

    # ArangoDB bridge (db in tasks; see the README's "Database access from tasks")
    arangodb_url: str | None = None  # None = no bridge: require('@arangodb').db throws
    arangodb_user: str = "root"
    arangodb_password: str | None = None
    arangodb_password_secret: str | None = None  # the name of a secret of _system instead
    arangodb_max_calls: int = Field(default=10_000, ge=1)  # db calls per run

    @model_validator(mode="after")
    def _jwt_ttl_within_max(self) -> "Settings":
        if self.jwt_ttl > self.jwt_max_ttl:
            raise ValueError(
                "jwt_ttl must not exceed jwt_max_ttl (our own tokens would be refused)"
            )
        return self

    def store_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`arangotasks.store.open_store` for a server's store."""
        return {
            "connect_timeout": self.pg_connect_timeout,
            "operation_timeout": self.pg_operation_timeout,
            "statement_timeout": self.pg_statement_timeout,
            "keepalive_idle": self.pg_keepalive_idle,
            # A node paused inside a transaction must not hold its row locks for the pause.
            "idle_in_transaction_timeout": self.cluster_lease,
        }

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
class UserLimits:
    """A user's own limits from the users file; ``None`` = the server-wide default."""

    max_timeout: float | None = None  # seconds
    max_runs: int | None = None  # runs at once
    max_tasks: int | None = None
    max_command_kb: int | None = None  # all of the user's commands together
    max_params_kb: int | None = None  # all of the user's params together


class User(BaseModel):
    """One ``[[users]]`` entry of the users file, checked strictly: a wrong type or an unknown
    field refuses the file at start (``superuser = "false"`` is an error, not a superuser).

    Add a per-user setting as one more field here; its type is its check.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: StrictStr = Field(min_length=1)
    # Required: an argon2 hash in PHC format (``arangotasks hash-password``) or plain text;
    # an empty password must be written out as ``password = ""``.
    password: StrictStr
    access: Access = Access.READ_WRITE
    superuser: StrictBool = False
    databases: frozenset[StrictStr] | None = None  # None = every database
    # Fairness and quotas (quotas.py): this user's own limits; None = the server-wide default
    max_timeout: float | None = Field(default=None, gt=0, strict=True)  # seconds
    max_runs: int | None = Field(default=None, gt=0, strict=True)  # runs at once
    max_tasks: int | None = Field(default=None, gt=0, strict=True)
    max_command_kb: int | None = Field(default=None, gt=0, strict=True)  # all its commands
    max_params_kb: int | None = Field(default=None, gt=0, strict=True)  # all its params

    @property
    def limits(self) -> UserLimits:
        return UserLimits(
            self.max_timeout, self.max_runs, self.max_tasks, self.max_command_kb, self.max_params_kb
        )

    @field_validator("access", mode="before")
    @classmethod
    def _access_is_a_string(cls, value: Any) -> Any:
        if not isinstance(value, str | Access):
            raise ValueError("must be a string")
        return value

    @field_validator("databases", mode="before")
    @classmethod
    def _databases_is_a_list(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, list | frozenset):
            raise ValueError("must be a list of database names")
        return value

    @field_validator("password")
    @classmethod
    def _hash_parses(cls, value: str) -> str:
        if is_hash(value) and (reason := check_hash_format(value)) is not None:
            raise ValueError(f"looks like an argon2 hash but does not parse: {reason}")
        return value

    def may_use(self, database: str) -> bool:
        return self.databases is None or database in self.databases


# What each field accepts, for the error message of a bad users file.
_ALLOWED = {
    "name": "a non-empty string",
    "password": 'a string: an argon2 hash from `arangotasks hash-password`, plain text, or ""',
    "access": '"rw" or "ro"',
    "superuser": "true or false (a TOML boolean, not a string)",
    "databases": 'a list of database names, e.g. ["shop"]',
}


def _user_error(index: int, raw: Any, exc: ValidationError) -> ValueError:
    name = raw.get("name") if isinstance(raw, dict) else None
    who = f"user {name!r}" if isinstance(name, str) and name else f"[[users]] entry #{index + 1}"
    problems = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "?"
        if error["type"] == "extra_forbidden":
            allowed = ", ".join(User.model_fields)
            problems.append(f"unknown field {field!r} (allowed fields: {allowed})")
        elif error["type"] == "missing":
            problems.append(f"field {field!r} is missing; allowed values: {_ALLOWED[field]}")
        else:
            given = error.get("input")
            allowed = _ALLOWED.get(field, error["msg"])
            reason = f" ({error['msg']})" if error["type"] == "value_error" else ""
            problems.append(f"field {field!r} is {given!r}{reason}; allowed values: {allowed}")
    return ValueError(f"config: {who}: " + "; ".join(problems))


def parse_user(index: int, raw: Any) -> User:
    """The ``index``-th ``[[users]]`` entry; ``ValueError`` naming the user, field and values."""
    if not isinstance(raw, dict):
        raise ValueError(f"config: [[users]] entry #{index + 1} is not a table: {raw!r}")
    try:
        return User.model_validate(raw)
    except ValidationError as exc:
        raise _user_error(index, raw, exc) from None


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
    return datadir.jwt_secret(settings.data_dir)


def load_access(settings: Settings) -> AccessConfig:
    """Read users and databases; raise ``ValueError`` with a clear message on a bad file."""
    root = User(name="root", password=settings.root_password, superuser=True)
    users = {"root": root}
    databases = {SYSTEM_DATABASE}
    any_database = settings.any_database
    if settings.config is not None:
        try:
            data = tomllib.loads(settings.config.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"config file {settings.config}: {exc}") from exc
        raw_users = data.get("users", [])
        if not isinstance(raw_users, list):
            raise ValueError("config: 'users' must be [[users]] tables")
        seen: set[str] = set()
        for index, raw in enumerate(raw_users):
            user = parse_user(index, raw)
            if user.name in seen:
                raise ValueError(f"config: user {user.name!r} is defined twice")
            seen.add(user.name)
            if user.password and not is_hash(user.password):
                log.warning(
                    "config: user %r has a plain-text password; store an argon2 hash instead "
                    "(arangotasks hash-password)",
                    user.name,
                )
            users[user.name] = user  # an entry named "root" replaces the built-in root
        for name in data.get("databases", []):
            if not isinstance(name, str) or not _DB_NAME.match(name):
                raise ValueError(f"config: invalid database name {name!r}")
            databases.add(name)
        any_database = any_database or bool(data.get("any_database", False))
    return AccessConfig(users, frozenset(databases), any_database, _jwt_secret(settings))
