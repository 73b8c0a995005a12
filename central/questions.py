"""Stores' questions at central, asked over their link: one answer per question type, in ANSWERS.

A gift card move is one durable database job, so a move and its idempotency record commit together;
the rest are lookups by one key. An answer that cannot be given raises Refused: the store's session
hands the asker the reason.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from central.registers import customers, giftcards, rates, stock
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


ANSWERS: dict[type[Question[Any]], Callable[[Database, str, Any], Awaitable[Answer]]] = {
    StockQuestion: _stock,
    GiftCardQuestion: _balance,
    RatesQuestion: _rates,
    CustomerQuestion: _customer,
    GiftCardMoveQuestion: _move,
}


async def answer(db: Database, store: str, question: Question[Any]) -> Answer:
    """Central's answer to a store's question; Refused for one central does not answer."""
    reply = ANSWERS.get(type(question))
    if reply is None:
        raise Refused(f"central does not answer {type(question).__name__}")
    return await reply(db, store, question)
