"""The data directory: private modes, the one-server lock and the generated JWT secret.

Everything in it is the server's alone (tasks, params, outputs, results, the secret), so the
directory is 0700 and its files 0600. A lock file held with ``flock`` keeps a second server off
the same directory; the kernel drops the lock when the holder exits, even on ``kill -9``.
"""

import contextlib
import fcntl
import logging
import os
import secrets
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_NAME = "arangotasks.lock"
SECRET_NAME = "jwt-secret"
MIN_SECRET_CHARS = 32
_PRIVATE_DIR = 0o700
_PRIVATE_FILE = 0o600


class DataDirError(Exception):
    """The data directory cannot be used (locked by another server, a bad secret file)."""


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) as 0700, or tighten an existing one."""
    path.mkdir(mode=_PRIVATE_DIR, parents=True, exist_ok=True)
    tighten(path)


def tighten(path: Path) -> None:
    """Remove group and other permissions from ``path`` when it exists and has any."""
    try:
        current = path.stat().st_mode & 0o777
    except FileNotFoundError:
        return
    if current & 0o077:
        os.chmod(path, current & 0o700)
        log.info("%s was mode %03o: now %03o", path, current, current & 0o700)


class DirectoryLock:
    """An exclusive ``flock`` on ``<directory>/arangotasks.lock``, which holds the owner's pid."""

    def __init__(self, directory: Path) -> None:
        self.path = directory.absolute() / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`DataDirError` naming the directory and the holder."""
        make_private_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, _PRIVATE_FILE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DataDirError(
                f"data directory {self.path.parent} is in use by another arangotasks server "
                f"(pid {holder}; lock file {self.path})"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # closing drops the flock


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` as 0600 so that a crash or a full disk leaves either no file
    or the whole one: a temporary file beside it, fsync, rename, fsync of the directory."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, _PRIVATE_FILE)
    try:
        with os.fdopen(fd, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def jwt_secret(data_dir: Path) -> str:
    """The secret kept in ``<data_dir>/jwt-secret``, generated on first use.

    An empty file (what a crash or a full disk left before writes were atomic) is replaced by a
    new secret, with a warning; a non-empty one shorter than ``MIN_SECRET_CHARS`` is refused,
    since tokens signed with it can be guessed.
    """
    path = data_dir / SECRET_NAME
    try:
        secret = path.read_text().strip()
    except FileNotFoundError:
        secret = None
    if secret:
        if len(secret) < MIN_SECRET_CHARS:
            raise DataDirError(
                f"{path} holds a JWT secret of {len(secret)} characters, fewer than "
                f"{MIN_SECRET_CHARS}: put a longer one there, or delete the file to have one "
                "generated"
            )
        tighten(path)
        return secret
    if secret is not None:
        log.warning("%s is empty: generating a new JWT secret (earlier tokens are void)", path)
    make_private_dir(data_dir)
    secret = secrets.token_urlsafe(48)
    try:
        write_atomically(path, secret + "\n")
    except OSError as exc:
        raise DataDirError(f"cannot write the JWT secret {path}: {exc}") from exc
    return secret
