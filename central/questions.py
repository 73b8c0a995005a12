"""Stores' questions at central, asked over their link: one answer per question type, in ANSWERS.

A gift card move is one durable database job, so a move and its idempotency record commit together;
the rest are lookups by one key. An answer that cannot be given raises Refused: the store's session
hands the asker the reason.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from central.registers import customers, giftcards, rates, returns, stock
from protocol.codec import encode_record
from protocol.frames import (
    Answer,
    CustomerAnswer,
    CustomerQuestion,
    GiftCardAnswer,
    GiftCardMoveQuestion,
    GiftCardQuestion,
    Question,
    RatesAnswer,
    RatesQuestion,
    ReceiptAnswer,
    ReceiptQuestion,
    ReturnClaimAnswer,
    ReturnClaimQuestion,
    ReturnReleaseQuestion,
    StockAnswer,
    StockQuestion,
)
from protocol.link import Refused
from runtime.database import Database

T = TypeVar("T")


async def _stock(db: Database, store: str, question: StockQuestion) -> StockAnswer:
    return StockAnswer(levels=await db.read(lambda c: stock.levels(c, question.item)))


async def _found(db: Database, read: Callable[[sqlite3.Connection], T | None], missing: str) -> T:
    """What one read finds; a question about something central does not hold is refused with `missing`."""
    found = await db.read(read)
    if found is None:
        raise Refused(missing)
    return found


async def _balance(db: Database, store: str, question: GiftCardQuestion) -> GiftCardAnswer:
    card = await _found(db, lambda c: giftcards.balance(c, question.card), f"no gift card {question.card}")
    return GiftCardAnswer(card=card)


async def _rates(db: Database, store: str, question: RatesQuestion) -> RatesAnswer:
    return RatesAnswer(rates=await db.read(lambda c: rates.published(c, question.base)))


async def _customer(db: Database, store: str, question: CustomerQuestion) -> CustomerAnswer:
    missing = f"no customer {question.customer} is registered"
    return CustomerAnswer(name=await _found(db, lambda c: customers.name_of(c, question.customer), missing))


async def _move(db: Database, store: str, question: GiftCardMoveQuestion) -> GiftCardAnswer:
    move = question.move
    if move.store != store:
        raise Refused(f"a move for store {move.store}, not {store}")
    if move.offline:
        raise Refused("offline moves travel in the giftcard stream")
    # A credit only as a refund of this store's receipt, within its limits: giftcards.store_move declines
    # any other with the reason, which the till shows.
    return GiftCardAnswer(card=await db.write(lambda c: giftcards.store_move(c, move), durable=True))


# -- issue 14, receipts: another store's receipt returned at a store, exactly once chain-wide ------------


async def _receipt(db: Database, store: str, question: ReceiptQuestion) -> ReceiptAnswer:
    found = await _found(
        db, lambda c: returns.fetch(c, question.receipt, store), f"central holds no receipt {question.receipt}"
    )
    record, taken = found
    return ReceiptAnswer(body=encode_record(record), returned=taken)


async def _claim(db: Database, store: str, question: ReturnClaimQuestion) -> ReturnClaimAnswer:
    def job(c: sqlite3.Connection) -> None:
        returns.claim(c, question.receipt, question.claim, store, question.lines, _now())

    try:
        await db.write(job, durable=True)
    except returns.Refusal as exc:
        raise Refused(str(exc)) from None
    return ReturnClaimAnswer()


async def _release(db: Database, store: str, question: ReturnReleaseQuestion) -> ReturnClaimAnswer:
    await db.write(lambda c: returns.release(c, question.claim, store), durable=True)
    return ReturnClaimAnswer()


def _now() -> int:
    return time.time_ns() // 1_000_000


ANSWERS: dict[type[Question[Any]], Callable[[Database, str, Any], Awaitable[Answer]]] = {
    StockQuestion: _stock,
    GiftCardQuestion: _balance,
    RatesQuestion: _rates,
    CustomerQuestion: _customer,
    GiftCardMoveQuestion: _move,
    ReceiptQuestion: _receipt,
    ReturnClaimQuestion: _claim,
    ReturnReleaseQuestion: _release,
}


async def answer(db: Database, store: str, question: Question[Any]) -> Answer:
    """Central's answer to a store's question; Refused for one central does not answer."""
    reply = ANSWERS.get(type(question))
    if reply is None:
        raise Refused(f"central does not answer {type(question).__name__}")
    return await reply(db, store, question)
