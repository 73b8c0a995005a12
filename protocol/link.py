"""One session between a store and central, the same code on both ends of the link.

What both sides used to write each for itself lives here once: the hello exchange with its version
check (`greet` on the dialling store, `accept` at central), an application-level heartbeat, and
questions by id (`Session.ask`, answered through one `Answerer` per side). Everything else on the
link (event batches and their acks, catalogue transfers) is the caller's business: the session hands
those frames to a `deliver` callback from its one reading task.

The transport is anything with a websocket's `send_message` / `get_message` (a trio-websocket
connection, or a pair of memory channels in tests); a closed transport raises
trio_websocket.ConnectionClosed, which ends the session and propagates to the caller.

TLS wraps the transport (protocol.websocket.dial/serve open it with an ssl context), so nothing in
this module changes for it. Proof of identity is the hello exchange's business and stays inside
`greet` and `accept`: the hello names the store's public key (and, once, its enrolment token, or
during a rotation its previous key); `accept` bounds every field, asks the caller's `identify` which
key that store must prove (the registry refuses unknown, unenrolled, revoked stores), challenges it
with a fresh nonce, and verifies the store's Ed25519 signature over (nonce, central node, store id,
key) before it builds the welcome. A recorded hello and proof are worth nothing on another connection
(another nonce); a hello without the key's proof never reaches the welcome, so it never touches what
central holds for the real store. Every refusal is one LinkError, then the caller closes.
"""

from __future__ import annotations

import itertools
import logging
import secrets
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any, Protocol, TypeVar, cast

import msgspec
import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from trio_websocket import ConnectionClosed

from protocol import identity
from protocol.codec import FrameError, LinkCodec
from protocol.frames import (
    LINK_VERSION,
    QUESTIONS,
    Answer,
    LinkChallenge,
    LinkError,
    LinkFrame,
    LinkHello,
    LinkProof,
    LinkWelcome,
    Ping,
    Pong,
    Question,
    Refusal,
)
from protocol.identity import NONCE_BYTES, PUBLIC_BYTES, SIGNATURE_BYTES, TOKEN_CHARS, Purpose
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
Identify = Callable[[LinkHello], Awaitable[bytes]]  # the public key the hello's store must prove; raises Refused

BAD_PROOF = "bad_proof"


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


async def greet(channel: Channel, hello: LinkHello, *, peer: str, key: Ed25519PrivateKey | None = None) -> LinkWelcome:
    """The dialling side's half of the hello: say hello, answer the peer's challenge with `key` (the
    private half of `hello.key`), read the welcome, check its version. The caller bounds it
    (trio.fail_after).

    Raises Incompatible when either side finds the versions incompatible (when it is us, the peer is
    told so first), Refused when the peer refused the hello for another reason (its code says which)."""
    codec = LinkCodec()
    await channel.send_message(codec.encode(hello))
    reply = codec.decode(await channel.get_message())
    if isinstance(reply, LinkChallenge):
        if key is None:
            await _refuse(channel, codec, BAD_PROOF, f"store {hello.node} has no key to prove itself with")
            raise SessionError(f"{peer} asked for a proof of identity and we have no key")
        signature = prove(key, reply.nonce, reply.node, hello.node, hello.key)
        await channel.send_message(codec.encode(LinkProof(signature=signature)))
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


def prove(key: Ed25519PrivateKey, nonce: bytes, central: str, store: str, public: bytes) -> bytes:
    """The store's proof: its signature over the challenge, bound to this central, store and key."""
    return identity.sign(key, Purpose.PROOF, nonce, central, store, public)


def bounds(hello: LinkHello) -> tuple[str, str] | None:
    """What is wrong with the hello's shape, as (code, message), before anything is looked up: every
    field bounded, so no database or log ever sees an unbounded or unprintable one."""
    if not identity.valid_store_id(hello.node):
        named = ascii(hello.node[:40]) + ("..." if len(hello.node) > 40 else "")  # no RTL mark or emoji gets out
        return "bad_store_id", f"{named} is not a store id (letters, digits, _ and -, at most 32)"
    if len(hello.key) not in (0, PUBLIC_BYTES) or len(hello.previous) not in (0, PUBLIC_BYTES):
        return "bad_key", f"a store key is {PUBLIC_BYTES} bytes"
    if len(hello.rotation) not in (0, SIGNATURE_BYTES) or bool(hello.rotation) != bool(hello.previous):
        return "bad_key", f"a rotation names the previous key and its {SIGNATURE_BYTES}-byte signature"
    if len(hello.token) > TOKEN_CHARS:
        return "bad_token", f"an enrolment token is at most {TOKEN_CHARS} characters"
    return None


async def accept(
    channel: Channel,
    welcome: Callable[[LinkHello], Awaitable[LinkWelcome]],
    *,
    node: str,
    identify: Identify,
    role: str = "store",
    version: int = LINK_VERSION,
) -> LinkHello:
    """The accepting side's half: read the hello, check its version (first: a store of another version
    is told that, whatever else is wrong), then its fields' bounds, then who it is (`identify` names
    the key it must prove, or raises Refused), challenge it with a fresh nonce and verify its proof;
    only then send the welcome that `welcome` builds for that peer (stamped with our version;
    `welcome` may still refuse with Refused). A peer refused here is told why in one LinkError before
    this raises (Incompatible, or Refused with the code). The caller bounds it (trio.fail_after): a
    peer that never says hello, or never proves, must not hold a connection open."""
    codec = LinkCodec()
    data = await channel.get_message()
    try:
        hello = codec.decode(data)
    except FrameError as exc:
        await _refuse(channel, codec, "hello_first", f"send a {role} hello first (cannot decode: {exc})")
        raise Refused(f"undecodable hello: {exc}", "hello_first") from None
    if not isinstance(hello, LinkHello) or hello.role != role or not hello.node:
        await _refuse(channel, codec, "hello_first", f"send a {role} hello first")
        raise Refused(f"expected a {role} hello, got {type(hello).__name__}", "hello_first")
    if not compatible(version, hello.version):
        message = mismatch("link", node, version, f"{role} {hello.node}", hello.version)
        await _refuse(channel, codec, INCOMPATIBLE_VERSION, message)
        raise Incompatible(f"we refused {role} {shown(hello.node)}: {message}")
    wrong = bounds(hello)
    if wrong is not None:
        await _refuse(channel, codec, *wrong)
        raise Refused(wrong[1], wrong[0])
    try:
        public = await identify(hello)
        nonce = secrets.token_bytes(NONCE_BYTES)
        await channel.send_message(codec.encode(LinkChallenge(node=node, nonce=nonce)))
        try:
            proof = codec.decode(await channel.get_message())
        except FrameError as exc:
            raise Refused(f"{role} {hello.node} sent no proof (cannot decode: {exc})", BAD_PROOF) from None
        if not isinstance(proof, LinkProof):
            raise Refused(f"{role} {hello.node} sent {type(proof).__name__}, not a proof", BAD_PROOF)
        if not identity.verify(public, proof.signature, Purpose.PROOF, nonce, node, hello.node, public):
            raise Refused(f"{role} {hello.node} did not prove it holds its key", BAD_PROOF)
        reply = await welcome(hello)
    except Refused as exc:
        await _refuse(channel, codec, exc.code, str(exc))
        raise
    await channel.send_message(codec.encode(msgspec.structs.replace(reply, version=version)))
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
