"""`storepos central giftcard|rate|customer`: payment registers at central, run beside the central node
on its database file (as import and export do). Exit 0 when done, 1 when refused, 2 when not possible."""

from __future__ import annotations

import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from central.registers import customers, giftcards, imports, rates
from central.registers.customers import CustomerError
from central.registers.giftcards import GiftCardError
from protocol.frames import ExchangeRate, GiftCardState
from protocol.money import MoneyError, format_money, parse_money, parse_rate

T = TypeVar("T")


def _fail(message: str) -> None:
    print(f"storepos: {message}", file=sys.stderr)


def _run(db: Path, job: Callable[[sqlite3.Connection], T], *, create: bool = False) -> T:
    """One transaction on central's database: a move and its record commit together or not at all."""
    conn = imports.open_catalog(db, create=create)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = job(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result
    finally:
        conn.close()


def _now() -> int:
    return int(time.time() * 1000)


def _show(card: GiftCardState) -> str:
    state = "" if card.ok else " (inactive)"
    return f"{card.kind} {card.card}: balance {card.currency} {format_money(card.balance, card.currency)}{state}"


def giftcard(db: Path, action: str, card: str, amount: str | None, kind: str, currency: str) -> int:
    try:
        match action:
            case "issue":
                minor = parse_money(amount or "", currency)
                done = _run(db, lambda c: giftcards.issue(c, card, kind, minor, currency, _now()), create=True)
            case "reload":
                minor = parse_money(amount or "", currency)
                done = _run(db, lambda c: giftcards.reload(c, card, minor, _now()))
            case _:
                found = _run(db, lambda c: giftcards.balance(c, card))
                if found is None:
                    _fail(f"no gift card {card}")
                    return 1
                done = found
    except (GiftCardError, MoneyError) as exc:
        _fail(str(exc))
        return 1
    except (imports.Unusable, sqlite3.Error) as exc:
        _fail(str(exc))
        return 2
    print(_show(done))
    return 0


def overdrafts(db: Path) -> int:
    try:
        found = _run(db, giftcards.overdrafts)
    except (imports.Unusable, sqlite3.Error) as exc:
        _fail(str(exc))
        return 2
    if not found:
        print("no gift card overdrafts")
    for o in found:
        print(
            f"card {o.card}: store {o.store} took {format_money(o.taken, 'SEK')} offline in sale {o.sale_id}, "
            f"{format_money(o.overdraft, 'SEK')} more than the card held (move {o.move})"
        )
    return 0


def rate(db: Path, action: str, currency: str | None, value: str | None, base: str) -> int:
    try:
        if action == "set":
            assert currency is not None and value is not None
            cur = currency.upper()
            published = ExchangeRate(base=base, currency=cur, rate=parse_rate(value, base, cur), at=_now())
            _run(db, lambda c: rates.publish(c, published), create=True)
            print(f"published: 1 {cur} = {value} {base}; stores take it the next time they ask")
            return 0
        listed = _run(db, lambda c: rates.published(c, None))
    except MoneyError as exc:
        _fail(str(exc))
        return 1
    except (imports.Unusable, sqlite3.Error) as exc:
        _fail(str(exc))
        return 2
    for r in listed:
        print(f"{r.currency} in {r.base}: {r.rate / 1_000_000:g} {r.base} minor units per {r.currency} minor unit")
    return 0


def customer(db: Path, action: str, number: str | None, name: str | None) -> int:
    try:
        if action == "add":
            assert number is not None
            _run(db, lambda c: customers.register(c, number, name or ""), create=True)
            print(f"customer {number} registered for invoices")
            return 0
        for found, found_name in _run(db, customers.listing):
            print(f"{found}  {found_name}")
    except CustomerError as exc:
        _fail(str(exc))
        return 1
    except (imports.Unusable, sqlite3.Error) as exc:
        _fail(str(exc))
        return 2
    return 0
