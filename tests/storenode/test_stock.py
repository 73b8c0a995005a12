"""Stock as signed deltas: sales, returns, receipts, transfers and counts, merged at central."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import trio

from central.app import CentralNode
from central.registers import stock as central_stock
from devtools.chaos.proxy import ChaosProxy, Faults
from protocol.frames import (
    CashTender,
    Error,
    Login,
    Receipt,
    ReturnItem,
    SaleState,
    Scan,
    StockCount,
    StockInfo,
    StockMove,
    StockQuery,
)
from runtime.clock import FixedClock
from storenode.app import StoreNode
from tests.kit import certificates
from tests.kit.nodes import enrolled, make_store_config
from tests.kit.waits import drained
from till.client import TillClient, connect

COFFEE = "7310000000034"  # item 1003


async def ask(till: TillClient, command: object) -> object:
    return await till.request(command)  # type: ignore[arg-type]


async def test_stock_moves_merge_at_central_and_other_stores_are_visible(
    tmp_path: Path, store: StoreNode, central: CentralNode, nursery: trio.Nursery
) -> None:
    config = make_store_config(tmp_path / "two", central_url=central.url)
    config.store = "S002"
    other = StoreNode(enrolled(config, central), clock=FixedClock(0))
    await nursery.start(other.run)
    with trio.fail_after(30):
        async with connect(other.url, lane=1, till="B") as b:
            await b.request(Login(operator="1", pin="1234"))
            got = await b.request(StockMove(code=COFFEE, qty=10, reason="receipt", note="DN-1"))
            assert isinstance(got, StockInfo) and got.here == 10
        async with connect(store.url, lane=1, till="A") as a:
            await a.request(Login(operator="1", pin="1234"))
            await a.request(Scan(code=COFFEE, qty=3))
            await a.request(ReturnItem(code=COFFEE))
            assert isinstance(await a.request(CashTender(amount=20000)), Receipt)
            await drained(store, other)
            info = await a.request(StockQuery(code=COFFEE))
            assert isinstance(info, StockInfo)
            assert (info.here, [(s.location, s.qty) for s in info.elsewhere], info.note) == (-2, [("S002", 10)], "")
            counted = await a.request(StockCount(code=COFFEE, counted=5))
            assert isinstance(counted, StockInfo) and counted.here == 5
            moved = await a.request(StockMove(code=COFFEE, qty=-1, reason="transfer", note="to S002"))
            assert isinstance(moved, StockInfo) and moved.here == 4
            for bad, code in [
                (StockMove(code=COFFEE, qty=1, reason="theft"), "bad_reason"),
                (StockMove(code=COFFEE, qty=0, reason="adjust"), "bad_quantity"),
                (StockCount(code=COFFEE, counted=-1), "bad_quantity"),
                (StockMove(code="000", qty=1, reason="adjust"), "unknown_barcode"),
                (StockQuery(code="000"), "unknown_barcode"),
            ]:
                answer = await a.request(bad)
                assert isinstance(answer, Error) and answer.code == code, answer
        await drained(store)
    levels = {x.location: x.qty for x in await central.db.read(lambda c: central_stock.levels(c, "1003"))}
    assert levels == {"S001": 4, "S002": 10}
    moves = await central.db.read(
        lambda c: c.execute(
            "SELECT reason, delta FROM stock_moves WHERE store = 'S001' AND item = '1003' ORDER BY rowid"
        ).fetchall()
    )
    assert moves == [("sale", -3), ("return", 1), ("count", 7), ("transfer", -1)]  # the count's delta is derived


async def test_offline_the_till_gets_a_clear_answer_not_a_hang(tmp_path: Path, nursery: trio.Nursery) -> None:
    store = StoreNode(make_store_config(tmp_path, central_url="wss://127.0.0.1:9"), clock=FixedClock(0))
    await nursery.start(store.run)
    with trio.fail_after(20):
        async with connect(store.url, lane=1, till="A") as a:
            state = await a.request(Login(operator="1", pin="1234"))
            assert isinstance(state, SaleState) and state.link == "offline"
            info = await a.request(StockQuery(code=COFFEE))
            assert isinstance(info, StockInfo) and info.elsewhere == []
            assert info.note.startswith("other stores unknown: central is unreachable")
            await a.request(Scan(code=COFFEE))
            assert isinstance(await a.request(CashTender(amount=10000)), Receipt)  # selling goes on
            while a.state.lines:
                await a.pushed.wait()
            assert a.state.backlog == 2  # the sale and its stock movement wait for central


@pytest.mark.e2e  # seconds of real heartbeats through the chaos proxy
async def test_a_silent_link_is_declared_down_and_recovers(
    tmp_path: Path, central: CentralNode, nursery: trio.Nursery
) -> None:
    proxy = ChaosProxy(central.url, Faults(), rng=random.Random(1), chain=certificates.chain())
    await nursery.start(proxy.run)
    config = make_store_config(tmp_path, central_url=proxy.url)
    config.central.heartbeat = 0.3
    store = StoreNode(enrolled(config, central), clock=FixedClock(0))
    await nursery.start(store.run)
    with trio.fail_after(20):
        async with connect(store.url, lane=1, till="A") as a:
            while a.state is None or a.state.link != "online":
                await a.pushed.wait()
            proxy.faults.silent = True  # the connection stays open; nothing gets through
            # the spec: a link without a pong is down within three heartbeats; allow scheduling slack
            with trio.fail_after(3 * config.central.heartbeat + 3):
                while a.state.link != "offline":
                    await a.pushed.wait()  # the lane pushes the change to the till by itself
            proxy.faults.silent = False
            while a.state.link != "online":
                await a.pushed.wait()
