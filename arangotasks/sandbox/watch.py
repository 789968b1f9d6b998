"""The worker's watchdog thread (see runner.py): what interrupts a run from outside its engine."""

import os
import signal
import threading
import time

# A host-mode run's CPU is checked every this many seconds.
_CPU_WATCH_INTERVAL = 0.01


class CpuWatch:
    """Ends the worker with SIGXCPU (what RLIMIT_CPU sends) once the process's CPU time passes
    the armed deadline: a host-mode context has no engine time limit, and nothing else can
    interrupt a busy loop. A thread of its own, started on first use; the engine releases the
    GIL while it runs JavaScript, and the thread never touches a context."""

    def __init__(self) -> None:
        self._deadline: float | None = None
        self._armed = threading.Event()
        self._thread: threading.Thread | None = None

    def arm(self, deadline: float) -> None:
        self._deadline = deadline
        self._armed.set()
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="cpu-watch", daemon=True)
            self._thread.start()

    def disarm(self) -> None:
        self._armed.clear()
        self._deadline = None

    def _watch(self) -> None:
        while True:
            self._armed.wait()
            deadline = self._deadline
            if deadline is not None and time.process_time() > deadline:
                os.kill(os.getpid(), signal.SIGXCPU)
            time.sleep(_CPU_WATCH_INTERVAL)
