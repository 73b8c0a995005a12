"""Parking a sale and resuming it on any lane of the same store (issue 14, Deliver 3).

A customer who forgot something steps aside; the cashier parks the sale and serves the next one; the
customer comes back to any lane and the sale is resumed there by its short id ("P12").

Each of these is one database job, in one transaction, so a `kill -9` at any instant leaves either the
sale on its lane or the sale parked, never both and never neither:
- park: the sale is written to `parked_sales`, journaled as a `park` event (with its lines and total, so
  the journal alone says what was parked) and its lane saved cleared;
- resume: the parked row is deleted, a `resume` event journaled and the resuming lane saved with the sale.
The store's database actor runs one write job at a time, so two lanes resuming the same id at once are
served one after the other: the first deletes the row, the second finds none and is refused. A resume is
exactly once by construction, not by a lock.

What may be parked: an open sale with live lines, no money taken (`tenders`) and no money call pending.
Money taken belongs to its lane's drawer or terminal batch and is journaled with the sale that took it;
a parked sale carrying it would move it to another lane's drawer. A refund of a receipt cannot be parked
either: while it is open its lines hold part of the receipt's balance (the other lanes' refund checks read
the lane rows), and parked it would hold that balance invisibly, or not at all; finish or cancel it.

Prices: a resumed sale keeps the lines and prices it was parked with (the customer was quoted them, and
it is the same day's sale): nothing is looked up again. A sale left parked at day close is reported
(`left_parked`, which the Z report calls; `storepos store parked` and `storepos store status` meanwhile),
for a person to resume and finish, or resume and cancel, it; it is never silently dropped or repriced.

A training sale resumes only on a lane in training mode, and a real sale only on a lane that is not: a
sale's training mark never changes after its first line.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import msgspec

from protocol.frames import ParkedSale, RecordEvent
from runtime.mailbox import Rejected
from storenode.journal.chain import Signer
from storenode.lanes import basket
from storenode.lanes.basket import OPEN, PAYING, READY, TENDER, LaneState
from storenode.lanes.events import journal_event
from storenode.lanes.saved import save_state

PREFIX = "P"  # a parked sale's short id is P<number>: a cashier reads it off the list and types it
MAX_NO = 2**53

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(LaneState)


@dataclass(frozen=True)
class Parked:
    no: int
    state: LaneState  # the sale as it was parked
    lane: int
    operator: str
    parked_at: int

    @property
    def short_id(self) -> str:
        return short_id(self.no)


def short_id(no: int) -> str:
    return f"{PREFIX}{no}"


def parse_id(text: str, store: str) -> int:
    """The number of a parked sale's id as a cashier typed it: "P12", "p12" or "12"; "S001-P12" names the
    store as well, and another store's is refused (a parked sale is kept only in the store it was parked in)."""
    text = text.strip()
    if "-" in text:
        prefix, _, text = text.rpartition("-")
        if not prefix:
            raise Rejected("bad_parked_id", f"'-{text}' is not a parked sale's id (like {PREFIX}12)")
        if prefix.upper() != store.upper():
            raise Rejected(
                "other_store", f"{prefix}-{text} was parked in store {prefix}, not here ({store}): resume it there"
            )
    digits = text[1:] if text[:1].upper() == PREFIX else text
    if not (digits.isascii() and digits.isdigit()) or not 1 <= int(digits) <= MAX_NO:  # not "²": int() refuses it
        raise Rejected("bad_parked_id", f"{text!r} is not a parked sale's id (like {PREFIX}12)")
    return int(digits)


def check_parkable(state: LaneState) -> None:
    """Refuse to park anything but an open sale with lines, no money taken and no money call pending."""
    basket.require_operator(state)
    if state.status == PAYING or state.pending is not None:
        raise Rejected("payment_in_progress", "a payment is in progress or in doubt; a sale cannot be parked then")
    if state.status not in (OPEN, TENDER) or not basket.live_lines(state):
        raise Rejected("no_sale", "there is no sale with items to park")
    if state.refund_of:
        raise Rejected(
            "refund_sale",
            f"a refund cannot be parked: it holds part of receipt {state.refund_of}'s balance; finish or cancel it",
        )
    if state.tenders or state.cancelling:
        raise Rejected(
            "payment_started",
            "money was already taken for this sale: it stays with this lane's drawer; pay the rest or cancel the sale",
        )


def check_resumable(state: LaneState) -> None:
    """A sale is resumed only onto a lane with an operator and no sale of its own (an empty started one is fine)."""
    basket.require_operator(state)
    empty = state.status == OPEN and not state.lines and not state.tenders and not state.refund_of
    if state.status != READY and not empty:
        raise Rejected("sale_open", f"finish or park sale {state.sale_id} before resuming another")


def park(conn: sqlite3.Connection, state: LaneState, *, store: str, currency: str, at: int, signer: Signer) -> Parked:
    """Park the lane's sale: kept, journaled, lane cleared, in the caller's transaction (see the module)."""
    check_parkable(state)
    live = basket.live_lines(state)
    amount = basket.total(state)
    cursor = conn.execute(
        "INSERT INTO parked_sales (sale_id, lane, operator, parked_at, lines, total, state) VALUES (?,?,?,?,?,?,?)",
        (state.sale_id, state.lane, state.operator, at, len(live), amount, _encoder.encode(state)),
    )
    no = int(cursor.lastrowid or 0)
    journal_event(
        conn,
        RecordEvent(code="park", ref=state.sale_id, detail=short_id(no)),
        store=store,
        lane=state.lane,
        operator=state.operator,
        currency=currency,
        at=at,
        signer=signer,
        training=state.training,
        lines=state.lines,
        total=amount,
        opened_at=state.opened_at,
    )
    save_state(conn, basket.cleared(state))
    return Parked(no=no, state=state, lane=state.lane, operator=state.operator, parked_at=at)


def resume(
    conn: sqlite3.Connection, state: LaneState, typed: str, *, store: str, currency: str, at: int, signer: Signer
) -> tuple[LaneState, Parked]:
    """Resume parked sale `typed` onto `state`'s lane: the row deleted, the event journaled, the lane saved
    with the sale, in the caller's transaction. Returns the lane's new state and what was parked."""
    check_resumable(state)
    no = parse_id(typed, store)
    row = conn.execute("SELECT state, lane, operator, parked_at FROM parked_sales WHERE no = ?", (no,)).fetchone()
    if row is None:
        issued = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'parked_sales'").fetchone()
        if issued is not None and no <= issued[0]:
            raise Rejected("already_resumed", f"parked sale {short_id(no)} was resumed already")
        raise Rejected("no_parked", f"no sale {short_id(no)} is parked in store {store}")
    parked = Parked(no=no, state=_decoder.decode(row[0]), lane=row[1], operator=row[2], parked_at=row[3])
    kept = parked.state
    if kept.training != state.training:
        mode = "in training mode" if kept.training else "as a real sale"
        raise Rejected(
            "training_mismatch",
            f"parked sale {short_id(no)} was made {mode}: resume it on a lane "
            + ("in training mode" if kept.training else "that is not in training mode"),
        )
    conn.execute("DELETE FROM parked_sales WHERE no = ?", (no,))
    new = msgspec.structs.replace(
        kept, lane=state.lane, operator=state.operator, status=OPEN, status_before="", training=state.training
    )
    journal_event(
        conn,
        RecordEvent(
            code="resume",
            ref=kept.sale_id,
            detail=f"{short_id(no)} parked on lane {parked.lane} by operator {parked.operator}",
        ),
        store=store,
        lane=state.lane,
        operator=state.operator,
        currency=currency,
        at=at,
        signer=signer,
        training=state.training,
        lines=kept.lines,
        total=basket.total(kept),
        opened_at=kept.opened_at,
    )
    save_state(conn, new)
    return new, parked


LISTED = 100  # parked sales a till is shown at most (the oldest); Status.parked says how many there are


def left_parked(conn: sqlite3.Connection, currency: str, limit: int = -1) -> list[ParkedSale]:
    """Every sale parked at the store and not resumed (at most `limit`, -1: all), oldest first: what the till
    lists, and what a day close (the Z report) reports as left parked."""
    rows = conn.execute(
        "SELECT no, lane, operator, parked_at, lines, total FROM parked_sales ORDER BY no LIMIT ?", (limit,)
    )
    return [
        ParkedSale(id=short_id(no), lane=lane, operator=operator, at=at, lines=lines, total=total, currency=currency)
        for no, lane, operator, at, lines, total in rows
    ]


def count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM parked_sales").fetchone()[0])
