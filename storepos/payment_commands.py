"""`storepos central giftcard|rate|customer`: payment registers at central, run beside the central node
on its database file (as import and export do). Exit 0 when done, 1 when refused, 2 when not possible."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import msgspec

from central.registers import customers, giftcards, imports, rates
from central.registers.customers import CustomerError
from central.registers.giftcards import GiftCardError
from protocol.frames import ExchangeRate, GiftCardState
from protocol.money import RATE_SCALE, MoneyError, format_money, parse_money, parse_rate
from runtime.clock import SystemClock
from runtime.database import immediate
from storepos.commands import fail

T = TypeVar("T")
_now = SystemClock().now_ms


def _run(db: Path, job: Callable[[sqlite3.Connection], T], *, create: bool = False) -> T:
    """One transaction on central's database: a move and its record commit together or not at all."""
    conn = imports.open_catalog(db, create=create)
    try:
        with immediate(conn):
            return job(conn)
    finally:
        conn.close()


def _exit(command: Callable[[], int], refused: tuple[type[Exception], ...] = ()) -> int:
    """Run one command: its own code when it ran, 1 when the register refused it (why on stderr), 2
    when it could not be tried (the database)."""
    try:
        return command()
    except refused as exc:
        fail(str(exc))
        return 1
    except (imports.Unusable, sqlite3.Error) as exc:
        fail(str(exc))
        return 2


def _show(card: GiftCardState) -> str:
    state = "" if card.ok else " (inactive)"
    return f"{card.kind} {card.card}: balance {card.currency} {format_money(card.balance, card.currency)}{state}"


def giftcard(db: Path, action: str, card: str, amount: str | None, kind: str, currency: str) -> int:
    def command() -> int:
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
                    fail(f"no gift card {card}")
                    return 1
                done = found
        print(_show(done))
        return 0

    return _exit(command, (GiftCardError, MoneyError))


def overdrafts(db: Path) -> int:
    def command() -> int:
        found = _run(db, giftcards.overdrafts)
        if not found:
            print("no gift card overdrafts")
        for o in found:
            print(
                f"card {o.card}: store {o.store} took {format_money(o.taken, 'SEK')} offline in sale {o.sale_id}, "
                f"{format_money(o.overdraft, 'SEK')} more than the card held (move {o.move})"
            )
        return 0

    return _exit(command)


def limits(db: Path, store: str, per_move: str | None, per_day: str | None, currency: str) -> int:
    """Show the stores' gift card credit limits, or set one store's (no --store: the chain's)."""

    def command() -> int:
        if per_move is not None or per_day is not None:
            move_minor = None if per_move is None else parse_money(per_move, currency)
            day_minor = None if per_day is None else parse_money(per_day, currency)
            _run(db, lambda c: giftcards.set_limits(c, store, move_minor, day_minor), create=True)
        rows = _run(db, giftcards.limit_rows)
        if store and all(row.store != store for row in rows):
            rows = [msgspec.structs.replace(_run(db, lambda c: giftcards.limits(c, store)), store=store)]
        for row in rows:
            if store and row.store not in (store, giftcards.CHAIN):
                continue
            who = f"store {row.store}" if row.store else "chain (every store without its own)"
            print(
                f"{who}: credits at most {currency} {format_money(row.per_move, currency)} each, "
                f"{currency} {format_money(row.per_day, currency)} a day"
            )
        return 0

    return _exit(command, (GiftCardError, MoneyError))


def flagged(db: Path) -> int:
    """Offline credits from stores that broke the rules, for someone to follow up."""

    def command() -> int:
        found = _run(db, giftcards.flagged)
        if not found:
            print("no flagged gift card credits")
        for f in found:
            what = "applied" if f.applied else "HELD, not applied"
            receipt = f" for receipt {f.refund_of}" if f.refund_of else ""
            print(
                f"card {f.card}: store {f.store} credited {format_money(f.amount, 'SEK')} offline{receipt}, "
                f"{what} (move {f.move}): {f.reason}"
            )
        return 0

    return _exit(command)


def rate(db: Path, action: str, currency: str | None, value: str | None, base: str) -> int:
    def command() -> int:
        if action == "set":
            assert currency is not None and value is not None
            cur = currency.upper()
            published = ExchangeRate(base=base, currency=cur, rate=parse_rate(value, base, cur), at=_now())
            _run(db, lambda c: rates.publish(c, published), create=True)
            print(f"published: 1 {cur} = {value} {base}; stores take it the next time they ask")
            return 0
        for r in _run(db, lambda c: rates.published(c, None)):
            print(f"{r.currency} in {r.base}: {r.rate / RATE_SCALE:g} {r.base} minor units per {r.currency} minor unit")
        return 0

    return _exit(command, (MoneyError,))


def customer(db: Path, action: str, number: str | None, name: str | None) -> int:
    def command() -> int:
        if action == "add":
            assert number is not None
            _run(db, lambda c: customers.register(c, number, name or ""), create=True)
            print(f"customer {number} registered for invoices")
            return 0
        for found, found_name in _run(db, customers.listing):
            print(f"{found}  {found_name}")
        return 0

    return _exit(command, (CustomerError,))
