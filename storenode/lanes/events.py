"""Journaling a lane event (park, resume, no-sale, payout, float, cash drop, count, copy, training on/off):
the one job every such action calls, in the caller's transaction, beside the state change it records.

An event is a journal record of kind "event" in the lane's own hash chain, not a row in a side table,
because the fiscal rules want one gap-free, signed sequence per register that accounts for everything
done at it; and so it reaches central through the same verified journal stream as the sales, with no new
trust path. It takes the chain's next number like a sale does (printed receipt numbers then skip the
numbers events took: the journal says what each one was).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Sequence

from protocol.frames import RecordEvent, RecordLine, SaleRecord
from storenode.journal import chain
from storenode.lanes.closing import JOURNAL_STREAM
from storenode.sync import outbox

EVENT_KIND = "event"


def journal_event(
    conn: sqlite3.Connection,
    event: RecordEvent,
    *,
    store: str,
    lane: int,
    operator: str,
    currency: str,
    at: int,
    signer: chain.Signer,
    training: bool = False,
    lines: Sequence[RecordLine] = (),
    total: int = 0,
    opened_at: int = 0,
) -> SaleRecord:
    """Append `event` to `lane`'s chain, signed, and queue it for central, in the caller's transaction; returns
    the record as journaled. `lines`/`total` carry a sale's content where the event is about one (a park), so
    the journal alone can say what was parked. The record's sale_id is the event's own fresh id: central
    keys records by it, and one sale can be parked and resumed many times."""

    def build(no: int) -> SaleRecord:
        return SaleRecord(
            store=store,
            lane=lane,
            receipt_no=no,
            kind=EVENT_KIND,
            sale_id=uuid.uuid4().hex,
            operator=operator,
            opened_at=opened_at or at,
            closed_at=at,
            currency=currency,
            lines=list(lines),
            total=total,
            rounding=0,
            vat=[],
            tenders=[],
            change=0,
            training=training,
            event=event,
        )

    record, _ = chain.append(
        conn, lane, build, signer, lambda _record, body: outbox.enqueue(conn, JOURNAL_STREAM, EVENT_KIND, body)
    )
    return record
