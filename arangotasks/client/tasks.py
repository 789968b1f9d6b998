"""``arangotasks tasks ...``: the tasks and runs APIs from the command line."""

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from arangotasks.client import output
from arangotasks.client.http import EXIT_USAGE, ClientError, Connection, quote

FINISHED = ("succeeded", "failed", "canceled")
WRAP_PREFIX = "(function (params) { "
WRAP_SUFFIX = " } )(params);"


def _schedule(task: dict[str, Any]) -> str:
    if task.get("cron"):
        return f"cron {task['cron']}"
    if task.get("type") == "periodic":
        return "every " + output.seconds(task.get("period"))
    return "once"


def _command(task: dict[str, Any]) -> str:
    """The command as written: the API shows it wrapped as ArangoDB stores it."""
    command = str(task.get("command", ""))
    if command.startswith(WRAP_PREFIX) and command.endswith(WRAP_SUFFIX):
        return command[len(WRAP_PREFIX) : -len(WRAP_SUFFIX)]
    return command


def _last_status(task: dict[str, Any]) -> Any:
    if task.get("enabled") is False or task.get("paused"):  # pause sets enabled=false
        return "paused"
    last = task.get("lastRun")
    return last.get("status") if isinstance(last, dict) else None


def cmd_list(conn: Connection, args: argparse.Namespace) -> int:
    tasks = conn.request("GET", "/_api/tasks", query={"details": "true"})
    if args.database:  # the list spans every database; --database narrows it
        tasks = [t for t in tasks if t.get("database") == args.database]
    if args.json:
        output.emit_json(tasks)
        return 0
    rows = [
        (
            t["id"],
            t.get("name"),
            _schedule(t),
            output.when(t.get("nextRunAt")),
            _last_status(t),
            t.get("failures"),
            t.get("database"),
        )
        for t in tasks
    ]
    columns = ("id", "name", "schedule", "next run", "last", "failures", "database")
    output.table(columns, rows)
    return 0


def cmd_show(conn: Connection, args: argparse.Namespace) -> int:
    task = conn.request("GET", f"/_api/tasks/{quote(args.id)}", query={"details": "true"})
    if args.json:
        output.emit_json(task)
        return 0
    _print_task(task)
    return 0


def _print_task(task: dict[str, Any]) -> None:
    known = ("id", "name", "type", "period", "offset", "command", "database", "created")
    last = task.get("lastRun")
    pairs: list[tuple[str, Any]] = [
        ("id", task.get("id")),
        ("name", task.get("name")),
        ("database", task.get("database")),
        ("schedule", _schedule(task)),
        ("offset", output.seconds(task.get("offset"))),
    ]
    if "nextRunAt" in task:
        pairs.append(("next run", output.when(task.get("nextRunAt"))))
    if "runs" in task:
        pairs.append(("runs", f"{task.get('runs')} ({task.get('failures')} failed)"))
    if isinstance(last, dict):
        pairs.append(("last run", f"{last.get('uid')} {last.get('status')}"))
    skip = {*known, "nextRunAt", "runs", "failures", "lastRun"}
    pairs += [(key, value) for key, value in task.items() if key not in skip]
    pairs.append(("command", _command(task)))
    output.details(pairs)


def _json_arg(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ClientError(f"{what} is not valid JSON: {exc}", EXIT_USAGE) from None


def _read_command(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise ClientError(f"cannot read {path}: {exc.strerror or exc}", EXIT_USAGE) from None


def cmd_create(conn: Connection, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"command": _read_command(args.file)}
    if args.name is not None:
        body["name"] = args.name
    if args.period is not None:
        body["period"] = args.period
    if args.cron is not None:
        body["cron"] = args.cron
    if args.offset is not None:
        body["offset"] = args.offset
    if args.params is not None:
        body["params"] = _json_arg(args.params, "--params")
    if args.timeout is not None:
        body["timeout"] = args.timeout
    if args.notify is not None:
        body["notify"] = args.notify
    if args.id is not None:
        task = conn.request("PUT", f"/_api/tasks/{quote(args.id)}", body)
    else:
        task = conn.request("POST", "/_api/tasks", body)
    if args.json:
        output.emit_json(task)
    else:
        _print_task(task)
    return 0


def _simple(conn: Connection, args: argparse.Namespace, method: str, suffix: str, done: str) -> int:
    answer = conn.request(method, f"/_api/tasks/{quote(args.id)}{suffix}")
    if args.json:
        output.emit_json(answer)
    else:
        print(f"{done} {args.id}")
    return 0


def cmd_delete(conn: Connection, args: argparse.Namespace) -> int:
    return _simple(conn, args, "DELETE", "", "deleted")


def cmd_pause(conn: Connection, args: argparse.Namespace) -> int:
    return _simple(conn, args, "POST", "/pause", "paused")


def cmd_resume(conn: Connection, args: argparse.Namespace) -> int:
    return _simple(conn, args, "POST", "/resume", "resumed")


def cmd_run(conn: Connection, args: argparse.Namespace) -> int:
    run = conn.request("POST", f"/_api/tasks/{quote(args.id)}/run")
    if args.wait:
        while run.get("status") not in FINISHED:
            time.sleep(args.interval)
            run = conn.request("GET", f"/_api/runs/{run['uid']}")
    if args.json:
        output.emit_json(run)
    elif args.wait:
        _print_run(run)
    else:
        print(f"run {run['uid']} of task {args.id}: {run['status']}")
    return 1 if args.wait and run.get("status") == "failed" else 0


def _print_run(run: dict[str, Any]) -> None:
    pairs: list[tuple[str, Any]] = [
        (key, run.get(key))
        for key in ("uid", "taskId", "status", "trigger", "startedAt", "duration", "result")
    ]
    if run.get("output"):
        pairs.append(("output", "\n".join(run["output"])))
    error = run.get("error")
    if isinstance(error, dict):
        pairs.append(("error", f"{error.get('name')}: {error.get('message')}"))
        if error.get("stack"):
            pairs.append(("stack", str(error["stack"]).rstrip()))
    output.details(pairs)


def _run_row(run: dict[str, Any]) -> tuple[Any, ...]:
    error = run.get("error")
    outcome = (
        f"{error.get('name')}: {error.get('message')}"
        if isinstance(error, dict)
        else run.get("result")
    )
    return (
        run["uid"],
        run.get("taskId"),
        run.get("status"),
        run.get("trigger"),
        output.when(run.get("startedAt")),
        run.get("duration"),
        outcome,
    )


RUN_COLUMNS = ("uid", "task", "status", "trigger", "started", "duration", "result / error")
FOLLOW_WIDTHS = (8, 18, 9, 8, 20, 9, 0)


def _runs_query(args: argparse.Namespace, statuses: list[str] | None) -> dict[str, str]:
    query = {"limit": str(args.limit)}
    if statuses:
        query["statuses"] = ",".join(statuses)
    if args.database:
        query["database"] = args.database
    return query


def cmd_runs(conn: Connection, args: argparse.Namespace) -> int:
    path = f"/_api/tasks/{quote(args.id)}/runs" if args.id else "/_api/runs"
    statuses = args.status.split(",") if args.status else None
    if args.follow:
        return _follow(conn, args, path, statuses)
    page = conn.request("GET", path, query=_runs_query(args, statuses))
    if args.json:
        output.emit_json(page)
        return 0
    output.table(RUN_COLUMNS, [_run_row(run) for run in page["results"]])
    return 0


def _follow(
    conn: Connection, args: argparse.Namespace, path: str, statuses: list[str] | None
) -> int:
    """Print finished runs oldest first as they appear, until interrupted."""
    wanted = [s for s in (statuses or FINISHED) if s in FINISHED] or list(FINISHED)
    seen: set[int] = set()
    header = not args.json
    try:
        while True:
            page = conn.request("GET", path, query=_runs_query(args, wanted))
            fresh = sorted(
                (run for run in page["results"] if run["uid"] not in seen),
                key=lambda run: run["uid"],
            )
            for run in fresh:
                seen.add(run["uid"])
                if args.json:
                    output.emit_json(run, compact=True)
                else:
                    # Widths fixed up front: rows arrive a few at a time.
                    if header:
                        output.fixed_row([c.upper() for c in RUN_COLUMNS], FOLLOW_WIDTHS)
                        header = False
                    output.fixed_row([output.cell(v) for v in _run_row(run)], FOLLOW_WIDTHS)
            sys.stdout.flush()
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return 0


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    """``tasks`` and its subcommands, each also taking the connection options."""
    tasks = commands.add_parser("tasks", help="list, create, run and delete tasks on a server")
    sub = tasks.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, help_text: str, func: Any, with_id: bool = True) -> Any:
        parser = sub.add_parser(name, help=help_text, parents=[common])
        if with_id:
            parser.add_argument("id", help="task id")
        parser.set_defaults(func=func)
        return parser

    action("list", "every task you may see", cmd_list, with_id=False)
    action("show", "one task with its schedule and last run", cmd_show)
    create = action("create", "register a task from a JavaScript file", cmd_create, False)
    create.add_argument("--file", required=True, help="the command (a function body); - = stdin")
    when = create.add_mutually_exclusive_group()
    when.add_argument("--period", type=float, help="seconds between runs (periodic task)")
    when.add_argument("--cron", help="a cron expression (extension)")
    create.add_argument("--offset", type=float, help="seconds before the first run")
    create.add_argument("--params", help="params as JSON")
    create.add_argument("--name", help="task name")
    create.add_argument("--id", help="your own task id (PUT; 409 if it exists)")
    create.add_argument("--timeout", type=float, help="run time limit in seconds")
    create.add_argument("--notify", help="URL told when a run fails or the task recovers")
    action("delete", "unregister a task", cmd_delete)
    run = action("run", "run a task now, outside its schedule", cmd_run)
    run.add_argument("--wait", action="store_true", help="wait for the run; exit 1 if it failed")
    run.add_argument("--interval", type=float, default=0.2, help=argparse.SUPPRESS)
    runs = sub.add_parser("runs", help="recent runs (of one task)", parents=[common])
    runs.add_argument("id", nargs="?", help="task id (default: runs of every task)")
    runs.add_argument("--status", help="only these statuses (comma-separated), e.g. failed")
    runs.add_argument("--limit", type=int, default=20, help="runs per page (default 20)")
    runs.add_argument("--follow", action="store_true", help="print new runs as they finish")
    runs.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
    runs.set_defaults(func=cmd_runs)
    action("pause", "stop scheduling a task (it keeps its runs)", cmd_pause)
    action("resume", "schedule a paused task again", cmd_resume)
