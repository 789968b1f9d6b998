"""What the dashboard's templates show: schedules in words, times, highlighted JavaScript and the
SVG timeline of recent runs (drawn here, so the page needs no chart library)."""

import html
import re
import time
from datetime import UTC, datetime

from markupsafe import Markup

from arangotasks.models import Run, RunStatus, Task

_JS_TOKEN = re.compile(
    r"""(?P<comment>//[^\n]*|/\*[\s\S]*?\*/)
      |(?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\]|\\.)*`)
      |(?P<number>\b\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\b)
      |(?P<keyword>\b(?:var|let|const|function|return|if|else|for|while|do|break|continue|new|
         try|catch|finally|throw|typeof|instanceof|in|of|async|await|class|extends|null|
         undefined|true|false|this|switch|case|default|delete)\b)
      |(?P<call>\b(?:require|print|console|params|db|aql|query)\b)""",
    re.VERBOSE,
)


def seconds_text(seconds: float) -> str:
    """``5 s``, ``1.5 s``, ``2 min``, ``3 h``, ``1 day`` (as short as exact)."""
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if unit == 'day' and count > 1 else ''}"
    return f"{seconds:g} s"


def schedule_text(task: Task) -> str:
    """The schedule in words: ``every 5 s``, ``once, 10 s after creation``, ``cron ...``."""
    if task.options.cron:
        return f"cron {task.options.cron} ({task.options.timezone or 'UTC'})"
    if task.period_ms is not None:
        text = f"every {seconds_text(task.period_ms / 1000)}"
        if task.offset_ms > 0:
            text += f", first after {seconds_text(task.offset_ms / 1000)}"
        return text
    if task.offset_ms > 0:
        return f"once, {seconds_text(task.offset_ms / 1000)} after creation"
    return "once, at creation"


def when(epoch: float | None) -> str:
    """A UTC timestamp with seconds, or an em dash."""
    if epoch is None:
        return "—"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def relative(epoch: float | None, now: float | None = None) -> str:
    """``in 4 s`` / ``12 min ago``."""
    if epoch is None:
        return "—"
    delta = epoch - (time.time() if now is None else now)
    size = abs(delta)
    for unit, span in (("d", 86400), ("h", 3600), ("min", 60)):
        if size >= span:
            amount = f"{int(size // span)} {unit}"
            break
    else:
        amount = f"{size:.0f} s" if size >= 1 else "now"
    if amount == "now":
        return amount
    return f"in {amount}" if delta > 0 else f"{amount} ago"


def duration(run: Run) -> str:
    if run.started_at is None or run.finished_at is None:
        return "—"
    seconds = run.finished_at - run.started_at
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def highlight(source: str) -> Markup:
    """JavaScript as HTML with ``<span class="js-…">`` around comments, strings, numbers and
    keywords; everything is escaped."""
    out: list[str] = []
    pos = 0
    for match in _JS_TOKEN.finditer(source):
        out.append(html.escape(source[pos : match.start()]))
        kind = match.lastgroup
        out.append(f'<span class="js-{kind}">{html.escape(match.group())}</span>')
        pos = match.end()
    out.append(html.escape(source[pos:]))
    return Markup("".join(out))


def timeline(runs: list[Run], width: int = 720, height: int = 120) -> Markup:
    """An SVG bar chart of ``runs`` (oldest left): bar height = duration, failures in red."""
    done = [r for r in runs if r.started_at is not None and r.finished_at is not None]
    if not done:
        return Markup('<p class="muted">No finished runs yet.</p>')
    done.sort(key=lambda r: r.uid)
    longest = max((r.finished_at or 0) - (r.started_at or 0) for r in done) or 1e-3
    step = min(width / len(done), 24.0)
    left = width - step * len(done)  # right-aligned: the newest run is at the right edge
    bars: list[str] = []
    for index, run in enumerate(done):
        spent = (run.finished_at or 0) - (run.started_at or 0)
        bar = max(2.0, (height - 20) * spent / longest)
        failed = run.status is RunStatus.FAILED
        label = f"run {run.uid}: {run.status.value}, {duration(run)}, {when(run.started_at)}"
        bars.append(
            f'<rect class="{"bar-failed" if failed else "bar-ok"}" x="{left + index * step:.1f}" '
            f'y="{height - bar:.1f}" width="{max(step - 1, 1):.1f}" height="{bar:.1f}">'
            f"<title>{html.escape(label)}</title></rect>"
        )
    return Markup(
        f'<svg class="timeline" viewBox="0 0 {width} {height}" preserveAspectRatio="none" '
        f'role="img" aria-label="durations of the last {len(done)} runs">'
        f'<text x="2" y="12" class="axis">longest {longest * 1000:.1f} ms</text>'
        + "".join(bars)
        + "</svg>"
    )
