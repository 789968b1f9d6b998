"""Parsing of task bodies in ArangoDB's order and with its lenient rules (§1.4)."""

import json
import logging
import time
from dataclasses import dataclass
from typing import Any, TypeGuard

from yarl import URL

from arangotasks.errors import ArangoError, ErrorCode
from arangotasks.models import NO_OPTIONS, Options, to_ms
from arangotasks.options import SCHEDULE_FIELDS, parse_options

log = logging.getLogger(__name__)

DEFAULT_NAME = "user-defined task"

# Every body field a task create reads: ArangoDB's (§1.4), then our extensions. Any other field is
# ignored, as ArangoDB does, with one warning line. Add an extension's fields here.
ARANGODB_FIELDS = ("id", "name", "isSystem", "offset", "period", "runAsUser", "command", "params")
EXTENSION_FIELDS = ("timeout", *SCHEDULE_FIELDS, "notify")
KNOWN_FIELDS = frozenset(ARANGODB_FIELDS + EXTENSION_FIELDS)
# A body with thousands of odd keys must not make a log line of megabytes.
_MAX_NAMED, _MAX_NAME_CHARS = 10, 64
# ArangoDB would overflow a long long; we refuse values no schedule could honour (~100 years).
MAX_SECONDS = 100 * 365 * 86400
# A webhook URL longer than this is a mistake (or an attempt to store data in tasks).
MAX_NOTIFY_CHARS = 2048
_NOTIFY_EXAMPLE = "expected an http or https URL such as https://hooks.example.com/arangotasks"


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """A validated task body (steps 5-11, 13), before the compile check and the store."""

    id: str | None  # None = assign a new tick
    name: str
    is_system: bool
    offset_ms: int
    period_ms: int | None
    command: str
    params_json: str | None
    timeout: float | None
    options: Options = NO_OPTIONS  # the schedule extensions (cron, retries, ...)
    notify: str | None = None  # the task's own webhook URL (the allowlist check: notify.py)


_JSON_KINDS = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid number {name}")


def parse_json_body(raw: bytes) -> dict[str, Any]:
    """Step 1: the body must be a JSON object; otherwise 400/600."""
    try:
        text = raw.decode("utf-8")
        if not text.strip():
            raise ArangoError(ErrorCode.CORRUPTED_JSON, "expecting a JSON object body, got nothing")
        # VelocyPack has no NaN/Infinity, so ArangoDB refuses them; so do we.
        body = json.loads(text, parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise ArangoError(
            ErrorCode.CORRUPTED_JSON, f"VPackError error: invalid UTF-8: {exc}"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise ArangoError(ErrorCode.CORRUPTED_JSON, f"VPackError error: {exc}") from None
    if not isinstance(body, dict):
        # ArangoDB answers 500/4 here (its attribute reads throw); a client error is more honest.
        kind = _JSON_KINDS.get(type(body), "value")
        raise ArangoError(ErrorCode.CORRUPTED_JSON, f"expecting a JSON object body, got {kind}")
    return body


def is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text(value: str, what: str) -> str:
    """Strings we store as text: valid Unicode (no lone surrogates from ``\\ud800`` escapes) and
    no NUL, which PostgreSQL text cannot hold."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ArangoError(
            ErrorCode.CORRUPTED_JSON,
            f"VPackError error: invalid Unicode (lone surrogate) in {what}",
        ) from None
    if "\x00" in value:
        raise ArangoError(ErrorCode.BAD_PARAMETER, f"{what} must not contain NUL characters")
    return value


def _seconds(value: float, what: str) -> int:
    if abs(value) > MAX_SECONDS:
        raise ArangoError(ErrorCode.BAD_PARAMETER, f"task {what} out of range")
    return to_ms(value)


def parse_task_body(
    body: dict[str, Any],
    *,
    url_id: str | None,
    caller: str,
    max_timeout: float,
    now: float | None = None,
) -> TaskSpec:
    """Steps 5-11 and 13 of §1.4, in order; the first failure raises ``ArangoError``.

    :param url_id: the id from ``PUT /_api/tasks/{id}``; ``None`` for POST.
    :param caller: the authenticated user's name ("" with authentication off).
    :param now: the time ``endAt`` must follow (default: the clock).
    """
    # Step 5: PUT's URL id overrides body.id; POST takes body.id only if it is a string.
    task_id = url_id if url_id is not None else body.get("id")
    if isinstance(task_id, str):
        task_id = _text(task_id, "id")
    else:
        task_id = None
    # Step 6
    name = body.get("name")
    name = _text(name, "name") if isinstance(name, str) else DEFAULT_NAME
    # Step 7
    is_system = body.get("isSystem")
    if not isinstance(is_system, bool):
        is_system = False
    # Step 8: non-numbers silently become 0.
    offset = body.get("offset")
    offset_ms = _seconds(offset, "offset") if is_number(offset) else 0
    # Step 9: a numeric period must be positive; anything else makes a timed task.
    period = body.get("period")
    period_ms: int | None = None
    if is_number(period):
        if period <= 0:
            raise ArangoError(ErrorCode.BAD_PARAMETER, "task period must be specified and positive")
        period_ms = _seconds(period, "period")
    # Step 10
    run_as = body.get("runAsUser")
    if isinstance(run_as, str) and run_as and run_as != caller:
        raise ArangoError(ErrorCode.FORBIDDEN, "cannot run task as a different user")
    # Step 11
    command = body.get("command")
    if not isinstance(command, str):
        raise ArangoError(ErrorCode.BAD_PARAMETER, "command must be specified")
    _text(command, "command")
    # Extension: a per-task time limit. ArangoDB clients never send it.
    timeout = body.get("timeout")
    if timeout is not None and (not is_number(timeout) or not 0 < timeout <= max_timeout):
        raise ArangoError(
            ErrorCode.BAD_PARAMETER,
            f"timeout must be a positive number of seconds, at most {max_timeout:g}",
        )
    # Extension: schedule fields (cron, retries, pause, ...); absent for ArangoDB clients.
    options = parse_options(
        body, has_period=period_ms is not None, now=time.time() if now is None else now
    )
    # Extension: the task's own failure webhook (the allowlist is asked later: a DNS lookup).
    notify = parse_notify(body.get("notify"))
    # Step 13: params of any JSON type, kept as-is; absent stays absent.
    params_json = json.dumps(body["params"], separators=(",", ":")) if "params" in body else None
    _warn_unknown(body)
    return TaskSpec(
        id=task_id,
        name=name,
        is_system=is_system,
        offset_ms=offset_ms,
        period_ms=period_ms,
        command=command,
        params_json=params_json,
        timeout=float(timeout) if timeout is not None else None,
        options=options,
        notify=notify,
    )


def _bad_notify(why: str) -> ArangoError:
    return ArangoError(ErrorCode.BAD_PARAMETER, f"notify: {why}")


def parse_notify(value: Any) -> str | None:
    """The ``notify`` field: ``None`` (absent or null) or an http(s) URL with a host, kept as
    sent. Whether the outbound HTTP allowlist lets it through is checked by the caller."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise _bad_notify(_NOTIFY_EXAMPLE)
    if len(value) > MAX_NOTIFY_CHARS:
        raise _bad_notify(f"the URL is longer than {MAX_NOTIFY_CHARS} characters")
    _text(value, "notify")
    if any(char.isspace() or not char.isprintable() for char in value):
        raise _bad_notify("the URL must not contain spaces or control characters")
    try:
        url = URL(value)
        port = url.port  # a bad port raises here
    except (ValueError, TypeError):
        raise _bad_notify(f"not a valid URL; {_NOTIFY_EXAMPLE}") from None
    if url.scheme not in ("http", "https"):
        raise _bad_notify(f"only http and https URLs are allowed (scheme {url.scheme or '(none)'})")
    if not url.host or port is None:
        raise _bad_notify(f"the URL has no host; {_NOTIFY_EXAMPLE}")
    if url.user is not None or url.password is not None:
        # The URL shows in the task object, the dashboard and the server log; the signature
        # header is how a receiver knows the sender.
        raise _bad_notify(
            "credentials in the URL are not allowed (use ARANGOTASKS_WEBHOOK_SECRET's signature)"
        )
    return value


def _warn_unknown(body: dict[str, Any]) -> None:
    """One warning line naming the fields that are ignored (a typo like ``peroid`` shows here)."""
    unknown = [key for key in body if key not in KNOWN_FIELDS]
    if not unknown:
        return
    named = ", ".join(repr(key[:_MAX_NAME_CHARS]) for key in unknown[:_MAX_NAMED])
    more = f" and {len(unknown) - _MAX_NAMED} more" if len(unknown) > _MAX_NAMED else ""
    log.warning("task body: ignoring unknown field(s) %s%s", named, more)
