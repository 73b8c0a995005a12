"""What was returned of each receipt, chain-wide (issue 14, receipts): so a receipt's lines go back once,
whichever stores its customer walks into.

A store refunds lines of a receipt by its own journal alone (storenode.lanes.refunds), which is enough
within the store; across stores only central sees everything. Central keeps, per line of the original
receipt and per refund (`claim`, the refund's sale id, with the store making it), a quantity that is
either *held* (a refund open at a store: asked for over the link before the line went into the refund)
or *returned* (the refund's journal record arrived in its store's journal stream).

- A store refunding another store's receipt must ask: `fetch` gives it central's copy of the receipt and
  what other stores returned or hold of it; `claim` holds its lines, refused when that would give back
  more of a line than was sold; `release` frees what a cancelled refund held. Offline it cannot refund
  another store's receipt at all (it has no copy of it and could not claim).
- A store refunding its own receipt asks too when it can (the same `claim`), and goes on offline as
  before; its refund reaches central in its journal stream, and `journaled` records it then.
- `journaled` is where every refund ends up: the record's returned lines replace what its claim held. A
  refund that makes a line go back more often than it was sold (an own-store refund made offline while
  another store refunded the same line) cannot be refused (the money went back already, and the
  journal is the store's fiscal record, never held back): it is recorded and raised as an alarm
  (`double_return`) for someone to follow up. A cancelled refund's record releases what it held.

The window left open: the own-store offline refund. Everything else is refused before money moves.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict

from central.registers import alarms
from protocol.codec import decode_record
from protocol.frames import SaleRecord
from protocol.receipts import parse_receipt_id, sold_lines

HELD, RETURNED = "held", "returned"


def receipt(conn: sqlite3.Connection, receipt_id: str) -> SaleRecord | None:
    """Central's copy of a receipt of any store (a sale, not an event), by its id."""
    parsed = parse_receipt_id(receipt_id)
    if parsed is None:
        return None
    store, lane, receipt_no = parsed
    row = conn.execute(
        "SELECT body FROM sales WHERE store = ? AND lane = ? AND receipt_no = ? AND kind = 'sale'",
        (store, lane, receipt_no),
    ).fetchone()
    return decode_record(row[0]) if row else None


def taken(conn: sqlite3.Connection, receipt_id: str, *, but_store: str = "", but_claim: str = "") -> dict[int, int]:
    """Per line of the receipt: what is returned or held, leaving out one store's or one claim's."""
    out: dict[int, int] = defaultdict(int)
    rows = conn.execute("SELECT line, claim, store, qty FROM returns WHERE receipt = ?", (receipt_id,))
    for line, claim, store, qty in rows:
        if store != but_store and claim != but_claim:
            out[line] += qty
    return dict(out)


def fetch(conn: sqlite3.Connection, receipt_id: str, store: str) -> tuple[SaleRecord, dict[int, int]] | None:
    """The receipt and what stores other than `store` returned or hold of it (the asking store knows its own)."""
    found = receipt(conn, receipt_id)
    if found is None:
        return None
    return found, taken(conn, receipt_id, but_store=store)


class Refusal(Exception):
    """A claim that would give back more than was sold: nothing of it was kept."""


def _put(
    conn: sqlite3.Connection, receipt_id: str, claim: str, store: str, lines: dict[int, int], state: str, at: int
) -> None:
    conn.execute("DELETE FROM returns WHERE claim = ? AND receipt = ?", (claim, receipt_id))
    conn.executemany(
        "INSERT INTO returns (receipt, line, claim, store, qty, state, at) VALUES (?,?,?,?,?,?,?)",
        [(receipt_id, line, claim, store, qty, state, at) for line, qty in sorted(lines.items()) if qty > 0],
    )


def claim(conn: sqlite3.Connection, receipt_id: str, claim_id: str, store: str, lines: dict[int, int], at: int) -> None:
    """Hold `lines` of the receipt for refund `claim_id` of `store`, instead of what it held; Refusal when
    a line would go back more than it was sold, or the receipt is not one central holds."""
    found = receipt(conn, receipt_id)
    parsed = parse_receipt_id(receipt_id)
    if found is None and parsed is not None and parsed[0] == store:
        # the store's own receipt, still on its way to central: held as asked, checked when the refund arrives
        _put(conn, receipt_id, claim_id, store, lines, HELD, at)
        return
    if found is None:
        raise Refusal(f"central holds no receipt {receipt_id}")
    held_by = conn.execute("SELECT store, state FROM returns WHERE claim = ? LIMIT 1", (claim_id,)).fetchone()
    if held_by is not None and (held_by[0] != store or held_by[1] == RETURNED):
        raise Refusal(f"refund {claim_id} is closed already, or another store's")
    sold, others = sold_lines(found), taken(conn, receipt_id, but_claim=claim_id)
    for line, qty in sorted(lines.items()):
        if line not in sold or qty <= 0:
            raise Refusal(f"line {line} of receipt {receipt_id} cannot be returned")
        if others.get(line, 0) + qty > sold[line]:
            left = max(0, sold[line] - others.get(line, 0))
            raise Refusal(
                f"line {line} of receipt {receipt_id} was returned already (or is being returned) at a store of the"
                f" chain: {left} of {sold[line]} left to return"
            )
    _put(conn, receipt_id, claim_id, store, lines, HELD, at)


def release(conn: sqlite3.Connection, claim_id: str, store: str) -> int:
    """Free what a cancelled refund of `store` held (never what a closed one returned); how many lines."""
    return conn.execute(
        "DELETE FROM returns WHERE claim = ? AND store = ? AND state = ?", (claim_id, store, HELD)
    ).rowcount


def journaled(conn: sqlite3.Connection, store: str, record: SaleRecord) -> None:
    """A store's journal record arrived (ingest, in its batch's transaction): a refund's returned lines are
    recorded as returned (replacing what it held), a cancelled refund frees what it held. Over-returns are
    kept and raised as an alarm, never refused (see the module docstring)."""
    if not record.refund_of:
        return
    if record.kind == "cancel":
        release(conn, record.sale_id, store)
        return
    if record.kind != "sale":
        return
    lines: dict[int, int] = defaultdict(int)
    for line in record.lines:
        if line.origin and not line.voided and line.qty < 0:
            lines[line.origin] += -line.qty
    _put(conn, record.refund_of, record.sale_id, store, dict(lines), RETURNED, record.closed_at)
    found = receipt(conn, record.refund_of)
    if found is None:  # its store's journal has not reached central yet: checked when it is asked about
        return
    sold, now = sold_lines(found), taken(conn, record.refund_of)
    over = [
        f"line {line}: {qty} of {sold.get(line, 0)}" for line, qty in sorted(now.items()) if qty > sold.get(line, 0)
    ]
    if over:
        alarms.raise_alarm(
            conn,
            store,
            "double_return",
            f"refund {record.store}-{record.lane}-{record.receipt_no} of receipt {record.refund_of} gives back more"
            f" than was sold, counting every store's returns ({'; '.join(over)})",
            record.closed_at,
        )
