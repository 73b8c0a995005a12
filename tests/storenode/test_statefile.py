"""A lane's state file: the record format (torn and damaged tails ignored) and which of file and database
row a restarted lane believes (the newer, by the row's save counter)."""

from __future__ import annotations

import sqlite3
import struct
import zlib
from pathlib import Path

import msgspec
import pytest
import trio

from central.app import CentralNode
from protocol.frames import CashTender, Login, Receipt, RecordLine, SaleState, Scan
from runtime.database import open_connection
from storenode.app import StoreNode
from storenode.lanes import basket, statefile
from storenode.lanes.basket import LaneState
from storenode.lanes.saved import load_saved, save_state
from tests.kit.journal import journal
from tests.kit.nodes import make_store_config, start_store
from tests.kit.payments import COFFEE, MILK
from till.client import connect


def basket_of(*codes: str) -> LaneState:
    lines = [
        RecordLine(
            no=n, item=code, code=code, name=code, qty=1, unit_price=100, amount=100, vat_rate=1200, voided=False
        )
        for n, code in enumerate(codes, 1)
    ]
    return LaneState(lane=1, status=basket.OPEN, operator="1", sale_id="s", lines=lines)


def test_the_newest_complete_record_counts() -> None:
    data = statefile.encode(3, basket_of(MILK)) + statefile.encode(3, basket_of(MILK, COFFEE))
    kept = statefile.last(data)
    assert kept is not None and kept.base == 3 and [x.code for x in kept.state.lines] == [MILK, COFFEE]
    assert statefile.last(b"") is None


def test_a_torn_last_record_is_ignored_wherever_it_was_cut() -> None:
    first = statefile.encode(7, basket_of(MILK))
    second = statefile.encode(7, basket_of(MILK, COFFEE))
    for cut in range(len(second)):  # a process killed inside the write: any prefix of the record
        kept = statefile.last(first + second[:cut])
        assert kept is not None and [x.code for x in kept.state.lines] == [MILK], cut
    assert statefile.last(second[:-1]) is None  # nothing complete at all


def test_a_record_failing_its_checksum_ends_the_file() -> None:
    first = statefile.encode(1, basket_of(MILK))
    second = bytearray(statefile.encode(1, basket_of(MILK, COFFEE)))
    second[-1] ^= 0x01  # one bit of the payload
    third = statefile.encode(1, basket_of(MILK, COFFEE, COFFEE))
    kept = statefile.last(first + bytes(second) + third)
    assert kept is not None and [x.code for x in kept.state.lines] == [MILK]  # nothing after damage is trusted
    garbage = statefile.encode(1, basket_of(MILK))[:8] + b"\x00" * 40
    assert statefile.last(garbage) is None


def test_a_checksummed_payload_that_is_not_a_record_is_ignored() -> None:
    payload = msgspec.msgpack.encode(["not", "a record"])
    bogus = struct.pack("<II", len(payload), zlib.crc32(payload)) + payload
    kept = statefile.last(statefile.encode(2, basket_of(MILK)) + bogus)
    assert kept is not None and kept.base == 2


def test_an_append_built_on_a_newer_save_empties_the_file_first(tmp_path: Path) -> None:
    file = statefile.StateFile(tmp_path / "x.lane-1")
    try:
        assert file.append(4, basket_of(MILK)) and file.append(4, basket_of(MILK, COFFEE))
        two = (tmp_path / "x.lane-1").stat().st_size
        assert file.append(5, basket_of(COFFEE))  # the row was saved since: the old records are outranked
        assert (tmp_path / "x.lane-1").stat().st_size < two
        kept = file.read_last()
        assert kept is not None and kept.base == 5 and [x.code for x in kept.state.lines] == [COFFEE]
    finally:
        file.close()


def test_a_file_at_its_limit_refuses_the_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(statefile, "MAX_BYTES", 300)
    file = statefile.StateFile(tmp_path / "x.lane-1")
    try:
        appended = [file.append(1, basket_of(*[MILK] * n)) for n in range(1, 6)]
        assert appended[0] and not appended[-1]  # the lane then saves through the database
        assert (tmp_path / "x.lane-1").stat().st_size <= 300
    finally:
        file.close()


def row(db: Path) -> tuple[int, LaneState]:
    conn = open_connection(db, readonly=True)
    try:
        return load_saved(conn, 1)
    finally:
        conn.close()


async def scanned_then_stopped(tmp_path: Path, central: CentralNode, *codes: str) -> StoreNode:
    """A store that sold `codes` on lane 1 and was stopped (the row is not written on the way out)."""
    async with trio.open_nursery() as life:
        store = await start_store(tmp_path, life, central)
        async with connect(store.url, lane=1, till="T1") as till:
            await till.request(Login(operator="1", pin="1234"))
            for code in codes:
                assert isinstance(await till.request(Scan(code=code)), SaleState)
        life.cancel_scope.cancel()
    return store


async def test_scans_kept_only_in_the_file_come_back_and_reach_the_row(tmp_path: Path, central: CentralNode) -> None:
    with trio.fail_after(30):
        store = await scanned_then_stopped(tmp_path, central, MILK, COFFEE)
        db = store.config.db_path
        assert row(db)[1].lines == []  # the scans never went through the database
        async with trio.open_nursery() as life:
            store = await start_store(tmp_path, life, central)
            async with connect(store.url, lane=1, till="T1") as till:
                assert till.state is not None and [x.code for x in till.state.lines] == [MILK, COFFEE]
            assert [x.code for x in row(db)[1].lines] == [MILK, COFFEE]  # saved at load
            assert statefile.path_for(db, 1).stat().st_size == 0  # and the file emptied after
            life.cancel_scope.cancel()


async def test_a_newer_database_save_outranks_the_file(tmp_path: Path, central: CentralNode) -> None:
    with trio.fail_after(30):
        store = await scanned_then_stopped(tmp_path, central, MILK, COFFEE)
        db = store.config.db_path
        seq, _ = row(db)
        kept = statefile.last(statefile.path_for(db, 1).read_bytes())
        assert kept is not None and kept.base == seq and len(kept.state.lines) == 2
        conn = sqlite3.connect(db, isolation_level=None)  # the row saved again after the scans (a sale closed)
        try:
            save_state(conn, basket.cleared(kept.state))
        finally:
            conn.close()
        async with trio.open_nursery() as life:
            store = await start_store(tmp_path, life, central)
            async with connect(store.url, lane=1, till="T1") as till:
                # the cleared row wins; its operator is not logged in at a till after a restart: closed
                assert till.state is not None and till.state.status == "closed" and till.state.lines == []
            life.cancel_scope.cancel()


async def test_a_closed_sale_never_comes_back_from_the_file(tmp_path: Path, central: CentralNode) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as life:
            store = await start_store(tmp_path, life, central)
            async with connect(store.url, lane=1, till="T1") as till:
                await till.request(Login(operator="1", pin="1234"))
                await till.request(Scan(code=MILK))
                await till.request(Scan(code=COFFEE))
                assert isinstance(await till.request(CashTender(amount=10000)), Receipt)
            life.cancel_scope.cancel()
        db = store.config.db_path
        kept = statefile.last(statefile.path_for(db, 1).read_bytes())
        assert kept is not None and len(kept.state.lines) == 2  # the open basket is still in the file
        assert kept.base < row(db)[0]
        async with trio.open_nursery() as life:
            store = await start_store(tmp_path, life, central)
            async with connect(store.url, lane=1, till="T1") as till:
                # the cleared row wins; its operator is not logged in at a till after a restart: closed
                assert till.state is not None and till.state.status == "closed" and till.state.lines == []
            assert [r.kind for r in journal(store)] == ["sale"]
            life.cancel_scope.cancel()


async def test_a_lane_without_its_file_saves_scans_through_the_database(tmp_path: Path, central: CentralNode) -> None:
    config = make_store_config(tmp_path, central_url=central.url)
    folder = statefile.path_for(config.db_path, 1)
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.mkdir()  # a directory where the file should be: it cannot be opened
    with trio.fail_after(30):
        store = await scanned_then_stopped(tmp_path, central, MILK)
        assert [x.code for x in row(store.config.db_path)[1].lines] == [MILK]


async def test_a_failed_append_saves_the_scan_through_the_database(
    tmp_path: Path, central: CentralNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(self: statefile.StateFile, base: int, state: LaneState) -> bool:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(statefile.StateFile, "append", full)
    with trio.fail_after(30):
        store = await scanned_then_stopped(tmp_path, central, MILK, COFFEE)
        assert [x.code for x in row(store.config.db_path)[1].lines] == [MILK, COFFEE]


def test_the_state_file_is_readable_by_the_store_alone(tmp_path: Path) -> None:
    """It holds the open basket and the operator: like the keys and the database, 0600."""
    file = statefile.StateFile(tmp_path / "store.db.lane-1")
    try:
        assert file.append(0, LaneState(lane=1, operator="7"))
        assert (tmp_path / "store.db.lane-1").stat().st_mode & 0o077 == 0
    finally:
        file.close()


def test_a_file_grown_past_the_cap_by_something_else_is_read_only_up_to_it(tmp_path: Path) -> None:
    """Appends never pass MAX_BYTES: a larger file was not written by the lane, and loading it must not
    read (or decode) however much is there."""
    path = tmp_path / "store.db.lane-1"
    good = statefile.encode(3, LaneState(lane=1, operator="7"))
    beyond = statefile.encode(9, LaneState(lane=1, operator="8" * 200))  # longer than what is left below the cap
    path.write_bytes(good * (statefile.MAX_BYTES // len(good)) + beyond)
    file = statefile.StateFile(path)
    try:
        kept = file.read_last()
        assert kept is not None and (kept.base, kept.state.operator) == (3, "7")  # the record past the cap: unread
    finally:
        file.close()
