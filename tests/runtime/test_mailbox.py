"""Mailbox semantics on trio's virtual clock: ask/reply, refusals, crashes, deadlines, backpressure."""

from __future__ import annotations

import pytest
import trio

from runtime.mailbox import ActorFailed, Mailbox, Rejected, serve


async def handler(message: str) -> str:
    if message == "bad":
        raise Rejected("bad_input", "not that")
    if message == "boom":
        raise RuntimeError("bug")
    if message == "slow":
        await trio.sleep(10)
    return message.upper()


async def test_ask_gets_the_answer_and_a_refusal_leaves_the_actor_running(autojump_clock: trio.abc.Clock) -> None:
    box: Mailbox[str] = Mailbox(4)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve, box, handler)
            assert await box.ask("hi") == "HI"
            with pytest.raises(Rejected) as refused:
                await box.ask("bad")
            assert refused.value.code == "bad_input"
            assert await box.ask("again") == "AGAIN"
            nursery.cancel_scope.cancel()


async def test_a_crash_is_reported_to_the_asker_and_ends_the_actor(autojump_clock: trio.abc.Clock) -> None:
    box: Mailbox[str] = Mailbox(4)
    failed: list[BaseException] = []

    async def asker() -> None:
        try:
            await box.ask("boom")
        except ActorFailed as exc:
            failed.append(exc)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(asker)
            with pytest.raises(RuntimeError, match="bug"):
                await serve(box, handler)
    assert len(failed) == 1 and "RuntimeError: bug" in str(failed[0])


async def test_an_expired_request_is_skipped_not_done(autojump_clock: trio.abc.Clock) -> None:
    box: Mailbox[str] = Mailbox(4)
    handled: list[str] = []

    async def recording(message: str) -> str:
        handled.append(message)
        return await handler(message)

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            with trio.move_on_after(1):  # the asker gives up before anyone serves it
                await box.ask("late")
            nursery.start_soon(serve, box, recording)
            assert await box.ask("fresh") == "FRESH"
            nursery.cancel_scope.cancel()
    assert handled == ["fresh"]


async def test_a_full_mailbox_makes_senders_wait(autojump_clock: trio.abc.Clock) -> None:
    box: Mailbox[str] = Mailbox(2)
    await box.tell("a")
    await box.tell("b")
    assert box.tell_nowait("c") is False
    assert box.pending() == 2
    with trio.move_on_after(1) as waited:
        await box.tell("c")
    assert waited.cancelled_caught
    assert box.receive_nowait().message == "a"
    assert box.tell_nowait("c") is True


async def test_an_ask_waits_for_room_in_a_full_mailbox(autojump_clock: trio.abc.Clock) -> None:
    box: Mailbox[str] = Mailbox(1)
    await box.tell("a")
    with trio.move_on_after(1) as waited:
        await box.ask("b")
    assert waited.cancelled_caught
    assert box.pending() == 1  # the ask that found no room queued nothing
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve, box, handler)
            assert await box.ask("c") == "C"
            nursery.cancel_scope.cancel()


async def test_a_cancelled_asker_queues_nothing(autojump_clock: trio.abc.Clock) -> None:
    box: Mailbox[str] = Mailbox(4)
    with trio.CancelScope() as scope:
        scope.cancel()
        await box.ask("never")
    assert scope.cancelled_caught
    assert box.pending() == 0
