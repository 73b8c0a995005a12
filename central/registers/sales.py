"""The chain's sales journal at central: each store's journal records, as the store hashed and signed
them, verified as they arrive.

Ingest (`Incoming`, one per batch of a store's journal stream) checks every record: the receipt
number must be the lane's last at central + 1 (gapless per lane), the record's chain hash is
derived from central's *own* previous head of that lane (never taken from the wire), and it must be
signed by a key central holds for the store. Every record's own signature is stored with it.

Which signatures are verified on ingest, and why not all: an Ed25519 verification costs about
170 us here, more than everything else central does per sale, and a 100,000-sale backlog must replay
over TLS with signatures within 1.3x of the plain replay. So on ingest central verifies the signature
of the *last* record of each lane in each batch, after checking the hash continuity of every record
before it: that signature covers the head hash, and the head hash covers the whole chain before it
(hash = SHA-256(prev || body) from central's own previous head), so a forged or altered record
anywhere in the batch changes the head hash and the batch is refused. What this does not check at
ingest is the *other* records' own signature bytes (a record whose body is authentic but whose
stored signature is garbage); `verify` (`storepos central verify-journal`) checks every stored
record's own signature and the whole chain: the full audit.

A batch that fails any check is refused whole (cursors.Untrusted) and raised as an alarm: nothing of
it is kept, and the store keeps its events.
"""

from __future__ import annotations

import sqlite3

import msgspec

from central.registers import identities, returns
from central.registers.cursors import EventError, Untrusted
from protocol.chain import GENESIS, chain_hash, signature_holds, signature_problem
from protocol.codec import FrameError, decode_record
from protocol.frames import Event, SaleRecord
from protocol.versions import shown

AFTER_A_HOLE = b"\xff" * 32  # no store chain starts here, so nothing after a hole can match


class StoreSummary(msgspec.Struct):
    """A store's figures at central. Refunds (sales of kind "sale" naming the receipt they pay back) are
    counted apart: `sales` and `total` are what was sold, `refunds` and `refunded` (positive) what went back
    on receipts, so a day of 10 sales and 2 refunds reads as that, not as 12 sales of a smaller total. A
    receipt-less return inside a sale stays in that sale: it names no receipt, and is part of its total."""

    store: str
    sales: int
    cancelled: int
    total: int
    currency: str
    last_closed_at: int
    refunds: int = 0
    refunded: int = 0
    training: int = 0  # training sales (issue 14): counted apart, never in `sales` or `total`


class Listed(msgspec.Struct):
    """One journal record as central lists it: `kind` is sale, refund, cancel or event."""

    store: str
    lane: int
    receipt_no: int
    kind: str
    sale_id: str
    currency: str
    total: int
    refund_of: str = ""  # a refund: the receipt it pays back
    salesperson: str = ""
    training: bool = False  # a training sale (issue 14): listed, never counted


def listed_kind(record: SaleRecord) -> str:
    """What a record is, as central lists and counts it: the journal keeps a refund as kind "sale" (stores
    before and since write it so; the record's bytes are what the chain hashes), and `refund_of` says it is one."""
    return "refund" if record.kind == "sale" and record.refund_of else record.kind


class Incoming:
    """One batch of a store's journal events, verified and applied record by record (as the
    cursors.Applier), then `verify_heads` checks the signature of each lane's last record."""

    def __init__(self, conn: sqlite3.Connection, store: str) -> None:
        self.store = store
        self.keys = identities.keys(conn, store)
        self.heads: dict[int, tuple[int, bytes]] = {}  # lane -> (last receipt, its hash) as central holds it
        self.last: dict[int, tuple[Event, bytes]] = {}  # lane -> this batch's last event on it, and its hash

    def __call__(self, conn: sqlite3.Connection, store: str, event: Event) -> None:
        if event.kind not in ("sale", "cancel", "event"):
            raise EventError(f"event {event.seq}: unknown kind {shown(event.kind)!r}")
        record: SaleRecord = decode_record(event.body)
        if record.store != store or record.kind != event.kind:
            raise EventError(f"event {event.seq}: record is for store {shown(record.store)!r} kind {record.kind!r}")
        lane = record.lane
        if lane not in self.heads:
            self.heads[lane] = head(conn, store, lane)
        last_no, prev = self.heads[lane]
        where = f"journal seq {event.seq} (lane {lane} receipt {record.receipt_no})"
        if record.receipt_no != last_no + 1:
            raise Untrusted(
                "receipt_gap", f"{where}: central's last receipt of lane {lane} is {last_no}, the next is {last_no + 1}"
            )
        if not event.sig:
            raise Untrusted("bad_signature", f"{where}: not signed")
        if event.key not in self.keys:
            raise Untrusted("unknown_key", f"{where}: signed by key {shown(event.key)!r}, not one of store {store}'s")
        digest = chain_hash(prev, event.body)
        conn.execute(
            "INSERT INTO sales (store, lane, receipt_no, kind, sale_id, currency, total, closed_at, seq, body,"
            " hash, sig, key, refund_of, training) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                store,
                lane,
                record.receipt_no,
                record.kind,
                record.sale_id,
                record.currency,
                record.total,
                record.closed_at,
                event.seq,
                event.body,
                digest,
                event.sig,
                event.key,
                record.refund_of,
                record.training,
            ),
        )
        self.heads[lane] = (record.receipt_no, digest)
        self.last[lane] = (event, digest)
        returns.journaled(conn, store, record)  # issue 14: a refund's lines returned, chain-wide

    def verify_heads(self) -> None:
        """The signature of each lane's newest record in the batch, over the head hash central derived:
        it vouches for every record before it (see the module docstring)."""
        for lane, (event, digest) in self.last.items():
            if not signature_holds(self.keys[event.key], event.sig, self.store, digest):
                receipt = self.heads[lane][0]
                raise Untrusted(
                    "bad_signature",
                    f"journal seq {event.seq} (lane {lane} receipt {receipt}): the signature does not verify over"
                    f" the chain of lane {lane} up to it: a record of this batch on lane {lane} was forged or altered",
                )


def same(conn: sqlite3.Connection, store: str, event: Event) -> bool:
    """Whether a journal event under a seq central already holds is the one it applied (cursors.Same):
    the sales row its record names must be that seq's, byte for byte. No digest or seq index is
    needed: a different event under the seq either names another row, or the same row with other
    bytes. A seq under the cursor with no such row is never "the same", so never acknowledged: the
    store would delete a sale central does not have."""
    try:
        record = decode_record(event.body)
    except FrameError:
        return False
    row = conn.execute(
        "SELECT seq, kind, body FROM sales WHERE store = ? AND lane = ? AND receipt_no = ?",
        (store, record.lane, record.receipt_no),
    ).fetchone()
    return row is not None and (row[0], row[1], bytes(row[2])) == (event.seq, event.kind, event.body)


def head(conn: sqlite3.Connection, store: str, lane: int) -> tuple[int, bytes]:
    """The lane's last receipt at central and its chain hash: stored since central verifies; derived
    from the bodies for a lane whose newest row came before that (refused if that copy has a hole)."""
    row = conn.execute(
        "SELECT receipt_no, hash FROM sales WHERE store = ? AND lane = ? ORDER BY receipt_no DESC LIMIT 1",
        (store, lane),
    ).fetchone()
    if row is None:
        return 0, GENESIS
    last, digest = row
    if digest:
        return last, bytes(digest)
    hashes = receipt_hashes(conn, store, lane)
    if list(hashes) != list(range(1, last + 1)):
        raise Untrusted("chain_broken", f"central's copy of store {store} lane {lane} has a hole before {last}")
    return last, hashes[last]


def verify(conn: sqlite3.Connection, store: str | None = None) -> tuple[int, list[str]]:
    """The full audit of central's journal (every store, or one): each lane's receipts gapless from 1,
    each stored hash re-derived from the bodies, every record's own signature verified by the key it
    names. Returns (records checked, problems naming store, lane and receipt)."""
    problems: list[str] = []
    checked = 0
    stores = (
        [store] if store is not None else [r[0] for r in conn.execute("SELECT DISTINCT store FROM sales ORDER BY 1")]
    )
    for name in stores:
        keys = identities.keys(conn, name)
        expected, prev, lane_of = 1, GENESIS, None
        rows = conn.execute(
            "SELECT lane, receipt_no, body, hash, sig, key FROM sales WHERE store = ? ORDER BY lane, receipt_no",
            (name,),
        )
        for lane, receipt_no, body, stored, sig, key in rows:
            if lane != lane_of:
                expected, prev, lane_of = 1, GENESIS, lane
            checked += 1
            where = f"store {shown(name)} lane {lane} receipt {receipt_no}"
            if receipt_no != expected:
                problems.append(f"{where}: expected receipt {expected} (gap)")
                prev = AFTER_A_HOLE
            digest = chain_hash(prev, body)
            if stored and stored != digest:
                problems.append(f"{where}: stored hash differs from the chain re-derived from the bodies")
            problem = signature_problem(keys, key, sig, name, digest)
            if problem is not None:
                unsigned = " (applied before central verified signatures)" if not sig else ""
                problems.append(f"{where}: {problem}{unsigned}")
            try:
                record = decode_record(body)
            except FrameError as exc:
                problems.append(f"{where}: {exc}")
            else:
                if (record.store, record.lane, record.receipt_no) != (name, lane, receipt_no):
                    problems.append(f"{where}: the record inside names another store, lane or receipt")
            expected, prev = receipt_no + 1, digest
    return checked, problems


def summaries(conn: sqlite3.Connection) -> list[StoreSummary]:
    """Each store's sales, cancelled sales and refunds, apart; training sales (storenode.lanes.training) only
    counted apart, never in the figures. Rows stored before central kept `refund_of` (NULL there) are told
    apart by their bodies, so an old journal's refunds are not counted as sales (no training existed then)."""
    real = "NOT training"
    rows = conn.execute(
        f"SELECT store, SUM(kind = 'sale' AND refund_of IS '' AND {real}), SUM(kind = 'cancel' AND {real}),"
        f" SUM(CASE WHEN kind = 'sale' AND refund_of IS '' AND {real} THEN total ELSE 0 END), MAX(currency),"
        f" MAX(closed_at), SUM(kind = 'sale' AND refund_of > '' AND {real}),"
        f" SUM(CASE WHEN kind = 'sale' AND refund_of > '' AND {real} THEN -total ELSE 0 END),"
        " SUM(kind = 'sale' AND training) FROM sales GROUP BY store ORDER BY store"
    )
    found = [StoreSummary(*row) for row in rows]
    by_store = {summary.store: summary for summary in found}
    for store, body in conn.execute("SELECT store, body FROM sales WHERE kind = 'sale' AND refund_of IS NULL"):
        summary, record = by_store[store], decode_record(body)
        if record.refund_of:
            summary.refunds += 1
            summary.refunded -= record.total
        else:
            summary.sales += 1
            summary.total += record.total
    return found


def receipts(conn: sqlite3.Connection, store: str) -> list[SaleRecord]:
    rows = conn.execute("SELECT body FROM sales WHERE store = ? ORDER BY lane, receipt_no", (store,))
    return [decode_record(body) for (body,) in rows]


def listing(conn: sqlite3.Connection, store: str) -> list[Listed]:
    """A store's journal as central lists it (`storepos central sales --store`): refunds as refunds, with
    the receipt each pays back, and the salesperson of each sale that has one."""
    return [
        Listed(
            store=r.store,
            lane=r.lane,
            receipt_no=r.receipt_no,
            kind=listed_kind(r),
            sale_id=r.sale_id,
            currency=r.currency,
            total=r.total,
            refund_of=r.refund_of,
            salesperson=r.salesperson,
            training=r.training,
        )
        for r in receipts(conn, store)
    ]


class LaneChain(msgspec.Struct):
    lane: int
    receipts: int
    head: bytes  # the hash of the last receipt, chained from the first as the store chained it


def chains(conn: sqlite3.Connection, store: str) -> tuple[dict[int, LaneChain], list[str]]:
    """Re-derive every lane's hash chain from the bodies central holds: if a head equals the store's
    journal head, every receipt before it is byte-identical too. Problems name lane and receipt."""
    out: dict[int, LaneChain] = {}
    problems: list[str] = []
    rows = conn.execute("SELECT lane, receipt_no, body FROM sales WHERE store = ? ORDER BY lane, receipt_no", (store,))
    for lane, receipt_no, body in rows:
        chain = out.setdefault(lane, LaneChain(lane=lane, receipts=0, head=GENESIS))
        if receipt_no != chain.receipts + 1:
            problems.append(f"store {store} lane {lane}: receipt {receipt_no} follows {chain.receipts}")
        chain.receipts = receipt_no
        chain.head = chain_hash(chain.head, body)
    return out, problems


def lanes(conn: sqlite3.Connection, store: str) -> dict[int, int]:
    return dict(conn.execute("SELECT lane, MAX(receipt_no) FROM sales WHERE store = ? GROUP BY lane", (store,)))


def receipt_hashes(conn: sqlite3.Connection, store: str, lane: int) -> dict[int, bytes]:
    """Each receipt's chain hash as central re-derives it from the bytes it holds. After a hole in
    central's copy the chain cannot continue, so every later receipt shows as a difference too."""
    out: dict[int, bytes] = {}
    head, expected = GENESIS, 1
    rows = conn.execute(
        "SELECT receipt_no, body FROM sales WHERE store = ? AND lane = ? ORDER BY receipt_no", (store, lane)
    )
    for receipt_no, body in rows:
        if receipt_no != expected:
            head = AFTER_A_HOLE
        head = chain_hash(head, body)
        out[receipt_no] = head
        expected = receipt_no + 1
    return out
