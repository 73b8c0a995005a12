"""Returns across the chain (issue 14, receipts): a receipt of another store refunded here, and every refund
held at central so a receipt's line goes back once chain-wide (central/registers/returns.py has the
central side and the whole design).

Here, in order:
1. Opening the refund (`fetch`). Another store's receipt is asked of central (ReceiptQuestion): its record
   as that store journaled it, and what other stores returned or hold of it. Both are kept in this
   store's database (foreign_receipts, foreign_returned) in the job that opens the refund, so the refund's
   checks (storenode.lanes.refunds) read them like the store's own journal, and a restart finds them.
   Central unreachable: refused, `central_unreachable`; this store has no copy to refund against and
   could not make sure no other store refunds the same lines. An own receipt is asked about too when
   central is reachable (what other stores returned of it); offline it opens as it always did.
2. Each returned line (`claim`). Before a line goes into the refund, central is asked to hold the
   refund's lines (all of them so far, under the refund's sale id: ReturnClaimQuestion); central refuses
   a line another store's refund returned or holds (`already_returned`, nothing changes here). For
   another store's receipt an unanswered claim refuses the line (`central_unreachable`); for an own
   receipt the store goes on offline (its journal is the truth for its own receipts, and central records
   the refund when it arrives in the journal stream; a clash with another store is then an alarm there).
3. The close. The refund's journal record travels in the journal stream like any sale; central's ingest
   records its lines as returned, replacing what the claim held. A cancelled refund is released at once
   when central is reachable (ReturnReleaseQuestion), and in any case by its cancel record at ingest.

Crashes: a claim is asked only for a refund already saved on its lane (its sale id), and the line goes in
after central's answer. A `kill -9` between the two leaves central holding one line more than the refund
the lane reloads; the refund's next claim replaces the whole set, its journal record (close or cancel)
settles it at ingest, so nothing stays held for a refund that ends. Nothing is ever given back without
both the claim and the saved line.

Money: what central holds is lines, which is what "exactly once" is about; a line goes back at the price
paid for it on the receipt, so no store pays back more than a line cost. Gift card credits of another
store's receipt are refused by central's gift card rules (a credit names a receipt of the same store).
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass

from protocol.codec import FrameError, decode_record, encode_record
from protocol.frames import ReceiptQuestion, ReturnClaimQuestion, ReturnReleaseQuestion, SaleRecord
from protocol.link import Ask
from protocol.receipts import parse_receipt_id
from runtime.mailbox import Rejected
from storenode.sync.link import NO_ANSWER, LinkDown


def of_other_store(receipt: str, store: str) -> bool:
    parsed = parse_receipt_id(receipt)
    return parsed is not None and parsed[0] != store


def foreign(conn: sqlite3.Connection, receipt: str) -> SaleRecord | None:
    """Central's copy of another store's receipt, as kept when a refund of it opened here."""
    row = conn.execute("SELECT body FROM foreign_receipts WHERE receipt = ?", (receipt.strip(),)).fetchone()
    return decode_record(row[0]) if row else None


def returned_elsewhere(conn: sqlite3.Connection, receipt: str) -> dict[int, int]:
    """Per line of a receipt: what other stores returned or hold of it, as central last said."""
    rows = conn.execute("SELECT line, qty FROM foreign_returned WHERE receipt = ?", (receipt.strip(),))
    return {line: qty for line, qty in rows}


@dataclass(frozen=True)
class Heard:
    """What central said of a receipt when the refund opened: its record (another store's only) and what
    other stores returned or hold of it. None for an own receipt asked of an unreachable central."""

    receipt: str
    record: SaleRecord | None
    returned: dict[int, int]


def keep(conn: sqlite3.Connection, heard: Heard) -> None:
    """Keep what central said, in the job that opens the refund."""
    if heard.record is not None:
        conn.execute(
            "INSERT OR REPLACE INTO foreign_receipts (receipt, body, fetched) VALUES (?,?,?)",
            (heard.receipt, encode_record(heard.record), heard.record.closed_at),
        )
    conn.execute("DELETE FROM foreign_returned WHERE receipt = ?", (heard.receipt,))
    conn.executemany(
        "INSERT INTO foreign_returned (receipt, line, qty) VALUES (?,?,?)",
        [(heard.receipt, line, qty) for line, qty in sorted(heard.returned.items()) if qty > 0],
    )


async def fetch(ask: Ask, receipt: str, store: str) -> Heard | None:
    """Central's word on a receipt being refunded here; refused for another store's receipt central does not
    hold or cannot be asked about; None for an own receipt when central does not answer."""
    rid = receipt.strip()
    other = of_other_store(rid, store)
    try:
        answer = await ask(ReceiptQuestion(receipt=rid))
    except LinkDown as exc:
        if other:
            raise Rejected("unknown_receipt", f"receipt {rid}: {exc}") from None
        return None  # an own receipt central does not hold yet (still on its way): the journal here is the truth
    except NO_ANSWER:
        if other:
            raise Rejected(
                "central_unreachable",
                f"receipt {rid} is from another store: returning it here needs central, which is unreachable now",
            ) from None
        return None
    try:
        record = decode_record(answer.body)
    except FrameError:
        raise Rejected("unknown_receipt", f"central's copy of receipt {rid} cannot be read") from None
    if other and f"{record.store}-{record.lane}-{record.receipt_no}" != rid:
        raise Rejected("unknown_receipt", f"central answered for another receipt than {rid}")
    return Heard(receipt=rid, record=record if other else None, returned=dict(answer.returned))


def claimed_lines(lines: list[tuple[int, int, bool]]) -> dict[int, int]:
    """(origin, qty, voided) of a refund's lines -> per line of the receipt, the quantity returned (positive)."""
    out: dict[int, int] = defaultdict(int)
    for origin, qty, voided in lines:
        if origin and not voided and qty < 0:
            out[origin] += -qty
    return dict(out)


async def claim(ask: Ask, receipt: str, refund: str, lines: dict[int, int], store: str) -> None:
    """Central holds `lines` of `receipt` for the refund `refund` (its sale id), or the line is refused."""
    try:
        await ask(ReturnClaimQuestion(receipt=receipt, claim=refund, lines=lines))
    except LinkDown as exc:
        raise Rejected("already_returned", str(exc)) from None
    except NO_ANSWER:
        if of_other_store(receipt, store):
            raise Rejected(
                "central_unreachable",
                f"receipt {receipt} is from another store: central must hold its returned lines, and it is unreachable",
            ) from None
        # an own receipt: returned offline, recorded at central when the refund arrives in the journal stream


async def release(ask: Ask, refund: str) -> None:
    """Tell central a refund was cancelled (its cancel record in the journal stream does it too)."""
    try:
        await ask(ReturnReleaseQuestion(claim=refund))
    except (LinkDown, *NO_ANSWER):
        pass
