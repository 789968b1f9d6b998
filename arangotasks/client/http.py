"""The client's HTTP side: one small blocking JSON client on the standard library."""

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

# Exit codes: the server refused the request / bad usage or input / the server is unreachable.
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


class ClientError(Exception):
    """A one-line message for the user and the exit code it ends the command with."""

    def __init__(self, message: str, exit_code: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def quote(part: str) -> str:
    """One path segment, ``/`` included (ids may contain anything)."""
    return urllib.parse.quote(part, safe="")


def _error_message(status: int, reason: str, raw: bytes) -> str:
    """``error NUM: message`` for ArangoDB error bodies, else the HTTP status."""
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict) and "errorNum" in body:
        return f"error {body['errorNum']}: {body.get('errorMessage', '')}"
    return f"HTTP {status}: {reason}"


@dataclass(frozen=True)
class Connection:
    """Where the server is and who we are there.

    :param database: requests go to ``/_db/{database}/...`` when set.
    """

    server: str
    user: str
    password: str
    database: str | None = None
    timeout: float = 30.0

    def url(self, path: str, query: dict[str, str] | None = None) -> str:
        prefix = f"/_db/{quote(self.database)}" if self.database else ""
        url = self.server.rstrip("/") + prefix + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        return url

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, str] | None = None,
    ) -> Any:
        """The decoded JSON answer; :class:`ClientError` for an error answer or no answer."""
        url = self.url(path, query)
        data = None if body is None else json.dumps(body).encode()
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        headers = {"Authorization": f"Basic {token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise ClientError(_error_message(exc.code, exc.reason, exc.read())) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ClientError(f"cannot reach {self.server}: {reason}", EXIT_UNREACHABLE) from None
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise ClientError(f"{method} {url}: the answer is not JSON") from None
