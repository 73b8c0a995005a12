"""Bounded actor mailboxes with tell, ask (request/reply with a deadline) and a serving loop.

A mailbox outlives the actor that drains it: the supervisor may restart the actor while callers
keep their handle, and messages queued meanwhile are served by the next incarnation. An ask carries
the caller's effective deadline (set the Trio way, with `trio.fail_after` around the call), so an
actor skips work nobody is waiting for any more.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import trio

M = TypeVar("M")


class ActorFailed(Exception):
    """The actor crashed while handling this request; the supervisor is restarting it."""


class Rejected(Exception):
    """An expected refusal (bad input, wrong state): answered to the caller, the actor lives on."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class _Reply:
    __slots__ = ("error", "event", "value")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class Envelope(Generic[M]):
    """One message in a mailbox, with the way back to the asker if there is one."""

    __slots__ = ("_reply", "deadline", "message")

    def __init__(self, message: M, deadline: float, reply: _Reply | None) -> None:
        self.message = message
        self.deadline = deadline
        self._reply = reply

    @property
    def expired(self) -> bool:
        return trio.current_time() >= self.deadline

    def reply(self, value: Any) -> None:
        if self._reply is not None and not self._reply.event.is_set():
            self._reply.value = value
            self._reply.event.set()

    def fail(self, error: BaseException) -> None:
        if self._reply is not None and not self._reply.event.is_set():
            self._reply.error = error
            self._reply.event.set()


class Mailbox(Generic[M]):
    """A bounded queue of envelopes; senders wait when it is full (backpressure, never growth)."""

    def __init__(self, capacity: int = 64) -> None:
        self._send, self._receive = trio.open_memory_channel[Envelope[M]](capacity)

    async def tell(self, message: M) -> None:
        await self._send.send(Envelope(message, math.inf, None))

    def tell_nowait(self, message: M) -> bool:
        """Queue without waiting; False when the mailbox is full (the caller decides what that means)."""
        try:
            self._send.send_nowait(Envelope(message, math.inf, None))
        except trio.WouldBlock:
            return False
        return True

    async def ask(self, message: M) -> Any:
        """Send and wait for the answer. Bound it with `trio.fail_after`: the deadline travels with
        the message, so an actor that gets to it too late drops it instead of doing it for nobody."""
        reply = _Reply()
        envelope = Envelope(message, trio.current_effective_deadline(), reply)
        await trio.lowlevel.checkpoint_if_cancelled()  # a cancelled caller queues nothing (yields only then)
        try:  # room in the mailbox: queue without yielding, the wait for the reply is this call's checkpoint
            self._send.send_nowait(envelope)
        except trio.WouldBlock:
            await self._send.send(envelope)
        await reply.event.wait()
        if reply.error is not None:
            raise reply.error
        return reply.value

    async def receive(self) -> Envelope[M]:
        return await self._receive.receive()

    def receive_nowait(self) -> Envelope[M]:
        return self._receive.receive_nowait()

    def pending(self) -> int:
        return self._receive.statistics().current_buffer_used


async def serve(mailbox: Mailbox[M], handle: Callable[[M], Awaitable[Any]]) -> None:
    """Answer envelopes one at a time until cancelled.

    A `Rejected` goes back to the asker and the actor continues; any other exception is also
    reported to the asker (as ActorFailed) and then crashes the actor, so the supervisor restarts
    it from durable state instead of carrying on with state that may be half-changed.
    """
    while True:
        envelope = await mailbox.receive()
        if envelope.expired:
            continue
        try:
            result = await handle(envelope.message)
        except Rejected as refusal:
            envelope.fail(refusal)
        except Exception as exc:
            envelope.fail(ActorFailed(f"{type(exc).__name__}: {exc}"))
            raise
        else:
            envelope.reply(result)
