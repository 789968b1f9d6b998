"""A sandbox worker process: ``python -m arangotasks.sandbox.worker [--address-space BYTES]``.

Runs JavaScript on its main thread only (watch.py's threads never run any). It reads one
JSON request per line from stdin and writes one JSON answer per line to the original stdout;
fd 1 is pointed at stderr so that nothing else can write there. The first line it writes is
``{"ready": true, "pid": N}``.

Requests (limits in seconds and bytes)::

    {"op": "run", "command": str, "params": str | null,
     "timeout": float, "memory": int, "stack": int, "output": int,
     "result": int, "error_message": int, "error_stack": int, "host": bool (optional)}
    -> {"ok": bool, "result": str | null, "output": [str], "truncated": bool, "error": {..} | null,
        "host": true (when it ran in host mode)}

A result whose JSON text is beyond ``result`` bytes fails the run here (``error.type`` "result"),
so that the server never reads it; an error's message and stack are cut at their limits.
``"start_by": float`` (optional, ``time.monotonic()``, which is system-wide) is the latest the
run may begin: a request read later answers ``{"not_started": true}`` and runs nothing.
    {"op": "compile", "command": str, "timeout": float, "memory": int, "stack": int}
    -> {"error": str | null}   (parse only: the command never runs)

Host calls (see host.py for the parent's side). A run starts on the fast path: the engine's
CPU limit, no Python callbacks (the binding refuses them while a limit is set). When the command
calls the host there (``require('@arangodb/request')`` and the like), prelude.js's stand-in
throws and flags the reply; the worker then runs the command again from scratch in host mode:
a fresh context with the host function and no engine time limit, its CPU bounded by RLIMIT_CPU
(SIGXCPU kills the worker; the parent reports a timeout) and by checks at every host call and
promise job. Nothing can have left the sandbox before the first host call, so running again is
safe. ``"host": true`` in a request starts in host mode (the parent remembers such commands);
with ``"divert": true`` a run that calls the host on the fast path answers ``{"host": true,
"diverted": true, ...}`` at once instead (the parent runs it again on workers kept for that).
During a host-mode run the worker may write, before its answer, any number of ::

    {"call": kind, "args": <JSON>, "output": [str]}   (output: lines printed since the last call)
    <- {"value": <JSON>} | {"error": {"name": str, "message": str}, "fatal": str | null}

and blocks reading the reply. A ``fatal`` reply (a limit of the run was breached) fails the run
with that error type whatever the command does next.

Stopping. SIGUSR1 (the server stops, and the run outlasted the shutdown grace) interrupts the
run in progress and every later one: each answers ``error.type`` "interrupted" with the output
printed so far (a fast-path call is stopped in the engine, see watch.py; a host-mode run at its
next host call or promise job; a host-mode busy loop only by the server killing the worker).
SIGINT and SIGTERM are ignored: they reach the workers with the server's process group.
"""

import argparse
import codecs
import json
import logging
import os
import resource
import sys
import time
from typing import Any, BinaryIO

from arangotasks.models import ErrorType
from arangotasks.sandbox import engine, hardening, watch
from arangotasks.sandbox.runner import Runner, load_prelude

log = logging.getLogger(__name__)

_NOT_STARTED = json.dumps({"not_started": True})

# The run a worker makes before it reports ready, and its answer: it prints (prelude_output.js
# compiles) and holds a few MiB, which a worker without room for real runs cannot.
_CHECK_RUN: dict[str, Any] = {"command": "print('ready'); return 'x'.repeat(1 << 22).length"}
_CHECK_RUN |= {"params": None, "timeout": 1.0, "memory": 1 << 24, "stack": 1 << 20, "output": 1024}
_CHECK_ANSWER = {"ok": True, "result": str(1 << 22), "output": ["ready"], "truncated": False}


class HostLink:
    """The worker's end of host calls: writes a call line to the parent, blocks for the reply.

    :param requests: the worker's stdin (replies arrive there, between requests).
    :param answers: the worker's protocol output.
    """

    def __init__(self, requests: BinaryIO, answers: BinaryIO) -> None:
        self._requests = requests
        self._answers = answers

    def call(self, kind: str, args: str, output: str) -> str:
        """The parent's reply line (JSON text) to one call; ``args`` and ``output`` are JSON."""
        line = '{"call":' + json.dumps(kind) + ',"args":' + args + ',"output":' + output + "}\n"
        self._answers.write(line.encode("utf-8", "surrogatepass"))
        self._answers.flush()
        reply = self._requests.readline()
        if not reply:
            raise SystemExit(0)  # the parent is gone
        return reply.decode()


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
            request = json.loads(line)
            start_by = request.get("start_by")
            if start_by is not None and time.monotonic() >= float(start_by):
                # The server sent it in time but this line came late (the server was paused
                # between its check and the write): the run must not begin now.
                text = _NOT_STARTED
            else:
                text = runner.answer(request)
        except Exception as exc:  # a bug here must not end the worker: report it as the answer
            log.exception("sandbox worker: request failed")
            error = {"type": ErrorType.CRASH, "name": "WorkerError", "message": repr(exc)}
            answer = {"ok": False, "output": [], "truncated": False, "error": error | {"stack": ""}}
            text = json.dumps(answer)
        answers.write(text.encode() + b"\n")
        answers.flush()
        # Let the server, which that answer woke, read it before this worker spends a
        # millisecond or two of CPU preparing the next context: on a busy machine it otherwise
        # waited behind the preparation (1.5-2.4 ms more per run, measured; 0.4 ms with this).
        os.sched_yield()
        try:
            runner.prepare()
        except Exception:  # the next request makes its own context (and meets the problem)
            log.exception("sandbox worker: preparing the next context failed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m arangotasks.sandbox.worker")
    parser.add_argument("--address-space", type=int, default=1 << 30, help="RLIMIT_AS in bytes")
    parser.add_argument("--parent-pid", type=int, help="die when this process (the server) does")
    parser.add_argument("--uid", type=int, help="user to switch to before the first request")
    parser.add_argument("--gid", type=int, help="group to switch to (with --uid)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    limit_address_space(args.address_space)
    # Answers go to the real stdout; anything else written to fd 1 (C code, a stray print)
    # lands on stderr instead of corrupting the protocol.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    runner = Runner(load_prelude(), link=HostLink(sys.stdin.buffer, answers).call)
    # Now that its files are read: the package may live where only the server's user can read.
    # Codecs are imported on first use, from files the new user may not be able to read.
    for codec in ("utf-16-le", "utf-16", "utf-32", "latin-1", "ascii", "idna"):
        codecs.lookup(codec)
    hardening.harden(None if args.uid is None else (args.uid, args.gid), args.parent_pid)
    # A compile check and a run before "ready": the prelude and prelude_output.js evaluate, and the
    # engine works within this worker's address space.
    broken = runner.compile_error(
        {"command": "", "timeout": 1.0, "memory": 1 << 24, "stack": 1 << 20}
    )
    if broken is not None:
        raise SystemExit(f"sandbox worker: the compile check does not work: {broken}")
    checked = runner.run(_CHECK_RUN)
    if checked != _CHECK_ANSWER:
        raise SystemExit(f"sandbox worker: the engine cannot run a command: {checked}")
    runner.prepare()
    if not engine.interrupt_supported():  # checked here, not first at a stop
        log.warning("sandbox worker: the engine cannot be interrupted; a stop kills the worker")
    watch.listen_for_stop(runner.stop)
    answers.write(json.dumps({"ready": True, "pid": os.getpid()}).encode() + b"\n")
    answers.flush()
    serve(runner, sys.stdin.buffer, answers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
