"""File descriptors: the soft limit is raised to the hard one at start, and connections get what
remains after the descriptors that workers, the store and the accept loop need are set aside."""

import logging
import resource
import socket
from collections.abc import Iterable

log = logging.getLogger(__name__)

# aiohttp's TCPSite listens with this backlog, and asyncio accepts up to that many connections in
# one go. A connection reaches the cap (its protocol's first callback) two loop iterations after
# its accept, and a connection the cap closes frees its descriptor one more iteration later, while
# each iteration may accept a backlog's worth: about four bursts are in flight beyond the cap.
ACCEPT_BACKLOG = 128
_ACCEPTS_IN_FLIGHT = 4 * ACCEPT_BACKLOG
# The kernel's queue of connections not accepted yet holds no descriptor of ours: a deep one lets a
# normal client that connects behind a flood wait in it for a few milliseconds, instead of
# having its SYN dropped and retried a second later.
LISTEN_QUEUE = 4096
# The store (SQLite: file, WAL and shared memory for two connections), log files, the event
# loop's own pipes, a worker being respawned, and room for what a future part opens.
_BASE_RESERVE = 64
_PER_WORKER = 4  # the parent's ends of a worker's stdin and stdout pipes, twice over a respawn
_MIN_CONNECTIONS = 16


def raise_nofile_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        # An unlimited hard limit cannot be the soft one (the kernel caps it at nr_open).
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open file limit from %d to %d: %s", soft, target, exc)
    return soft


def spare_descriptors(workers: int, compile_workers: int = 1) -> int:
    """Descriptors kept free of connections, so that respawning a worker or writing to the
    store never fails with "Too many open files"."""
    return _ACCEPTS_IN_FLIGHT + _BASE_RESERVE + _PER_WORKER * (workers + compile_workers)


def connection_cap(
    max_connections: int, fd_limit: int, workers: int, compile_workers: int = 1
) -> int:
    """Open connections allowed: the setting, unless the descriptor limit leaves fewer."""
    room = fd_limit - spare_descriptors(workers, compile_workers)
    return max(_MIN_CONNECTIONS, min(max_connections, room))


def deepen_listen_queue(sockets: Iterable[socket.socket]) -> None:
    """``listen(LISTEN_QUEUE)`` again on listening sockets (asyncio's accept bursts keep the
    smaller backlog they were created with); the kernel caps it at ``net.core.somaxconn``."""
    for sock in sockets:
        with socket.fromfd(sock.fileno(), sock.family, sock.type) as dup:
            dup.listen(LISTEN_QUEUE)
