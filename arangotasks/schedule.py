"""When a task fires next: the one place that turns a task's schedule into instants.

Three kinds of schedule share the extension options (``startAt``, ``endAt``, ``jitter``):

- *timed* (ArangoDB): once, ``offset`` seconds after creation;
- *periodic* (ArangoDB): ``period`` seconds after each run finishes (fixed delay);
- *cron* (extension): the slots of a cron expression in a time zone (``arangotasks.cron``),
  fixed-rate: the next slot is armed when a slot fires, not when its run ends.

Instants are epoch seconds. ``None`` means "never again": the task is finished (``endAt``).
Jitter is not part of a slot: the registry delays each fire by a random amount below it.
"""

import itertools
import random
from collections.abc import Iterator

from arangotasks import cron
from arangotasks.models import Options, Task

# A slot exactly at startAt is due: cron's next_after is strictly after its argument.
_JUST_BEFORE = 1e-6
MAX_PREVIEW = 100


def cron_of(options: Options) -> cron.Cron | None:
    """The parsed expression of a cron task (cached), ``None`` for other tasks."""
    if options.cron is None:
        return None
    return cron.parse(options.cron, options.timezone or "UTC")


def _bounded(options: Options, at: float | None) -> float | None:
    if at is None or (options.end_at is not None and at > options.end_at):
        return None
    return at


def first_fire(task: Task, not_before: float) -> float | None:
    """The first slot at or after ``not_before`` and ``startAt`` (creation, resume, change)."""
    options = task.options
    at = max(not_before, options.start_at if options.start_at is not None else not_before)
    expression = cron_of(options)
    if expression is not None:
        return _bounded(options, expression.next_after(at - _JUST_BEFORE))
    return _bounded(options, at)


def created_fire(task: Task) -> float | None:
    """The first fire of a new task: ``offset`` after creation (ArangoDB), then the rules above."""
    return first_fire(task, task.created + max(task.offset_ms, 0) / 1000)


def changed_fire(task: Task, now: float, period: float | None) -> float | None:
    """The next fire after the schedule changed (PATCH) or the task was resumed: a timed task
    keeps its time (at once when passed), a periodic one runs one period from now, a cron one at
    its next slot."""
    if task.options.cron is None and task.period_ms is None:
        return first_fire(task, max(now, task.created + max(task.offset_ms, 0) / 1000))
    if task.options.cron is None and period is not None:
        return first_fire(task, now + period)
    return first_fire(task, now)


def after_slot(task: Task, slot: float) -> float | None:
    """A cron task's slot after ``slot``."""
    expression = cron_of(task.options)
    assert expression is not None
    return _bounded(task.options, expression.next_after(slot))


def after_run(task: Task, finished: float, period: float) -> float | None:
    """A periodic task's next run, ``period`` after a run finished (§1.6)."""
    return _bounded(task.options, finished + period)


def after_misfire(task: Task, due: float, now: float, period: float | None) -> float | None:
    """The first slot after ``now`` of a task whose slot ``due`` passed unrun (misfire skip)."""
    expression = cron_of(task.options)
    if expression is not None:
        return _bounded(task.options, expression.next_after(now))
    if period is None:
        return None  # a timed task's single slot passed
    steps = -(-(now - due) // period)  # ceil: the first slot on the old cadence after now
    return _bounded(task.options, due + steps * period)


def upcoming(task: Task, count: int, period: float | None) -> list[float]:
    """The next ``count`` slots of a task from its armed next run (empty when paused or done).

    A periodic task's later runs are shown one period apart, as if runs took no time.
    """
    if not task.options.enabled or task.next_run_at is None:
        return []
    first = task.next_run_at
    expression = cron_of(task.options)
    slots: Iterator[float]
    if expression is not None:
        slots = itertools.chain([first], expression.after(first))
    elif period is not None:
        slots = (first + n * period for n in itertools.count())
    else:
        slots = iter([first])
    out = []
    for at in itertools.islice(slots, count):
        if _bounded(task.options, at) is None:
            break
        out.append(at)
    return out


def preview(
    expression: cron.Cron | None, period: float | None, start: float, count: int
) -> list[float]:
    """``count`` slots strictly after ``start`` of an expression or a period (preview route)."""
    if expression is not None:
        return list(itertools.islice(expression.after(start), count))
    assert period is not None
    return [start + n * period for n in range(1, count + 1)]


def jittered(options: Options, at: float) -> float:
    """The fire time of slot ``at``: delayed by a random amount in [0, jitter)."""
    if not options.jitter:
        return at
    return at + random.random() * options.jitter
