"""Group commit: concurrent submits share a write; errors reach every caller of their batch."""

import asyncio

import pytest

from arangotasks.batching import GroupWriter


async def test_an_idle_writer_writes_at_once_and_a_busy_one_coalesces():
    batches: list[list[int]] = []
    release = asyncio.Event()

    async def write(items: list[int]) -> list[int]:
        batches.append(items)
        if len(batches) == 1:
            await release.wait()  # the first write is slow: later items pile up
        return [item * 10 for item in items]

    writer = GroupWriter[int, int](write)
    first = asyncio.create_task(writer.submit(0))
    await asyncio.sleep(0.005)
    assert batches == [[0]]
    rest = [asyncio.create_task(writer.submit(i)) for i in range(1, 6)]
    await asyncio.sleep(0.01)
    assert not first.done() and not any(t.done() for t in rest)
    release.set()
    results = await asyncio.wait_for(asyncio.gather(first, *rest), 5)
    assert batches == [[0], [1, 2, 3, 4, 5]]
    assert results == [0, 10, 20, 30, 40, 50]  # each caller gets its own item's result
    await writer.wait_idle()
    assert await writer.submit(6) == 60
    assert batches[-1] == [6]


async def test_a_failed_write_fails_its_batch_only():
    calls = 0

    async def write(items: list[str]) -> list[None]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        if "bad" in items:
            raise OSError("disk full")
        return [None] * len(items)

    writer = GroupWriter[str, None](write)
    first = asyncio.create_task(writer.submit("ok"))
    await asyncio.sleep(0.01)  # its write has started; the next two wait for the next batch
    second = [asyncio.create_task(writer.submit(x)) for x in ("bad", "fine")]
    await asyncio.wait_for(first, 5)
    for job in second:
        with pytest.raises(OSError, match="disk full"):
            await asyncio.wait_for(job, 5)
    await writer.submit("later")  # the writer keeps working after a failure
    assert calls == 3


async def test_a_cancelled_caller_does_not_stop_the_others():
    release = asyncio.Event()
    written: list[int] = []

    async def write(items: list[int]) -> list[None]:
        await release.wait()
        written.extend(items)
        return [None] * len(items)

    writer = GroupWriter[int, None](write)
    jobs = [asyncio.create_task(writer.submit(i)) for i in range(3)]
    await asyncio.sleep(0)
    jobs[1].cancel()
    release.set()
    await asyncio.wait_for(asyncio.gather(jobs[0], jobs[2]), 5)
    assert written == [0, 1, 2]
    assert jobs[1].cancelled()
