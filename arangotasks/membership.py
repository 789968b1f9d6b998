"""This node among the others: its id, its heartbeat, the list of nodes, and the news peers send.

A node is alive while its heartbeat (every quarter of ``cluster_lease``, PostgreSQL's clock) is
younger than the lease; the heartbeat also renews the node's leases (``claims.py``). Peers tell
each other of deletes and changes with ``NOTIFY`` on one channel; a lost listening connection is
made again, and the registry checks the store on every read, so a lost notification delays
nothing that a client can see.
"""

import asyncio
import logging
import secrets
import socket
import time
from collections.abc import Callable
from typing import Any

from arangotasks.claims import ClusterClaims
from arangotasks.config import Settings
from arangotasks.errors import StoreUnavailableError
from arangotasks.stopping import cancel_loops
from arangotasks.store.cluster_rows import CHANNEL, ClusterRows, NodeRow

log = logging.getLogger(__name__)

RECONNECT = 1.0  # seconds between attempts to listen again


def node_identity(settings: Settings) -> tuple[str, str]:
    """This node's id (``--node-id``, else the host name and a random suffix) and address."""
    host = socket.gethostname()
    node_id = settings.node_id or f"{host}-{secrets.token_hex(3)}"
    address = settings.node_address or f"{host}:{settings.port}"
    return node_id, address


def node_to_api(row: NodeRow, now: float, lease: float) -> dict[str, Any]:
    """A node as ``GET /_api/nodes`` shows it."""
    from arangotasks.api.common import iso  # the runs API's date format

    return {
        "id": row.id,
        "address": row.address,
        "startedAt": iso(row.started_at),
        "heartbeatAt": iso(row.heartbeat_at),
        "alive": not row.stopped and row.heartbeat_at > now - lease,
    }


class Membership:
    """Heartbeats and notifications of one node of a cluster (PostgreSQL stores only)."""

    def __init__(
        self,
        store: ClusterRows,
        claims: ClusterClaims,
        settings: Settings,
        node_id: str,
        address: str,
        listen_dsn: str | None,
    ):
        self._store = store
        self._claims = claims
        self._settings = settings
        self.node_id = node_id
        self.address = address
        self._dsn = listen_dsn
        self.started_at = time.time()
        self._loops: list[asyncio.Task[None]] = []
        self._on_news: Callable[[str], None] | None = None

    async def start(self, on_news: Callable[[str], None]) -> None:
        """Join: the first heartbeat is made before the node serves, then one every quarter of
        the lease; ``on_news`` gets every notification of a peer."""
        self._on_news = on_news
        await self._beat()
        log.info("node %s (%s) joined the cluster", self.node_id, self.address)
        self._loops = [asyncio.create_task(self._beat_loop(), name="cluster-heartbeat")]
        if self._dsn is not None:
            self._loops.append(asyncio.create_task(self._listen_loop(), name="cluster-listen"))

    async def close(self) -> None:
        """Leave: stop beating and free every lease at once (a clean stop fails over now)."""
        await cancel_loops(self._loops)
        self._loops = []
        try:
            await self._store.leave(self.node_id)
        except StoreUnavailableError as exc:
            log.warning("could not leave the cluster cleanly (leases expire): %s", exc)

    async def nodes(self) -> list[dict[str, Any]]:
        now, rows = await self._store.list_nodes()
        return [node_to_api(row, now, self._settings.cluster_lease) for row in rows]

    async def tell(self, news: str) -> None:
        """Tell the peers (``c:``, ``u:``, ``d:`` + a task id); best effort."""
        try:
            await self._store.notify(news)
        except StoreUnavailableError as exc:
            log.warning("could not notify the other nodes (%s): %s", news, exc)

    async def _beat(self) -> None:
        sent, sent_mono = time.time(), time.monotonic()
        beat = await self._store.heartbeat(
            self.node_id,
            self.address,
            self.started_at,
            self._claims.held_count(),
            self._settings.cluster_lease,
        )
        received = time.time()
        self._claims.renewed(beat, sent, received, sent_mono)
        skew = self._claims.clock_offset
        if abs(skew) > 1.0:
            log.warning("this node's clock is %.1f s off PostgreSQL's", -skew)

    async def _beat_loop(self) -> None:
        interval = self._settings.cluster_lease / 4
        while True:
            await asyncio.sleep(interval)
            try:
                await self._beat()
            except StoreUnavailableError as exc:
                log.warning("heartbeat failed (will retry): %s", exc)
            except Exception:
                log.exception("heartbeat failed (will retry)")

    async def _listen_loop(self) -> None:
        import psycopg  # only PostgreSQL stores have members

        assert self._dsn is not None
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._dsn, autocommit=True, connect_timeout=5
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    async for note in conn.notifies():
                        if self._on_news is not None:
                            self._on_news(note.payload)
            except (psycopg.Error, OSError) as exc:
                log.warning("listening for other nodes failed (will retry): %s", exc)
            await asyncio.sleep(RECONNECT)
