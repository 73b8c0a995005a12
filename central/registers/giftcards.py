"""Gift cards and vouchers: central holds every balance, so a card spends the same in every store.

A balance changes only through a move (issue aside), and every move has an id chosen by whoever asks:
the move's row is inserted in the same transaction as the balance change, so a move asked twice (a store
retrying after a lost answer, or the same move arriving again in a store's outbox) changes nothing the
second time and answers what the first did. An online redemption is one conditional UPDATE (`balance >=
amount`), so two stores redeeming the last of a card at once cannot both get it.

Offline redemptions (a store that could not reach central and took a card up to its configured limit)
arrive in the store's `giftcard` stream. The goods are gone by then, so they are applied whatever the
balance; what the card did not hold is recorded as an overdraft, for someone to follow up. A void undoes
a move whose outcome the store never learnt, or a redemption of a cancelled sale; a void that arrives
before (or instead of) its move leaves a tombstone, so the move can never apply later.

A voucher is spent once: redeeming it takes up to its value and leaves nothing on it; it is not reloaded.

Credits put money on a card, so who may give one is narrow. An operator reloads (`storepos central
giftcard reload`, `reload` here). A store credits a card only as a refund of one of its own receipts: the
move names the receipt (`refund_of`), within what that receipt took on that card less what was credited
against it already (when central holds the receipt; one still in transit is bounded by the limits alone),
and within the store's limits per credit and per day (UTC, by central's clock; `giftcard_limits`, the
chain's row '' unless the store has its own). Online, a credit outside these rules is declined with the
reason, and the till shows it. Offline credits arrive in the `giftcard` stream after the customer was
given them, so the stream is never refused for them (that would block the store's stream for good):
one over a limit is applied and flagged for follow-up; one that is no refund of a receipt of the store's
(which no store's own refund checks let through) is held, not applied, and flagged, so a forged stream
mints no money; an operator who finds it right reloads the card. `flagged` lists both.

A store's void undoes only that store's move, on the card the move was on.

SQL stays portable (no SQLite-only functions): central may move to PostgreSQL.
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime
from typing import NamedTuple

import msgspec

from central.registers.cursors import EventError
from protocol.codec import FrameError, decode_record
from protocol.frames import Event, GiftCardMove, GiftCardState
from protocol.money import format_money
from protocol.receipts import parse_receipt_id
from runtime.clock import SystemClock

KINDS = ("giftcard", "voucher")
CHAIN = ""  # the limits row every store without its own follows
_now_ms = SystemClock().now_ms
_move_decoder = msgspec.msgpack.Decoder(GiftCardMove)


class GiftCardError(ValueError):
    """An operator's request that cannot be done (an unknown card, a voucher reload)."""


class Overdraft(msgspec.Struct):
    move: str
    card: str
    store: str
    sale_id: str
    taken: int
    overdraft: int
    at: int


class Limits(msgspec.Struct):
    store: str  # CHAIN: the chain's, for every store without its own
    per_move: int
    per_day: int


class Flag(msgspec.Struct):
    """An offline credit that broke the rules: applied (over a limit) or held (no refund of the store's)."""

    move: str
    card: str
    store: str
    refund_of: str
    amount: int
    applied: bool
    reason: str
    at: int


class _Done(NamedTuple):
    kind: str
    amount: int
    voided: bool
    card: str
    store: str


def _day(at_ms: int) -> str:
    return datetime.fromtimestamp(at_ms / 1000, UTC).date().isoformat()


def _card(conn: sqlite3.Connection, card: str) -> tuple[str, str, int, bool] | None:
    row = conn.execute("SELECT kind, currency, balance, active FROM giftcards WHERE card = ?", (card,)).fetchone()
    return (row[0], row[1], row[2], bool(row[3])) if row else None


def _state(card: str, found: tuple[str, str, int, bool] | None, currency: str, *, ok: bool) -> GiftCardState:
    """The card as it stands (an unknown card: no kind, nothing on it, in the asker's currency)."""
    if found is None:
        return GiftCardState(card=card, kind="", balance=0, currency=currency, ok=ok)
    return GiftCardState(card=card, kind=found[0], balance=found[2], currency=found[1], ok=ok)


def balance(conn: sqlite3.Connection, card: str) -> GiftCardState | None:
    found = _card(conn, card)
    return None if found is None else _state(card, found, "", ok=found[3])


def issue(conn: sqlite3.Connection, card: str, kind: str, amount: int, currency: str, at: int) -> GiftCardState:
    card = card.strip()
    if not card or len(card) > 64 or any(c.isspace() for c in card):
        raise GiftCardError("a card number is 1 to 64 characters without spaces")
    if kind not in KINDS:
        raise GiftCardError(f"kind must be one of {', '.join(KINDS)}")
    if amount <= 0:
        raise GiftCardError("a card is issued with a positive amount")
    if _card(conn, card) is not None:
        raise GiftCardError(f"card {card} already exists")
    conn.execute(
        "INSERT INTO giftcards (card, kind, currency, balance, issued_at) VALUES (?,?,?,?,?)",
        (card, kind, currency, amount, at),
    )
    return GiftCardState(card=card, kind=kind, balance=amount, currency=currency, amount=amount)


def reload(conn: sqlite3.Connection, card: str, amount: int, at: int) -> GiftCardState:
    found = _card(conn, card)
    if found is None:
        raise GiftCardError(f"no card {card}")
    if found[0] == "voucher":
        raise GiftCardError(f"{card} is a voucher; vouchers are not reloaded")
    if amount <= 0:
        raise GiftCardError("a reload is a positive amount")
    request = GiftCardMove(
        move=f"reload-{uuid.uuid4().hex}", kind="credit", card=card, amount=amount, currency=found[1],
        store="central", sale_id="", at=at,
    )  # fmt: skip
    return move(conn, request)


def _done(conn: sqlite3.Connection, move_id: str) -> _Done | None:
    row = conn.execute(
        "SELECT kind, amount, voided, card, store FROM giftcard_moves WHERE move = ?", (move_id,)
    ).fetchone()
    return None if row is None else _Done(row[0], row[1], bool(row[2]), row[3], row[4])


def move(conn: sqlite3.Connection, request: GiftCardMove, *, now_ms: int | None = None) -> GiftCardState:
    """Apply one move exactly once; the card as it stands after it (`ok` False when it was refused).
    Who may ask for it is the caller's business: `store_move` and `apply` for stores, `reload` for operators."""
    done = _done(conn, request.move)
    day = _day(_now_ms() if now_ms is None else now_ms)
    if request.kind == "void":
        return _void(conn, request, done, day)
    if request.kind not in ("redeem", "credit"):
        raise EventError(f"unknown gift card move {request.kind!r}")
    found = _card(conn, request.card)
    state = _state(request.card, found, request.currency, ok=False)
    if done is not None:  # asked before: answer what happened then
        if (done.store, done.card) != (request.store, request.card):
            return msgspec.structs.replace(state, message="this move id names another move")
        ok = not done.voided and done.kind == request.kind
        message = "" if ok else "this move was voided"
        return msgspec.structs.replace(state, ok=ok, amount=done.amount if ok else 0, message=message)
    if request.amount <= 0:
        return msgspec.structs.replace(state, message="the amount must be positive")
    if not request.offline:
        if found is None or not found[3]:
            return msgspec.structs.replace(state, message="no such card")
        if found[1] != request.currency:
            return msgspec.structs.replace(state, message=f"the card holds {found[1]}, not {request.currency}")
    if request.kind == "credit":
        if found is None:
            return msgspec.structs.replace(state, message="no such card")
        conn.execute("UPDATE giftcards SET balance = balance + ? WHERE card = ?", (request.amount, request.card))
        _record(conn, request, request.amount, day)
        return msgspec.structs.replace(state, ok=True, balance=state.balance + request.amount, amount=request.amount)
    held = found[2] if found is not None else 0
    voucher = found is not None and found[0] == "voucher"
    if request.offline:  # the goods are gone: take it all, report what the card did not hold
        taken = request.amount
        left = 0 if voucher else max(0, held - taken)
        if found is not None:
            conn.execute("UPDATE giftcards SET balance = ? WHERE card = ?", (left, request.card))
        if taken > held:
            _overdraft(conn, request, taken, taken - held)
        _record(conn, request, taken, day)
        return msgspec.structs.replace(state, ok=True, balance=left, amount=taken)
    taken = min(held, request.amount)
    if taken <= 0:
        return msgspec.structs.replace(state, message="the card is empty")
    left = 0 if voucher else held - taken
    updated = conn.execute(
        "UPDATE giftcards SET balance = ? WHERE card = ? AND balance = ? AND balance >= ?",
        (left, request.card, held, taken),
    ).rowcount
    if updated != 1:  # another transaction changed it between our read and write (not under SQLite's one writer)
        return msgspec.structs.replace(state, message="the card changed meanwhile; try again")
    _record(conn, request, taken, day)
    return msgspec.structs.replace(state, ok=True, balance=left, amount=taken)


def _record(conn: sqlite3.Connection, request: GiftCardMove, amount: int, day: str, *, voided: bool = False) -> None:
    """The move as applied, by its id: a retry of it is answered from here and never applied twice."""
    conn.execute(
        "INSERT INTO giftcard_moves (move, card, kind, amount, store, sale_id, at, offline, voided, refund_of, day) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (request.move, request.card, request.kind, amount, request.store, request.sale_id, request.at,
         request.offline and not voided, voided, request.refund_of, day),
    )  # fmt: skip


def _overdraft(conn: sqlite3.Connection, request: GiftCardMove, taken: int, over: int) -> None:
    conn.execute(
        "INSERT INTO giftcard_overdrafts (move, card, store, sale_id, taken, overdraft, at) VALUES (?,?,?,?,?,?,?)",
        (request.move, request.card, request.store, request.sale_id, taken, over, request.at),
    )


def _void(conn: sqlite3.Connection, request: GiftCardMove, done: _Done | None, day: str) -> GiftCardState:
    if done is not None and done.store != request.store:  # a store undoes its own moves only
        found = _card(conn, request.card)
        return msgspec.structs.replace(
            _state(request.card, found, request.currency, ok=False), message="no such move of this store"
        )
    card = request.card if done is None else done.card  # the card the move was on, whatever the void says
    found = _card(conn, card)
    state = _state(card, found, request.currency, ok=True)
    if done is None:  # the move never arrived: a tombstone, so it never can
        _record(conn, request, 0, day, voided=True)
        return state
    if done.voided or done.kind == "void":
        return state
    conn.execute("UPDATE giftcard_moves SET voided = 1 WHERE move = ?", (request.move,))
    if found is None:
        return state
    if done.kind == "redeem":
        row = conn.execute("SELECT overdraft FROM giftcard_overdrafts WHERE move = ?", (request.move,)).fetchone()
        back = done.amount - (row[0] if row else 0)
        conn.execute("DELETE FROM giftcard_overdrafts WHERE move = ?", (request.move,))
        conn.execute("UPDATE giftcards SET balance = balance + ? WHERE card = ?", (back, card))
        return msgspec.structs.replace(state, balance=state.balance + back, amount=back)
    back = min(state.balance, done.amount)  # a credit undone: what was already spent of it is an overdraft
    conn.execute("UPDATE giftcards SET balance = balance - ? WHERE card = ?", (back, card))
    if back < done.amount:
        _overdraft(conn, msgspec.structs.replace(request, card=card), done.amount, done.amount - back)
    return msgspec.structs.replace(state, balance=state.balance - back, amount=-back)


# -- stores' credits ------------------------------------------------------------------------------------


def limits(conn: sqlite3.Connection, store: str) -> Limits:
    """The limits `store` works under: its own row, else the chain's."""
    row = conn.execute(
        "SELECT store, per_move, per_day FROM giftcard_limits WHERE store IN (?, ?) ORDER BY store DESC LIMIT 1",
        (store, CHAIN),
    ).fetchone()
    return Limits(*row) if row else Limits(CHAIN, 0, 0)  # no chain row (deleted by hand): no store credits


def limit_rows(conn: sqlite3.Connection) -> list[Limits]:
    return [Limits(*row) for row in conn.execute("SELECT store, per_move, per_day FROM giftcard_limits ORDER BY store")]


def set_limits(conn: sqlite3.Connection, store: str, per_move: int | None, per_day: int | None) -> Limits:
    """Set a store's limits (CHAIN: the chain's); one not given stays as the store works under it now."""
    if (per_move is not None and per_move < 0) or (per_day is not None and per_day < 0):
        raise GiftCardError("a limit is zero (no credits) or more")
    now = limits(conn, store)
    chosen = Limits(store, now.per_move if per_move is None else per_move, now.per_day if per_day is None else per_day)
    conn.execute(
        "INSERT INTO giftcard_limits (store, per_move, per_day) VALUES (?,?,?) "
        "ON CONFLICT (store) DO UPDATE SET per_move = excluded.per_move, per_day = excluded.per_day",
        (chosen.store, chosen.per_move, chosen.per_day),
    )
    return chosen


def _receipt_refusal(conn: sqlite3.Connection, request: GiftCardMove) -> str:
    """Why this credit is no refund of a receipt of the asking store's ('' when it is one)."""
    rid = request.refund_of
    if not rid:
        return "a store credits a gift card only in a refund that names the receipt it pays back"
    parsed = parse_receipt_id(rid)
    if parsed is None:
        return f"{rid[:64]!r} is not a receipt id"
    owner, lane, receipt_no = parsed
    if owner != request.store:
        return f"receipt {rid} is not one of store {request.store}'s"
    row = conn.execute(
        "SELECT body FROM sales WHERE store = ? AND lane = ? AND receipt_no = ?", (owner, lane, receipt_no)
    ).fetchone()
    if row is None:
        later = conn.execute(
            "SELECT 1 FROM sales WHERE store = ? AND lane = ? AND receipt_no > ? LIMIT 1", (owner, lane, receipt_no)
        ).fetchone()
        # A lane's receipts reach central in order: one missing while later ones are here does not exist.
        return f"receipt {rid} is not in store {owner}'s journal at central" if later else ""
    try:
        sale = decode_record(row[0])
    except FrameError:
        return f"receipt {rid} cannot be read at central"
    if sale.kind != "sale" or sale.refund_of or sale.currency != request.currency:
        return f"receipt {rid} was paid with no gift card in {request.currency}"
    took = sum(t.sale_value for t in sale.tenders if t.kind == "giftcard" and t.reference == request.card)
    (credited,) = conn.execute(
        "SELECT COALESCE(SUM(amount), 0) FROM giftcard_moves "
        "WHERE kind = 'credit' AND refund_of = ? AND card = ? AND voided = 0",
        (rid, request.card),
    ).fetchone()
    if request.amount > took - credited:
        cur = request.currency
        return (
            f"receipt {rid} took {format_money(took, cur)} on gift card {request.card} and "
            f"{format_money(credited, cur)} of it went back already: {format_money(request.amount, cur)} more "
            "is beyond it"
        )
    return ""


def _limit_refusal(conn: sqlite3.Connection, request: GiftCardMove, day: str) -> str:
    """Why this credit is over the store's limits ('' when it is within them)."""
    limit, cur = limits(conn, request.store), request.currency
    if request.amount > limit.per_move:
        return (
            f"a credit of {format_money(request.amount, cur)} is over store {request.store}'s limit of "
            f"{format_money(limit.per_move, cur)} per credit"
        )
    (today,) = conn.execute(
        "SELECT COALESCE(SUM(amount), 0) FROM giftcard_moves "
        "WHERE kind = 'credit' AND store = ? AND day = ? AND voided = 0",
        (request.store, day),
    ).fetchone()
    if today + request.amount > limit.per_day:
        return (
            f"store {request.store} credited {format_money(today, cur)} today; {format_money(request.amount, cur)} "
            f"more is over its limit of {format_money(limit.per_day, cur)} a day"
        )
    return ""


def store_move(conn: sqlite3.Connection, request: GiftCardMove, *, now_ms: int | None = None) -> GiftCardState:
    """A store's move asked online: as `move`, but a credit only within the rules (declined with the
    reason, nothing changed); a credit asked again after it was applied answers what happened then."""
    now_ms = _now_ms() if now_ms is None else now_ms
    if request.kind == "credit" and _done(conn, request.move) is None:
        why = _receipt_refusal(conn, request) or _limit_refusal(conn, request, _day(now_ms))
        if why:
            found = _card(conn, request.card)
            return msgspec.structs.replace(_state(request.card, found, request.currency, ok=False), message=why)
    return move(conn, request, now_ms=now_ms)


def _flag(conn: sqlite3.Connection, request: GiftCardMove, *, applied: bool, reason: str, at: int) -> None:
    conn.execute(
        "INSERT INTO giftcard_flags (move, card, store, refund_of, amount, applied, reason, at) "
        "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (move) DO NOTHING",
        (request.move, request.card, request.store, request.refund_of, request.amount, applied, reason, at),
    )


def apply(conn: sqlite3.Connection, store: str, event: Event, *, now_ms: int | None = None) -> None:
    """A store's `giftcard` stream: moves taken offline, voids, credits it could not deliver online.
    Never refused for breaking the credit rules (see the module's docstring): flagged instead."""
    try:
        request = _move_decoder.decode(event.body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise EventError(f"event {event.seq}: bad gift card move: {exc}") from exc
    if request.store != store or request.kind != event.kind:
        raise EventError(f"event {event.seq}: move is for store {request.store!r} kind {request.kind!r}")
    now_ms = _now_ms() if now_ms is None else now_ms
    if request.kind == "credit" and _done(conn, request.move) is None:
        if why := _receipt_refusal(conn, request):
            _record(conn, request, 0, _day(now_ms), voided=True)  # held: its id can never apply later
            _flag(conn, request, applied=False, reason=why, at=now_ms)
            return
        why = _limit_refusal(conn, request, _day(now_ms))
        if move(conn, request, now_ms=now_ms).ok and why:
            _flag(conn, request, applied=True, reason=why, at=now_ms)
        return
    move(conn, request, now_ms=now_ms)


def flagged(conn: sqlite3.Connection) -> list[Flag]:
    rows = conn.execute(
        "SELECT move, card, store, refund_of, amount, applied, reason, at FROM giftcard_flags ORDER BY at, move"
    )
    return [Flag(row[0], row[1], row[2], row[3], row[4], bool(row[5]), row[6], row[7]) for row in rows]


def overdrafts(conn: sqlite3.Connection) -> list[Overdraft]:
    rows = conn.execute(
        "SELECT move, card, store, sale_id, taken, overdraft, at FROM giftcard_overdrafts ORDER BY at, move"
    )
    return [Overdraft(*row) for row in rows]
