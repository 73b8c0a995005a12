"""Master data from central to stores over real links: changes reach every connected store, a store
that was away catches up, campaigns switch on the store's own clock, and a transfer cut mid-stream
leaves selling on the last good version and resumes where it stopped."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import trio

from central.app import CentralNode
from central.registers import imports
from central.registers.catalog import Price, Till, TillConfig
from central.registers.catalog import Store as CentralStore
from devtools.chaos.proxy import ChaosProxy, Faults
from protocol.frames import (
    CashTender,
    Error,
    ItemInfo,
    ItemSearch,
    Login,
    PriceCheck,
    Receipt,
    SaleState,
    Scan,
    SearchResult,
)
from runtime.clock import FixedClock
from storenode.app import StoreNode
from storenode.sync import replica
from tests.kit import certificates
from tests.kit.catalog import commit
from tests.kit.catalog import seed_central as seed
from tests.kit.nodes import HOUR, T0, central_node, stoppable, store_node
from tests.kit.waits import offline
from till.client import connect

MILK = "7310000000010"  # in the demo catalogue file every test store starts from


async def scan_price(store: StoreNode, code: str) -> int | Error:
    async with connect(store.url, lane=1, till="T1") as till:
        await till.request(Login(operator="1", pin="1234"))
        before = {x.no: x for x in till.state.lines} if till.state is not None else {}
        answer = await till.request(Scan(code=code))
        if isinstance(answer, Error):
            return answer
        assert isinstance(answer, SaleState)
        (scanned,) = [x for x in answer.lines if before.get(x.no) != x]  # a new line, or one sold again (merged)
        return scanned.unit_price


async def test_a_price_change_at_central_reaches_both_connected_stores(
    tmp_path: Path, central: CentralNode, nursery: trio.Nursery
) -> None:
    with trio.fail_after(30):
        one, two = store_node(tmp_path, central, "S001"), store_node(tmp_path, central, "S002")
        await nursery.start(one.run)
        await nursery.start(two.run)
        first = await seed(central, 20)
        await one.catalog_follower.wait_version(first)
        await two.catalog_follower.wait_version(first)
        assert await scan_price(one, "0000005") == 1005
        assert isinstance(await scan_price(one, MILK), Error)  # the file's seed is gone: central's data rules

        changed = await commit(
            central,
            "prices",
            [
                Price(item="0005", price=1500, currency="SEK"),
                Price(item="0005", store="S001", price=1400, currency="SEK"),
            ],
        )
        await one.catalog_follower.wait_version(changed)
        await two.catalog_follower.wait_version(changed)
        assert (await scan_price(one, "0000005"), await scan_price(two, "0000005")) == (1400, 1500)
        status = await one.status()
        assert (status.replica, status.central_catalog, status.behind_since) == (changed, changed, 0)


async def test_a_store_away_during_a_change_catches_up_when_it_returns(
    tmp_path: Path, central: CentralNode, nursery: trio.Nursery
) -> None:
    with trio.fail_after(30):
        first = await seed(central, 5)
        away = store_node(tmp_path, central, "S002")
        async with trio.open_nursery() as running:
            await running.start(away.run)
            await away.catalog_follower.wait_version(first)
            running.cancel_scope.cancel()
        changed = await commit(central, "prices", [Price(item="0003", price=3333, currency="SEK")])

        back = store_node(tmp_path, central, "S002")  # same data directory: the replica is at `first`
        await nursery.start(back.run)
        assert back.catalog_follower.view.version in (first, changed)
        await back.catalog_follower.wait_version(changed)
        assert back.catalog_follower.resumed == 0  # a delta from `first`, not a resumed snapshot
        assert await scan_price(back, "0000003") == 3333


async def test_a_campaign_starts_and_ends_on_the_store_clock_with_central_gone(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    with trio.fail_after(30):
        async with trio.open_nursery() as outer:
            central = central_node(tmp_path / "central" / "central.db", port=0)
            central_running = trio.CancelScope()
            await outer.start(stoppable, central_running, central.run)
            store = store_node(tmp_path, central, "S001", clock)
            await outer.start(store.run)
            await seed(central, 2)
            version = await commit(
                central, "prices", [Price(item="0001", starts=T0 + HOUR, ends=T0 + 2 * HOUR, price=5, currency="SEK")]
            )
            await store.catalog_follower.wait_version(version)
            central_running.cancel()
            await offline(store)
            assert await scan_price(store, "0000001") == 1001
            clock.advance(HOUR)
            assert await scan_price(store, "0000001") == 5
            clock.advance(HOUR)
            assert await scan_price(store, "0000001") == 1001
            outer.cancel_scope.cancel()


async def test_a_transfer_cut_mid_stream_keeps_selling_the_last_version_and_resumes(
    tmp_path: Path, central: CentralNode, nursery: trio.Nursery
) -> None:
    with trio.fail_after(60):
        central.ingest.chunk_rows = 3  # a long transfer, so the cut lands in the middle of it
        version = await seed(central, 150)
        store = store_node(tmp_path, central, "S001")
        await nursery.start(store.run)

        def staging(c: sqlite3.Connection) -> tuple[int | None, int]:
            return replica.state(c).transfer_base, c.execute("SELECT count(*) FROM stage_items").fetchone()[0]

        while (await store.db.read(staging))[1] < 30:  # each read is a checkpoint
            pass
        await central.ingest.links["S001"].ws.aclose()  # the line drops mid-snapshot
        assert store.catalog_follower.view.version == 0
        assert await scan_price(store, MILK) == 1590  # still selling from the last good version
        await store.catalog_follower.wait_version(version)
        assert store.catalog_follower.resumed >= 1
        assert await scan_price(store, "0000149") == 1149
        assert await store.db.read(staging) == (None, 0)


async def test_tills_search_check_prices_and_see_pop_ups(
    tmp_path: Path, central: CentralNode, nursery: trio.Nursery
) -> None:
    with trio.fail_after(30):
        store = store_node(tmp_path, central, "S001")
        await nursery.start(store.run)
        version = await seed(central, 12)
        await store.catalog_follower.wait_version(version)
        async with connect(store.url, lane=1, till="T1") as till:
            found = await till.request(ItemSearch(text="ite 1", limit=5))
            assert isinstance(found, SearchResult)
            assert [f.name for f in found.items] == ["Item 1", "Item 10", "Item 11"]
            assert isinstance(await till.request(ItemSearch(text="x", limit=0)), Error)
            info = await till.request(PriceCheck(code="0000000"))
            assert isinstance(info, ItemInfo)
            assert (info.name, info.price, info.popup, info.info) == ("Beer", 1000, "Check age: 18+", "Lager 5%")
            unknown = await till.request(PriceCheck(code="4006381333931"))
            assert isinstance(unknown, Error) and unknown.code == "unknown_barcode"
            assert (await store.status()).replica == version  # a price check sells nothing
            await till.request(Login(operator="1", pin="1234"))
            state = await till.request(Scan(code="0000000"))
            assert isinstance(state, SaleState) and state.popup == "Check age: 18+"
            state = await till.request(Scan(code="0000001"))
            assert isinstance(state, SaleState) and state.popup == "" and len(state.lines) == 2


async def test_central_till_configuration_sets_receipt_texts_and_quick_keys(
    tmp_path: Path, central: CentralNode, nursery: trio.Nursery
) -> None:
    with trio.fail_after(30):
        store = store_node(tmp_path, central, "S001")
        await nursery.start(store.run)
        await seed(central, 3)
        await commit(
            central, "stores", [CentralStore(store="S001", name="Corner"), CentralStore(store="S002", name="Mall")]
        )
        await commit(
            central,
            "tills",
            [Till(store="S001", till="T1", name="Front", lane=1), Till(store="S002", till="T1", name="Other", lane=1)],
        )
        await commit(central, "till-config", [TillConfig(receipt_header="Chain header", quick_keys="Beer=0000000")])
        version = await commit(
            central,
            "till-config",
            [
                TillConfig(
                    store="S001",
                    receipt_header="Corner Shop\nMain St 1",
                    receipt_footer="Welcome back",
                    quick_keys="Two=0000002\nOne=0000001",
                )
            ],
        )
        await store.catalog_follower.wait_version(version)
        tills = await store.db.read(lambda c: c.execute("SELECT store, till FROM tills").fetchall())
        assert tills == [("S001", "T1")]  # another store's tills stay at central
        async with connect(store.url, lane=1, till="T1") as till:
            assert till.welcome is not None
            assert [(k.label, k.code) for k in till.welcome.quick_keys] == [("Two", "0000002"), ("One", "0000001")]
            await till.request(Login(operator="1", pin="1234"))
            await till.request(Scan(code="0000001"))
            receipt = await till.request(CashTender(amount=5000))
            assert isinstance(receipt, Receipt)
            assert "Corner Shop" in receipt.text and "Main St 1" in receipt.text and "Welcome back" in receipt.text
            assert "Chain header" not in receipt.text  # the store's own configuration wins


@pytest.mark.e2e  # a chaos run: the proxy duplicating and reordering a long transfer
async def test_duplicated_and_reordered_chunks_still_end_in_centrals_exact_catalogue(
    tmp_path: Path, central: CentralNode, nursery: trio.Nursery
) -> None:
    """A chunk answering an earlier pull (a duplicate, a late one) must never be taken for the answer to
    the current one: its position, or an old snapshot's "replace everything", would corrupt the copy."""
    central.ingest.chunk_rows = 7
    proxy = ChaosProxy(central.url, Faults(duplicate=0.3), rng=random.Random(5), chain=certificates.chain())
    await nursery.start(proxy.run)
    with trio.fail_after(60):
        version = await seed(central, 120)
        store = store_node(tmp_path, central, "S001", url=proxy.url)
        await nursery.start(store.run)
        await store.catalog_follower.wait_version(version)
        changed = await commit(
            central, "prices", [Price(item=f"{n:04}", price=7, currency="SEK") for n in range(0, 120, 3)]
        )
        await store.catalog_follower.wait_version(changed)
    assert proxy.stats.duplicates > 0

    def rows(c: sqlite3.Connection) -> list[list[tuple[Any, ...]]]:
        return [
            c.execute("SELECT item, name FROM items ORDER BY item").fetchall(),
            c.execute("SELECT code, item FROM barcodes ORDER BY code").fetchall(),
            c.execute("SELECT item, store, starts, ends, price FROM prices ORDER BY item").fetchall(),
        ]

    assert await store.db.read(rows) == await central.db.read(rows)


async def test_a_store_moved_to_another_central_takes_a_snapshot_even_at_the_same_version(
    tmp_path: Path, central: CentralNode, nursery: trio.Nursery
) -> None:
    """Version 4 of one central's catalogue is not version 4 of another's: the epoch tells them apart."""
    with trio.fail_after(30):
        version = await seed(central, 5)
        async with trio.open_nursery() as first:
            store = store_node(tmp_path, central, "S001")
            await first.start(store.run)
            await store.catalog_follower.wait_version(version)
            first.cancel_scope.cancel()
        other = central_node(tmp_path / "other" / "central.db", port=0)
        await nursery.start(other.run)
        assert await seed(other, 8) == version  # the same version number, another catalogue
        moved = store_node(tmp_path, other, "S001")  # the same data folder, linked to the other central
        await nursery.start(moved.run)
        epoch = other.ingest.distributor.epoch
        while (await moved.db.read(replica.state)).epoch != epoch:  # noqa: ASYNC110 - the replica has no event
            await trio.sleep(0.02)
        count = await moved.db.read(lambda c: c.execute("SELECT count(*) FROM items").fetchone()[0])
        assert count == 8 and epoch != central.ingest.distributor.epoch


async def test_a_campaign_deleted_at_central_is_dropped_by_the_store(
    tmp_path: Path, central: CentralNode, nursery: trio.Nursery
) -> None:
    with trio.fail_after(30):
        store = store_node(tmp_path, central, "S001")
        await nursery.start(store.run)
        await seed(central, 2)
        version = await commit(
            central, "prices", [Price(item="0001", starts=T0 - HOUR, ends=T0 + HOUR, price=5, currency="SEK")]
        )
        await store.catalog_follower.wait_version(version)
        assert await scan_price(store, "0000001") == 5
        mistake = tmp_path / "mistake.csv"
        mistake.write_text(f"item,start,end\n0001,{T0 - HOUR},{T0 + HOUR}\n")

        def delete() -> tuple[int, int]:
            conn = imports.open_catalog(central.db.path, create=False)
            try:
                return imports.delete_file(conn, "prices", mistake)
            finally:
                conn.close()

        count, deleted = await trio.to_thread.run_sync(delete)
        assert count == 1
        await store.catalog_follower.wait_version(deleted)
        assert await scan_price(store, "0000001") == 1001  # the chain price again
