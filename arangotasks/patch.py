"""``PATCH /_api/tasks/{id}``: a change is the task's body with the patch merged in, validated
exactly as a create (RFC 7396 merge: a ``null`` removes a field, i.e. resets it to its default)."""

import json
from dataclasses import replace
from typing import Any

from arangotasks.errors import ArangoError, ErrorCode
from arangotasks.models import Task, format_seconds
from arangotasks.options import SCHEDULE_FIELDS, iso
from arangotasks.validation import TaskSpec, parse_task_body

# The schedule fields come from options.py, so that a new one is patchable at once.
PATCHABLE = ("name", "command", "params", "period", "timeout", *SCHEDULE_FIELDS, "notify")


def task_body(task: Task) -> dict[str, Any]:
    """The create body that gives ``task`` (its raw command, its extension fields)."""
    body: dict[str, Any] = {"name": task.name, "command": task.command}
    if task.params_json is not None:
        body["params"] = json.loads(task.params_json)
    if task.period_ms is not None:
        body["period"] = format_seconds(task.period_ms)
    if task.timeout is not None:
        body["timeout"] = task.timeout
    options = task.options
    retries = None
    if options.retries is not None:
        r = options.retries
        retries = {"count": r.count, "delay": r.delay, "backoff": r.backoff}
        if r.max_delay is not None:
            retries["maxDelay"] = r.max_delay
    fields = {
        "cron": options.cron,
        "timezone": options.timezone,
        "jitter": options.jitter,
        "startAt": iso(options.start_at),
        "endAt": iso(options.end_at),
        "retries": retries,
        "overlap": None if options.overlap is None else options.overlap.value,
        "misfire": options.misfire,
        "enabled": None if options.enabled else False,
    }
    body.update((key, value) for key, value in fields.items() if value is not None)
    if task.notify is not None:
        body["notify"] = task.notify
    return body


def merge(task: Task, patch: dict[str, Any]) -> dict[str, Any]:
    """The body after ``patch``; 400/10 for a field that cannot be changed."""
    for key in patch:
        if key not in PATCHABLE:
            raise ArangoError(
                ErrorCode.BAD_PARAMETER,
                f"{key}: cannot be changed (PATCH accepts {', '.join(PATCHABLE)})",
            )
    body = task_body(task)
    # Switching between period and cron: the new kind replaces the old one.
    if patch.get("cron") is not None:
        body.pop("period", None)
    if patch.get("period") is not None:
        body.pop("cron", None)
        body.pop("timezone", None)
    for key, value in patch.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def patched_spec(
    task: Task, patch: dict[str, Any], *, caller: str, max_timeout: float, now: float
) -> TaskSpec:
    """The validated spec of ``task`` after ``patch`` (id, offset and ``isSystem`` kept)."""
    spec = parse_task_body(
        merge(task, patch), url_id=task.id, caller=caller, max_timeout=max_timeout, now=now
    )
    keep_period = "period" not in patch and spec.period_ms is not None
    # The stored milliseconds, not a round trip through seconds (1.001 * 1000 < 1001).
    return replace(
        spec,
        offset_ms=task.offset_ms,
        is_system=task.is_system,
        period_ms=task.period_ms if keep_period else spec.period_ms,
    )
