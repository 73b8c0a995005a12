"""A lane has one till and an operator's login belongs to the till connection it was typed at (issue 13
items 2 and 3), over a real gateway: a second till saw the first's basket and every scan and could void,
cancel and log out; both received state frames carrying the other's ref; a new connection to a lane
scanned as whoever had logged in there before it; questions were answered before any hello."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import msgspec
import pytest
import trio
from trio_websocket import ConnectionClosed

from protocol.codec import SUBPROTOCOL_MSGPACK, TillCodec
from protocol.frames import (
    CancelSale,
    CashTender,
    Command,
    Error,
    GiftCardQuery,
    ItemSearch,
    Login,
    Logout,
    PriceCheck,
    Receipt,
    SaleState,
    Scan,
    Status,
    StatusRequest,
    StockQuery,
    TillFrame,
    VoidLine,
    Welcome,
)
from runtime.clock import FixedClock
from storenode.app import StoreNode
from storenode.config import TillsConfig
from tests.kit.nodes import make_store_config
from tests.kit.tills import dial_till, kit_hello
from till.client import TillClient, TillDisconnected, connect

MILK, COFFEE = "7310000000010", "7310000000034"
CASHIER = Login(operator="1", pin="1234")


class RawTill:
    """A till on a bare websocket that keeps every frame the store sends it, so a test can say what it
    never received (TillClient keeps only the latest state)."""

    def __init__(self, ws: object, codec: TillCodec) -> None:
        self.ws = ws
        self.codec = codec
        self.frames: list[TillFrame] = []
        self.sent_refs: set[int] = {0}
        self._next = 100
        self._arrived = trio.lowlevel.ParkingLot()

    async def reader(self) -> None:
        try:
            while True:
                self.frames.append(self.codec.decode(await self.ws.get_message()))  # type: ignore[attr-defined]
                self._arrived.unpark_all()
        except ConnectionClosed:
            self._arrived.unpark_all()

    async def send(self, frame: TillFrame) -> TillFrame:
        """Send and return the first frame after it that answers it (its ref, or ref 0 for a hello)."""
        if isinstance(frame, Command):
            self._next += 1
            frame.ref = self._next
        ref = getattr(frame, "ref", 0)
        self.sent_refs.add(ref)
        seen = len(self.frames)
        await self.ws.send_message(self.codec.encode(frame))  # type: ignore[attr-defined]
        while True:
            for answer in self.frames[seen:]:
                if getattr(answer, "ref", 0) == ref and (ref or isinstance(answer, Welcome | Error)):
                    return answer
            await self._arrived.park()


@asynccontextmanager
async def raw_till(url: str) -> AsyncIterator[RawTill]:
    async with dial_till(url, subprotocols=[SUBPROTOCOL_MSGPACK]) as ws, trio.open_nursery() as nursery:
        till = RawTill(ws, TillCodec(SUBPROTOCOL_MSGPACK, "till"))
        nursery.start_soon(till.reader)
        yield till
        nursery.cancel_scope.cancel()


async def start(tmp_path: Path, nursery: trio.Nursery, clock: FixedClock, tills: TillsConfig) -> StoreNode:
    config = msgspec.structs.replace(make_store_config(tmp_path), tills=tills)
    node = StoreNode(config, clock=clock)
    await nursery.start(node.run)
    return node


@pytest.fixture
async def shop(tmp_path: Path, nursery: trio.Nursery, clock: FixedClock) -> StoreNode:
    """A store without central (none is needed here), idle logout off."""
    return await start(tmp_path, nursery, clock, TillsConfig(idle_logout=0))


async def ok(till: TillClient, command: Command) -> SaleState:
    answer = await till.request(command)
    assert isinstance(answer, SaleState), answer
    return answer


async def refused(till: TillClient | RawTill, command: TillFrame, code: str) -> Error:
    answer = await (till.request(command) if isinstance(till, TillClient) else till.send(command))  # type: ignore[arg-type]
    assert isinstance(answer, Error) and answer.code == code, answer
    return answer


async def test_a_second_till_on_a_lane_in_use_is_refused_and_sees_nothing_of_the_first(shop: StoreNode) -> None:
    with trio.fail_after(30):
        async with connect(shop.url, 1, "A") as a, raw_till(shop.url) as b:
            await ok(a, CASHIER)
            await ok(a, Scan(code=MILK))
            refusal = await b.send(kit_hello(till="B", lane=1))
            assert isinstance(refusal, Error) and refusal.code == "lane_in_use" and "till A" in refusal.message
            for command in (Scan(code=COFFEE), VoidLine(line=1), CancelSale(), Logout(), CASHIER):
                await refused(b, command, "hello_first")
            await ok(a, Scan(code=COFFEE, qty=2))  # A goes on; had B been told, its frame would come first
            await refused(b, StatusRequest(), "hello_first")
            assert all(isinstance(f, Error) for f in b.frames), b.frames  # no state, no welcome, no receipt
            assert not any(MILK in repr(f) or "Alex" in repr(f) for f in b.frames)
            state = await ok(a, Scan(code=MILK))
            lines = [(x.code, x.qty, x.voided) for x in state.lines]
            assert lines == [(MILK, 2, False), (COFFEE, 2, False)]  # the second milk on its line ([sales] merge_lines)
            assert a.notices == []


async def test_a_takeover_needs_a_valid_login_and_the_first_till_is_told_and_detached(shop: StoreNode) -> None:
    with trio.fail_after(40):
        async with connect(shop.url, 1, "A") as a:
            await ok(a, CASHIER)
            await ok(a, Scan(code=MILK))
            attempts = [
                (Login(operator="1", pin="9999"), "wrong_pin"),  # a stranger guessing
                (Login(operator="77", pin="1234"), "wrong_pin"),
                (Login(operator="2", pin="4321"), "sale_open"),  # a real operator, but the sale is the cashier's
            ]
            for login, code in attempts:
                with pytest.raises(ConnectionRefusedError, match=code):
                    async with connect(shop.url, 1, "B", takeover=login):
                        pass
            async with raw_till(shop.url) as stranger:  # a takeover without a login is no takeover
                answer = await stranger.send(kit_hello(till="B", lane=1, takeover=True))
                assert isinstance(answer, Error) and answer.code == "bad_hello"
            await ok(a, Scan(code=COFFEE))  # A untouched by all of that
            assert a.notices == []

            async with connect(shop.url, 1, "B", takeover=CASHIER) as b:
                assert b.state is not None and [x.code for x in b.state.lines] == [MILK, COFFEE]
                assert b.state.operator == "1"
                with trio.fail_after(5):
                    while not a.notices:
                        await a.pushed.wait()
                assert a.notices[0].code == "taken_over" and "till B" in a.notices[0].message
                with pytest.raises((TillDisconnected, ConnectionClosed)):
                    await a.request(Scan(code=MILK))  # A's connection is closed: nothing it sends is done
                state = await ok(b, Scan(code=MILK))  # the cashier goes on at B, logged in by the takeover
                assert [(x.code, x.qty) for x in state.lines] == [(MILK, 2), (COFFEE, 1)]
                receipt = await b.request(CashTender(amount=200_00))
                assert isinstance(receipt, Receipt) and receipt.total == state.total


async def test_a_tills_frames_never_carry_another_tills_ref(shop: StoreNode) -> None:
    """A's refs and B's overlap on purpose (both count from 101): each may only see its own."""
    with trio.fail_after(30):
        async with raw_till(shop.url) as a:
            assert isinstance(await a.send(kit_hello(till="A", lane=1)), Welcome)
            await a.send(CASHIER)
            for _ in range(3):
                await a.send(Scan(code=MILK))
            async with raw_till(shop.url) as b:
                b._next = 500  # B's refs are other numbers than A's
                hello = kit_hello(till="B", lane=1, takeover=True, operator="1", pin="1234")
                assert isinstance(await b.send(hello), Welcome)
                await b.send(Scan(code=COFFEE))
                await b.send(VoidLine(line=1))
                assert isinstance(await b.send(CashTender(amount=200_00)), Receipt)
                await b.send(CASHIER)
                await b.send(Logout())
            refs_a = {getattr(f, "ref", 0) for f in a.frames}
            refs_b = {getattr(f, "ref", 0) for f in b.frames}
            assert refs_a <= a.sent_refs and refs_b <= b.sent_refs, (refs_a - a.sent_refs, refs_b - b.sent_refs)
            assert len(refs_b) > 4  # B did get its answers by ref


async def test_a_dropped_tills_operator_is_logged_out_and_the_open_sale_waits(shop: StoreNode) -> None:
    with trio.fail_after(30):
        async with connect(shop.url, 1, "A") as a:
            await ok(a, CASHIER)
            await ok(a, Scan(code=MILK))
            await ok(a, Scan(code=COFFEE))
        async with connect(shop.url, 1, "C") as c:
            assert c.state is not None and [x.code for x in c.state.lines] == [MILK, COFFEE]  # never lost
            assert "log in" in c.state.message
            for command in (Scan(code=MILK), VoidLine(line=1), CancelSale(), CashTender(amount=100_00), Logout()):
                await refused(c, command, "not_logged_in")
            await refused(c, Login(operator="2", pin="4321"), "sale_open")  # the sale waits for its cashier
            await ok(c, CASHIER)
            state = await ok(c, Scan(code=MILK))
            assert [(x.code, x.qty) for x in state.lines] == [(MILK, 2), (COFFEE, 1)]
            assert isinstance(await c.request(CashTender(amount=200_00)), Receipt)
        async with connect(shop.url, 1, "D") as d:  # no sale left: the lane is simply closed
            assert d.state is not None and d.state.status == "closed" and d.state.operator == ""
            await refused(d, Scan(code=MILK), "not_logged_in")


async def test_a_restarted_store_has_nobody_logged_in(tmp_path: Path, clock: FixedClock) -> None:
    """The demo left operator 1 logged in on lane 1 and the next connection scanned as them."""
    with trio.fail_after(40):
        async with trio.open_nursery() as life:
            store = await start(tmp_path, life, clock, TillsConfig())
            async with connect(store.url, 1, "A") as a:
                await ok(a, CASHIER)
                life.cancel_scope.cancel()
        async with trio.open_nursery() as life:
            store = await start(tmp_path, life, clock, TillsConfig())
            async with connect(store.url, 1, "B") as b:
                assert b.state is not None and b.state.status == "closed"
                await refused(b, Scan(code=MILK), "not_logged_in")
            life.cancel_scope.cancel()


async def test_an_idle_till_is_logged_out(tmp_path: Path, nursery: trio.Nursery, clock: FixedClock) -> None:
    """Idle counts from the last command: a till busy for twice the idle time stays logged in."""
    store = await start(tmp_path, nursery, clock, TillsConfig(idle_logout=1.5))
    with trio.fail_after(60):
        async with connect(store.url, 1, "A") as a:
            await ok(a, CASHIER)
            for _ in range(6):
                await trio.sleep(0.5)
                await ok(a, Scan(code=MILK))  # 3 s after the login, still in
            await ok(a, VoidLine(line=1))
            while a.state is None or "without a command" not in a.state.message:
                await a.pushed.wait()
            assert a.state.ref == 0 and [(x.qty, x.voided) for x in a.state.lines] == [(6, True)]  # the sale stays
            await refused(a, Scan(code=COFFEE), "not_logged_in")
            await ok(a, CASHIER)  # the same till logs in again and goes on
            await ok(a, Scan(code=COFFEE))


async def test_nothing_is_answered_before_a_hello(shop: StoreNode) -> None:
    questions: list[TillFrame] = [
        StatusRequest(),
        StockQuery(code=MILK),
        ItemSearch(text="milk"),
        PriceCheck(code=MILK),
        GiftCardQuery(card="6000000000000001"),
    ]
    with trio.fail_after(30):
        async with connect(shop.url, 1, "A") as a, raw_till(shop.url) as b:
            await ok(a, CASHIER)
            for question in questions:
                answer = await refused(b, question, "hello_first")
                assert "hello" in answer.message
            await refused(b, kit_hello(till="B", lane=1), "lane_in_use")  # a refused hello is no hello
            for question in questions:
                await refused(b, question, "hello_first")
            assert all(isinstance(f, Error) for f in b.frames)
            welcome = await b.send(kit_hello(till="status", lane=0))  # the store's own status client
            assert isinstance(welcome, Welcome) and welcome.lane == 0 and welcome.state.lines == []
            assert isinstance(await b.send(StatusRequest()), Status)
            await refused(b, Scan(code=MILK), "no_lane")


async def test_a_supervisor_takes_over_a_sale_its_cashier_left_open_saying_so_on_the_login(shop: StoreNode) -> None:
    """The sale waits for its cashier; when the cashier has gone, a supervisor takes it over by saying so on
    the login (`login 2 4321 take`). A cashier cannot, a wrong PIN changes nothing, and the takeover is
    journaled with the sale (whose it was, who took it)."""
    from tests.kit.journal import journal

    manager = Login(operator="2", pin="4321")
    with trio.fail_after(30):
        async with connect(shop.url, 1, "A") as a:  # the manager's own sale, left open
            await ok(a, manager)
            await ok(a, Scan(code=COFFEE))
        async with connect(shop.url, 1, "B") as b:
            await refused(b, Login(operator="1", pin="1234", take_sale=True), "not_approver")  # a cashier cannot
            await ok(b, manager)  # it waited for its operator
            await b.request(CancelSale())
        async with connect(shop.url, 1, "A") as a:
            await ok(a, CASHIER)
            await ok(a, Scan(code=MILK))
        async with connect(shop.url, 1, "C") as c:
            await refused(c, manager, "sale_open")  # not said: the sale waits for its cashier
            await refused(c, Login(operator="2", pin="0000", take_sale=True), "wrong_pin")
            assert c.state is not None and c.state.operator == "1" and len(c.state.lines) == 1  # nothing changed
            state = await ok(c, Login(operator="2", pin="4321", take_sale=True))
            assert state.operator == "2" and [x.code for x in state.lines] == [MILK]
            assert "took over sale" in state.message and "operator 1" in state.message
            await ok(c, Scan(code=COFFEE))
            receipt = await c.request(CashTender(amount=100_00))
            assert isinstance(receipt, Receipt)
    records = journal(shop)
    assert [r.kind for r in records] == ["cancel", "sale"]
    sale = records[1]
    assert sale.operator == "2" and len(sale.lines) == 2
    assert [(x.action, x.approver, x.detail) for x in sale.approvals] == [("takeover", "2", "sale of operator 1")]


async def test_a_supervisor_takes_over_a_lane_held_by_a_till_and_its_cashiers_sale_in_one_hello(
    shop: StoreNode,
) -> None:
    """The cashier's till still holds the lane (it hangs, or its network dropped silently) and the cashier
    has gone: the supervisor's takeover hello says `take_sale` too, and gets lane and sale at once. Without
    it the sale still waits for its cashier (the test above), and the first till keeps the lane."""
    with trio.fail_after(30):
        async with connect(shop.url, 1, "A") as a:
            await ok(a, CASHIER)
            await ok(a, Scan(code=MILK))
            with pytest.raises(ConnectionRefusedError, match="sale_open"):
                async with connect(shop.url, 1, "B", takeover=Login(operator="2", pin="4321")):
                    pass
            await ok(a, Scan(code=COFFEE))  # A still has its lane
            taking = Login(operator="2", pin="4321", take_sale=True)
            async with connect(shop.url, 1, "B", takeover=taking) as b:
                assert b.state is not None and b.state.operator == "2"
                assert [x.code for x in b.state.lines] == [MILK, COFFEE]
                while not a.notices:
                    await a.pushed.wait()
                assert a.notices[0].code == "taken_over"
                assert isinstance(await b.request(CashTender(amount=100_00)), Receipt)
