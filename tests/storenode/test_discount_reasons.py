"""The register of discount reasons (issue 14): kept at central, imported like every register and sent to
the stores with the catalogue over the real link; a store without central reasons takes the catalogue
file's; once central sent any, central's active reasons alone decide at the till."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio

from central.app import CentralNode
from central.registers.catalog import DiscountReason
from protocol.frames import CancelSale, Error, GiveDiscount, Login, SaleState, Scan
from runtime.database import migrate, open_connection
from storenode.app import StoreNode
from storenode.schema import MIGRATIONS
from storenode.sync import replica
from tests.kit.catalog import commit
from tests.kit.catalog import seed_central as seed
from tests.kit.nodes import store_node
from till.client import connect


async def discount(store: StoreNode, reason: str) -> str:
    """A 5 % sale discount for `reason` in a sale of its own at lane 1: "ok" or the refusal's code."""
    async with connect(store.url, lane=1, till="T1") as till:
        await till.request(Login(operator="1", pin="1234"))
        assert isinstance(await till.request(Scan(code="0000001")), SaleState)
        answer = await till.request(GiveDiscount(percent=500, reason=reason))
        await till.request(CancelSale(approver="2", approver_pin="4321"))  # the next call starts afresh
        return answer.code if isinstance(answer, Error) else "ok"


async def test_central_discount_reasons_reach_the_store_and_alone_decide(
    tmp_path: Path, central: CentralNode, nursery: trio.Nursery
) -> None:
    with trio.fail_after(40):
        store = store_node(tmp_path, central, "S001")
        await nursery.start(store.run)
        first = await seed(central, 3)
        await store.catalog_follower.wait_version(first)
        assert await discount(store, "DAMAGED") == "ok"  # central has none yet: the catalogue file's reasons

        version = await commit(
            central,
            "discount-reasons",
            [DiscountReason(code="BRUISED", name="Bruised fruit"), DiscountReason(code="LOYAL", name="Loyalty")],
        )
        await store.catalog_follower.wait_version(version)
        assert await discount(store, "BRUISED") == "ok"
        assert await discount(store, "DAMAGED") == "bad_reason"  # the file's list is never mixed in

        retired = await commit(central, "discount-reasons", [DiscountReason(code="BRUISED", name="x", active=False)])
        await store.catalog_follower.wait_version(retired)
        assert await discount(store, "BRUISED") == "bad_reason"
        assert await discount(store, "LOYAL") == "ok"


def test_a_store_holding_centrals_catalogue_takes_one_snapshot_after_the_upgrade(tmp_path: Path) -> None:
    """Store migration 16: reasons central held before the store was upgraded arrive with one snapshot."""
    for version, expected in ((7, (7, 0)), (0, (0, None))):
        conn = open_connection(tmp_path / f"store-{version}.db")
        try:
            migrate(conn, [m for m in MIGRATIONS if m.version < 16])
            conn.execute(
                "UPDATE replica SET version = ?, transfer_base = ?, cursor = x'01'", (version, version or None)
            )
            conn.commit()
            migrate(conn, MIGRATIONS)
            now = replica.state(conn)
            assert (now.version, now.transfer_base) == expected
            assert replica.discount_reasons(conn) == {}
        finally:
            conn.close()


def test_the_catalogue_files_reasons_are_checked_whole_and_loaded(tmp_path: Path) -> None:
    good = {"items": [], "discount_reasons": [{"code": "DAMAGED", "name": "Damaged goods"}]}
    for bad, problem in (
        ([{"code": "A", "name": "x"}, {"code": "A", "name": "y"}], "appears twice"),
        ([{"code": "TWO WORDS", "name": "x"}], "without spaces"),
        ([{"code": "A", "name": ""}], "needs a code"),
    ):
        path = tmp_path / "bad.json"
        path.write_text(json.dumps({"items": [], "discount_reasons": bad}))
        with pytest.raises(replica.CatalogError, match=problem):
            replica.read_catalog(path)
    path = tmp_path / "good.json"
    path.write_text(json.dumps(good))
    conn = open_connection(tmp_path / "store.db")
    try:
        migrate(conn, MIGRATIONS)
        replica.load(conn, replica.read_catalog(path), "SEK")
        assert replica.discount_reasons(conn) == {"DAMAGED": "Damaged goods"}
    finally:
        conn.close()
