"""Fair hand-out of a pool's workers between owners (the users whose tasks run).

A plain FIFO of waiting runs lets one user with many long runs hold every worker while another
user's runs wait for all of them. :class:`FairQueue` hands a free worker to the waiting owner
that holds the fewest workers right now, round-robin among owners that hold equally many, and
never to an owner that already holds its own maximum (``max_held``). Runs of one owner keep
their order. Nothing is preempted: a run holds its worker until it ends (its timeout bounds
that), so fairness takes effect as workers come free.
"""

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class FairQueue(Generic[T]):
    """Free items (workers or slots) and the owners waiting for one."""

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        # Waiters per owner in arrival order; the dict's order is the round-robin order.
        self._waiters: dict[str, deque[asyncio.Future[T]]] = {}
        self._held: dict[str, int] = {}
        self._caps: dict[str, int] = {}  # owners with a maximum, as their last get() gave it

    def held(self, owner: str) -> int:
        """Items ``owner`` holds now (taken by :meth:`get`, not yet given back by :meth:`done`)."""
        return self._held.get(owner, 0)

    def qsize(self) -> int:
        """Free items now."""
        return len(self._items)

    def waiting(self) -> int:
        """Waiters of every owner."""
        return sum(len(queue) for queue in self._waiters.values())

    def put_nowait(self, item: T) -> None:
        """Add a free item; the fairest waiter (if any may take one) gets it at once."""
        self._items.append(item)
        self._hand_out()

    async def get(self, owner: str, max_held: int | None = None) -> T:
        """A free item for ``owner``, once it is this owner's turn and it holds fewer than
        ``max_held``. Call :meth:`done` when the owner's use of it ends."""
        if max_held is None:
            self._caps.pop(owner, None)
        else:
            self._caps[owner] = max_held
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(owner, deque()).append(future)
        self._hand_out()
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                # Handed an item, but cancelled before it resumed: give the item back.
                self.done(owner)
                self.put_nowait(future.result())
            else:
                self._discard(owner, future)
            raise

    def done(self, owner: str) -> None:
        """``owner``'s use of an item ended (the item itself comes back by :meth:`put_nowait`)."""
        held = self._held.get(owner, 0) - 1
        if held > 0:
            self._held[owner] = held
        else:
            self._held.pop(owner, None)
        self._hand_out()

    def _discard(self, owner: str, future: asyncio.Future[T]) -> None:
        queue = self._waiters.get(owner)
        if queue is None:
            return
        try:
            queue.remove(future)
        except ValueError:
            pass
        if not queue:
            del self._waiters[owner]

    def _next_owner(self) -> str | None:
        """The waiting owner holding the fewest items among those below their maximum; the
        first such in round-robin order."""
        best: str | None = None
        best_held = 0
        for owner in self._waiters:
            held = self._held.get(owner, 0)
            cap = self._caps.get(owner)
            if cap is not None and held >= cap:
                continue
            if best is None or held < best_held:
                best, best_held = owner, held
        return best

    def _hand_out(self) -> None:
        while self._items:
            owner = self._next_owner()
            if owner is None:
                return
            queue = self._waiters.pop(owner)  # re-inserted at the end: its turn is over
            future = queue.popleft()
            if queue:
                self._waiters[owner] = queue
            if future.done():  # cancelled while waiting
                continue
            self._held[owner] = self._held.get(owner, 0) + 1
            future.set_result(self._items.popleft())
