"""Closing a sale in the database: the one job that journals it, queues it for central, moves its stock and
clears the lane, all in the caller's transaction.

Its own module, not a lane method, because it is the store's definition of "a sale is done" and more than the
lane needs it word for word: the sync benchmark (bench/sync.py) fills a store.db with sales closed by this
same job, so what it replays is what a lane writes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from protocol.frames import RecordTender, SaleRecord, StockMovement, Stream
from storenode import stock
from storenode.journal import chain, index
from storenode.lanes import basket, refunds
from storenode.lanes.basket import LaneState
from storenode.lanes.saved import save_state
from storenode.sync import outbox

JOURNAL_STREAM = Stream.JOURNAL


@dataclass(frozen=True)
class Closed:
    record: SaleRecord  # as journaled
    cleared: LaneState  # the lane after the sale, as saved
    movements: list[StockMovement]  # the sale's stock movements, as recorded
    queued: int  # events queued for central in the commit (the sale, its movements, `extra`'s)


def close_sale(
    conn: sqlite3.Connection,
    state: LaneState,
    *,
    store: str,
    currency: str,
    kind: str,
    closed_at: int,
    signer: chain.Signer,
    tendered: int = 0,
    cash: RecordTender | None = None,
    extra: Callable[[sqlite3.Connection], int] | None = None,
) -> Closed:
    """Journal the sale (`kind` "sale") or cancelled sale ("cancel") on `state`'s lane, signed by `signer`, queue
    it for central, record its stock movements and save the lane cleared. `tendered`/`cash` are the cash closing it (see
    basket.record); `extra` queues more events for central in the same transaction (gift card moves) and says
    how many. A refund of a receipt is checked against the receipt here, once its cash part is known."""

    def build(no: int) -> SaleRecord:
        settled = state
        if kind == "sale" and state.refund_of:  # the cash given back so far, as this transaction reads it
            settled = msgspec.structs.replace(
                state, cash_back=refunds.cash_back_of(conn, state.refund_of, store, currency)
            )
        record = basket.record(
            settled,
            store=store,
            receipt_no=no,
            kind=kind,
            currency=currency,
            closed_at=closed_at,
            tendered=tendered,
            cash=cash,
        )
        if kind == "sale":
            refunds.check(conn, record, store, currency, state.lane)
        return record

    record, _ = chain.append(
        conn, state.lane, build, signer, lambda _record, body: outbox.enqueue(conn, JOURNAL_STREAM, kind, body)
    )
    index.index_record(conn, record)  # issue 14, receipts: looked up by id, period, total, card
    real = kind == "sale" and not state.training  # a training sale moves no stock (storenode.lanes.training)
    movements = stock.sale_movements(store, state.sale_id, closed_at, state.lines) if real else []
    for movement in movements:
        stock.record(conn, movement)
    cleared = basket.cleared(state)
    save_state(conn, cleared)
    queued = 1 + len(movements) + (extra(conn) if extra is not None else 0)
    return Closed(record=record, cleared=cleared, movements=movements, queued=queued)
