"""Stores' payment questions at central, asked over their link: gift card moves and balances, exchange
rates, invoice customers. Each is one database job, so a move and its idempotency record commit together."""

from __future__ import annotations

import msgspec

from central.registers import customers, giftcards, rates
from protocol.frames import GiftCardMove, LinkReply, LinkRequest
from runtime.database import Database

QUESTIONS = ("giftcard.move", "giftcard?", "rates?", "customer?")


async def answer(db: Database, store: str, request: LinkRequest) -> LinkReply:
    try:
        match request.kind:
            case "giftcard.move":
                move = msgspec.msgpack.decode(request.body, type=GiftCardMove)
                if move.store != store:
                    return LinkReply(id=request.id, ok=False, error=f"a move for store {move.store}, not {store}")
                if move.offline:
                    return LinkReply(id=request.id, ok=False, error="offline moves travel in the giftcard stream")
                state = await db.write(lambda c: giftcards.move(c, move), durable=True)
                return LinkReply(id=request.id, ok=True, body=msgspec.msgpack.encode(state))
            case "giftcard?":
                card = msgspec.msgpack.decode(request.body, type=str)
                found = await db.read(lambda c: giftcards.balance(c, card))
                if found is None:
                    return LinkReply(id=request.id, ok=False, error=f"no gift card {card}")
                return LinkReply(id=request.id, ok=True, body=msgspec.msgpack.encode(found))
            case "rates?":
                base = msgspec.msgpack.decode(request.body, type=str)
                found_rates = await db.read(lambda c: rates.published(c, base))
                return LinkReply(id=request.id, ok=True, body=msgspec.msgpack.encode(found_rates))
            case "customer?":
                customer = msgspec.msgpack.decode(request.body, type=str)
                name = await db.read(lambda c: customers.name_of(c, customer))
                if name is None:
                    return LinkReply(id=request.id, ok=False, error=f"no customer {customer} is registered")
                return LinkReply(id=request.id, ok=True, body=msgspec.msgpack.encode(name))
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return LinkReply(id=request.id, ok=False, error=f"bad {request.kind} question: {exc}")
    return LinkReply(id=request.id, ok=False, error=f"unknown question {request.kind!r}")
