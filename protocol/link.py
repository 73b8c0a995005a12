"""One session between a store and central, the same code on both ends of the link.

What both sides used to write each for itself lives here once: the hello exchange with its version
check (`greet` on the dialling store, `accept` at central), an application-level heartbeat, and
questions by id (`Session.ask`, answered through one `Answerer` per side). Everything else on the
link (event batches and their acks, catalogue transfers) is the caller's business: the session hands
those frames to a `deliver` callback from its one reading task.

The transport is anything with a websocket's `send_message` / `get_message` (a trio-websocket
connection, or a pair of memory channels in tests); a closed transport raises
trio_websocket.ConnectionClosed, which ends the session and propagates to the caller.

Where TLS and proof of identity plug in (a later change, not done here): TLS wraps the transport
(protocol.websocket.dial/serve open it with an ssl context), so nothing in this module changes for
it. Proof of identity (Ed25519) is the hello exchange's business and stays inside `greet` and
`accept`: the hello gains the store's key id and a signature over central's challenge (or the TLS
channel binding), appended with defaults; `accept` verifies it before it sends the welcome and
refuses with a LinkError like a version mismatch, and `greet` signs. No caller changes.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any, Protocol, TypeVar, cast

import msgspec
import trio
from trio_websocket import ConnectionClosed

from protocol.codec import FrameError, LinkCodec
from protocol.frames import (
    LINK_VERSION,
    QUESTIONS,
    Answer,
    LinkError,
    LinkFrame,
    LinkHello,
    LinkWelcome,
    Ping,
    Pong,
    Question,
    Refusal,
)
from protocol.versions import INCOMPATIBLE_VERSION, compatible, mismatch, shown

log = logging.getLogger(__name__)

A = TypeVar("A", bound=Answer)


class Channel(Protocol):
    """What a session needs of its transport: a websocket connection has exactly this."""

    async def send_message(self, message: bytes | str) -> None: ...

    async def get_message(self) -> bytes | str: ...


class Ask(Protocol):
    """A question to the other side, answered in its own type (`Session.ask`, or a node's wrapper)."""

    async def __call__(self, question: Question[A], /) -> A: ...


Answerer = Callable[[Question[Any]], Awaitable[Answer]]  # raises Refused to refuse


class SessionError(Exception):
    """The session, or one question on it, failed; the text says why in words for an operator."""


class Incompatible(SessionError):
    """The peer speaks another link protocol version: raised on both sides, with both versions named."""


class Refused(SessionError):
    """The peer said no: to the hello (`code` is its LinkError code) or to one question (a Refusal)."""

    def __init__(self, message: str, code: str = "refused") -> None:
        super().__init__(message)
        self.code = code


class NoAnswer(SessionError):
    """A question got no usable answer: not in time, the session ended first, or a wrong answer."""


class Silent(SessionError):
    """The peer stopped answering the heartbeat while the connection stayed open."""


async def greet(channel: Channel, hello: LinkHello, *, peer: str) -> LinkWelcome:
    """The dialling side's half of the hello: say hello, read the welcome, check its version. The
    caller bounds it (trio.fail_after).

    Raises Incompatible when either side finds the versions incompatible (when it is us, the peer is
    told so first), Refused when the peer refused the hello for another reason."""
    codec = LinkCodec()
    await channel.send_message(codec.encode(hello))
    reply = codec.decode(await channel.get_message())
    if isinstance(reply, LinkError):
        message = shown(reply.message, 400)  # the peer's words: bounded before they reach a log
        if reply.code == INCOMPATIBLE_VERSION:
            raise Incompatible(f"{peer} refused us: {message}")
        raise Refused(f"{peer} refused us: {shown(reply.code)}: {message}", reply.code)
    if not isinstance(reply, LinkWelcome):
        raise SessionError(f"expected a welcome from {peer}, got {type(reply).__name__}")
    if not compatible(hello.version, reply.version):
        message = mismatch("link", f"{hello.role} {hello.node}", hello.version, reply.node or peer, reply.version)
        await _refuse(channel, codec, INCOMPATIBLE_VERSION, message)
        raise Incompatible(f"we refused {peer}: {message}")
    return reply


async def accept(
    channel: Channel,
    welcome: Callable[[LinkHello], Awaitable[LinkWelcome]],
    *,
    node: str,
    role: str = "store",
    version: int = LINK_VERSION,
) -> LinkHello:
    """The accepting side's half: read the hello, check it and its version, send the welcome that
    `welcome` builds for that peer (stamped with our version). A peer refused here is told why in a
    LinkError before this raises (Incompatible, or Refused for a hello that is not one). The caller
    bounds it (trio.fail_after): a peer that never says hello must not hold a connection open."""
    codec = LinkCodec()
    data = await channel.get_message()
    try:
        hello = codec.decode(data)
    except FrameError as exc:
        await _refuse(channel, codec, "hello_first", f"send a {role} hello first (cannot decode: {exc})")
        raise Refused(f"undecodable hello: {exc}", "hello_first") from None
    if not isinstance(hello, LinkHello) or hello.role != role or not hello.node:
        await _refuse(channel, codec, "hello_first", f"send a {role} hello first")
        raise Refused(f"expected a {role} hello, got {hello!r}"[:200], "hello_first")
    if not compatible(version, hello.version):
        message = mismatch("link", node, version, f"{role} {hello.node}", hello.version)
        await _refuse(channel, codec, INCOMPATIBLE_VERSION, message)
        raise Incompatible(f"we refused {role} {hello.node}: {message}")
    await channel.send_message(codec.encode(msgspec.structs.replace(await welcome(hello), version=version)))
    return hello


async def _refuse(channel: Channel, codec: LinkCodec, code: str, message: str) -> None:
    """Tell the peer why before the caller closes; a peer that is already gone is no matter."""
    log.warning("refusing a link peer: %s: %s", code, message)
    with suppress(ConnectionClosed):
        await channel.send_message(codec.encode(LinkError(code=code, message=message)))


class _Waiter:
    """One question in flight: settled once, by its answer, a refusal, or the session's end."""

    def __init__(self) -> None:
        self.done = trio.Event()
        self.frame: Answer | Refusal | None = None
        self.failure = ""

    def settle(self, frame: Answer | Refusal) -> None:
        self.frame = frame
        self.done.set()

    def fail(self, reason: str) -> None:
        self.failure = reason
        self.done.set()


class Session:
    """A live link after the hello: `run` reads it, `ask` puts questions on it, `send` anything else.

    Questions are keyed by id, so they interleave with event replay and with each other; an answer
    that arrives after its asker gave up (or with an id never asked) is dropped. When the session
    ends, every question still waiting fails at once with NoAnswer, so no caller waits out its
    deadline on a dead link. Questions from the peer are answered on the reading task, in order.
    """

    def __init__(
        self,
        channel: Channel,
        peer: str,
        answer: Answerer,
        *,
        ask_timeout: float,
        heartbeat: float | None = None,
    ) -> None:
        self.channel = channel
        self.peer = peer
        self.ask_timeout = ask_timeout  # the longest a question waits when its caller allows longer
        self.heartbeat = heartbeat  # seconds between pings; a ping without a pong in twice that: Silent
        self._answer = answer
        self._codec = LinkCodec()
        self._ids = itertools.count(1)
        self._pending: dict[int, _Waiter] = {}
        self._ended = ""  # why the session ended; "" while it runs

    async def send(self, frame: LinkFrame) -> None:
        await self.channel.send_message(self._codec.encode(frame))

    async def ask(self, question: Question[A], /) -> A:
        """The peer's answer to `question`, in its declared answer type. Never waits unbounded: the
        caller's own deadline (its trio.fail_after, which raises as it always does) or the session's
        ask_timeout, whichever comes first (NoAnswer). NoAnswer too when the session ends first, at
        once; Refused when the peer refused."""
        return await self._ask(question, self.ask_timeout)

    async def _ask(self, question: Question[A], bound: float) -> A:
        kind = type(question).__name__
        expected = QUESTIONS[type(question)]  # a question missing from the registry fails here, unsent
        if self._ended:
            raise NoAnswer(f"{self.peer} cannot answer {kind}: {self._ended}")
        now = trio.current_time()
        deadline = min(trio.current_effective_deadline(), now + bound)
        ident = next(self._ids)
        waiter = _Waiter()
        self._pending[ident] = waiter
        try:
            with trio.move_on_at(deadline):
                try:
                    await self.send(msgspec.structs.replace(question, id=ident))
                except ConnectionClosed:
                    raise NoAnswer(f"the link to {self.peer} dropped before it answered {kind}") from None
                await waiter.done.wait()
        finally:
            self._pending.pop(ident, None)
        if not waiter.done.is_set():
            raise NoAnswer(f"{self.peer} did not answer {kind} within {deadline - now:.3g} s")
        frame = waiter.frame
        if frame is None:
            raise NoAnswer(f"{self.peer} did not answer {kind}: {waiter.failure}")
        if isinstance(frame, Refusal):
            raise Refused(f"{self.peer} could not answer {kind}: {frame.message}")
        if not isinstance(frame, expected):
            raise NoAnswer(f"{self.peer} answered {kind} with {type(frame).__name__}, not {expected.__name__}")
        return cast(A, frame)

    async def run(self, deliver: Callable[[Any], Awaitable[None]]) -> None:
        """Read the link until it closes (ConnectionClosed propagates) or the peer falls silent
        (Silent); every frame that is not the session's own goes to `deliver`, in order."""
        reason = "the session ended"
        try:
            async with trio.open_nursery() as nursery:
                if self.heartbeat is not None:
                    nursery.start_soon(self._beat, self.heartbeat)
                await self._read(deliver)
        except BaseExceptionGroup as group:  # one failing task ends the session: its cause, plainly
            first = group.exceptions[0]
            reason = f"the session ended: {type(first).__name__}: {first}"
            if len(group.exceptions) == 1 and isinstance(first, Exception):
                raise first from None
            raise
        except Exception as exc:
            reason = f"the session ended: {type(exc).__name__}: {exc}"
            raise
        finally:
            self._end(reason)

    def _end(self, reason: str) -> None:
        self._ended = reason
        waiting, self._pending = self._pending, {}
        for waiter in waiting.values():
            waiter.fail(reason)

    async def _read(self, deliver: Callable[[Any], Awaitable[None]]) -> None:
        while True:
            data = await self.channel.get_message()
            try:
                frame = self._codec.decode(data)
            except FrameError as exc:
                log.warning("undecodable frame from %s: %s", self.peer, exc)
                await self.send(LinkError(code="bad_frame", message=str(exc)))
                continue
            if isinstance(frame, Answer | Refusal):
                waiter = self._pending.pop(frame.id, None)
                if waiter is None:
                    log.debug("dropped a late or unknown answer %d from %s", frame.id, self.peer)
                else:
                    waiter.settle(frame)
            elif isinstance(frame, Ping):
                await self.send(Pong(id=frame.id))
            elif isinstance(frame, Question):
                await self.send(await self._answer_one(frame))
            else:
                await deliver(frame)

    async def _answer_one(self, question: Question[Any]) -> Answer | Refusal:
        kind = type(question).__name__
        try:
            answer = await self._answer(question)
        except Refused as exc:
            return Refusal(id=question.id, message=str(exc))
        except Exception as exc:  # a failing answerer refuses this one question; the link lives on
            log.exception("answering %s from %s failed", kind, self.peer)
            return Refusal(id=question.id, message=f"cannot answer {kind}: {type(exc).__name__}: {exc}")
        expected = QUESTIONS[type(question)]
        if not isinstance(answer, expected):
            log.error("answered %s with %s, not %s", kind, type(answer).__name__, expected.__name__)
            return Refusal(id=question.id, message=f"cannot answer {kind}")
        return msgspec.structs.replace(answer, id=question.id)

    async def _beat(self, interval: float) -> None:
        """A ping the peer's session itself answers: a websocket ping would be answered by any proxy,
        or by a peer whose link handler is stuck, and prove nothing about either."""
        while True:
            await trio.sleep(interval)
            try:
                await self._ask(Ping(), interval * 2)
            except NoAnswer as exc:
                raise Silent(f"{self.peer} missed its heartbeat: {exc}") from None
            except Refused:
                pass  # it answered: it is alive
