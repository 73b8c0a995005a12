"""Who may put money on a gift card, on a real SQLite file: a store only as a refund of a receipt of its
own, within what that receipt took on the card and within the store's limits per credit and per day; an
operator by reload. Offline credits that break the rules are applied or held, and flagged, never refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec
import pytest

from central.registers import giftcards
from central.registers.giftcards import GiftCardError
from protocol.codec import encode_record
from protocol.frames import Event, GiftCardMove, RecordTender, SaleRecord
from storepos.payment_commands import flagged, limits

DAY1 = 1_795_000_000_000  # 2026-11-19 (UTC)
DAY2 = DAY1 + 86_400_000


@pytest.fixture
def conn(catalog_db: sqlite3.Connection) -> sqlite3.Connection:
    giftcards.issue(catalog_db, "GC1", "giftcard", 5000, "SEK", at=0)
    giftcards.issue(catalog_db, "GC2", "giftcard", 100, "SEK", at=0)
    return catalog_db


def credit(move_id: str, amount: int, refund_of: str, *, store: str = "S001", card: str = "GC1") -> GiftCardMove:
    return GiftCardMove(
        move=move_id, kind="credit", card=card, amount=amount, currency="SEK", store=store, sale_id=f"sale-{move_id}",
        at=DAY1, refund_of=refund_of,
    )  # fmt: skip


def at_central(conn: sqlite3.Connection, store: str, lane: int, receipt_no: int, tenders: list[RecordTender]) -> None:
    """A receipt as central holds it once the store's journal stream brought it."""
    total = sum(t.amount for t in tenders)
    record = SaleRecord(
        store=store, lane=lane, receipt_no=receipt_no, kind="sale", sale_id=f"{store}-{lane}-{receipt_no}",
        operator="1", opened_at=DAY1, closed_at=DAY1, currency="SEK", lines=[], total=total, rounding=0, vat=[],
        tenders=tenders, change=0,
    )  # fmt: skip
    conn.execute(
        "INSERT INTO sales (store, lane, receipt_no, kind, sale_id, currency, total, closed_at, seq, body) "
        "VALUES (?,?,?,?,?,?,?,?,?,?)",
        (store, lane, receipt_no, "sale", record.sale_id, "SEK", total, DAY1, receipt_no, encode_record(record)),
    )


def on_card(card: str, amount: int) -> RecordTender:
    return RecordTender(kind="giftcard", currency="SEK", amount=amount, reference=card)


def balance(conn: sqlite3.Connection, card: str = "GC1") -> int:
    found = giftcards.balance(conn, card)
    assert found is not None
    return found.balance


def declined(conn: sqlite3.Connection, move: GiftCardMove, why: str, *, now_ms: int = DAY1) -> None:
    """Declined with `why`, and nothing changed: the card, and no trace of the move (it may come again)."""
    before = balance(conn, move.card)
    answer = giftcards.store_move(conn, move, now_ms=now_ms)
    assert not answer.ok and answer.amount == 0 and why in answer.message, answer
    assert balance(conn, move.card) == before
    assert conn.execute("SELECT 1 FROM giftcard_moves WHERE move = ?", (move.move,)).fetchone() is None


def test_a_store_credit_of_a_million_is_refused_without_a_receipt_and_over_the_limit(conn: sqlite3.Connection) -> None:
    declined(conn, credit("m1", 100_000_000, ""), "only in a refund that names the receipt")
    declined(conn, credit("m2", 100_000_000, "S001-1-9"), "over store S001's limit of 1000.00 per credit")
    declined(conn, credit("m3", 100, "not a receipt"), "is not a receipt id")
    # The operator's reload is not a store's credit: no receipt, no store limits.
    assert giftcards.reload(conn, "GC1", 100_000_000, at=DAY1).balance == 100_005_000


def test_a_credit_naming_another_stores_receipt_is_refused(conn: sqlite3.Connection) -> None:
    at_central(conn, "S002", 1, 1, [on_card("GC1", 3000)])
    declined(conn, credit("m1", 1000, "S002-1-1"), "receipt S002-1-1 is not one of store S001's")
    declined(conn, credit("m2", 1000, "S001X-1-1", store="S001"), "is not one of store S001's")
    # The store may not borrow another's name either: the register checks the move against its asker
    # (central/questions.py refuses a move whose store is not the link's).


def test_a_credit_beyond_what_the_receipt_took_on_that_card_is_refused(conn: sqlite3.Connection) -> None:
    at_central(conn, "S001", 1, 1, [on_card("GC1", 3000), on_card("GC2", 500), RecordTender("cash", "SEK", 200)])
    declined(conn, credit("m1", 3001, "S001-1-1"), "took 30.00 on gift card GC1")
    first = giftcards.store_move(conn, credit("m2", 2000, "S001-1-1"), now_ms=DAY1)
    assert (first.ok, first.amount, first.balance) == (True, 2000, 7000)
    declined(conn, credit("m3", 1001, "S001-1-1"), "20.00 of it went back already: 10.01 more is beyond it")
    declined(conn, credit("m4", 600, "S001-1-1", card="GC2"), "took 5.00 on gift card GC2")
    assert giftcards.store_move(conn, credit("m5", 1000, "S001-1-1"), now_ms=DAY1).ok
    # A retry of an applied credit answers what happened, though the receipt has nothing left now.
    again = giftcards.store_move(conn, credit("m5", 1000, "S001-1-1"), now_ms=DAY1)
    assert (again.ok, again.amount, balance(conn)) == (True, 1000, 8000)
    # A voided credit gives its room back.
    giftcards.move(conn, msgspec.structs.replace(credit("m5", 1000, "S001-1-1"), kind="void"))
    assert giftcards.store_move(conn, credit("m6", 1000, "S001-1-1"), now_ms=DAY1).ok


def test_a_receipt_central_lacks_while_holding_later_ones_does_not_exist(conn: sqlite3.Connection) -> None:
    at_central(conn, "S001", 1, 5, [on_card("GC1", 3000)])
    declined(conn, credit("m1", 1000, "S001-1-4"), "is not in store S001's journal at central")
    # One not yet at central (in transit behind the credit) is bounded by the limits alone.
    assert giftcards.store_move(conn, credit("m2", 1000, "S001-1-6"), now_ms=DAY1).ok
    assert giftcards.store_move(conn, credit("m3", 1000, "S001-2-1"), now_ms=DAY1).ok


def test_the_per_day_limit_refuses_the_next_credit_until_the_next_day(conn: sqlite3.Connection) -> None:
    assert giftcards.set_limits(conn, "S001", None, 10_000) == giftcards.Limits("S001", 100_000, 10_000)
    for n in range(3):
        assert giftcards.store_move(conn, credit(f"m{n}", 3000, f"S001-1-{n + 1}"), now_ms=DAY1 + n).ok
    declined(conn, credit("m3", 1001, "S001-1-4"), "store S001 credited 90.00 today; 10.01 more is over its limit")
    assert giftcards.store_move(conn, credit("m4", 1000, "S001-1-5"), now_ms=DAY1).ok  # exactly up to it
    declined(conn, credit("m5", 1, "S001-1-6"), "over its limit of 100.00 a day")
    # Other stores keep the chain's limits; tomorrow S001 may credit again.
    assert giftcards.store_move(conn, credit("o1", 5000, "S002-1-1", store="S002"), now_ms=DAY1).ok
    assert giftcards.store_move(conn, credit("m5", 1, "S001-1-6"), now_ms=DAY2).ok
    giftcards.set_limits(conn, "S001", 0, None)  # a store that may give no credits at all
    declined(conn, credit("m6", 1, "S001-1-7"), "over store S001's limit of 0.00 per credit", now_ms=DAY2)
    with pytest.raises(GiftCardError):
        giftcards.set_limits(conn, "S001", -1, None)


def test_offline_credits_are_never_refused_but_flagged_and_a_forged_one_is_held(conn: sqlite3.Connection) -> None:
    at_central(conn, "S001", 1, 1, [on_card("GC1", 3000)])

    def arrives(move: GiftCardMove, seq: int) -> None:
        offline = msgspec.structs.replace(move, offline=True)
        event = Event(seq=seq, kind="credit", body=msgspec.msgpack.encode(offline))
        giftcards.apply(conn, "S001", event, now_ms=DAY1)

    giftcards.set_limits(conn, "S001", 2000, None)
    arrives(credit("over", 2500, "S001-1-1"), 1)  # a real refund, given while central was away: over the limit
    assert balance(conn) == 7500
    arrives(credit("forged", 100_000_000, "S002-1-1"), 2)  # no refund of this store's: held, not applied
    arrives(credit("beyond", 1000, "S001-1-1"), 3)  # the receipt has only 5.00 left: held
    arrives(credit("forged", 100_000_000, "S002-1-1"), 2)  # the stream resent: still held, flagged once
    assert balance(conn) == 7500
    assert [(f.move, f.applied, f.amount) for f in giftcards.flagged(conn)] == [
        ("beyond", False, 1000),
        ("forged", False, 100_000_000),
        ("over", True, 2500),
    ]
    # A held credit's id can never apply later, online or by a void-and-retry.
    late = giftcards.store_move(conn, credit("forged", 1000, "S001-1-1"), now_ms=DAY1)
    assert not late.ok and balance(conn) == 7500


def test_a_store_voids_only_its_own_moves_on_the_card_they_were_on(conn: sqlite3.Connection) -> None:
    redeem = GiftCardMove(move="r1", kind="redeem", card="GC1", amount=1000, currency="SEK", store="S001",
                          sale_id="s1", at=DAY1)  # fmt: skip
    assert giftcards.store_move(conn, redeem, now_ms=DAY1).ok and balance(conn) == 4000
    other = giftcards.store_move(conn, msgspec.structs.replace(redeem, kind="void", store="S002"), now_ms=DAY1)
    assert not other.ok and balance(conn) == 4000
    taken = giftcards.store_move(conn, msgspec.structs.replace(redeem, store="S002"), now_ms=DAY1)
    assert not taken.ok and taken.message == "this move id names another move"
    # A void naming another card puts the money back where it came from, not on that card.
    giftcards.store_move(conn, msgspec.structs.replace(redeem, kind="void", card="GC2"), now_ms=DAY1)
    assert (balance(conn), balance(conn, "GC2")) == (5000, 100)


def test_limits_and_flags_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "central.db"
    assert limits(db, "", None, None, "SEK") == 2  # showing makes no database
    assert "no central database here" in capsys.readouterr().err
    assert limits(db, "S001", "250.00", None, "SEK") == 0
    out = capsys.readouterr().out
    assert "store S001: credits at most SEK 250.00 each, SEK 5000.00 a day" in out
    assert "chain (every store without its own): credits at most SEK 1000.00 each, SEK 5000.00 a day" in out
    assert limits(db, "S002", None, None, "SEK") == 0
    assert "store S002: credits at most SEK 1000.00 each" in capsys.readouterr().out  # the chain's, as it works
    assert limits(db, "", None, "lots", "SEK") == 1 and "lots" in capsys.readouterr().err
    assert limits(db, "", None, "20000", "SEK") == 0
    assert "SEK 20000.00 a day" in capsys.readouterr().out
    assert flagged(db) == 0 and "no flagged gift card credits" in capsys.readouterr().out
