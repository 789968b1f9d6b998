"""One outbound HTTP request of a task, hop by hop, each hop checked against the allowlist.

Every hop resolves its host itself, checks every address against the allowlist, and connects to
the checked address (the URL handed to aiohttp names the IP; ``Host`` and TLS's server name keep
the original host): a DNS answer cannot change between the check and the connection, and a
pooled connection is only ever reused for an address that was checked for this request.
Redirects are followed here, not by aiohttp, so that every hop is checked.
"""

import asyncio
import base64
import ipaddress
import socket
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from arangotasks.models import ErrorType
from arangotasks.outbound.allowlist import Allowlist, IPAddress
from arangotasks.sandbox.host import HostCallError, HostRun, wall_timeout

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024
# A run record keeps at most this much of a request's URL and error (a run makes up to
# ARANGOTASKS_HTTP_MAX_REQUESTS of them, and a URL can be long).
_RECORD_CHARS = 2048


@dataclass(frozen=True, slots=True)
class Request:
    """What prelude_host.js sends (see its ``request``): already encoded by ArangoDB's rules."""

    method: str
    url: str
    query: str
    headers: dict[str, str]
    body: str | None
    timeout: float | None
    follow: bool
    max_redirects: int
    fail_on_redirect: bool
    return_body_on_error: bool
    username: str | None
    password: str
    bearer: str | None

    @classmethod
    def from_args(cls, args: Any) -> "Request":
        if not isinstance(args, dict):
            raise HostCallError("request: bad arguments", name="TypeError")
        headers = args.get("headers") or {}
        if not isinstance(headers, dict):
            raise HostCallError("request: headers must be an object", name="TypeError")
        timeout = args.get("timeout")
        if timeout is not None and not (isinstance(timeout, int | float) and timeout > 0):
            raise HostCallError("request: timeout must be a positive number of seconds")
        redirects = args.get("maxRedirects", 10)
        if not isinstance(redirects, int | float) or redirects != redirects:
            redirects = 10
        return cls(
            method=str(args.get("method") or "GET").upper(),
            url=str(args.get("url") or ""),
            query=str(args.get("query") or ""),
            headers={str(k).lower(): str(v) for k, v in headers.items()},
            body=None if args.get("body") is None else str(args["body"]),
            timeout=None if timeout is None else float(timeout),
            follow=bool(args.get("followRedirect", True)),
            max_redirects=max(0, int(redirects)),
            fail_on_redirect=bool(args.get("failOnRedirect", False)),
            return_body_on_error=bool(args.get("returnBodyOnError", True)),
            username=None if args.get("username") is None else str(args["username"]),
            password=str(args.get("password") or ""),
            bearer=None if args.get("bearer") is None else str(args["bearer"]),
        )


class Limits:
    """The per-run bounds of outbound HTTP."""

    def __init__(self, max_requests: int, max_response_bytes: int) -> None:
        self.max_requests = max_requests
        self.max_response_bytes = max_response_bytes


def _refused(host: str, reason: str) -> HostCallError:
    return HostCallError(f"request to {host} refused: {reason}")


def _parse_url(text: str, query: str) -> URL:
    try:
        url = URL(text)
    except (ValueError, TypeError):
        raise HostCallError(f"request: invalid URL {text!r}") from None
    if url.scheme not in ("http", "https"):
        host = url.host or text
        scheme = url.scheme or "(none)"
        raise _refused(host, f"only http and https URLs are allowed (scheme {scheme})")
    if not url.host:
        raise HostCallError(f"request: the URL {text!r} has no host")
    if query:
        url = url.with_query(None).with_fragment(None)
        url = URL(str(url) + "?" + query, encoded=True)
    return url.with_fragment(None)


async def _addresses(host: str, port: int, seconds: float) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(seconds):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError:
        raise HostCallError(f"request to {host} failed: DNS lookup timed out") from None
    except OSError as exc:
        raise HostCallError(f"request to {host} failed: cannot resolve host ({exc})") from None
    seen: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).partition("%")[0])
        if address not in seen:
            seen.append(address)
    return seen


async def perform(
    session: aiohttp.ClientSession,
    allow: Allowlist,
    limits: Limits,
    run: HostRun,
    request: Request,
) -> dict[str, Any]:
    """Carry out ``request`` for ``run`` (recording each hop in ``run.requests``): the response
    as prelude_host.js expects it, or :class:`HostCallError`."""
    url = _parse_url(request.url, request.query)
    method, body = request.method, request.body
    headers = dict(request.headers)
    if request.bearer is not None:
        headers["authorization"] = f"Bearer {request.bearer}"
    elif request.username is not None:
        headers["authorization"] = _basic(request.username, request.password)
    elif url.user is not None:  # credentials in the URL, as ArangoDB takes them
        headers["authorization"] = _basic(url.user, url.password or "")
    url = url.with_user(None)
    redirects = 0
    while True:
        response = await _hop(session, allow, limits, run, request, method, url, headers, body)
        status = response["status"]
        location = response.pop("_location", None)
        if status not in _REDIRECTS or location is None or not request.follow:
            response["url"] = str(url)
            response["redirected"] = redirects > 0
            if status >= 400 and not request.return_body_on_error:
                response["body"] = ""
            return response
        if request.fail_on_redirect:
            raise HostCallError(f"request to {url.host} failed: redirected (redirect: 'error')")
        redirects += 1
        if redirects > request.max_redirects:
            raise HostCallError(
                f"request to {url.host} failed: too many redirects "
                f"(maxRedirects {request.max_redirects})"
            )
        target = url.join(URL(location))
        if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
            method, body = "GET", None
            headers = {k: v for k, v in headers.items() if k not in ("content-type",)}
        if (target.host, target.port) != (url.host, url.port):
            headers.pop("authorization", None)  # credentials stay with their host
        url = target


async def _hop(
    session: aiohttp.ClientSession,
    allow: Allowlist,
    limits: Limits,
    run: HostRun,
    request: Request,
    method: str,
    url: URL,
    headers: dict[str, str],
    body: str | None,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "method": method,
        "url": _clip(str(url)),
        "status": None,
        "durationMs": 0,
        "error": None,
    }
    started = time.monotonic()
    try:
        return await _send(session, allow, limits, run, request, method, url, headers, body, record)
    except HostCallError as exc:
        record["error"] = _clip(exc.message)
        raise
    finally:
        record["durationMs"] = round((time.monotonic() - started) * 1000)


async def _send(
    session: aiohttp.ClientSession,
    allow: Allowlist,
    limits: Limits,
    run: HostRun,
    request: Request,
    method: str,
    url: URL,
    headers: dict[str, str],
    body: str | None,
    record: dict[str, Any],
) -> dict[str, Any]:
    run.requests.append(record)
    if url.scheme not in ("http", "https"):
        raise _refused(url.host or str(url), f"only http and https URLs are allowed ({url.scheme})")
    host = (url.host or "").lower().rstrip(".")
    port = url.port or (443 if url.scheme == "https" else 80)
    count = run.state.get("http.count", 0)
    if count >= limits.max_requests:
        raise HostCallError(
            f"request to {host} refused: this run made its {limits.max_requests} requests "
            "already (ARANGOTASKS_HTTP_MAX_REQUESTS)",
            name="HttpLimitError",
            fatal=ErrorType.HTTP_LIMIT.value,
        )
    left = run.check_time()
    bounded_by_run = request.timeout is None or request.timeout >= left
    timeout = left if bounded_by_run else request.timeout
    assert timeout is not None
    deadline = time.monotonic() + timeout
    addresses = await _addresses(host, port, timeout)
    for address in addresses:
        reason = allow.refusal(host, port, address)
        if reason is not None:
            raise _refused(host, reason)
    run.state["http.count"] = count + 1
    address = addresses[0]
    target = URL.build(
        scheme=url.scheme,
        host=str(address),
        port=port,
        path=url.raw_path,
        query_string=url.raw_query_string,
        encoded=True,
    )
    sent = dict(headers)
    sent["host"] = url.raw_authority.rpartition("@")[2]
    remaining = max(deadline - time.monotonic(), 0.001)
    try:
        async with session.request(
            method,
            target,
            headers=sent,
            data=None if body is None else body.encode("utf-8", "surrogatepass"),
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=remaining),
            server_hostname=host if url.scheme == "https" else None,
        ) as response:
            record["status"] = response.status
            data = bytearray()
            async for chunk in response.content.iter_chunked(_CHUNK):
                data += chunk
                if len(data) > limits.max_response_bytes:
                    raise HostCallError(
                        f"response from {host} is larger than "
                        f"{limits.max_response_bytes // (1024 * 1024)} MB "
                        "(ARANGOTASKS_HTTP_MAX_RESPONSE_MB)",
                        name="HttpLimitError",
                        fatal=ErrorType.HTTP_LIMIT.value,
                    )
            reply: dict[str, Any] = {
                "status": response.status,
                "message": response.reason or "",
                "headers": _headers(response),
                "body": data.decode("utf-8", "replace"),
            }
            location = response.headers.get("location")
            if location is not None:
                reply["_location"] = location
            return reply
    except TimeoutError:
        if bounded_by_run:
            raise wall_timeout(run.timeout) from None
        raise HostCallError(
            f"request to {host} failed: timed out after {request.timeout:g} s"
        ) from None
    except aiohttp.ClientError as exc:
        raise HostCallError(f"request to {host} failed: {_reason(exc)}") from None
    except OSError as exc:
        raise HostCallError(f"request to {host} failed: {exc.strerror or exc}") from None


def _clip(text: str) -> str:
    return text if len(text) <= _RECORD_CHARS else text[: _RECORD_CHARS - 3] + "..."


def _basic(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode("utf-8", "surrogatepass"))
    return "Basic " + token.decode()


def _headers(response: aiohttp.ClientResponse) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in response.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def _reason(exc: aiohttp.ClientError) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect ({exc.os_error.strerror or exc.os_error})"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection"
    return str(exc) or type(exc).__name__
