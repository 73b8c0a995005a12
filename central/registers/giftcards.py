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

SQL stays portable (no SQLite-only functions): central may move to PostgreSQL.
"""

from __future__ import annotations

import sqlite3
import uuid

import msgspec

from central.registers.cursors import EventError
from protocol.frames import Event, GiftCardMove, GiftCardState

KINDS = ("giftcard", "voucher")
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


def move(conn: sqlite3.Connection, request: GiftCardMove) -> GiftCardState:
    """Apply one move exactly once; the card as it stands after it (`ok` False when it was refused)."""
    done = conn.execute("SELECT kind, amount, voided FROM giftcard_moves WHERE move = ?", (request.move,)).fetchone()
    if request.kind == "void":
        return _void(conn, request, done)
    if request.kind not in ("redeem", "credit"):
        raise EventError(f"unknown gift card move {request.kind!r}")
    found = _card(conn, request.card)
    state = _state(request.card, found, request.currency, ok=False)
    if done is not None:  # asked before: answer what happened then
        ok = not done[2] and done[0] == request.kind
        message = "" if ok else "this move was voided"
        return msgspec.structs.replace(state, ok=ok, amount=done[1] if ok else 0, message=message)
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
        _record(conn, request, request.amount)
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
        _record(conn, request, taken)
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
    _record(conn, request, taken)
    return msgspec.structs.replace(state, ok=True, balance=left, amount=taken)


def _record(conn: sqlite3.Connection, request: GiftCardMove, amount: int, *, voided: bool = False) -> None:
    """The move as applied, by its id: a retry of it is answered from here and never applied twice."""
    conn.execute(
        "INSERT INTO giftcard_moves (move, card, kind, amount, store, sale_id, at, offline, voided) "
        "VALUES (?,?,?,?,?,?,?,?,?)",
        (request.move, request.card, request.kind, amount, request.store, request.sale_id, request.at,
         request.offline and not voided, voided),
    )  # fmt: skip


def _overdraft(conn: sqlite3.Connection, request: GiftCardMove, taken: int, over: int) -> None:
    conn.execute(
        "INSERT INTO giftcard_overdrafts (move, card, store, sale_id, taken, overdraft, at) VALUES (?,?,?,?,?,?,?)",
        (request.move, request.card, request.store, request.sale_id, taken, over, request.at),
    )


def _void(conn: sqlite3.Connection, request: GiftCardMove, done: tuple[str, int, int] | None) -> GiftCardState:
    found = _card(conn, request.card)
    state = _state(request.card, found, request.currency, ok=True)
    if done is None:  # the move never arrived: a tombstone, so it never can
        _record(conn, request, 0, voided=True)
        return state
    kind, amount, voided = done
    if voided or kind == "void":
        return state
    conn.execute("UPDATE giftcard_moves SET voided = 1 WHERE move = ?", (request.move,))
    if found is None:
        return state
    if kind == "redeem":
        row = conn.execute("SELECT overdraft FROM giftcard_overdrafts WHERE move = ?", (request.move,)).fetchone()
        back = amount - (row[0] if row else 0)
        conn.execute("DELETE FROM giftcard_overdrafts WHERE move = ?", (request.move,))
        conn.execute("UPDATE giftcards SET balance = balance + ? WHERE card = ?", (back, request.card))
        return msgspec.structs.replace(state, balance=state.balance + back, amount=back)
    back = min(state.balance, amount)  # a credit undone: what was already spent of it is an overdraft
    conn.execute("UPDATE giftcards SET balance = balance - ? WHERE card = ?", (back, request.card))
    if back < amount:
        _overdraft(conn, request, amount, amount - back)
    return msgspec.structs.replace(state, balance=state.balance - back, amount=-back)


def apply(conn: sqlite3.Connection, store: str, event: Event) -> None:
    """A store's `giftcard` stream: moves taken offline, voids, credits it could not deliver online."""
    try:
        request = _move_decoder.decode(event.body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise EventError(f"event {event.seq}: bad gift card move: {exc}") from exc
    if request.store != store or request.kind != event.kind:
        raise EventError(f"event {event.seq}: move is for store {request.store!r} kind {request.kind!r}")
    move(conn, request)


def overdrafts(conn: sqlite3.Connection) -> list[Overdraft]:
    rows = conn.execute(
        "SELECT move, card, store, sale_id, taken, overdraft, at FROM giftcard_overdrafts ORDER BY at, move"
    )
    return [Overdraft(*row) for row in rows]
