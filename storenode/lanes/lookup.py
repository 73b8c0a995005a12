"""Receipts after the sale (issue 14, receipts): looking them up, copies, and returns by scanning one.

Lookup. A cashier finds a receipt by its id, by a period of business days, by its exact total or by the
last four digits of a card that paid it. Every lookup reads the store's receipt index
(storenode/journal/index.py, written in the transaction that journals the receipt) for the newest
`limit + 1` matches and decodes only the journal bodies it sends, so it costs the same among a million
receipts as among ten (bench/receipt_lookup.py). Results are bounded (newest first, `more` says there
were more); a lookup reads only, on the lane's own read connection.

Copies. A copy is counted (receipt_copies) and journaled as a `copy` event naming the receipt (its
RecordEvent.ref) in ONE durable transaction, and only after that commit is it printed and shown. So a
crash can never leave a printed copy that was not counted; store.toml's `[sales] copies` is the most a
receipt gets, and a request beyond it is refused with nothing printed or journaled. A crash between the
commit and the printer leaves a copy counted (and journaled) but not printed: we keep it that way, as
the fiscal rule counts copies issued and the journal's copy event says when and by whom it was asked;
the till never heard the answer, and a supervisor who sees no paper can raise `[sales] copies`. The
other order (print, then count) could hand out copies nobody counted, which the rule forbids.

Returns by scanning. The receipt's code carries its id (devices.escpos.receipt_id); scanned at the till
or the lane's scanner, a code that reads as a receipt id and is no item's barcode opens the refund of
that receipt (the lane's RefundOf path), instead of `unknown_barcode`.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass

from devices.escpos import receipt_id
from protocol.frames import ReceiptFound, ReceiptQuery, RecordEvent, SaleRecord
from protocol.receipts import parse_receipt_id
from runtime.clock import store_zone
from runtime.mailbox import Rejected
from storenode.journal import chain, index
from storenode.lanes import events, refunds

COPY_EVENT = "copy"


def _day_start(text: str, zone: str, what: str) -> int:
    """Epoch ms at the start of business day `text` (YYYY-MM-DD) in the store's zone."""
    try:
        day = dt.date.fromisoformat(text.strip())
    except ValueError:
        raise Rejected("bad_query", f"{what} {text!r} is not a date (YYYY-MM-DD, as 2026-12-01)") from None
    return int(dt.datetime.combine(day, dt.time(), store_zone(zone)).timestamp() * 1000)


def where_of(query: ReceiptQuery, store: str, zone: str) -> index.Where:
    """What a lookup asks for, checked: a receipt id of this store, or a period, a total, a card."""
    if query.receipt.strip():
        lane, receipt_no = refunds.parse_receipt(query.receipt, store)
        return index.Where(lane=lane, receipt_no=receipt_no)
    card = query.card.strip()
    if card and not (len(card) == 4 and card.isascii() and card.isdigit()):
        raise Rejected("bad_query", f"a card is looked up by its last four digits, not {card!r}")
    since = _day_start(query.since, zone, "from") if query.since.strip() else 0
    until = _day_start(query.until, zone, "to") + 86_400_000 if query.until.strip() else 0
    if until and until <= since:
        raise Rejected("bad_query", f"the period ends ({query.until}) before it starts ({query.since})")
    return index.Where(since=since, until=until, total=query.amount or None, card=card)


def copies_of(conn: sqlite3.Connection, receipt: str) -> int:
    row = conn.execute("SELECT copies FROM receipt_copies WHERE receipt = ?", (receipt,)).fetchone()
    return int(row[0]) if row else 0


def found(record: SaleRecord, copies: int) -> ReceiptFound:
    return ReceiptFound(
        receipt=receipt_id(record),
        closed_at=record.closed_at,
        total=record.total,
        currency=record.currency,
        kind=record.kind,
        refund_of=record.refund_of,
        cards=sorted(index.cards_of(record)),
        copies=copies,
    )


@dataclass(frozen=True)
class Looked:
    records: list[SaleRecord]
    listed: list[ReceiptFound]
    more: bool


def look_up(conn: sqlite3.Connection, where: index.Where, limit: int) -> Looked:
    """The newest receipts matching `where` (at most `limit`), decoded from the journal, and whether more match."""
    keys, more = index.find(conn, where, limit)
    records = [record for lane, no in keys if (record := chain.find(conn, lane, no)) is not None]
    listed = [found(record, copies_of(conn, receipt_id(record))) for record in records]
    return Looked(records=records, listed=listed, more=more)


@dataclass(frozen=True)
class Copy:
    record: SaleRecord  # the receipt copied
    number: int  # which copy this is, from 1
    event: SaleRecord  # the copy event as journaled


def copy_receipt(
    conn: sqlite3.Connection,
    receipt: str,
    *,
    store: str,
    limit: int,
    lane: int,
    operator: str,
    currency: str,
    at: int,
    signer: chain.Signer,
    training: bool = False,
) -> Copy:
    """Count and journal one more copy of `receipt`, in the caller's (durable) transaction, or refuse it
    with nothing written: an unknown receipt, a cancelled sale, or a receipt that had its copies."""
    of_lane, receipt_no = refunds.parse_receipt(receipt, store)
    record = chain.find(conn, of_lane, receipt_no)
    if record is None or record.kind not in index.INDEXED_KINDS:
        raise Rejected("unknown_receipt", f"receipt {receipt.strip()} is not in this store's journal")
    if record.kind != "sale":
        raise Rejected("not_a_receipt", f"receipt {receipt.strip()} is a cancelled sale: it has no copy")
    rid = receipt_id(record)
    made = copies_of(conn, rid)
    if made >= limit:
        allowed = f"{limit} cop{'y' if limit == 1 else 'ies'}" if limit else "no copies"
        raise Rejected(
            "copy_limit",
            f"receipt {rid} has had {made} of the {allowed} this store allows ([sales] copies); none printed",
        )
    number = made + 1
    event = events.journal_event(
        conn,
        RecordEvent(code=COPY_EVENT, ref=rid, detail=f"copy {number} of {limit}"),
        store=store,
        lane=lane,
        operator=operator,
        currency=currency,
        at=at,
        signer=signer,
        training=training,
    )
    conn.execute(
        "INSERT INTO receipt_copies (receipt, copies) VALUES (?, ?)"
        " ON CONFLICT (receipt) DO UPDATE SET copies = excluded.copies",
        (rid, number),
    )
    return Copy(record=record, number=number, event=event)


def scanned_receipt(code: str, is_item: bool) -> bool:
    """Whether a scanned code is a receipt's (its id) rather than an item's: it reads as a receipt id and
    no item has it as a barcode (an item's barcode always wins)."""
    return not is_item and parse_receipt_id(code) is not None
