"""The compile check of a task command by parsing alone: no part of the command ever runs.

``new Function("params", command)`` concatenates its source, so a body such as
``}); for(;;){} (function(){`` closes the function early and runs its middle while the function
is built. The check instead evaluates, in a fresh context::

    throw __arangotasks_verdict(anonymous, LENGTH);function anonymous(params
    ) {
    COMMAND
    }

A script is parsed whole before any of it runs, and its only effects before the first
statement are hoisted declarations (bindings and function objects, no code). The first
statement always throws, so nothing after it runs: a parse failure is the engine's SyntaxError,
and otherwise the thrown value is the verdict. ``anonymous`` is the last top-level declaration
of that name, so its source (``Function.prototype.toString``, captured before the check) spans
everything after the first statement only if the command did not close the function early:
a body that escapes is refused, as V8 refuses it. The verdict function is a non-writable,
non-configurable global: a hoisted ``function __arangotasks_verdict`` in an escaping body fails
the global declaration instead of replacing it. The script goes through an indirect ``eval`` of a
JSON string literal, so that any string, even one with lone surrogates, can be checked.

The command's lines start on the third line of that source, as they do in ``new Function``'s,
and the engine counts columns in UTF-8 bytes: :func:`verdict` turns the engine's position into
line and column (in characters) of the command as written.
"""

import json
import re

VERDICT_GLOBAL = "__arangotasks_verdict"
# What ``new Function("params", body)`` puts around a body (quickjs-ng and V8 alike).
HEAD = "function anonymous(params\n) {\n"
TAIL = "\n}"
COMPILES = "__arangotasks: the command compiles"
ESCAPES = "SyntaxError: the command closes its function body early"
_HEAD_LINES = HEAD.count("\n")

# Evaluated once in the check's fresh context, before the check itself.
SETUP = (
    f'Object.defineProperty(globalThis, "{VERDICT_GLOBAL}", {{ value: (function (source) {{'
    " return function (fn, length) {"
    ' return typeof fn === "function" && source.call(fn).length === length'
    f" ? {json.dumps(COMPILES)} : {json.dumps(ESCAPES)}; }};"
    " })(Function.prototype.toString) }); undefined"
)

# The position of a SyntaxError: the first frame of its stack, e.g. "    at <input>:3:12".
_POSITION = re.compile(r"^\s*at <input>:(\d+):(\d+)\s*$")
# A position in a run's stack frame: "    at f (<input>:4:3)" or "    at <input>:4:3".
_FRAME_POSITION = re.compile(r"<input>:(\d+):(\d+)")


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le", errors="surrogatepass")) // 2


def script(command: str) -> str:
    """The source to evaluate (after :data:`SETUP`) to check ``command``."""
    source = HEAD + command + TAIL
    check = f"throw {VERDICT_GLOBAL}(anonymous, {_utf16_length(source)});" + source
    return f"(0, eval)({json.dumps(check)})"


def verdict(error_text: str, command: str) -> str | None:
    """``None`` when the check's thrown ``error_text`` says the command compiles, else the
    engine's reason with the position in the command, e.g.
    ``"SyntaxError: expecting ';' (line 1, column 12)"``."""
    first, _, stack = error_text.partition("\n")
    if first == COMPILES:
        return None
    if not first:
        return "SyntaxError: cannot compile"
    match = _POSITION.match(stack.partition("\n")[0])
    if match is None:
        return first
    line, column = position(command, int(match[1]), int(match[2]))
    return f"{first} (line {line}, column {column})"


def position(command: str, line: int, byte_column: int) -> tuple[int, int]:
    """The command's line and column (1-based, in characters) of the engine's ``line`` and
    ``byte_column`` in a source that has ``new Function``'s two lines before the command."""
    lines = command.split("\n")
    line -= _HEAD_LINES
    if line < 1:
        return 1, 1
    if line > len(lines):  # at the closing brace after the command: the end of the command
        return len(lines), len(lines[-1]) + 1
    prefix = lines[line - 1].encode("utf-8", errors="surrogatepass")[: max(byte_column - 1, 0)]
    return line, len(prefix.decode("utf-8", errors="ignore")) + 1


def task_stack(stack: str, command: str) -> str:
    """A run's stack with each frame's position in the command as written: ``<task>:L:C``.

    The command runs as ``new Function``'s function, two lines below the top of its source; the
    prelude's frames are kept out of such stacks (they start at the command's call). Code the
    command compiles itself (``eval``, ``new Function``) is counted as if it were the command.
    """

    def mapped(match: re.Match[str]) -> str:
        line, column = position(command, int(match[1]), int(match[2]))
        return f"<task>:{line}:{column}"

    return _FRAME_POSITION.sub(mapped, stack)
