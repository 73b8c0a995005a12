"""Gift card moves at central on a real SQLite file: exactly once by move id, no double spend, offline
redemptions applied with their overdraft reported, voids that undo (or forestall) a move."""

from __future__ import annotations

import sqlite3

import pytest

from central.registers import giftcards
from central.registers.giftcards import GiftCardError
from protocol.frames import GiftCardMove


@pytest.fixture
def conn(catalog_db: sqlite3.Connection) -> sqlite3.Connection:
    return catalog_db


def move(
    move_id: str, kind: str = "redeem", amount: int = 1000, *, card: str = "GC1", offline: bool = False
) -> GiftCardMove:
    return GiftCardMove(
        move=move_id, kind=kind, card=card, amount=amount, currency="SEK", store="S001", sale_id="s1", at=1,
        offline=offline,
    )  # fmt: skip


def test_redeem_is_exactly_once_by_move_id_and_never_more_than_the_balance(conn: sqlite3.Connection) -> None:
    giftcards.issue(conn, "GC1", "giftcard", 3000, "SEK", at=0)
    first = giftcards.move(conn, move("m1", amount=2000))
    again = giftcards.move(conn, move("m1", amount=2000))  # a retry after a lost answer
    assert (first.ok, first.amount, first.balance) == (True, 2000, 1000)
    assert (again.ok, again.amount, again.balance) == (True, 2000, 1000)
    partial = giftcards.move(conn, move("m2", amount=5000))  # takes what the card holds
    assert (partial.ok, partial.amount, partial.balance) == (True, 1000, 0)
    empty = giftcards.move(conn, move("m3", amount=100))
    assert not empty.ok and empty.message == "the card is empty"
    unknown = giftcards.move(conn, move("m4", card="NOPE"))
    assert not unknown.ok and unknown.message == "no such card"


def test_offline_redemption_over_the_balance_is_applied_and_reported(conn: sqlite3.Connection) -> None:
    giftcards.issue(conn, "GC1", "giftcard", 3000, "SEK", at=0)
    giftcards.move(conn, move("online", amount=2500))
    late = giftcards.move(conn, move("offline", amount=1500, offline=True))
    assert (late.ok, late.amount, late.balance) == (True, 1500, 0)
    (over,) = giftcards.overdrafts(conn)
    assert (over.move, over.store, over.taken, over.overdraft) == ("offline", "S001", 1500, 1000)
    giftcards.move(conn, move("offline", amount=1500, offline=True))  # the outbox resent it: no second overdraft
    assert len(giftcards.overdrafts(conn)) == 1


def test_void_undoes_a_redemption_once_and_forestalls_a_late_one(conn: sqlite3.Connection) -> None:
    giftcards.issue(conn, "GC1", "giftcard", 3000, "SEK", at=0)
    giftcards.move(conn, move("m1", amount=1000))
    giftcards.move(conn, move("m1", kind="void"))
    giftcards.move(conn, move("m1", kind="void"))
    state = giftcards.balance(conn, "GC1")
    assert state is not None and state.balance == 3000
    giftcards.move(conn, move("never-arrived", kind="void"))
    late = giftcards.move(conn, move("never-arrived", amount=1000))
    assert not late.ok and giftcards.balance(conn, "GC1").balance == 3000  # type: ignore[union-attr]


def test_voucher_is_spent_once_and_not_reloaded(conn: sqlite3.Connection) -> None:
    giftcards.issue(conn, "V1", "voucher", 5000, "SEK", at=0)
    used = giftcards.move(conn, move("m1", amount=2000, card="V1"))
    assert (used.amount, used.balance) == (2000, 0)
    with pytest.raises(GiftCardError, match="vouchers are not reloaded"):
        giftcards.reload(conn, "V1", 1000, at=1)
    giftcards.issue(conn, "GC2", "giftcard", 100, "SEK", at=0)
    assert giftcards.reload(conn, "GC2", 900, at=1).balance == 1000
    with pytest.raises(GiftCardError, match="already exists"):
        giftcards.issue(conn, "GC2", "giftcard", 100, "SEK", at=0)
