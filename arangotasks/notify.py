"""Failure notifications: a signed POST when a run fails, and when a task succeeds again.

A registry run listener only puts a delivery into a bounded queue; a few sender tasks post them
with retries and exponential backoff, so a slow or dead receiver never holds up a run. When the
queue is full the notification is dropped and counted.
"""

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import logging
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from aiohttp import web
from yarl import URL

from arangotasks import __version__
from arangotasks.config import Settings
from arangotasks.errors import ArangoError, ErrorCode
from arangotasks.models import Run, RunStatus, dumps

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Arangotasks-Signature"
EVENT_HEADER = "X-Arangotasks-Event"
SENDERS = 4  # deliveries in flight at once
RESOLVE_TIMEOUT = 5.0  # seconds for the DNS lookup of a task's notify URL
SHUTDOWN_DRAIN = 2.0  # seconds a stopping server waits for pending notifications
FAILED = "run.failed"
RECOVERED = "task.recovered"


def signature(secret: str, body: bytes) -> str:
    """The header value: ``sha256=`` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressCheck(Protocol):
    """The outbound HTTP allowlist (``arangotasks.outbound.allowlist.Allowlist``)."""

    def refusal(self, host: str, port: int, address: IPAddress) -> str | None: ...


class Refused(Exception):
    """A task's notify URL the allowlist does not allow (never retried)."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"{host}: {reason}")
        self.host = host
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Delivery:
    url: str
    event: str
    body: bytes
    database: str | None = None  # a task's own URL, checked against that database's allowlist


async def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).partition("%")[0])
        if address not in found:
            found.append(address)
    return found


class Notifier:
    """Watches finished runs and posts notifications.

    :param run_json: the run record as the runs API shows it.
    :param task_url: the task's own ``notify`` URL, if it has one.
    :param allowlist: the outbound HTTP allowlist of a database; a task's own URL is checked
        against it on every attempt (the operator's ``WEBHOOK_URL`` is not). ``None`` refuses
        every task URL.
    """

    def __init__(
        self,
        settings: Settings,
        run_json: Callable[[Run], dict[str, Any]],
        task_url: Callable[[str], str | None] = lambda task_id: None,
        allowlist: Callable[[str], AddressCheck] | None = None,
    ) -> None:
        self._allowlist = allowlist
        self._settings = settings
        self._run_json = run_json
        self._task_url = task_url
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue(maxsize=settings.webhook_queue)
        self._failing: set[str] = set()  # tasks whose last finished run failed
        self._senders: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self.sent = 0
        self.failed = 0  # gave up after every attempt
        self.dropped = 0  # the queue was full (or the server stopped first)
        self.retries = 0

    def counters(self) -> list[tuple[str, str, Callable[[], int]]]:
        """Counters for :class:`arangotasks.metrics.Metrics` (read at scrape time)."""
        return [
            ("arangotasks_webhooks_sent", "Notifications delivered (2xx)", lambda: self.sent),
            (
                "arangotasks_webhook_failures",
                "Notifications given up after every attempt",
                lambda: self.failed,
            ),
            (
                "arangotasks_webhooks_dropped",
                "Notifications dropped: the queue was full",
                lambda: self.dropped,
            ),
            ("arangotasks_webhook_retries", "Delivery attempts retried", lambda: self.retries),
        ]

    # --- the run path: never blocks ------------------------------------------------------
    def on_run(self, run: Run) -> None:
        """A registry run listener."""
        if run.status is RunStatus.FAILED:
            self._failing.add(run.task_id)
            event = FAILED
        elif run.status is RunStatus.SUCCEEDED and run.task_id in self._failing:
            self._failing.discard(run.task_id)
            event = RECOVERED
        else:
            return
        targets: list[Delivery] = []
        if self._settings.webhook_url:
            targets.append(Delivery(self._settings.webhook_url, event, b""))
        task_url = self._task_url(run.task_id)
        if task_url and task_url != self._settings.webhook_url:
            targets.append(Delivery(task_url, event, b"", run.database))
        if not targets:
            return
        body = dumps({"event": event, "run": self._run_json(run)}).encode()
        for target in targets:
            try:
                self._queue.put_nowait(Delivery(target.url, event, body, target.database))
            except asyncio.QueueFull:
                self.dropped += 1
                log.warning("notification queue full: %s of run %d dropped", event, run.uid)

    # --- sending -------------------------------------------------------------------------
    async def lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        """An ``app.cleanup_ctx`` entry: senders run while the app does."""
        timeout = aiohttp.ClientTimeout(total=self._settings.webhook_timeout)
        self._session = aiohttp.ClientSession(timeout=timeout)
        self._senders = [
            asyncio.create_task(self._send_loop(), name=f"webhook-sender-{n}")
            for n in range(SENDERS)
        ]
        try:
            yield
        finally:
            # The last failures before a stop are worth a short wait (retries are cut short).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), SHUTDOWN_DRAIN)
            for sender in self._senders:
                sender.cancel()
            for sender in self._senders:
                with contextlib.suppress(asyncio.CancelledError):
                    await sender
            self.dropped += self._queue.qsize()
            await self._session.close()

    async def _send_loop(self) -> None:
        while True:
            delivery = await self._queue.get()
            try:
                await self._deliver(delivery)
            except Exception:  # a bug here must not stop the sender
                log.exception("notification to %s failed", delivery.url)
                self.failed += 1
            finally:
                self._queue.task_done()

    def _headers(self, delivery: Delivery) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"arangotasks/{__version__}",
            EVENT_HEADER: delivery.event,
        }
        if self._settings.webhook_secret:
            headers[SIGNATURE_HEADER] = signature(self._settings.webhook_secret, delivery.body)
        return headers

    async def _deliver(self, delivery: Delivery) -> None:
        assert self._session is not None
        settings = self._settings
        headers = self._headers(delivery)
        problem = ""
        for attempt in range(settings.webhook_attempts):
            if attempt:
                self.retries += 1
                await asyncio.sleep(settings.webhook_backoff * 2 ** (attempt - 1))
            try:
                url, host_header, server_hostname = await self._checked(delivery)
                sent = headers if host_header is None else {**headers, "Host": host_header}
                async with self._session.post(
                    url,
                    data=delivery.body,
                    headers=sent,
                    allow_redirects=False,
                    server_hostname=server_hostname,
                ) as response:
                    if 200 <= response.status < 300:
                        self.sent += 1
                        return
                    problem = f"HTTP {response.status}"
            except Refused as exc:
                problem = str(exc)
                break
            except (aiohttp.ClientError, OSError) as exc:  # TimeoutError is an OSError
                problem = str(exc) or type(exc).__name__
        self.failed += 1
        log.warning(
            "notification %s to %s given up after %d attempt(s): %s",
            delivery.event,
            delivery.url,
            attempt + 1,
            problem,
        )

    async def _checked(self, delivery: Delivery) -> tuple[URL | str, str | None, str | None]:
        """Where to post: the operator's URL as it is; a task's URL only to an address its
        database's allowlist allows, connecting to that very address (no second lookup)."""
        if delivery.database is None:
            return delivery.url, None, None
        url = URL(delivery.url)
        if self._allowlist is None:
            raise Refused(_host(url), "per-task notify URLs need the allowlist")
        address = await allowed_address(self._allowlist(delivery.database), url)
        target = url.with_host(str(address)).with_port(_port(url))
        host_header = url.raw_authority.rpartition("@")[2]
        return target, host_header, (url.host or "") if url.scheme == "https" else None


def _port(url: URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


async def allowed_address(allowlist: AddressCheck, url: URL) -> IPAddress:
    """The address to connect to for ``url``; :class:`Refused` unless the allowlist allows
    every address its host resolves to."""
    host = _host(url)
    port = _port(url)
    try:
        addresses = await asyncio.wait_for(_resolve(host, port), RESOLVE_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise Refused(host, f"cannot resolve ({exc})") from None
    if not addresses:
        raise Refused(host, "no address")
    for address in addresses:
        reason = allowlist.refusal(host, port, address)
        if reason is not None:
            raise Refused(host, reason)
    return addresses[0]


def _host(url: URL) -> str:
    return (url.host or "").lower().rstrip(".")


async def check_task_url(allowlist: AddressCheck, url: str | None) -> None:
    """400/10 when a task may not have ``url`` as its ``notify`` URL (checked at create and
    PATCH time, and again before every delivery: names may resolve elsewhere later)."""
    if url is None:
        return
    try:
        await allowed_address(allowlist, URL(url))
    except Refused as exc:
        raise ArangoError(
            ErrorCode.BAD_PARAMETER, f"notify: {exc.host} refused: {exc.reason}"
        ) from None
