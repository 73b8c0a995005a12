"""Refunds of a receipt: the returned lines come from the receipt, at the prices paid then, and the money
goes back to the tenders it was paid with (card to card, a gift card to that card, an invoice to that
customer's invoice, cash as cash), never more than each tender took, over any number of partial refunds.

What went back already is derived, never kept in a table of its own that could drift: the journal's
refunds of the receipt (found by index on journal.refund_of) plus the refunds still open on the other
lanes (their saved states, a money call in flight counted as done). `check` runs inside the database job
that saves a change (a returned line, a refund attempt before it is sent, the refund's journal record
before it is appended), and the database actor runs one job at a time, so two lanes refunding one receipt
at once cannot both give back its last item or its last krona.

Cash is what the other tenders left of a sale's total, before cash rounding: rounding is the drawer's
business, and counting it would make the last of several partial cash refunds fall over a few öre.
The drawer's side is reconciled over the receipt's refunds (basket.CashBack, read by `cash_back_of`):
each refund pays back the cash-rounded sum of the cash given back so far, less what the drawer already
paid, and never past the cash the sale took; the refund that gives back the last of it takes exactly
the remainder. Two items at 24.50 paid 49.00 in cash and refunded one at a time go back as 25.00 and
24.00, not 25.00 twice.

A line's share of the sale's discounts goes back with it (protocol.discounting.net_amounts): a
returned line is priced at what it cost after discounts, and the parts of a line returned over several
refunds add up to exactly that (each part is the difference of two floors).
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field

import msgspec

from devices.escpos import receipt_id
from protocol.codec import decode_record
from protocol.discounting import net_amounts
from protocol.frames import RecordLine, RecordTender, SaleRecord
from protocol.money import format_money
from protocol.receipts import parse_receipt_id, sold_lines
from runtime.mailbox import Rejected
from storenode.journal import chain
from storenode.lanes import foreign
from storenode.lanes.basket import CashBack, LaneState
from storenode.lanes.saved import other_lanes

Key = tuple[str, str]  # (tender kind, the gift card or customer it names; "" for card and cash)
CARD: Key = ("card", "")
CASH: Key = ("cash", "")


def tender_key(tender: RecordTender) -> Key:
    return (tender.kind, tender.reference) if tender.kind in ("giftcard", "invoice") else (tender.kind, "")


def describe(key: Key) -> str:
    kind, reference = key
    if kind == "cash":
        return "in cash"
    if kind == "card":
        return "to card"
    what = {"giftcard": "gift card", "invoice": "the invoice of customer"}.get(kind, kind)
    return f"to {what} {reference}".rstrip()


def parse_receipt(text: str, store: str) -> tuple[int, int]:
    """(lane, receipt number) from a receipt id as printed under its code: store-lane-number."""
    parsed = parse_receipt_id(text)
    if parsed is None:
        raise Rejected("bad_receipt", f"{text.strip()!r} is not a receipt id (store-lane-number, as {store}-1-42)")
    owner, lane, receipt_no = parsed
    if owner != store:
        raise Rejected("other_store", f"receipt {text.strip()} is from store {owner}, not this store ({store})")
    return lane, receipt_no


def original(conn: sqlite3.Connection, receipt: str, store: str, currency: str) -> SaleRecord:
    """The sale a receipt id names, refused when it cannot be refunded. Another store's receipt is central's
    copy, kept when the refund opened (issue 14, storenode.lanes.lookup)."""
    parsed = parse_receipt_id(receipt)
    if parsed is not None and parsed[0] != store:
        record = foreign.foreign(conn, receipt)
        if record is None:
            raise Rejected(
                "other_store", f"receipt {receipt.strip()} is from store {parsed[0]}: scan it with central reachable"
            )
    else:
        lane, receipt_no = parse_receipt(receipt, store)
        record = chain.find(conn, lane, receipt_no)
    if record is None:
        raise Rejected("unknown_receipt", f"receipt {receipt.strip()} is not in this store's journal")
    if record.kind != "sale":
        what = "a cancelled sale: nothing was paid" if record.kind == "cancel" else "not a sale"
        raise Rejected("not_refundable", f"receipt {receipt.strip()} is {what}")
    if record.refund_of:
        raise Rejected("not_refundable", f"receipt {receipt.strip()} is itself a refund (of {record.refund_of})")
    if record.currency != currency:
        raise Rejected("not_refundable", f"receipt {receipt.strip()} was paid in {record.currency}")
    return record


def _money_of_record(record: SaleRecord) -> dict[Key, int]:
    """What a journaled sale took by each tender (negative: gave back), in the sale's currency."""
    out: dict[Key, int] = defaultdict(int)
    for tender in record.tenders:
        if tender.kind != "cash":
            out[tender_key(tender)] += tender.sale_value
    out[CASH] += record.total - sum(out.values())
    return out


def _drawer(record: SaleRecord) -> int:
    """Cash a journaled sale put into the drawer (negative: took out), rounding and change included."""
    return sum(t.sale_value for t in record.tenders if t.kind == "cash") - record.change


def cash_back_of(conn: sqlite3.Connection, receipt: str, store: str, currency: str) -> CashBack | None:
    """The receipt's cash: what its sale took and what its journaled refunds gave back (None: it took none)."""
    sale = original(conn, receipt, store, currency)
    taken_exact, taken = _money_of_record(sale)[CASH], _drawer(sale)
    if taken_exact <= 0 or taken <= 0:
        return None  # nothing to reconcile with; check() refuses cash that was not taken
    back_exact = back = 0
    for record in chain.refunds_of(conn, receipt_id(sale)):
        if record.kind == "sale":
            back_exact -= _money_of_record(record)[CASH]
            back -= _drawer(record)
    return CashBack(taken_exact=taken_exact, taken=taken, back_exact=back_exact, back=back)


def _money_of_state(state: LaneState) -> dict[Key, int]:
    """What an open sale took or gave back so far; a money call whose outcome is not in yet counts as done."""
    out: dict[Key, int] = defaultdict(int)
    for tender in state.tenders:
        out[tender_key(tender)] += tender.sale_value
    pending = state.pending
    if pending is not None and pending.kind == "refund" and pending.method == "card":
        out[CARD] -= pending.amount
    elif pending is not None and pending.kind == "credit" and pending.method == "giftcard":
        out[("giftcard", pending.card)] -= pending.amount
    return out


def _returned(lines: list[RecordLine]) -> dict[int, int]:
    out: dict[int, int] = defaultdict(int)
    for line in lines:
        if line.origin and not line.voided:
            out[line.origin] += line.qty  # negative
    return out


@dataclass
class Balance:
    """What a receipt still has to give back: per line of it, a quantity; per tender, an amount."""

    original: SaleRecord
    receipt: str
    lines: dict[int, int]
    money: dict[Key, int]
    paid_back: dict[int, int] = field(default_factory=dict)  # per line of it: what went back for it so far
    elsewhere: dict[int, int] = field(default_factory=dict)  # per line of it: returned at other stores (central)

    def add(self, lines: list[RecordLine], money: dict[Key, int]) -> None:
        for no, qty in _returned(lines).items():
            self.lines[no] = self.lines.get(no, 0) + qty
        for line in lines:
            if line.origin and not line.voided:
                self.paid_back[line.origin] = self.paid_back.get(line.origin, 0) - line.amount
        for key, amount in money.items():
            self.money[key] = self.money.get(key, 0) + amount


def balance(
    conn: sqlite3.Connection, receipt: str, store: str, currency: str, lane: int, own: LaneState | SaleRecord | None
) -> Balance:
    """The receipt's balance after its journaled refunds, the other lanes' open ones and `own` (this lane's
    refund as it stands, or its record about to be journaled)."""
    sale = original(conn, receipt, store, currency)
    rid = receipt_id(sale)
    found = Balance(
        original=sale,
        receipt=rid,
        lines=sold_lines(sale),
        money=dict(_money_of_record(sale)),
    )
    for no, qty in foreign.returned_elsewhere(conn, rid).items():  # at other stores, as central said (issue 14)
        found.lines[no] = found.lines.get(no, 0) - qty
        found.elsewhere[no] = qty
    for record in chain.refunds_of(conn, rid):
        if record.kind == "sale":
            found.add(record.lines, _money_of_record(record))
    for state in other_lanes(conn, lane):
        if state.refund_of == rid and state.sale_id:
            found.add(state.lines, _money_of_state(state))
    if isinstance(own, SaleRecord):
        found.add(own.lines, _money_of_record(own))
    elif own is not None:
        found.add(own.lines, _money_of_state(own))
    return found


def check(conn: sqlite3.Connection, own: LaneState | SaleRecord, store: str, currency: str, lane: int) -> None:
    """Refuse a refund that would give back more of its receipt than the receipt holds, by line or by tender."""
    if not own.refund_of:
        return
    after = balance(conn, own.refund_of, store, currency, lane, own)
    returnable = sold_lines(after.original).keys()
    for no, qty in after.lines.items():
        if no not in returnable:
            raise Rejected("not_on_receipt", f"line {no} of receipt {after.receipt} cannot be returned")
        if qty < 0:
            raise Rejected("over_return", f"line {no} of receipt {after.receipt} was returned already")
    for key, left in after.money.items():
        if left < 0:
            raise Rejected(
                "over_refund",
                f"{format_money(-left, currency)} more would go back {describe(key)} than receipt {after.receipt} "
                f"was paid with that way; pay it back to the receipt's other tenders",
            )


def rooms(conn: sqlite3.Connection, state: LaneState, store: str, currency: str) -> dict[Key, int]:
    """What may still go back by each tender on this lane's refund, as it stands (a tender not named: nothing)."""
    return balance(conn, state.refund_of, store, currency, state.lane, state).money


def return_lines(
    conn: sqlite3.Connection, state: LaneState, code: str, qty: int, item: str, store: str, currency: str
) -> list[RecordLine]:
    """Returned lines for `qty` of the item scanned (`code`, or any barcode of `item`) taken from the
    receipt's lines that still have some to give back, each at the price paid for it then."""
    found = balance(conn, state.refund_of, store, currency, state.lane, state)
    matching = [
        line
        for line in found.original.lines
        if not line.voided and line.qty > 0 and (line.code == code or (item and line.item == item))
    ]
    if not matching:
        raise Rejected("not_on_receipt", f"{code} is not on receipt {found.receipt}")
    net, _ = net_amounts(found.original.lines, found.original.discounts)
    left, out = qty, []
    for line in matching:
        still = found.lines.get(line.no, 0)
        take = min(still, left)
        if take <= 0:
            continue
        cost, back = net[line.no], found.paid_back.get(line.no, 0)
        amount = _part(cost, line.qty, line.qty - still, take)
        if not found.elsewhere.get(line.no):  # all it paid back is known here: the last part takes what is left
            amount = cost - back if take == still else min(amount, cost - back)
        out.append(
            msgspec.structs.replace(line, no=0, qty=-take, amount=-amount, voided=False, origin=line.no),
        )
        left -= take
        if not left:
            return out
    sold = sum(line.qty for line in matching)
    can = qty - left
    raise Rejected(
        "over_return",
        f"receipt {found.receipt} has {sold} of {matching[0].name}; only {can} more can be returned",
    )


def _part(cost: int, qty: int, gone: int, take: int) -> int:
    """What `take` of a line's `qty` cost, when `gone` of them went back already: the difference of two
    floors, so the parts of a line returned over several refunds add up to exactly what it cost after its
    discounts (a weighed line is one line of qty 1: all of it). The last part is what is left of the cost
    (return_lines), so a refund opened on another lane and cancelled cannot shift the parts by an öre."""
    return cost * (gone + take) // qty - cost * gone // qty


RECENT_REFUNDS = 1000  # the newest journaled refunds a receipt-less return is checked against


def refunded_on_receipt(conn: sqlite3.Connection, item: str, since_ms: int) -> str | None:
    """The receipt this store lately refunded `item` on (a journaled refund closed since `since_ms`,
    newest first), or None.

    Why: the same goods can be refunded twice, to the card on their receipt and again in cash as a
    receipt-less return. The store cannot tell a receipt-less return of goods bought elsewhere from a
    second refund in general, but it can see that the same item went back on a receipt lately: then a
    supervisor decides (storenode.lanes.approval), whatever the amount."""
    rows = conn.execute(
        "SELECT body FROM journal WHERE refund_of != '' ORDER BY seq DESC LIMIT ?", (RECENT_REFUNDS,)
    ).fetchall()
    for (body,) in rows:
        record = decode_record(body)
        if record.closed_at < since_ms:
            break
        if any(line.item == item and not line.voided for line in record.lines):
            return record.refund_of
    return None
