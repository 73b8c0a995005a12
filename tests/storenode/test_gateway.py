"""Bad input at the till gateway gets an error frame naming the problem; connection and state survive."""

from __future__ import annotations

import sqlite3
from typing import Any

import msgspec
import pytest
import trio

from protocol.codec import SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK, TillCodec
from protocol.frames import (
    CancelSale,
    CashTender,
    Error,
    Login,
    Logout,
    Receipt,
    SaleState,
    Scan,
    Status,
    Total,
    VoidLine,
    Welcome,
)
from storenode.app import StoreNode
from storenode.lanes import basket
from storenode.lanes import lane as lane_module
from tests.kit.tills import dial_till, kit_hello
from till.client import TillClient, connect

MILK, COFFEE = "7310000000010", "7310000000034"


async def logged_in(till: TillClient) -> None:
    assert isinstance(await till.request(Login(operator="1", pin="1234")), SaleState)


async def expect_error(till: TillClient, command: object, code: str) -> Error:
    answer = await till.request(command)  # type: ignore[arg-type]
    assert isinstance(answer, Error), answer
    assert answer.code == code, answer
    assert answer.message
    return answer


async def test_undecodable_frames_are_answered_and_the_connection_lives(store: StoreNode) -> None:
    codec = TillCodec(SUBPROTOCOL_MSGPACK, "till")
    with trio.fail_after(10):
        async with dial_till(store.url, subprotocols=[SUBPROTOCOL_MSGPACK]) as ws:
            for garbage in (b"\xc1\xff\x00", "text on a binary channel", msgspec.msgpack.encode({"t": "warp"})):
                await ws.send_message(garbage)
                error = codec.decode(await ws.get_message())
                assert isinstance(error, Error) and error.code == "bad_frame", error
            await ws.send_message(codec.encode(Scan(code=MILK)))
            error = codec.decode(await ws.get_message())
            assert isinstance(error, Error) and error.code == "hello_first"
            await ws.send_message(codec.encode(kit_hello(till="T", lane=7)))
            error = codec.decode(await ws.get_message())
            assert isinstance(error, Error) and error.code == "unknown_lane" and "lanes: 1, 2" in error.message
            await ws.send_message(codec.encode(kit_hello(till="T", lane=1)))
            assert isinstance(codec.decode(await ws.get_message()), Welcome)


async def test_refusals_leave_the_basket_as_it_was(store: StoreNode) -> None:
    with trio.fail_after(20):
        async with connect(store.url, lane=1, till="T1") as till:
            await expect_error(till, Scan(code=MILK), "not_logged_in")
            await expect_error(till, Login(operator="1", pin="9999"), "wrong_pin")
            await expect_error(till, Login(operator="42", pin="1234"), "wrong_pin")
            await logged_in(till)
            before = await till.request(Scan(code=MILK))
            assert isinstance(before, SaleState)
            await expect_error(till, Scan(code="0000000000000"), "unknown_barcode")
            await expect_error(till, Scan(code=MILK, qty=0), "bad_quantity")
            await expect_error(till, Scan(code=MILK, lane=2), "wrong_lane")
            await expect_error(till, VoidLine(line=5), "no_such_line")
            await expect_error(till, Logout(), "sale_open")
            short = await expect_error(till, CashTender(amount=100), "tender_short")
            assert "1.00" in short.message and "16.00" in short.message
            assert till.state is not None
            assert till.state.lines == before.lines and till.state.total == before.total == 1590
            status = await till.status()
            assert isinstance(status, Status) and status.journal == {}  # nothing was sold
            receipt = await till.request(CashTender(amount=1600))
            assert isinstance(receipt, Receipt) and receipt.change == 0


async def test_json_till_for_browsers(store: StoreNode) -> None:
    with trio.fail_after(10):
        async with connect(store.url, lane=2, till="browser", subprotocol=SUBPROTOCOL_JSON) as till:
            await logged_in(till)
            state = await till.request(Scan(code=COFFEE, qty=3))
            assert isinstance(state, SaleState) and state.total == 3 * 6995


async def test_unknown_subprotocol_is_refused(store: StoreNode) -> None:
    from trio_websocket import ConnectionRejected

    with trio.fail_after(10), pytest.raises(ConnectionRejected):
        async with dial_till(store.url, subprotocols=["telnet"]):
            pass


async def test_a_reattaching_till_gets_its_basket_back(store: StoreNode) -> None:
    with trio.fail_after(20):
        async with connect(store.url, lane=1, till="T1") as till:
            await logged_in(till)
            await till.request(Scan(code=MILK))
            await till.request(Scan(code=COFFEE, qty=2))
        async with connect(store.url, lane=1, till="T1") as again:
            assert again.welcome is not None and again.state is not None
            assert [(x.code, x.qty) for x in again.state.lines] == [(MILK, 1), (COFFEE, 2)]
            assert again.state.operator == "1" and again.state.status == "open"
            # the session was the first connection's: the sale waits for its operator to log in again
            assert "waiting: log in" in again.state.message
            await expect_error(again, CancelSale(), "not_logged_in")
            await logged_in(again)
            assert isinstance(
                await again.request(CancelSale(approver="2", approver_pin="4321")), Receipt
            )  # a cancelled sale is journaled
            while again.state.status != "ready":  # the cleared lane is pushed right after the receipt
                await again.pushed.wait()
            assert again.state.lines == []


async def test_a_lane_has_one_till(store: StoreNode) -> None:
    """A second till is refused, naming the one that holds the lane (tests/security/test_till_sessions.py
    has the takeover); once the first has gone, the lane is free again."""
    with trio.fail_after(20):
        async with connect(store.url, lane=1, till="A") as a:
            await logged_in(a)
            with pytest.raises(ConnectionRefusedError, match=r"lane_in_use.*till A"):
                async with connect(store.url, lane=1, till="B"):
                    pass
        async with connect(store.url, lane=1, till="B") as b:
            assert b.state is not None and b.state.status == "closed"  # A's operator went with A


async def test_a_bug_in_one_command_answers_internal_and_the_lane_goes_on_without_a_restart(
    store: StoreNode, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = basket.to_total
    calls = {"n": 0}

    def crash_once(state: basket.LaneState) -> basket.LaneState:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("injected lane bug")
        return real(state)

    monkeypatch.setattr(basket, "to_total", crash_once)
    with trio.fail_after(20):
        async with connect(store.url, lane=1, till="T1") as till:
            await logged_in(till)
            await till.request(Scan(code=MILK))
            failed = await expect_error(till, Total(), "internal")
            reference = failed.message.split("log reference ")[1].split(")")[0]
            assert "injected lane bug" not in failed.message  # the till hears a reference, the log has the rest
            assert any(reference in r.getMessage() and r.exc_info for r in caplog.records)
            # the same till on the same lane, with the basket it had saved
            state = await till.request(Total())
            assert isinstance(state, SaleState) and state.status == "tender" and len(state.lines) == 1
            assert store.health.get("lane-1").restarts == 0


async def test_a_lane_that_cannot_even_reload_its_saved_state_restarts(
    store: StoreNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guard goes on from saved state; when that read fails too, the lane is broken and its supervisor
    restarts it (the other lane untouched)."""
    real_total, real_load = basket.to_total, lane_module.load_saved
    calls = {"total": 0, "load": 0}

    def crash_once(state: basket.LaneState) -> basket.LaneState:
        calls["total"] += 1
        if calls["total"] == 1:
            raise RuntimeError("injected lane bug")
        return real_total(state)

    def load_fails_once(conn: Any, lane: int) -> Any:
        calls["load"] += 1
        if calls["load"] == 1:
            raise sqlite3.OperationalError("injected: disk I/O error")
        return real_load(conn, lane)

    with trio.fail_after(20):
        async with connect(store.url, lane=1, till="T1") as till:
            await logged_in(till)
            await till.request(Scan(code=MILK))
            monkeypatch.setattr(basket, "to_total", crash_once)
            monkeypatch.setattr(lane_module, "load_saved", load_fails_once)
            await expect_error(till, Total(), "lane_failed")
            state = await till.request(Total())
            assert isinstance(state, SaleState) and state.status == "tender" and len(state.lines) == 1
            assert store.health.get("lane-1").restarts == 1
            assert store.health.get("lane-2").restarts == 0
