"""The worker's engine side: each request in a fresh QuickJS context, on the fast path or in host
mode (see worker.py for the protocol and the two modes); the answer as JSON text."""

import json
import logging
import math
import os
import resource
import time
from collections.abc import Callable
from typing import Any

from arangotasks.models import ErrorType
from arangotasks.sandbox import engine, parse_check
from arangotasks.sandbox.answer_limits import cpu_timeout_error, cut, result_error
from arangotasks.sandbox.base import interrupted_error
from arangotasks.sandbox.watch import CpuWatch

log = logging.getLogger(__name__)

# After the engine failed, the run's output is read back with this much extra room, so that
# a context filled up to its memory limit can still hand over what was printed before.
_SALVAGE_MEMORY = 4 * 1024 * 1024
_SALVAGE_SECONDS = 1.0
# The limits a context is made with ahead of its request (the request's replace them).
_PREPARE_MEMORY = 16 * 1024 * 1024
_PREPARE_STACK = 256 * 1024
_PREPARE_SECONDS = 1.0
# The global through which the worker hands prelude_output.js and prelude_host.js (after a NUL)
# to the prelude (which removes it).
_OUTPUT_GLOBAL = "__arangotasks_output"
# Size limits of a run's answer when the request names none (as the server's defaults).
_RESULT_BYTES = 1024 * 1024
_ERROR_TEXT_BYTES = 16 * 1024
# An answer shorter than this holds a small result: it needs no size or nesting check (nesting
# costs two characters a level, and Python's JSON parser stops near 1,000 levels).
_SHORT_ANSWER = 1000
# The answer to a "divert" run that called the host on the fast path: void, run it elsewhere.
_DIVERTED: dict[str, Any] = {"host": True, "diverted": True, "ok": False, "output": []}
_DIVERTED |= {"truncated": False, "error": None}
# Hands a host-mode context's host function to the prelude, and hides it from the command.
_BIND_HOST = (
    f"__arangotasks.bindHost({engine.HOST_GLOBAL}); delete globalThis.{engine.HOST_GLOBAL};"
)
# A host-mode context prepared ahead also compiles its host machinery before the request.
_PRELOAD_HOST = _BIND_HOST + "__arangotasks.preload();"
# The engine's error when a call is interrupted (its time limit, or the server's stop).
INTERRUPTED = ("InternalError", "interrupted")
# RLIMIT_CPU, in whole seconds, is the backstop of a host-mode run's CPU watch (watch.py) this
# much beyond the run's limit.
_CPU_RLIMIT_SLACK = 1


def _load(name: str) -> str:
    """A JavaScript file beside this module, without its header comment."""
    with open(os.path.join(os.path.dirname(__file__), name), encoding="utf-8") as file:
        source = file.read()
    if source.startswith("/*"):
        source = source[source.index("*/") + 2 :]
    return source


def load_prelude() -> str:
    """prelude.js, evaluated in every run's context (every run compiles it: bytes cost)."""
    return _load("prelude.js")


def load_output() -> str:
    """prelude_output.js, compiled in a run's context only when the command first uses it."""
    return _load("prelude_output.js")


def load_host() -> str:
    """prelude_host.js, compiled in a run's context only when the command first calls out."""
    return _load("prelude_host.js")


class Runner:
    """Runs requests, each in a fresh engine context.

    :meth:`prepare`, which :func:`serve` calls between requests, moves the context's own costs
    off the request's path: it frees the last request's context and makes the next one (a new
    context with the prelude evaluated, used by no earlier request), of the mode the last
    request ran in: after a host-mode run, one with the host function bound and prelude_output.js
    and prelude_host.js compiled (most of a host-mode run's cost; host workers run nothing else).
    Without it a request makes its context itself.
    """

    def __init__(
        self,
        prelude: str,
        output: str | None = None,
        link: Callable[[str, str, str], str] | None = None,
    ) -> None:
        self._prelude = prelude
        self._output = load_output() if output is None else output
        self._host_source = load_host()
        self._db_source = _load("arangodb_db.js")  # read at start: a worker opens no files later
        self._link = link
        # The next request's context and the prelude's start function in it.
        self._next: tuple[engine.Context, engine.Function] | None = None
        self._next_host: tuple[engine.Context, engine.Function] | None = None  # host mode's
        self._last_host = False  # the last request ran in host mode
        self._spent: engine.Context | None = None
        # The host-mode run in progress: its CPU deadline, and the fatal error a reply set.
        self._deadline = 0.0
        self._timeout = 0.0
        self._fatal: dict[str, str] | None = None
        self._watch = CpuWatch()

    def stop(self) -> None:
        """The server is stopping: interrupt the run in progress and every later one (each
        ends as ``interrupted`` with the output it printed so far). From any thread."""
        self._watch.stop()

    def prepare(self) -> None:
        """Free the last request's context and make the next request's (if not made yet)."""
        self._spent = None
        if self._last_host:
            if self._next_host is None:
                self._next_host = self._prepared_host()
            return
        if self._next is None:
            context = self._new_context(_PREPARE_MEMORY, _PREPARE_STACK, _PREPARE_SECONDS)
            try:
                start = context.eval(self._prelude)
            except engine.EngineError:
                return  # the request makes its own context, and reports the failure
            self._next = context, start

    def _prepared_host(self) -> tuple[engine.Context, engine.Function] | None:
        """A host-mode context with its machinery compiled (``None``: the request makes its
        own, and reports the failure). No engine time limit: this is the worker's own code."""
        context = self._new_context(_PREPARE_MEMORY, _PREPARE_STACK, None, host=self._host_call)
        try:
            start = context.eval(self._prelude)
            context.eval(_PRELOAD_HOST)
        except engine.EngineError:
            return None
        return context, start

    def answer(self, request: dict[str, Any]) -> str:
        """The answer to a compile or run request as JSON text (a successful run's is the
        engine's own, not re-encoded)."""
        if request.get("op") == "compile":
            return json.dumps({"error": self.compile_error(request)})
        answer = self._run(request)
        return answer if isinstance(answer, str) else json.dumps(answer)

    def compile_error(self, request: dict[str, Any]) -> str | None:
        """Whether the command compiles as a function body, found by parsing alone in a fresh
        context of its own (see parse_check: no part of the command runs)."""
        context = engine.Context(
            memory_bytes=int(request["memory"]),
            stack_bytes=int(request["stack"]),
            time_limit=float(request["timeout"]),
        )
        command: str = request["command"]
        try:
            context.eval(parse_check.SETUP)
            context.eval(parse_check.script(command))
        except engine.EngineError as exc:
            return parse_check.verdict(exc.text, command)
        return "InternalError: the compile check did not throw"

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        answer = self._run(request)
        return json.loads(answer) if isinstance(answer, str) else answer

    def _run(self, request: dict[str, Any]) -> str | dict[str, Any]:
        """The answer to a run: JSON text when it succeeded, else a dict. A run that calls the
        host on the fast path runs again in host mode."""
        self._last_host = False
        if not request.get("host"):
            answer = self._attempt(request, host=False)
            if isinstance(answer, str) or "host" not in answer:
                return answer
            if request.get("divert"):  # the parent runs it on workers kept for host calls
                return _DIVERTED
        self._last_host = True
        answer = self._host_run(request)
        if isinstance(answer, str):
            return '{"host":true,' + answer[1:]
        return {"host": True} | answer

    def _host_run(self, request: dict[str, Any]) -> str | dict[str, Any]:
        """One run in host mode, its CPU bounded by RLIMIT_CPU for the length of the run."""
        self._timeout = float(request["timeout"])
        self._deadline = time.process_time() + self._timeout
        self._fatal = None
        soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
        bound = math.ceil(self._deadline) + _CPU_RLIMIT_SLACK
        if hard != resource.RLIM_INFINITY:
            bound = min(bound, hard)
        resource.setrlimit(resource.RLIMIT_CPU, (bound, hard))
        self._watch.arm(self._deadline)
        try:
            answer = self._attempt(request, host=True)
        finally:
            self._watch.disarm()
            resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
        if self._fatal is None:
            return answer
        if isinstance(answer, str):
            answer = json.loads(answer)
        answer.update(ok=False, error=self._fatal)
        answer.pop("result", None)
        return answer

    def _host_call(self, kind: str, args: str, output: str) -> str:
        """The host function of a host-mode context: the parent's reply, as JSON text."""
        if kind == "@source":  # prelude_output.js compiles the host modules
            return self._host_source
        if kind == "@arangodb-source":  # prelude_host.js compiles the db bridge's module
            return self._db_source
        try:
            if self._fatal is None and self._watch.stopping:
                self._fatal = interrupted_error()
            if self._fatal is None and time.process_time() > self._deadline:
                self._fatal = cpu_timeout_error(self._timeout)
            if self._fatal is not None:
                return json.dumps({"error": self._fatal})
            if self._link is None:
                error = {"name": "Error", "message": "host calls are not available here"}
                return json.dumps({"error": error})
            reply = self._link(kind, args, output)
            if '"fatal":' in reply:
                parsed = json.loads(reply)
                if parsed.get("fatal"):
                    self._fatal = {"type": parsed["fatal"], "stack": ""} | parsed["error"]
            return reply
        except SystemExit:
            raise
        except Exception as exc:  # the binding would lose the message: hand it over as JSON
            log.exception("sandbox worker: host call failed")
            return json.dumps({"error": {"name": "Error", "message": f"host call failed: {exc}"}})

    def _attempt(self, request: dict[str, Any], *, host: bool) -> str | dict[str, Any]:
        """One run of the command, on the fast path or in host mode."""
        timeout = float(request["timeout"])
        memory = int(request["memory"])
        deadline = time.process_time() + timeout
        context, start = self._host_context(request) if host else self._context(request)
        command: str = request["command"]
        try:
            text = self._calls(context, start, request, host=host, deadline=deadline)
            if text.startswith('{"ok":true,') and not text.endswith(',"host":true}'):
                limit = int(request.get("result", _RESULT_BYTES))
                # A character is three UTF-8 bytes at most.
                if len(text) < _SHORT_ANSWER and 3 * len(text) <= limit:
                    return text
                answer: dict[str, Any] = json.loads(text)
                refused = result_error(answer["result"], limit)
                if refused is None:
                    return text
                answer = {"ok": False, "error": refused, "output": answer["output"]} | {
                    "truncated": answer["truncated"]
                }
                return answer
            answer = json.loads(text)
        except engine.EngineError as exc:
            name, message, stack = engine.split_error_text(exc.text)
            error = {"type": ErrorType.EXCEPTION, "name": name, "message": message, "stack": stack}
            answer = {"ok": False, "error": error, **_salvage_output(context, memory)}
        if "host" in answer:  # it called the host on the fast path: this outcome is void
            return answer
        raw = answer["error"]
        if self._watch.stopping and (raw["name"], raw["message"]) == INTERRUPTED:
            answer["error"] = interrupted_error()  # by the server's stop, not its time limit
            return answer
        error = engine.classify_error(
            raw["name"],
            raw["message"],
            raw["stack"],
            memory_bytes=memory,
            timeout=timeout,
            default=ErrorType(raw["type"]),
        )
        error["message"] = cut(error["message"], request.get("error_message", _ERROR_TEXT_BYTES))
        stack = parse_check.task_stack(error["stack"], command)
        error["stack"] = cut(stack, request.get("error_stack", _ERROR_TEXT_BYTES))
        answer["error"] = error
        return answer

    def _calls(
        self,
        context: engine.Context,
        start: engine.Function | None,
        request: dict[str, Any],
        *,
        host: bool,
        deadline: float,
    ) -> str:
        """The engine calls of one run: start the command, run its promise jobs, finish (the
        run's answer as the prelude writes it). The watch may interrupt them (see watch.py)."""
        command: str = request["command"]
        params: str | None = request.get("params")
        self._watch.enter(context)
        try:
            if self._watch.stopping:
                raise engine.EngineError("InternalError: interrupted")
            if start is None:
                start = context.eval(self._prelude)
                if host:
                    context.eval(_BIND_HOST)
            if engine.passable(command) and (params is None or engine.passable(params)):
                # A float: the binding hands a Python int over as a 32-bit integer.
                finish = start(command, params, float(request["output"]))
            else:  # through JSON literals, which carry lone surrogates
                finish = context.eval(
                    f"__arangotasks.start({_js(command)}, "
                    f"{'undefined' if params is None else _js(params)}, {int(request['output'])})"
                )
            # The engine's CPU clock restarts with every call: hand each call what is left.
            while True:
                remaining = deadline - time.process_time()
                if remaining <= 0 or self._watch.stopping:
                    raise engine.EngineError("InternalError: interrupted")
                if not host:
                    context.set_time_limit(remaining)
                if not context.run_pending_job():
                    break
            text: str = finish()
            return text
        finally:
            self._watch.leave()  # before the output is salvaged: that call must not stop

    def _context(self, request: dict[str, Any]) -> tuple[engine.Context, engine.Function | None]:
        """The request's context under its limits, and its start function when the prelude
        is evaluated already."""
        memory, stack, timeout = int(request["memory"]), int(request["stack"]), request["timeout"]
        prepared, self._next = self._next, None
        if prepared is None:
            self._spent = None  # the last request's, when no prepare() came between
            context, start = self._new_context(memory, stack, float(timeout)), None
        else:
            context, start = prepared
            context.set_limits(memory_bytes=memory, stack_bytes=stack, time_limit=float(timeout))
        self._spent = context  # freed by the next prepare(), after the answer went out
        return context, start

    def _host_context(
        self, request: dict[str, Any]
    ) -> tuple[engine.Context, engine.Function | None]:
        """As :meth:`_context`, in host mode: no engine time limit, the host function bound."""
        memory, stack = int(request["memory"]), int(request["stack"])
        prepared, self._next_host = self._next_host, None
        if prepared is None:
            context, start = self._new_context(memory, stack, None, host=self._host_call), None
        else:
            context, start = prepared
            context.set_limits(memory_bytes=memory, stack_bytes=stack, time_limit=None)
        self._spent = context  # freed by the next prepare(), after the answer went out
        return context, start

    def _new_context(
        self, memory: int, stack: int, timeout: float | None, *, host: Any = None
    ) -> engine.Context:
        context = engine.Context(
            memory_bytes=memory, stack_bytes=stack, time_limit=timeout, host=host
        )
        context.set_global(_OUTPUT_GLOBAL, self._output)
        return context


def _js(text: str) -> str:
    """``text`` as a JS string literal (ASCII only, so lone surrogates survive the binding)."""
    return json.dumps(text)


def _salvage_output(context: engine.Context, memory: int) -> dict[str, Any]:
    context.set_memory_limit(memory + _SALVAGE_MEMORY)
    context.set_time_limit(_SALVAGE_SECONDS)
    try:
        fields: dict[str, Any] = json.loads(context.eval("__arangotasks.output()"))
    except (engine.EngineError, ValueError):
        return {"output": [], "truncated": False}
    return fields
