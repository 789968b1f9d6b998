"""Failure notifications: a signed POST when a run fails, and when a task succeeds again.

A registry run listener only puts a delivery into a bounded queue; a few sender tasks post them
with retries and exponential backoff, so a slow or dead receiver never holds up a run. When the
queue is full the notification is dropped and counted.
"""

import asyncio
import contextlib
import hashlib
import hmac
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from arangotasks import __version__
from arangotasks.config import Settings
from arangotasks.models import Run, RunStatus, dumps

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Arangotasks-Signature"
EVENT_HEADER = "X-Arangotasks-Event"
SENDERS = 4  # deliveries in flight at once
SHUTDOWN_DRAIN = 2.0  # seconds a stopping server waits for pending notifications
FAILED = "run.failed"
RECOVERED = "task.recovered"


def signature(secret: str, body: bytes) -> str:
    """The header value: ``sha256=`` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Delivery:
    url: str
    event: str
    body: bytes


class Notifier:
    """Watches finished runs and posts notifications.

    :param run_json: the run record as the runs API shows it.
    :param task_url: the task's own ``notify`` URL, if it has one.
    """

    def __init__(
        self,
        settings: Settings,
        run_json: Callable[[Run], dict[str, Any]],
        task_url: Callable[[str], str | None] = lambda task_id: None,
    ) -> None:
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
        urls = [self._settings.webhook_url, self._task_url(run.task_id)]
        targets = list(dict.fromkeys(url for url in urls if url))
        if not targets:
            return
        body = dumps({"event": event, "run": self._run_json(run)}).encode()
        for url in targets:
            try:
                self._queue.put_nowait(Delivery(url, event, body))
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
                async with self._session.post(
                    delivery.url, data=delivery.body, headers=headers, allow_redirects=False
                ) as response:
                    if 200 <= response.status < 300:
                        self.sent += 1
                        return
                    problem = f"HTTP {response.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                problem = str(exc) or type(exc).__name__
        self.failed += 1
        log.warning(
            "notification %s to %s given up after %d attempt(s): %s",
            delivery.event,
            delivery.url,
            settings.webhook_attempts,
            problem,
        )
