"""The columns of the tasks and runs tables and the conversions between rows and models."""

import json
from typing import Any

from arangotasks.models import (
    FINISHED_STATUSES,
    Options,
    Overlap,
    Retries,
    Run,
    RunStatus,
    RunTrigger,
    Task,
)

Row = tuple[Any, ...]

# The schedule extensions (schema version 2): one column per field of models.Options.
OPTION_COLUMNS = tuple(
    "cron timezone jitter start_at end_at retries overlap misfire enabled".split()
)
TASK_COLUMNS = (
    *"id name created command database owner period_ms offset_ms params_json is_system timeout "
    "next_run_at".split(),
    *OPTION_COLUMNS,
    "revision",
    "notify",  # schema version 3
)
RUN_COLUMNS = tuple(
    "uid task_id task_name database owner trigger status scheduled_at enqueued_at started_at "
    "finished_at result_json output error requests attempt revision node".split()
)
RUN_SELECT = ", ".join(RUN_COLUMNS)
UNFINISHED = ", ".join(
    f"'{status.value}'" for status in RunStatus if status not in FINISHED_STATUSES
)


def _retries_json(retries: Retries | None) -> str | None:
    if retries is None:
        return None
    return json.dumps([retries.count, retries.delay, retries.backoff, retries.max_delay])


def task_to_row(task: Task) -> Row:
    fields = {column: getattr(task, column, None) for column in TASK_COLUMNS}
    fields["is_system"] = int(task.is_system)
    o = task.options
    fields.update(
        cron=o.cron,
        timezone=o.timezone,
        jitter=o.jitter,
        start_at=o.start_at,
        end_at=o.end_at,
        retries=_retries_json(o.retries),
        overlap=None if o.overlap is None else o.overlap.value,
        misfire=o.misfire,
        enabled=int(o.enabled),
    )
    return tuple(fields.values())


def row_to_task(row: Row) -> Task:
    fields = dict(zip(TASK_COLUMNS, row, strict=True))
    fields["is_system"] = bool(fields["is_system"])
    o = {column: fields.pop(column) for column in OPTION_COLUMNS}
    if any(o[c] is not None for c in OPTION_COLUMNS if c != "enabled") or not o["enabled"]:
        retries = None if o["retries"] is None else Retries(*json.loads(o["retries"]))
        overlap = None if o["overlap"] is None else Overlap(o["overlap"])
        o.update(retries=retries, overlap=overlap, enabled=bool(o["enabled"]))
        fields["options"] = Options(**o)
    return Task(**fields)


def run_to_row(run: Run) -> Row:
    fields = {column: getattr(run, column) for column in RUN_COLUMNS}
    fields["trigger"] = run.trigger.value
    fields["status"] = run.status.value
    # json.dumps escapes lone surrogates and NUL, which neither UTF-8 TEXT column could hold.
    fields["output"] = json.dumps(run.output)
    fields["error"] = None if run.error is None else json.dumps(run.error)
    fields["requests"] = json.dumps(run.requests) if run.requests else None
    return tuple(fields.values())


def row_to_run(row: Row) -> Run:
    fields = dict(zip(RUN_COLUMNS, row, strict=True))
    fields["trigger"] = RunTrigger(fields["trigger"])
    fields["status"] = RunStatus(fields["status"])
    fields["output"] = json.loads(fields["output"])
    fields["error"] = None if fields["error"] is None else json.loads(fields["error"])
    fields["requests"] = [] if fields["requests"] is None else json.loads(fields["requests"])
    return Run(**fields)
