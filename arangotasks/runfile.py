"""``arangotasks run FILE.js``: run a file once as a task command, in the task sandbox."""

import asyncio
import json
import sys
from typing import TextIO

from arangotasks.config import SYSTEM_DATABASE, Settings
from arangotasks.models import RunOutcome
from arangotasks.outbound import Outbound, load_overrides
from arangotasks.sandbox.base import Limits
from arangotasks.sandbox.host import HostCalls
from arangotasks.sandbox.pool import QuickJSSandbox
from arangotasks.secret_calls import StoreVault, register_secret_calls

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def run_file(
    path: str, params_json: str | None, timeout: float | None, settings: Settings | None = None
) -> int:
    """Run the file's contents once, like a task's command, and print what happened.

    :param path: a JavaScript function body (``params`` in scope, ``return`` allowed).
    :param params_json: JSON text of ``params``; ``None`` leaves ``params`` undefined.
    :param timeout: seconds of CPU time for the run (the default limit when ``None``).
    :param settings: the server's settings (``ARANGOTASKS_*``) whose sandbox limits apply; read
        from the environment when ``None``, so that a command behaves as it would in a task.
    :return: 0 when the run succeeded, 1 when it failed, 2 on a usage problem.
    """
    out = sys.stdout
    try:
        with open(path, encoding="utf-8") as file:
            command = file.read()
    except (OSError, UnicodeDecodeError) as exc:
        out.write(f"error: cannot read {path}: {exc}\n")
        return EXIT_USAGE
    if params_json is not None:
        try:
            json.loads(params_json)
        except ValueError as exc:
            out.write(f"error: --params is not JSON: {exc}\n")
            return EXIT_USAGE
    if timeout is not None and not timeout > 0:
        out.write("error: --timeout must be a positive number of seconds\n")
        return EXIT_USAGE
    if settings is None:
        settings = Settings()
    limits = settings.limits(timeout)
    compile_error, outcome = asyncio.run(
        _run_once(
            command,
            params_json,
            limits,
            label=path,
            address_space=settings.worker_address_space_mb * 1024 * 1024,
        )
    )
    if compile_error is not None:
        out.write(f"cannot compile command: {compile_error}\n")
        return EXIT_FAILED
    assert outcome is not None
    _report(outcome, out)
    return EXIT_OK if outcome.ok else EXIT_FAILED


async def _run_once(
    command: str, params_json: str | None, limits: Limits, *, label: str, address_space: int
) -> tuple[str | None, RunOutcome | None]:
    # Outbound HTTP under the same settings as the server (ARANGOTASKS_HTTP_ALLOW, the config
    # file's list for _system), as a task of the _system database.
    settings = Settings()
    calls = HostCalls()
    outbound = Outbound(settings, load_overrides(settings))
    outbound.register(calls)
    secrets = StoreVault(settings)  # the server's secrets of _system, read from its store
    register_secret_calls(calls, secrets)
    sandbox = QuickJSSandbox(
        workers=1, limits=limits, worker_address_space=address_space, host=calls
    )
    try:
        await sandbox.start()
    except BaseException:
        await outbound.close()
        raise
    try:
        # The same check as registering a task: a command that does not compile never runs.
        compile_error = await sandbox.compile_error(command)
        if compile_error is not None:
            return compile_error, None
        outcome = await sandbox.run(
            command, params_json, limits, label=label, database=SYSTEM_DATABASE
        )
        return None, outcome
    finally:
        await sandbox.close()
        await outbound.close()
        await secrets.close()


def _report(outcome: RunOutcome, out: TextIO) -> None:
    if outcome.output:
        out.write("output:\n")
        for line in outcome.output:
            out.write("  " + line.replace("\n", "\n  ") + "\n")
    for request in outcome.requests:
        status = request["status"] if request["error"] is None else request["error"]
        out.write(f"request: {request['method']} {request['url']} -> {status}\n")
    if outcome.ok:
        result = "undefined" if outcome.result_json is None else outcome.result_json
        out.write(f"result: {result}\n")
        return
    error = outcome.error or {}
    kind, name, message = error.get("type", "?"), error.get("name", "Error"), error.get("message")
    out.write(f"error ({kind}): {name}: {message}\n")
    stack = error.get("stack", "").rstrip("\n")
    if stack:
        out.write(stack + "\n")
