"""Stores' questions at central, asked over their link. A gift card move is one durable database job,
so a move and its idempotency record commit together; the rest are lookups by one key."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import msgspec

from central.registers import customers, giftcards, rates, stock
from protocol.frames import GiftCardMove, LinkReply, LinkRequest
from runtime.database import Database

# A question answered by one read with one string key: the reader, and what to say when it finds nothing
# ("" for a reader that always finds something, a list).
LOOKUPS: dict[str, tuple[Callable[[sqlite3.Connection, str], Any], str]] = {
    "stock?": (stock.levels, ""),
    "giftcard?": (giftcards.balance, "no gift card {}"),
    "rates?": (rates.published, ""),
    "customer?": (customers.name_of, "no customer {} is registered"),
}


async def answer(db: Database, store: str, request: LinkRequest) -> LinkReply:
    try:
        if request.kind == "giftcard.move":
            move = msgspec.msgpack.decode(request.body, type=GiftCardMove)
            if move.store != store:
                return LinkReply(id=request.id, ok=False, error=f"a move for store {move.store}, not {store}")
            if move.offline:
                return LinkReply(id=request.id, ok=False, error="offline moves travel in the giftcard stream")
            state = await db.write(lambda c: giftcards.move(c, move), durable=True)
            return LinkReply(id=request.id, ok=True, body=msgspec.msgpack.encode(state))
        if request.kind not in LOOKUPS:
            return LinkReply(id=request.id, ok=False, error=f"unknown question {request.kind!r}")
        read, missing = LOOKUPS[request.kind]
        key = msgspec.msgpack.decode(request.body, type=str)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return LinkReply(id=request.id, ok=False, error=f"bad {request.kind} question: {exc}")
    found = await db.read(lambda c: read(c, key))
    if found is None and missing:
        return LinkReply(id=request.id, ok=False, error=missing.format(key))
    return LinkReply(id=request.id, ok=True, body=msgspec.msgpack.encode(found))
