"""Per-user limits: how long and how many runs at once, how many tasks and how many bytes of
commands and params a user may keep. Server-wide defaults come from the settings, a user's own
values from the users file; superusers (and the anonymous superuser with authentication off)
are exempt from the defaults but bound by their own values, if they have any."""

import os
from collections import Counter
from dataclasses import dataclass

from arangotasks.config import AccessConfig, Settings, UserLimits
from arangotasks.errors import ArangoError, ErrorCode
from arangotasks.models import Task


@dataclass(frozen=True, slots=True)
class Allowance:
    """The limits in force for one owner; ``None`` = no limit."""

    max_timeout: float  # never above the hard maximum, ``Settings.max_timeout``
    max_runs: int | None
    max_tasks: int | None
    max_command_bytes: int | None
    max_params_bytes: int | None


# No limits of one's own (immutable; made once: allowance() is on every run's path).
_NO_OWN_LIMITS = UserLimits()


def _kib(value: int | None) -> int | None:
    return None if value is None else value * 1024


def allowance(settings: Settings, access: AccessConfig | None, owner: str) -> Allowance:
    """The limits of ``owner`` (a task's owner, a caller's name; "" is the anonymous superuser)."""
    user = access.users.get(owner) if access is not None else None
    own = user.limits if user is not None else _NO_OWN_LIMITS
    if owner == "" or (user is not None and user.superuser):
        timeout = own.max_timeout if own.max_timeout is not None else settings.max_timeout
        return Allowance(
            min(timeout, settings.max_timeout),
            own.max_runs,
            own.max_tasks,
            _kib(own.max_command_kb),
            _kib(own.max_params_kb),
        )
    timeout = own.max_timeout if own.max_timeout is not None else settings.user_max_timeout
    runs = own.max_runs if own.max_runs is not None else settings.user_max_runs
    if runs == 0:  # automatic: one worker is always left to the other users
        runs = max(1, (settings.workers or os.cpu_count() or 1) - 1)

    def pick(mine: int | None, default: int) -> int:
        return mine if mine is not None else default

    return Allowance(
        max_timeout=min(timeout, settings.max_timeout),
        max_runs=runs,
        max_tasks=pick(own.max_tasks, settings.user_max_tasks),
        max_command_bytes=pick(own.max_command_kb, settings.user_max_command_kb) * 1024,
        max_params_bytes=pick(own.max_params_kb, settings.user_max_params_kb) * 1024,
    )


def task_bytes(command: str, params_json: str | None) -> tuple[int, int]:
    """What a task counts against its owner's quotas: UTF-8 bytes of command and params."""
    params = 0 if params_json is None else len(params_json.encode())
    return len(command.encode()), params


def _refuse(owner: str, what: str) -> ArangoError:
    who = f"user '{owner}'" if owner else "this user"
    return ArangoError(ErrorCode.RESOURCE_LIMIT, f"quota exceeded: {who} may have {what}")


def _size(limit: int) -> str:
    return f"{limit // 1024} KiB" if limit % 1024 == 0 else f"{limit} bytes"


class Usage:
    """Tasks and bytes each owner holds, counted from the registered tasks; a create reserves
    its share before it is stored, so concurrent creates cannot overshoot a quota together."""

    def __init__(self) -> None:
        self._tasks: Counter[str] = Counter()
        self._commands: Counter[str] = Counter()
        self._params: Counter[str] = Counter()

    def tasks(self, owner: str) -> int:
        return self._tasks[owner]

    def check(self, owner: str, command: str, params_json: str | None, limits: Allowance) -> None:
        """Raise 403/32 when one more such task would exceed a quota of ``owner``."""
        command_bytes, params_bytes = task_bytes(command, params_json)
        if limits.max_tasks is not None and self._tasks[owner] + 1 > limits.max_tasks:
            raise _refuse(owner, f"at most {limits.max_tasks} tasks")
        cap = limits.max_command_bytes
        if cap is not None and self._commands[owner] + command_bytes > cap:
            raise _refuse(owner, f"at most {_size(cap)} of commands in all its tasks")
        cap = limits.max_params_bytes
        if cap is not None and self._params[owner] + params_bytes > cap:
            raise _refuse(owner, f"at most {_size(cap)} of params in all its tasks")

    def reserve(self, owner: str, command: str, params_json: str | None, limits: Allowance) -> None:
        """:meth:`check`, then count the task (undo with :meth:`release`)."""
        self.check(owner, command, params_json, limits)
        self.add(owner, command, params_json)

    def add(self, owner: str, command: str, params_json: str | None) -> None:
        command_bytes, params_bytes = task_bytes(command, params_json)
        self._tasks[owner] += 1
        self._commands[owner] += command_bytes
        self._params[owner] += params_bytes

    def release(self, owner: str, command: str, params_json: str | None) -> None:
        command_bytes, params_bytes = task_bytes(command, params_json)
        for counter, amount in (
            (self._tasks, 1),
            (self._commands, command_bytes),
            (self._params, params_bytes),
        ):
            counter[owner] -= amount
            if counter[owner] <= 0:
                del counter[owner]

    def add_task(self, task: Task) -> None:
        self.add(task.owner, task.command, task.params_json)

    def release_task(self, task: Task) -> None:
        self.release(task.owner, task.command, task.params_json)
