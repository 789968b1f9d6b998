"""FairQueue: a free worker goes to the waiting owner holding the fewest, round-robin among
equals, never beyond an owner's maximum."""

import asyncio

import pytest

from arangotasks.sandbox.fair import FairQueue


async def waiter(queue: FairQueue[str], owner: str, got: list[tuple[str, str]], cap=None):
    item = await queue.get(owner, cap)
    got.append((owner, item))


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_free_item_goes_to_the_owner_holding_fewest():
    queue: FairQueue[str] = FairQueue()
    got: list[tuple[str, str]] = []
    queue.put_nowait("w1")
    queue.put_nowait("w2")
    # A takes both workers while nobody else waits.
    assert await queue.get("A") == "w1"
    assert await queue.get("A") == "w2"
    # A queues three more runs, then B one: B is served first when a worker comes free.
    tasks = [asyncio.ensure_future(waiter(queue, "A", got)) for _ in range(3)]
    await settle()
    tasks.append(asyncio.ensure_future(waiter(queue, "B", got)))
    await settle()
    queue.done("A")
    queue.put_nowait("w1")
    await settle()
    assert got == [("B", "w1")]
    queue.done("A")
    queue.put_nowait("w2")
    await settle()
    assert got[-1] == ("A", "w2")
    for task in tasks:
        task.cancel()


async def test_owners_holding_equally_many_take_turns():
    queue: FairQueue[int] = FairQueue()
    got: list[tuple[str, int]] = []
    tasks = [
        asyncio.ensure_future(waiter(queue, owner, got))  # type: ignore[arg-type]
        for owner in ["A", "A", "A", "B", "B", "C"]
    ]
    await settle()
    for i in range(6):
        queue.put_nowait(i)
        await settle()
        owner = got[-1][0]
        queue.done(owner)
    assert [owner for owner, _ in got] == ["A", "B", "C", "A", "B", "A"]
    await asyncio.gather(*tasks)


async def test_an_owner_at_its_maximum_waits_while_items_are_free():
    queue: FairQueue[str] = FairQueue()
    for name in ["w1", "w2", "w3"]:
        queue.put_nowait(name)
    assert await queue.get("A", 1) == "w1"
    second = asyncio.ensure_future(queue.get("A", 1))
    await settle()
    assert not second.done()
    assert await queue.get("B", 1) == "w2"
    queue.done("A")
    queue.put_nowait("w1")
    assert await asyncio.wait_for(second, 5) in {"w1", "w3"}
    assert queue.held("A") == 1


async def test_a_cancelled_waiter_gives_its_turn_away():
    queue: FairQueue[str] = FairQueue()
    first = asyncio.ensure_future(queue.get("A"))
    second = asyncio.ensure_future(queue.get("B"))
    await settle()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    queue.put_nowait("w")
    assert await asyncio.wait_for(second, 5) == "w"
    assert queue.waiting() == 0
    assert queue.held("A") == 0


async def test_an_item_handed_to_a_cancelled_waiter_comes_back():
    queue: FairQueue[str] = FairQueue()
    first = asyncio.ensure_future(queue.get("A"))
    await settle()
    queue.put_nowait("w")  # handed to A, which is cancelled before it resumes
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert queue.held("A") == 0
    assert await asyncio.wait_for(queue.get("B"), 5) == "w"
