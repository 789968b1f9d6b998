"""With authentication off, only the server's own pages and non-browser clients may write.

Any web page can make a browser send a ``text/plain`` POST to ``127.0.0.1:8529`` (no CORS
preflight), and DNS rebinding lets a page reach it under its own host name. So, when there are no
credentials to stop them, writes must come with a Host that names this server (an IP address,
``localhost``, this machine's name or ``ALLOWED_HOSTS``) and, when the browser sends an
Origin, one whose host and port are that Host.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp import web

from arangotasks.config import Settings
from arangotasks.errors import ArangoError, ErrorCode

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _hostname(host: str) -> str:
    """``host`` of a ``host[:port]`` header value, lower case and without IPv6 brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def _own_hostname(name: str, settings: Settings) -> bool:
    try:
        ipaddress.ip_address(name)
        return True  # no DNS involved: a rebinding attack needs a name
    except ValueError:
        pass
    if name == "localhost" or name.endswith(".localhost"):
        return True
    own = {settings.host.lower(), socket.gethostname().lower()}
    own |= {h.strip().lower() for h in settings.allowed_hosts.split(",") if h.strip()}
    return name in own


def check_same_origin(request: web.Request, settings: Settings) -> None:
    """Raise 403/11 for a write whose Host or Origin is not this server's."""
    if request.method in SAFE_METHODS:
        return
    host = request.headers.get("Host")
    if host is not None and not _own_hostname(_hostname(host), settings):
        raise ArangoError(
            ErrorCode.FORBIDDEN,
            f"authentication is off: refusing a write for host '{host}' "
            "(add it to ARANGOTASKS_ALLOWED_HOSTS if it is this server)",
        )
    origin = request.headers.get("Origin")
    if origin is None:
        return  # not sent by a browser page (curl, drivers)
    parts = urlsplit(origin)
    if (
        parts.scheme not in ("http", "https")
        or host is None
        or parts.netloc.lower() != host.lower()
    ):
        raise ArangoError(
            ErrorCode.FORBIDDEN,
            f"authentication is off: refusing a write from origin '{origin[:200]}'",
        )
