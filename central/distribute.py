"""Master data to the stores: transfers a store pulls a chunk at a time, and a notice whenever central
commits a new catalogue version.

Why pull: the store asks for the next chunk only once it has durably staged the last one, so a store
on a slow line or a busy disk is never flooded, and its position (an opaque cursor it keeps with
the staged rows) survives a dropped link or a restart of either side. A snapshot is nothing special:
it is a transfer from version 0, every row there is.

Why ordered by (version, key): a row changed while a transfer runs gets a newer version and so comes
again later in the same transfer. A transfer ends with a chunk read in the same database transaction
as the version it names, which found nothing more to send: at that point the store's staged rows are
exactly central's catalogue at that version, however long the transfer took. This is what makes
"the store sells from some published version" hold without ever locking central's writers out.

Operators travel like any register, but a store is sent an operator's PIN hash only when the operator
works there ("" otherwise, so a store that held it drops it): a store's copy never holds hashes it has
no use for.

Deleted prices travel as their tombstones' keys, read like one more register. Versions count within
one catalogue, named by its epoch (given when central's database was made): positions carry it, and
a store holding another catalogue's versions is told by the welcome and takes a snapshot.

Imports are committed by `storepos central import` in its own process, so central learns of them by
watching the version (a one-row read every quarter second), not by being told.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec
import trio

from central.registers import catalog
from central.registers.catalog import PRICE_TOMBSTONES, REGISTERS, Register
from protocol.frames import CatalogChunk, CatalogNotice, CatalogPull
from runtime.database import Database

log = logging.getLogger(__name__)

# What a store holds a copy of, in the order a transfer sends it (each refers only to earlier ones).
FIELDS = {
    "vat-rates": "vat_rates",
    "groups": "groups",
    "items": "items",
    "barcodes": "barcodes",
    "prices": "prices",
    "tills": "tills",
    "till-config": "till_configs",
    "price-deletes": "deleted_prices",
    "operators": "operators",
    "discount-reasons": "discount_reasons",
}
_BY_KIND = {**REGISTERS, PRICE_TOMBSTONES.kind: PRICE_TOMBSTONES}
DISTRIBUTED: tuple[Register, ...] = tuple(_BY_KIND[k] for k in FIELDS)
CHUNK_ROWS = 5000
CHUNK_BYTES = 256 * 1024  # well under trio-websocket's 1 MiB message limit, whatever the texts hold
WATCH_INTERVAL = 0.25
NOTICE_TIMEOUT = 5.0

_cursor_encoder = msgspec.msgpack.Encoder()
_cursor_decoder = msgspec.msgpack.Decoder(dict[str, list[str | int]])


class BadPull(ValueError):
    """A pull central cannot serve as asked (a cursor it did not write)."""


def _size(row: Sequence[Any]) -> int:
    return sum(len(v) if isinstance(v, str) else 8 for v in row)


EPOCH_KEY = "@epoch"  # in a cursor: the catalogue its positions belong to


def _cursors(pull: CatalogPull, epoch: str) -> dict[str, list[str | int]]:
    if not pull.cursor:
        return {}
    try:
        cursors = _cursor_decoder.decode(pull.cursor)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise BadPull(f"transfer position is not one central wrote: {exc}") from None
    if cursors.pop(EPOCH_KEY, [epoch]) != [epoch]:
        raise BadPull("transfer position is from another catalogue (central was rebuilt); start over")
    for kind, position in cursors.items():
        register = _BY_KIND.get(kind)
        if register not in DISTRIBUTED or len(position) != 1 + len(register.key):
            raise BadPull(f"transfer position names {kind!r} with {len(position)} values; central did not write it")
    return cursors


def read_chunk(
    conn: sqlite3.Connection, store: str, pull: CatalogPull, *, rows: int = CHUNK_ROWS, size: int = CHUNK_BYTES
) -> CatalogChunk:
    """The next chunk of the transfer `pull` asks for. Run inside one transaction (the database
    actor's jobs are), so `done` and `version` describe one consistent state."""
    current, epoch = catalog.version(conn), catalog.epoch(conn)
    base, cursors = pull.base, _cursors(pull, epoch)
    if base > current:  # the store knows a version central does not (central restored): start over
        base, cursors = 0, {}
    chunk = CatalogChunk(base=base, cursor=b"", done=True, version=current, id=pull.id, epoch=epoch)
    budget_rows, budget_bytes = rows, size
    # Every call reads every register from its position on, so rows of an earlier register changed
    # since it was finished are picked up before the transfer may end.
    for register in DISTRIBUTED:
        if budget_rows <= 0:
            chunk.done = False
            break
        limit = budget_rows
        found = catalog.changed_after(conn, register, base, cursors.get(register.kind), limit, store)
        taken: list[tuple[Any, ...]] = []
        for row in found:
            budget_bytes -= _size(row)
            if budget_bytes < 0 and (taken or budget_rows < rows):
                break  # full; a single row bigger than the budget still goes alone, so a transfer always moves
            taken.append(row)
        if taken:
            last = taken[-1]
            cursors[register.kind] = [last[-1], *(last[register.columns.index(k)] for k in register.key)]
            sent = [row[:-1] for row in taken]
            if register.kind == "operators":  # a PIN hash goes only to the stores the operator works at
                sent = [catalog.operator_for_store(row, store) for row in sent]
            setattr(chunk, FIELDS[register.kind], sent)
        budget_rows -= len(taken)
        if len(taken) < len(found) or len(found) == limit or budget_bytes < 0:
            chunk.done = False  # there may be more of this register
            break
    chunk.cursor = _cursor_encoder.encode({**cursors, EPOCH_KEY: [epoch]})
    return chunk


class Distributor:
    """Tells connected stores about every new catalogue version, as soon as central sees it."""

    name = "distributor"

    def __init__(self, db: Database, stores: Callable[[], dict[str, Callable[[bytes], Awaitable[None]]]]) -> None:
        self.db = db
        self.stores = stores  # store id -> send a frame on its link
        self.version = 0
        self.epoch = ""

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.version, self.epoch = await self.db.read(lambda c: (catalog.version(c), catalog.epoch(c)))
        task_status.started()
        encoder = msgspec.msgpack.Encoder()
        while True:
            await trio.sleep(WATCH_INTERVAL)
            found = await self.db.read(catalog.version)
            if found == self.version:
                continue
            self.version = found
            log.info("catalogue version %d: telling %d store(s)", found, len(self.stores()))
            frame = encoder.encode(CatalogNotice(version=found))
            async with trio.open_nursery() as nursery:  # one slow store must not delay the others
                for store, send in self.stores().items():
                    nursery.start_soon(self._tell, store, send, frame)

    @staticmethod
    async def _tell(store: str, send: Callable[[bytes], Awaitable[None]], frame: bytes) -> None:
        with trio.move_on_after(NOTICE_TIMEOUT) as scope:
            try:
                await send(frame)
            except Exception as exc:  # a link closing now is the link's business, not ours
                log.info("could not tell store %s about the new catalogue: %s", store, exc)
        if scope.cancelled_caught:
            log.warning("store %s did not take the catalogue notice within %g s", store, NOTICE_TIMEOUT)
