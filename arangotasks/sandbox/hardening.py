"""What a worker process may hold and reach, and its tie to the server.

Parent side: :func:`worker_environment` (no secrets: the server's environment holds the root
password and the JWT secret) and :func:`worker_identity` (the unprivileged user of the workers).
Worker side: :func:`harden`, called before the worker reads its first request.
"""

import ctypes
import ctypes.util
import os
import pwd
import signal
import sys

# What the server sends a busy worker when it stops and the run outlasted the grace (watch.py).
STOP_SIGNAL = signal.SIGUSR1
# <linux/prctl.h>
_PR_SET_PDEATHSIG = 1
_PR_SET_NO_NEW_PRIVS = 38
# What a worker's environment keeps (none of these carries a secret).
_KEPT_VARIABLES = ("PATH", "LANG", "LC_ALL", "TZ")


def worker_environment(source_root: str) -> dict[str, str]:
    """A minimal environment for a worker: the locale, PATH, and the path to this package."""
    env = {name: os.environ[name] for name in _KEPT_VARIABLES if name in os.environ}
    env.setdefault("PATH", os.defpath)
    env["PYTHONPATH"] = source_root
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # a worker writes no files
    return env


def worker_identity(user: str | None) -> tuple[int, int] | None:
    """``(uid, gid)`` the workers switch to, ``None`` to keep the server's.

    :param user: a user name; ``None`` means ``nobody`` when the server runs as root (workers
        as root could read the store and the secrets) and the server's own user otherwise.
    :raises ValueError: an unknown user, or another user while the server is not root.
    """
    euid = os.geteuid()
    if user is None:
        if euid != 0:
            return None
        user = "nobody"
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise ValueError(f"worker_user: no such user {user!r}") from None
    if entry.pw_uid == euid:
        return None
    if euid != 0:
        raise ValueError(f"worker_user {user!r}: switching users needs a server running as root")
    return entry.pw_uid, entry.pw_gid


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option})")


def harden(identity: tuple[int, int] | None, parent_pid: int | None) -> None:
    """Drop to ``identity`` (no supplementary groups, no capabilities: a uid change from root
    clears them), forbid regaining privileges (no_new_privs), die with the server, and ignore
    the signals meant for it (SIGINT, SIGTERM).

    The worker starts as the server's user and switches here, before any request is read,
    because the interpreter may live where only that user can reach (e.g. under /root).
    """
    # A Ctrl-C in a terminal signals the whole process group, systemd the whole unit: the
    # server decides when its workers stop (its runs get the shutdown grace).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if identity is not None:
        uid, gid = identity
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    if sys.platform != "linux":
        return
    _prctl(_PR_SET_NO_NEW_PRIVS, 1)
    if parent_pid is not None:
        # After the uid change: changing credentials clears the parent-death signal.
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent_pid:  # the server died before the line above
            raise SystemExit("sandbox worker: the server is gone")
