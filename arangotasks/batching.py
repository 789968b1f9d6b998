"""Group commit: concurrent small writes to the store coalesced into one transaction each."""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupWriter(Generic[T, R]):
    """Writes items in batches: an item submitted while a batch is being written goes into
    the next one. An idle writer adds no delay; a busy one turns N commits into about two.

    ``write`` commits a batch in one transaction and returns one result per item. ``submit``
    returns its item's result once the batch is committed and raises what the batch's write
    raised, so each caller keeps the guarantee a write of its own would give.
    """

    def __init__(self, write: Callable[[list[T]], Awaitable[Sequence[R]]]) -> None:
        self._write = write
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._drain(), name="group-writer")
        return await future

    async def wait_idle(self) -> None:
        """Until every submitted item is written (or failed)."""
        if self._writer is not None:
            await asyncio.shield(self._writer)

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    results = await self._write([item for item, _ in batch])
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                except BaseException:
                    for _, future in batch + self._pending:
                        future.cancel()
                    self._pending = []
                    raise
                else:
                    for (_, future), result in zip(batch, results, strict=True):
                        if not future.done():
                            future.set_result(result)
        finally:
            self._writer = None
