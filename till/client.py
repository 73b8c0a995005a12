"""A till's connection to its store node: send a command, wait for the answer that echoes its ref.

The store pushes the whole lane state after every change, so the client only keeps the latest
frame; it holds no sale logic and can drop and reattach at any time.
"""

from __future__ import annotations

import itertools
import os
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from protocol import tls
from protocol.codec import SUBPROTOCOL_MSGPACK, TillCodec
from protocol.frames import (
    PROTOCOL_VERSION,
    Command,
    Error,
    Hello,
    Login,
    Receipt,
    SaleState,
    Status,
    StatusRequest,
    TillFrame,
    Welcome,
)
from protocol.versions import INCOMPATIBLE_VERSION, compatible, mismatch
from protocol.websocket import dial

CREDENTIAL_ENV = "STOREPOS_TILL_CREDENTIAL"
TRUST_ENV = "STOREPOS_TILL_TRUST"


class TillDisconnected(ConnectionError):
    pass


def read_credential(path: Path) -> str:
    """A till's credential from its file, which must be the till user's alone (0600): a credential
    readable by others is anyone's. Raises ValueError saying what to fix."""
    try:
        mode = path.stat().st_mode
        text = path.read_text().strip()
    except OSError as exc:
        raise ValueError(f"cannot read the till credential {path}: {exc.strerror or exc}") from None
    if mode & 0o077:
        raise ValueError(f"the till credential {path} is readable by others: chmod 600 {path}")
    return text


def trust(path: Path | None) -> ssl.SSLContext:
    """What a till checks a wss store with: `path` (or $STOREPOS_TILL_TRUST), else the system's CAs."""
    chosen = path or (Path(os.environ[TRUST_ENV]) if os.environ.get(TRUST_ENV) else None)
    return tls.client_context(chosen) if chosen is not None else ssl.create_default_context()


class TillClient:
    def __init__(self, ws: WebSocketConnection, codec: TillCodec, lane: int, till: str, credential: str = "") -> None:
        self.ws = ws
        self.credential = credential
        self.codec = codec
        self.lane = lane
        self.till = till
        self.state: SaleState | None = None
        self.welcome: Welcome | None = None
        self._refs = itertools.count(1)
        self._waiting: dict[int, trio.MemorySendChannel[TillFrame]] = {}
        self.pushed = trio.Event()  # set whenever a state or notice arrives; replaced after each wait
        self.notices: list[Error] = []  # errors nobody asked for (a refused scan from the lane's scanner)
        self.receipts: list[Receipt] = []  # receipts nobody waited for (a sale a card payment closed later)

    def _wake(self) -> None:
        """Everyone waiting on `pushed` looks again; later waiters wait for the next frame."""
        self.pushed.set()
        self.pushed = trio.Event()

    async def _reader(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            while True:
                frame = self.codec.decode(await self.ws.get_message())
                if isinstance(frame, Welcome):
                    self.welcome = frame
                    self.state = frame.state
                elif isinstance(frame, SaleState):
                    self.state = frame
                    self._wake()
                ref = getattr(frame, "ref", 0)
                waiter = self._waiting.pop(ref, None) if ref or isinstance(frame, Welcome | Error) else None
                if waiter is not None:
                    waiter.send_nowait(frame)
                elif isinstance(frame, Error):  # nobody asked: a device's scan refused, shown to the cashier
                    self.notices.append(frame)
                    self._wake()
                elif isinstance(frame, Receipt):
                    self.receipts.append(frame)
                    self._wake()
        except ConnectionClosed:
            for waiter in self._waiting.values():
                waiter.close()
            self._waiting.clear()

    async def _exchange(self, ref: int, frame: TillFrame) -> TillFrame:
        send, receive = trio.open_memory_channel[TillFrame](1)
        self._waiting[ref] = send
        try:
            await self.ws.send_message(self.codec.encode(frame))
            try:
                return await receive.receive()
            except trio.EndOfChannel:
                raise TillDisconnected("the store closed the connection") from None
        finally:
            self._waiting.pop(ref, None)

    async def request(self, command: Command) -> TillFrame:
        """Send a command; returns the first frame answering it (state, receipt, error or status).
        Bound it with trio.fail_after: a store that never answers is the caller's to give up on."""
        command.ref = next(self._refs)
        return await self._exchange(command.ref, command)

    async def hello(self, takeover: Login | None = None) -> TillFrame:
        """Attach to the lane (lane 0: say hello only to ask questions); answered by a Welcome carrying the
        lane's current state, or an Error. With `takeover`, that operator logs in here and the lane moves
        to this till even if another holds it."""
        hello = Hello(till=self.till, lane=self.lane, credential=self.credential)
        if takeover is not None:
            hello.takeover, hello.operator, hello.pin = True, takeover.operator, takeover.pin
            hello.take_sale = takeover.take_sale
        return await self._exchange(0, hello)

    async def status(self) -> Status | Error:
        frame = await self.request(StatusRequest())
        assert isinstance(frame, Status | Error)
        return frame


@asynccontextmanager
async def connect(
    url: str,
    lane: int,
    till: str = "till",
    *,
    subprotocol: str = SUBPROTOCOL_MSGPACK,
    attach: bool = True,
    takeover: Login | None = None,
    credential: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[TillClient]:
    """Open a till connection and say hello, failing unless the store welcomes us: to `lane`, or without
    attaching to one (lane 0: a status or lookup client, which the store answers only after a hello).
    `takeover`: see `TillClient.hello`.

    The reader task's nursery would wrap whatever the caller raises in an exception group; a lone
    exception is unwrapped so callers can catch TillDisconnected and friends plainly.

    `credential` (`storepos store till enroll`) defaults to $STOREPOS_TILL_CREDENTIAL; a wss store is
    checked against `ssl_context`, else against $STOREPOS_TILL_TRUST (the chain's ca.pem, or the store's
    own tills.pem pinned), else the system's CAs (see `trust`)."""
    if credential is None:
        credential = os.environ.get(CREDENTIAL_ENV, "").strip()
    options: dict[str, Any] = {"subprotocols": [subprotocol]}
    if urlsplit(url).scheme == "wss":
        options["ssl_context"] = ssl_context or trust(None)
    try:
        async with dial(url, **options) as ws, trio.open_nursery() as nursery:
            client = TillClient(ws, TillCodec(subprotocol, "till"), lane if attach else 0, till, credential)
            await nursery.start(client._reader)
            answer = await client.hello(takeover)
            if isinstance(answer, Error):
                raise ConnectionRefusedError(f"{answer.code}: {answer.message}")
            if isinstance(answer, Welcome) and not compatible(PROTOCOL_VERSION, answer.version):
                # a store of another version: said plainly here, not as undecodable frames later
                text = mismatch("till", "this till", PROTOCOL_VERSION, f"store {answer.store}", answer.version)
                raise ConnectionRefusedError(f"{INCOMPATIBLE_VERSION}: {text}")
            yield client
            nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1 and isinstance(group.exceptions[0], Exception):
            raise group.exceptions[0] from None
        raise
