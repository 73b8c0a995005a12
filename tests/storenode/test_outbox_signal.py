"""The outbox signal's count and its wait for an empty outbox, which status consoles and tests use instead
of polling the count: it wakes for an acknowledgement and for the link's recount alike."""

from __future__ import annotations

import trio
from trio.testing import MockClock

from storenode.sync.outbox import OutboxSignal


async def test_wait_empty_wakes_when_central_acknowledges_the_last_event(autojump_clock: MockClock) -> None:
    signal = OutboxSignal()
    with trio.fail_after(1):
        await signal.wait_empty()  # nothing queued: no wait
    signal.notify(3)
    done = trio.Event()

    async def waiting() -> None:
        await signal.wait_empty()
        done.set()

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiting)
            signal.acknowledged(2)
            await trio.sleep(10)
            assert not done.is_set() and signal.backlog == 1
            signal.acknowledged(5)  # more than is queued: the count stops at 0
            await done.wait()
    assert signal.backlog == 0


async def test_wait_empty_wakes_on_the_links_recount(autojump_clock: MockClock) -> None:
    signal = OutboxSignal()
    signal.notify(2)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(signal.wait_empty)
            await trio.sleep(10)
            signal.backlog = 0  # the link counted the outbox again after central's welcome
    with trio.fail_after(1), trio.move_on_after(0.5) as never:
        signal.notify()
        await signal.wait_empty()
    assert never.cancelled_caught  # something queued: it waits
