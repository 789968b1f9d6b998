"""A sandbox worker process: ``python -m arangotasks.sandbox.worker [--address-space BYTES]``.

Single-threaded. It reads one JSON request per line from stdin and writes one JSON answer per
line to the original stdout; fd 1 is pointed at stderr so that nothing else can write there.
The first line it writes is ``{"ready": true, "pid": N}``.

Requests (limits in seconds and bytes)::

    {"op": "run", "command": str, "params": str | null,
     "timeout": float, "memory": int, "stack": int, "output": int,
     "result": int, "error_message": int, "error_stack": int}
    -> {"ok": bool, "result": str | null, "output": [str], "truncated": bool, "error": {..} | null}

A result whose JSON text is beyond ``result`` bytes fails the run here (``error.type`` "result"),
so that the server never reads it; an error's message and stack are cut at their limits.
    {"op": "compile", "command": str, "timeout": float, "memory": int, "stack": int}
    -> {"error": str | null}
"""

import argparse
import json
import logging
import os
import resource
import sys
import time
from typing import Any, BinaryIO

from arangotasks.models import ErrorType
from arangotasks.sandbox import engine

log = logging.getLogger(__name__)

# After the engine failed, the run's output is read back with this much extra room, so that
# a context filled up to its memory limit can still hand over what was printed before.
_SALVAGE_MEMORY = 4 * 1024 * 1024
_SALVAGE_SECONDS = 1.0
# The limits a context is made with ahead of its request (the request's replace them).
_PREPARE_MEMORY = 16 * 1024 * 1024
_PREPARE_STACK = 256 * 1024
_PREPARE_SECONDS = 1.0
# The run a worker makes before it reports ready, and its answer: it prints (prelude_output.js
# compiles) and holds a few MiB, which a worker without room for real runs cannot.
_CHECK_RUN: dict[str, Any] = {"command": "print('ready'); return 'x'.repeat(1 << 22).length"}
_CHECK_RUN |= {"params": None, "timeout": 1.0, "memory": 1 << 24, "stack": 1 << 20, "output": 1024}
_CHECK_ANSWER = {"ok": True, "result": str(1 << 22), "output": ["ready"], "truncated": False}
# The global through which the worker hands prelude_output.js to the prelude (which removes it).
_OUTPUT_GLOBAL = "__arangotasks_output"
# Size limits of a run's answer when the request names none (as the server's defaults).
_RESULT_BYTES = 1024 * 1024
_ERROR_TEXT_BYTES = 16 * 1024
# An answer shorter than this holds a small result: it needs no size or nesting check (nesting
# costs two characters a level, and Python's JSON parser stops near 1,000 levels).
_SHORT_ANSWER = 1000


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


class Runner:
    """Runs requests, each in a fresh engine context.

    :meth:`prepare`, which :func:`serve` calls between requests, moves the context's own costs
    off the request's path: it frees the last request's context and makes the next one (a new
    context with the prelude evaluated, used by no earlier request). Without it a request makes
    its context itself.
    """

    def __init__(self, prelude: str, output: str | None = None) -> None:
        self._prelude = prelude
        self._output = load_output() if output is None else output
        # The next request's context and the prelude's start function in it.
        self._next: tuple[engine.Context, engine.Function] | None = None
        self._spent: engine.Context | None = None

    def prepare(self) -> None:
        """Free the last request's context and make the next request's (if not made yet)."""
        self._spent = None
        if self._next is None:
            context = self._new_context(_PREPARE_MEMORY, _PREPARE_STACK, _PREPARE_SECONDS)
            try:
                start = context.eval(self._prelude)
            except engine.EngineError:
                return  # the request makes its own context, and reports the failure
            self._next = context, start

    def answer(self, request: dict[str, Any]) -> str:
        """The answer to a compile or run request as JSON text (a successful run's is the
        engine's own, not re-encoded)."""
        if request.get("op") == "compile":
            return json.dumps({"error": self.compile_error(request)})
        answer = self._run(request)
        return answer if isinstance(answer, str) else json.dumps(answer)

    def compile_error(self, request: dict[str, Any]) -> str | None:
        """The compile step of a run (``new Function`` in a context with the prelude), no call."""
        context, start = self._context(request)
        source = (
            "(function (command) { try { __arangotasks.compile(command); return null; }"
            " catch (e) { return JSON.stringify(String(e)); } })(" + _js(request["command"]) + ")"
        )
        try:
            if start is None:
                context.eval(self._prelude)
            text = context.eval(source)
        except engine.EngineError as exc:
            return exc.text.partition("\n")[0] or "InternalError: cannot compile"
        return None if text is None else str(json.loads(text))

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        answer = self._run(request)
        return json.loads(answer) if isinstance(answer, str) else answer

    def _run(self, request: dict[str, Any]) -> str | dict[str, Any]:
        """The answer to a run: JSON text when it succeeded, else a dict."""
        timeout = float(request["timeout"])
        memory = int(request["memory"])
        deadline = time.process_time() + timeout
        context, start = self._context(request)
        command: str = request["command"]
        params: str | None = request.get("params")
        try:
            if start is None:
                start = context.eval(self._prelude)
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
                if remaining <= 0:
                    raise engine.EngineError("InternalError: interrupted")
                context.set_time_limit(remaining)
                if not context.run_pending_job():
                    break
            text: str = finish()
            if text.startswith('{"ok":true,'):
                limit = int(request.get("result", _RESULT_BYTES))
                # A character is three UTF-8 bytes at most.
                if len(text) < _SHORT_ANSWER and 3 * len(text) <= limit:
                    return text
                answer: dict[str, Any] = json.loads(text)
                refused = _result_error(answer["result"], limit)
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
        raw = answer["error"]
        error = engine.classify_error(
            raw["name"],
            raw["message"],
            raw["stack"],
            memory_bytes=memory,
            timeout=timeout,
            default=ErrorType(raw["type"]),
        )
        error["message"] = cut(error["message"], request.get("error_message", _ERROR_TEXT_BYTES))
        error["stack"] = cut(error["stack"], request.get("error_stack", _ERROR_TEXT_BYTES))
        answer["error"] = error
        return answer

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

    def _new_context(self, memory: int, stack: int, timeout: float) -> engine.Context:
        context = engine.Context(memory_bytes=memory, stack_bytes=stack, time_limit=timeout)
        context.set_global(_OUTPUT_GLOBAL, self._output)
        return context


def _result_error(result: str | None, limit: int) -> dict[str, str] | None:
    """The run's error when its result (JSON text) is too large or too deeply nested to keep."""
    if result is None:
        return None
    size = len(result) if result.isascii() else len(result.encode("utf-8", "surrogatepass"))
    if size > limit:
        message = (
            f"the returned value is {size} bytes as JSON, beyond the result limit of {limit} "
            "bytes (ARANGOTASKS_RESULT_KB)"
        )
    else:
        try:
            json.loads(result)
            return None
        except RecursionError:
            message = "the returned value is nested too deeply"
    return {"type": ErrorType.RESULT, "name": "RangeError", "message": message, "stack": ""}


def cut(text: str, limit: int) -> str:
    """``text`` within ``limit`` UTF-8 bytes, with a marker saying how much was cut."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text
    kept = data[: max(0, limit - 64)].decode("utf-8", "ignore")
    return f"{kept}... [{len(data) - len(kept.encode('utf-8', 'surrogatepass'))} bytes cut]"


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


def limit_address_space(size: int) -> None:
    """RLIMIT_AS backstop: a leak in the engine ends this worker, not the machine."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        size = min(size, hard)
    resource.setrlimit(resource.RLIMIT_AS, (size, hard))


def serve(runner: Runner, requests: BinaryIO, answers: BinaryIO) -> None:
    """Answer each request line until end of input."""
    for line in requests:
        try:
            text = runner.answer(json.loads(line))
        except Exception as exc:  # a bug here must not end the worker: report it as the answer
            log.exception("sandbox worker: request failed")
            error = {"type": ErrorType.CRASH, "name": "WorkerError", "message": repr(exc)}
            answer = {"ok": False, "output": [], "truncated": False, "error": error | {"stack": ""}}
            text = json.dumps(answer)
        answers.write(text.encode() + b"\n")
        answers.flush()
        try:
            runner.prepare()
        except Exception:  # the next request makes its own context (and meets the problem)
            log.exception("sandbox worker: preparing the next context failed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m arangotasks.sandbox.worker")
    parser.add_argument("--address-space", type=int, default=1 << 30, help="RLIMIT_AS in bytes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    limit_address_space(args.address_space)
    # Answers go to the real stdout; anything else written to fd 1 (C code, a stray print)
    # lands on stderr instead of corrupting the protocol.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    runner = Runner(load_prelude())
    # A compile and a run before "ready": the prelude and prelude_output.js evaluate, and the
    # engine works within this worker's address space.
    broken = runner.compile_error(
        {"command": "", "timeout": 1.0, "memory": 1 << 24, "stack": 1 << 20}
    )
    if broken is not None:
        raise SystemExit(f"sandbox worker: the engine cannot run the prelude: {broken}")
    checked = runner.run(_CHECK_RUN)
    if checked != _CHECK_ANSWER:
        raise SystemExit(f"sandbox worker: the engine cannot run a command: {checked}")
    runner.prepare()
    answers.write(json.dumps({"ready": True, "pid": os.getpid()}).encode() + b"\n")
    answers.flush()
    serve(runner, sys.stdin.buffer, answers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
