"""The server log's line for a run: one line each, bounded, control characters escaped, so that
a run can neither flood the log nor forge lines in it (``print("x\\nFORGED")``)."""

import logging
import re

from arangotasks.models import Run

log = logging.getLogger("arangotasks.runs")

# Characters shown a few hundred at a time: enough to see what went wrong.
MESSAGE_CHARS = 300
OUTPUT_CHARS = 300
# C0 and C1 controls, DEL, the Unicode line and paragraph separators, and the backslash itself
# (so that an escape in the log always means an escaped character).
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\\]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def safe(text: str, limit: int, *, tail: bool = False) -> str:
    """``text`` on one line: at most ``limit`` characters of it (the end of it when ``tail``),
    escaped, with ``...`` where it was cut."""
    if len(text) > limit:
        text = "..." + text[-limit:] if tail else text[:limit] + "..."
    return _UNSAFE.sub(_escape, text)


def log_run(task_id: str, run: Run) -> None:
    """A failed run: one WARNING line. A successful one: one DEBUG line."""
    output = safe("\n".join(run.output), OUTPUT_CHARS, tail=True)
    if run.error is None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("task %s run %d succeeded; output: %s", safe(task_id, 200), run.uid, output)
        return
    error = run.error
    log.warning(
        "task %s run %d failed (%s): %s; output: %s",
        safe(task_id, 200),
        run.uid,
        safe(str(error.get("type")), 40),
        safe(f"{error.get('name')}: {error.get('message')}", MESSAGE_CHARS),
        output or "-",
    )
