"""A till on a bare websocket that keeps every frame the store sends it, and a normal sale made through
one: what the fuzzing over a store's gateway and over the central link ends each example with."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from protocol.codec import TILL_SUBPROTOCOLS, FrameError, TillCodec
from protocol.frames import (
    CancelSale,
    CashTender,
    Command,
    Error,
    Receipt,
    ResolvePayment,
    SaleState,
    Scan,
    TillFrame,
    Total,
    Welcome,
)
from storenode.app import StoreNode
from tests.kit.fuzzing import CASHIER, CASHIER_PIN, MANAGER, MANAGER_PIN, MILK
from tests.kit.tills import dial_till, kit_hello


class WireTill:
    """A till on a bare websocket that keeps every frame the store sends it."""

    def __init__(self, ws: WebSocketConnection, subprotocol: str) -> None:
        self.ws = ws
        self.codec = TillCodec(subprotocol, "till")
        self.frames: list[TillFrame] = []
        self.closed = False
        self._arrived = trio.lowlevel.ParkingLot()

    async def reader(self) -> None:
        try:
            while True:
                self.frames.append(self.codec.decode(await self.ws.get_message()))
                self._arrived.unpark_all()
        except ConnectionClosed:
            self.closed = True
            self._arrived.unpark_all()

    async def answer(self, data: bytes | str, ref: int) -> TillFrame | None:
        """Send `data`; the frame answering it (its `ref`, or for a hello or undecodable bytes the first
        Welcome or Error), or None when the store closed the connection instead (saying why)."""
        seen = len(self.frames)
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send_message(data)
        while True:
            for frame in self.frames[seen:]:
                if (ref and getattr(frame, "ref", 0) == ref) or (not ref and isinstance(frame, Welcome | Error)):
                    return frame
            if self.closed:
                return None
            await self._arrived.park()

    async def until(self, predicate: Callable[[SaleState], bool]) -> SaleState:
        while True:
            states = [
                f.state if isinstance(f, Welcome) else f for f in self.frames if isinstance(f, SaleState | Welcome)
            ]
            if states and predicate(states[-1]):
                return states[-1]
            assert not self.closed, self.frames[-3:]
            await self._arrived.park()


@asynccontextmanager
async def wire_till(node: StoreNode, subprotocol: str) -> AsyncIterator[WireTill]:
    async with dial_till(node.url, subprotocols=[subprotocol]) as ws, trio.open_nursery() as nursery:
        till = WireTill(ws, subprotocol)
        nursery.start_soon(till.reader)
        yield till
        nursery.cancel_scope.cancel()


REFS = itertools.count(1)
STORE_CODECS = {p: TillCodec(p, "store") for p in TILL_SUBPROTOCOLS}


def encoded(step: TillFrame | bytes | str, subprotocol: str) -> tuple[bytes | str, int] | None:
    """The bytes a step sends and the ref its answer carries (0: none), None if it cannot be encoded
    (an integer beyond MessagePack's 64 bits)."""
    ref = 0
    if isinstance(step, TillFrame):
        if isinstance(step, Command):
            step.ref = ref = next(REFS)
        try:
            data = TillCodec(subprotocol, "till").encode(step)
        except OverflowError:
            return None
    else:
        data = step
    try:
        decoded = STORE_CODECS[subprotocol].decode(data)
    except FrameError:
        return data, 0  # refused as bad_frame, before its ref is read
    if isinstance(decoded, Command) and not ref:  # raw bytes that make a command: numbered, to match its answer
        return encoded(decoded, subprotocol)
    return data, ref


async def wire_sale(node: StoreNode, subprotocol: str) -> None:
    """The cashier takes lane 1 over (logging in as the hello does it; whoever held it is dropped),
    settles what was left open and sells milk for cash."""
    async with wire_till(node, subprotocol) as till:

        async def ask(command: Command) -> TillFrame | None:
            data, ref = encoded(command, subprotocol)  # type: ignore[misc]
            return await till.answer(data, ref)

        hello = kit_hello(till="SALE", lane=1, takeover=True, operator=CASHIER, pin=CASHIER_PIN)
        welcome = await till.answer(till.codec.encode(hello), 0)
        assert isinstance(welcome, Welcome), welcome
        state = await till.until(lambda s: s.status != "paying")
        if state.payment:
            assert isinstance(await ask(ResolvePayment()), SaleState)
        state = await till.until(lambda s: s.status != "paying")
        if state.status in ("open", "tender"):
            cancelled = await ask(CancelSale(approver=MANAGER, approver_pin=MANAGER_PIN))
            assert isinstance(cancelled, SaleState | Receipt), (state, cancelled)
        await till.until(lambda s: s.status == "ready")
        assert isinstance(await ask(Scan(code=MILK)), SaleState)
        assert isinstance(await ask(Total()), SaleState)
        assert isinstance(await ask(CashTender(amount=100_000)), Receipt)
