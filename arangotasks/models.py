"""Records shared by the API, the store, the scheduler and the sandbox."""

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# ArangoDB stores the command wrapped like this (§1.2) and returns the wrapped form.
WRAP_PREFIX = "(function (params) { "
WRAP_SUFFIX = " } )(params);"


def dumps(data: Any) -> str:
    """JSON as ArangoDB writes it: compact UTF-8, slashes and non-ASCII unescaped."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def wrap_command(command: str) -> str:
    """The stored form of a command, exactly as ArangoDB returns it."""
    return WRAP_PREFIX + command + WRAP_SUFFIX


def format_seconds(ms: int) -> int | float:
    """Milliseconds as ArangoDB prints seconds: whole numbers without ``.0`` (§1.2)."""
    if ms % 1000 == 0:
        return ms // 1000
    return ms / 1000


def to_ms(seconds: float) -> int:
    """``long long(x * 1000)``: truncation toward zero, as ArangoDB does."""
    return int(seconds * 1000)


class Overlap(StrEnum):
    """What a cron slot does while the previous run of its task is still going."""

    SKIP = "skip"  # recorded as a skipped run
    BUFFER = "buffer"  # waits for the run to end; at most one waits


@dataclass(frozen=True, slots=True)
class Retries:
    """A failed scheduled run is attempted again, ``count`` times at most."""

    count: int
    delay: float = 0.0  # seconds before the second attempt
    backoff: float = 1.0  # each further delay is this many times the previous one
    max_delay: float | None = None

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt`` (2, 3, ...)."""
        delay = self.delay * self.backoff ** (attempt - 2)
        return delay if self.max_delay is None else min(delay, self.max_delay)


@dataclass(frozen=True, slots=True)
class Options:
    """The schedule extension fields of a task (``arangotasks.options`` parses them). A task
    created the ArangoDB way has ``NO_OPTIONS``."""

    cron: str | None = None
    timezone: str | None = None  # IANA name; None = UTC (cron tasks only)
    jitter: float | None = None  # seconds
    start_at: float | None = None  # epoch seconds
    end_at: float | None = None
    retries: Retries | None = None
    overlap: Overlap | None = None  # None = skip
    misfire: str | None = None  # a config.Misfire value; None = the server's setting
    enabled: bool = True


NO_OPTIONS = Options()


@dataclass(slots=True)
class Task:
    """A registered task. ``params_json`` is ``None`` when the client sent no params."""

    id: str
    name: str
    created: float
    command: str  # the raw command as sent; the API shows it wrapped
    database: str
    owner: str = ""  # "" = created by a superuser or with authentication off
    period_ms: int | None = None  # None = timed task
    offset_ms: int = 0
    params_json: str | None = None
    is_system: bool = False
    timeout: float | None = None  # per-task wall-clock limit (extension)
    # Epoch seconds of the next scheduled run; None for a timed task that has fired.
    next_run_at: float | None = None
    options: Options = NO_OPTIONS  # schedule extensions (cron, retries, pause, ...)
    revision: int = 1  # 1 at creation, +1 for every PATCH
    notify: str | None = None  # this task's failure webhook URL (extension)

    @property
    def periodic(self) -> bool:
        return self.period_ms is not None

    def to_api(self) -> dict[str, Any]:
        """The ArangoDB task object with its key order and number formatting (§1.2)."""
        body: dict[str, Any] = {"id": self.id, "name": self.name, "created": self.created}
        if self.period_ms is not None:
            body["type"] = "periodic"
            body["period"] = format_seconds(self.period_ms)
        else:
            # A cron task repeats, so ArangoDB clients see a periodic task (without a period).
            body["type"] = "timed" if self.options.cron is None else "periodic"
        body["offset"] = format_seconds(self.offset_ms)
        body["command"] = wrap_command(self.command)
        body["database"] = self.database
        if self.options.cron is not None:
            body["cron"] = self.options.cron
            body["timezone"] = self.options.timezone or "UTC"
        # Extensions go last, and only when set: ArangoDB's tasks look exactly as before.
        if self.notify is not None:
            body["notify"] = self.notify
        return body

    def params(self) -> Any:
        return None if self.params_json is None else json.loads(self.params_json)


class RunStatus(StrEnum):
    ENQUEUED = "enqueued"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    SKIPPED = "skipped"  # a cron slot that came while the previous run was still going


FINISHED_STATUSES = frozenset(
    {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELED, RunStatus.SKIPPED}
)


class RunTrigger(StrEnum):
    SCHEDULE = "schedule"
    MANUAL = "manual"


class ErrorType(StrEnum):
    """What ended a failed run (the ``type`` of a run's ``error``)."""

    EXCEPTION = "exception"  # the command threw
    TIMEOUT = "timeout"  # CPU limit in the engine or the parent's wall-clock kill
    MEMORY = "memory"  # the engine's memory limit
    OUTPUT_LIMIT = "output_limit"  # reserved: output beyond the cap is truncated, not fatal
    CRASH = "crash"  # the worker died, or the server died during the run
    RESULT = "result"  # the returned value could not be serialised as JSON
    HTTP_LIMIT = "http_limit"  # a limit of outbound HTTP (requests per run, response size)
    MISSED = "missed"  # a slot passed while the server was down or late (misfire=skip)
    OVERLAP = "overlap"  # a skipped slot: the previous run was still going
    INTERRUPTED = "interrupted"  # the server stopped: past the shutdown grace, or never started


@dataclass(slots=True)
class RunOutcome:
    """What the sandbox reports for one execution."""

    ok: bool
    result_json: str | None = None  # JSON text of the returned value; None for undefined
    output: list[str] = field(default_factory=list)
    output_truncated: bool = False
    error: dict[str, str] | None = None  # {type, name, message, stack}
    # Outbound HTTP requests: {method, url, status, durationMs, error}, in order.
    requests: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class Run:
    """One execution of a task, as kept in the history."""

    uid: int
    task_id: str
    task_name: str
    database: str
    owner: str
    trigger: RunTrigger
    scheduled_at: float  # epoch seconds
    enqueued_at: float
    status: RunStatus = RunStatus.ENQUEUED
    started_at: float | None = None
    finished_at: float | None = None
    result_json: str | None = None
    output: list[str] = field(default_factory=list)
    error: dict[str, str] | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)  # outbound HTTP, in order
    attempt: int = 1  # 2, 3, ... for retries of the same slot (same scheduled_at)
    revision: int = 1  # the task's revision that ran
    node: str | None = None  # the id of the node that ran it (None: recorded before v3)


@dataclass(slots=True)
class RunQuery:
    """Filters and pagination of the runs API (all optional)."""

    statuses: frozenset[RunStatus] | None = None
    task_ids: frozenset[str] | None = None
    trigger: RunTrigger | None = None
    before_started_at: float | None = None  # exclusive
    after_started_at: float | None = None  # exclusive
    owner: str | None = None  # None = every owner (superuser)
    database: str | None = None  # None = every database
    from_uid: int | None = None  # first uid of the page (inclusive)
    limit: int = 20
    reverse: bool = False  # False = newest first (Meilisearch order); True = oldest first


@dataclass(slots=True)
class StoredRun:
    """A run as the runs API reads it from the store: its result, output and error stay the JSON
    text stored (``run.output`` and ``run.error`` are left empty), so that a page of big runs is
    passed through, never parsed and encoded again on the event loop."""

    run: Run
    output_json: str
    error_json: str | None
    requests_json: str | None = None  # None: no requests

    @property
    def size(self) -> int:
        """About the bytes this run adds to a page."""
        result = self.run.result_json
        return 400 + len(result or "") + len(self.output_json) + len(self.error_json or "")
