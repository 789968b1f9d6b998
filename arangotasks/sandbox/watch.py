"""The worker's watchdog (see runner.py): what ends a run from outside its engine, the CPU limit
of a host-mode run and the server's stop, and the listener of the server's stop signal."""

import os
import signal
import threading
import time
from collections.abc import Callable

from arangotasks.sandbox import engine
from arangotasks.sandbox.hardening import STOP_SIGNAL

# A host-mode run's CPU (and, once the server stops, the run in progress) is checked every
# this many seconds.
_WATCH_INTERVAL = 0.01


class CpuWatch:
    """A thread of its own, started on first use (the engine releases the GIL while it runs
    JavaScript, so it runs beside a busy context):

    - once the process's CPU time passes the armed deadline, it ends the worker with SIGXCPU
      (what RLIMIT_CPU sends): a host-mode context has no engine time limit, and nothing else
      can interrupt its busy loop;
    - after :meth:`stop`, it interrupts the call running in the context :meth:`enter` names
      (:meth:`engine.Context.interrupt`), again at every check, since each call of a run starts
      with the time limit afresh. The context stays alive while it is entered: the lock keeps
      the thread from touching one the run has left.
    """

    def __init__(self) -> None:
        self._deadline: float | None = None
        self._armed = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._context: engine.Context | None = None
        self.stopping = False

    def arm(self, deadline: float) -> None:
        self._deadline = deadline
        self._wake()

    def disarm(self) -> None:
        self._deadline = None
        if not self.stopping:
            self._armed.clear()

    def stop(self) -> None:
        """From now on, interrupt every run (called once, from the stop listener's thread)."""
        self.stopping = True
        self._wake()

    def enter(self, context: engine.Context) -> None:
        """``context`` runs the request's calls now (until :meth:`leave`)."""
        with self._lock:
            self._context = context

    def leave(self) -> None:
        with self._lock:
            self._context = None

    def _wake(self) -> None:
        with self._lock:
            self._armed.set()
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="watch", daemon=True)
                self._thread.start()

    def _watch(self) -> None:
        while True:
            self._armed.wait()
            if self.stopping:
                with self._lock:
                    if self._context is not None:
                        self._context.interrupt()
            deadline = self._deadline
            if deadline is not None and time.process_time() > deadline:
                os.kill(os.getpid(), signal.SIGXCPU)
            time.sleep(_WATCH_INTERVAL)


def listen_for_stop(on_stop: Callable[[], None]) -> None:
    """Call ``on_stop`` (on a thread of its own) when :data:`STOP_SIGNAL` arrives. Call from the
    main thread.

    Python runs signal handlers on the main thread between bytecodes, which never comes while
    the engine runs a busy loop; its C-level handler, though, writes the signal's number to the
    wakeup fd at once, from whichever thread the kernel picked, and a thread waits on the other
    end of that pipe.
    """
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    signal.signal(STOP_SIGNAL, lambda signum, frame: None)
    signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)

    def listen() -> None:
        while STOP_SIGNAL not in os.read(read_end, 64):
            pass
        on_stop()

    threading.Thread(target=listen, name="stop-listener", daemon=True).start()
