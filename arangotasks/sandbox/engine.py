"""The JavaScript engine adapter: the only module that imports ``quickjs`` (quickjs-ng).

Swapping the engine means rewriting this module (and the engine-specific corners of
``prelude.js``); the worker only sees :class:`Context`, :class:`EngineError`,
:func:`split_error_text` and :func:`classify_error`.
"""

import ctypes
import functools
import resource
from collections.abc import Callable
from typing import Any

import quickjs

from arangotasks.models import ErrorType

# Headroom between the engine's stack limit and the real C stack of the worker's main thread:
# a limit at or above the thread's stack segfaults instead of raising (js-engines.md §3).
_STACK_HEADROOM = 512 * 1024
_MIN_STACK = 64 * 1024


# No public API of the binding stops a call from another thread; the only interruption is its
# time limit, which its interrupt handler checks as ``clock() - data->start >= data->limit``
# (module.c), with that InterruptData inside the context object, copied from the context's
# ``time_limit`` when a call begins. :meth:`Context.interrupt` sets ``limit`` to 0, so the
# running call stops at the handler's next check, as at its time limit. The object, in 8-byte
# words on 64-bit Linux: PyObject_HEAD (2), runtime, context, has_time_limit (an int, padded),
# time_limit, thread_state, InterruptData.start, InterruptData.limit. interrupt_supported()
# checks this on the binding in use (tests/unit/test_sandbox_stop.py fails when a new
# binding changes it; the worker then falls back to being killed, see pool.py).
_HAS_TIME_LIMIT_WORD = 4
_TIME_LIMIT_WORD = 5
_INTERRUPT_LIMIT_WORD = 8
_CLOCKS_PER_SEC = 1_000_000  # POSIX (XSI) requires this value
_Words = ctypes.c_int64 * (_INTERRUPT_LIMIT_WORD + 1)

# The global name of the host function in a context made with one (prelude.js takes it away).
HOST_GLOBAL = "__arangotasks_host"


class EngineError(Exception):
    """The engine raised out of a call: ``text`` is its single error string
    (``"TypeError: bad\\n    at f (<input>:1:29)\\n"``)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def usable_stack(requested: int) -> int:
    """``requested`` clamped below this thread's C stack (never 0: 0 means "no check")."""
    soft, _ = resource.getrlimit(resource.RLIMIT_STACK)
    if soft != resource.RLIM_INFINITY:
        requested = min(requested, soft - _STACK_HEADROOM)
    return max(requested, _MIN_STACK)


def passable(text: str) -> bool:
    """Whether ``text`` can be handed to the engine as a string: no lone surrogates."""
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


class Function:
    """A JavaScript function of a :class:`Context`, called with ``None``, str (see
    :func:`passable`), int, float or bool arguments, on the context's thread and limits."""

    def __init__(self, function: quickjs.Object) -> None:
        self._function = function

    def __call__(self, *args: str | int | float | bool | None) -> Any:
        return _outcome(self._function, *args)


def _outcome(call: Any, *args: Any) -> Any:
    """``call(*args)``, a JavaScript object it returns wrapped, its exception as EngineError."""
    try:
        value = call(*args)
    except quickjs.JSException as exc:
        raise EngineError(str(exc)) from None
    except UnicodeDecodeError:
        # A string holding a lone surrogate cannot reach Python; callers return JSON text.
        raise EngineError("InternalError: the engine returned undecodable text") from None
    return Function(value) if isinstance(value, quickjs.Object) else value


class Context:
    """A fresh, isolated JS context (its own runtime) with memory, stack and CPU-time limits.

    Use it only on the thread that created it.

    :param time_limit: CPU seconds per call; ``None`` for none (required with ``host``).
    :param host: defined as the global function ``__arangotasks_host`` (a call of it runs this
        Python function). The binding refuses such calls while a time limit is set, so a
        context with ``host`` has none: the worker bounds its CPU another way.
    """

    def __init__(
        self,
        *,
        memory_bytes: int,
        stack_bytes: int,
        time_limit: float | None,
        host: Callable[[str, str], str] | None = None,
    ) -> None:
        self._ctx = quickjs.Context()
        if host is not None:
            self._ctx.add_callable(HOST_GLOBAL, host)
        self.set_limits(memory_bytes=memory_bytes, stack_bytes=stack_bytes, time_limit=time_limit)

    def set_limits(self, *, memory_bytes: int, stack_bytes: int, time_limit: float | None) -> None:
        """Replace all three limits (a context made ahead of its run gets the run's here)."""
        self._ctx.set_memory_limit(memory_bytes)
        self._ctx.set_max_stack_size(usable_stack(stack_bytes))
        self.set_time_limit(time_limit)

    def set_time_limit(self, seconds: float | None) -> None:
        """CPU seconds for each following call (the engine restarts the clock on every call);
        ``None`` lifts the limit."""
        if seconds is None:
            self._ctx.set_time_limit(-1.0)  # the binding's "no limit"
            return
        # The binding treats a negative value as "no limit": keep a tiny positive budget instead.
        self._ctx.set_time_limit(max(seconds, 1e-3))

    def interrupt(self) -> None:
        """End the call running in this context at the engine's next interrupt check, as its
        time limit would (``InternalError: interrupted``). Safe from another thread while the
        context is alive; only a call made with a time limit is stopped, and only the current
        one (the next call starts with the context's time limit again). Does nothing where
        :func:`interrupt_supported` is false."""
        if interrupt_supported():
            _Words.from_address(id(self._ctx))[_INTERRUPT_LIMIT_WORD] = 0

    def set_memory_limit(self, memory_bytes: int) -> None:
        self._ctx.set_memory_limit(memory_bytes)

    def set_global(self, name: str, value: str) -> None:
        """Define the global ``name`` as the string ``value`` (no lone surrogates)."""
        self._ctx.set(name, value)

    def eval(self, source: str) -> Any:
        """Evaluate a script; the value of its last expression (str, int, float, bool, None, or
        a :class:`Function` for an object)."""
        return _outcome(self._ctx.eval, source)

    def run_pending_job(self) -> bool:
        """Run one queued promise job; ``False`` when none was queued."""
        try:
            return bool(self._ctx.execute_pending_job())
        except quickjs.JSException as exc:
            raise EngineError(str(exc)) from None


@functools.cache
def interrupt_supported() -> bool:
    """Whether :meth:`Context.interrupt` works with the binding in use (its context object has
    the layout described above: checked on a probe context, once per process)."""
    if ctypes.sizeof(ctypes.c_void_p) != 8 or ctypes.sizeof(ctypes.c_long) != 8:
        return False
    if getattr(quickjs.Context, "__basicsize__", 0) < ctypes.sizeof(_Words):
        return False
    probe = quickjs.Context()
    words = _Words.from_address(id(probe))
    for seconds in (12.5, 3.25):
        probe.set_time_limit(seconds)
        probe.eval("0")  # a call copies the time limit into InterruptData
        ticks = int(seconds * _CLOCKS_PER_SEC)
        if (words[_HAS_TIME_LIMIT_WORD] & 0xFFFFFFFF, words[_TIME_LIMIT_WORD]) != (1, ticks):
            return False
        if words[_INTERRUPT_LIMIT_WORD] != ticks:
            return False
    probe.set_time_limit(-1.0)
    return words[_HAS_TIME_LIMIT_WORD] & 0xFFFFFFFF == 0


def split_error_text(text: str) -> tuple[str, str, str]:
    """``(name, message, stack)`` from the engine's error string."""
    first, _, stack = text.partition("\n")
    # Out of memory while building the error leaves null (or an uninitialised value) as the
    # exception, so its text is "null" or "[uninitialized]" instead of a message.
    if first in ("null", "[uninitialized]"):
        return "InternalError", "out of memory", ""
    name, sep, message = first.partition(": ")
    if not sep or not name.isidentifier():
        name, message = "Error", first
    # A thrown non-Error prints its value and then "undefined" as its (missing) stack.
    if stack.strip() == "undefined":
        stack = ""
    return name, message, stack


def classify_error(
    name: str,
    message: str,
    stack: str,
    *,
    memory_bytes: int,
    timeout: float,
    default: ErrorType = ErrorType.EXCEPTION,
) -> dict[str, str]:
    """The run error ``{type, name, message, stack}``, recognising the engine's limit errors."""
    kind: str = default
    if name == "InternalError" and message == "interrupted":
        kind, message = ErrorType.TIMEOUT, f"interrupted: CPU time limit of {timeout:g} s exceeded"
    elif name == "InternalError" and message == "out of memory":
        kind, message = ErrorType.MEMORY, f"out of memory (memory limit {memory_bytes} bytes)"
    elif name == "InternalError" and message == "string too long":
        kind, message = ErrorType.MEMORY, "string too long (the engine's string length limit)"
    elif name == "RangeError" and message == "Maximum call stack size exceeded":
        message = "stack overflow: maximum call stack size exceeded"
    # The frames below the command are the worker's run machinery (prelude.js).
    stack = stack.partition("    at __arangotasks_")[0]
    return {"type": kind, "name": name, "message": message, "stack": stack}
