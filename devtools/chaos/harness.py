"""The fault-injection harness: a store selling on several lanes while everything around it fails.

Central and the store run as real processes; the chaos proxy sits on the link between them and cuts,
duplicates, delays and reorders frames; both nodes are killed with SIGKILL at random instants (the
store mid-commit, since its lanes never stop selling) and restarted. Afterwards `check` compares
central with the store's own files: the same receipts exactly once, the same per-tender totals, the
same hash-chain heads, the same stock. Used by tests/chaos (short) and bench/chaos.py (long).
"""

from __future__ import annotations

import random
import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import trio
from trio_websocket import ConnectionClosed, HandshakeError

from central.registers import sales
from devtools.certificates import provision
from devtools.chaos.proxy import ChaosProxy, Faults
from devtools.processes import Processes, enrol
from protocol import identity
from protocol.codec import decode_record
from protocol.frames import CashTender, Error, Login, Receipt, ReturnItem, SaleState, Scan
from storenode.app import KEY_FILE
from storenode.journal import chain as journal_chain
from till.client import TillDisconnected, connect

CODES = ["7310000000010", "7310000000027", "7310000000034", "7310000000171", "7310000000089"]

STORE_TOML = """\
store = "CHAOS"
lanes = [{lanes}]
data_dir = "store-data"

[gateway]
port = 0

[central]
url = "{central}"
ca = "{ca}"
heartbeat = {heartbeat}
batch = 50
"""


@dataclass
class ChaosPlan:
    rounds: int = 6
    lanes: int = 3
    seed: int = 1
    round_seconds: tuple[float, float] = (0.4, 1.5)
    kill_central_every: int = 2
    heartbeat: float = 0.5
    faults: Faults = field(default_factory=lambda: Faults(cut=0.01, duplicate=0.05, reorder=0.05, delay=0.02))
    settle_seconds: float = 120.0


@dataclass
class ChaosResult:
    receipts: dict[str, int]  # sale id -> total, for every receipt a till was handed
    rounds: int
    store_kills: int
    central_kills: int
    proxy: dict[str, int]


async def _sell(url: str, lane: int, receipts: dict[str, int], rng: random.Random) -> None:
    """Sell small sales (now and then with a return) until the store goes away."""
    try:
        async with connect(url, lane=lane, till=f"chaos-{lane}") as till:
            await till.request(Login(operator="1", pin="1234"))
            while True:
                for _ in range(rng.randint(1, 4)):
                    answer = await till.request(Scan(code=rng.choice(CODES), qty=rng.randint(1, 3)))
                    if not isinstance(answer, SaleState):
                        raise AssertionError(f"lane {lane}: scan answered {answer!r}")
                if rng.random() < 0.1:
                    await till.request(ReturnItem(code=rng.choice(CODES)))
                assert till.state is not None
                answer = await till.request(CashTender(amount=max(till.state.cash_due, 0) + rng.choice([0, 500])))
                if isinstance(answer, Error) and answer.code == "no_sale":
                    continue  # the previous incarnation journaled it and died before answering
                if not isinstance(answer, Receipt):
                    raise AssertionError(f"lane {lane}: tender answered {answer!r}")
                receipts[answer.sale_id] = answer.total
    except (OSError, ConnectionClosed, HandshakeError, TillDisconnected, ConnectionRefusedError, trio.TooSlowError):
        pass


async def run_chaos(folder: Path, plan: ChaosPlan, chain: Path | None = None) -> ChaosResult:
    """`chain`: TLS material to copy into central's folder (a test session's); made here without it."""
    rng = random.Random(plan.seed)
    procs = Processes(folder)
    central_db = folder / "central.db"
    receipts: dict[str, int] = {}
    store_kills = central_kills = 0
    try:
        ca = provision(folder, chain)  # central's folder: it serves wss, the proxy too, the store trusts both
        central, central_url = await procs.start("central", "central", "run", "--db", str(central_db), "--port", "0")
        port = central_url.rsplit(":", 1)[1]
        async with trio.open_nursery() as nursery:
            proxy = ChaosProxy(central_url, plan.faults, rng=random.Random(plan.seed + 1), chain=folder)
            await nursery.start(proxy.run)
            config = folder / "store.toml"
            lanes = ", ".join(str(n) for n in range(1, plan.lanes + 1))
            config.write_text(STORE_TOML.format(lanes=lanes, central=proxy.url, ca=ca, heartbeat=plan.heartbeat))
            enrol(central_db, config)
            for round_no in range(plan.rounds):
                store, url = await procs.start(f"store-{round_no}", "store", "run", "--config", str(config))
                async with trio.open_nursery() as sellers:
                    for lane in range(1, plan.lanes + 1):
                        sellers.start_soon(_sell, url, lane, receipts, random.Random(rng.random()))
                    await trio.sleep(rng.uniform(*plan.round_seconds))
                    if rng.random() < 0.3:
                        proxy.cut_all()
                    await trio.sleep(rng.uniform(*plan.round_seconds))
                    procs.kill9(store)
                    store_kills += 1
                    if plan.kill_central_every and round_no % plan.kill_central_every == 1:
                        procs.kill9(central)
                        await central.wait()
                        central_kills += 1
                        central, _ = await procs.start(
                            f"central-{round_no}", "central", "run", "--db", str(central_db), "--port", port
                        )
                await store.wait()
            proxy.faults = Faults()  # let the backlog drain over a quiet link
            store, url = await procs.start("store-final", "store", "run", "--config", str(config))
            with trio.fail_after(plan.settle_seconds):
                await _drained(url)
            nursery.cancel_scope.cancel()
        stats = proxy.stats
        return ChaosResult(
            receipts=receipts,
            rounds=plan.rounds,
            store_kills=store_kills,
            central_kills=central_kills,
            proxy={
                "links": stats.links,
                "messages": stats.messages,
                "cuts": stats.cuts,
                "duplicates": stats.duplicates,
                "reorders": stats.reorders,
            },
        )
    finally:
        await procs.stop_all()


async def _drained(url: str) -> None:
    """Until the store says its outbox is empty and its link is up."""
    while True:
        try:
            async with connect(url, lane=0, attach=False) as client:
                while True:
                    status = await client.status()
                    if getattr(status, "outbox", 1) == 0 and getattr(status, "link", "") == "online":
                        return
                    await trio.sleep(0.2)
        except (OSError, ConnectionClosed, HandshakeError, TillDisconnected):
            await trio.sleep(0.2)


class _Totals(msgspec.Struct):
    receipts: int = 0
    sales_total: int = 0
    tendered: dict[str, int] = {}
    change: int = 0


def _totals(bodies: list[bytes]) -> _Totals:
    out = _Totals(tendered=defaultdict(int))
    for body in bodies:
        r = decode_record(body)
        out.receipts += 1
        if r.kind == "sale":
            out.sales_total += r.total
            out.change += r.change
            for t in r.tenders:
                out.tendered[t.kind] += t.amount
    out.tendered = dict(out.tendered)
    return out


def check(folder: Path, store: str, receipts: dict[str, int]) -> list[str]:
    """Every way central and the store could disagree, as sentences; empty means they agree."""
    problems: list[str] = []
    local = sqlite3.connect(folder / "store-data" / "store.db")
    remote = sqlite3.connect(folder / "central.db")
    try:
        journal = local.execute("SELECT lane, receipt_no, sale_id, body, hash FROM journal").fetchall()
        at_central = remote.execute(
            "SELECT lane, receipt_no, sale_id, body FROM sales WHERE store = ?", (store,)
        ).fetchall()
        keys_here = Counter((lane, no) for lane, no, *_ in journal)
        keys_there = Counter((lane, no) for lane, no, *_ in at_central)
        if dup := [k for k, n in keys_there.items() if n > 1]:
            problems.append(f"receipts at central more than once: {dup[:10]}")
        if missing := sorted(set(keys_here) - set(keys_there)):
            problems.append(f"{len(missing)} receipts never reached central, e.g. {missing[:10]}")
        if extra := sorted(set(keys_there) - set(keys_here)):
            problems.append(f"{len(extra)} receipts at central the store does not have, e.g. {extra[:10]}")
        here, there = _totals([row[3] for row in journal]), _totals([row[3] for row in at_central])
        if here != there:
            problems.append(f"totals differ: store {here} central {there}")
        key = identity.load_private(folder / "store-data" / KEY_FILE)
        public = identity.public_bytes(key)
        _, broken = journal_chain.verify(local, store, {identity.key_id(public): public})  # the store's own chain
        problems += [f"store journal: {p}" for p in broken]
        _, unverified = sales.verify(remote, store)  # central's copy: every record's own signature too
        problems += [f"central journal: {p}" for p in unverified]
        heads_here = {}
        for lane, no, _, _, digest in sorted(journal):
            heads_here[lane] = (no, digest)
        heads_there, chain_problems = sales.chains(remote, store)
        problems += chain_problems
        for lane, (no, digest) in heads_here.items():
            chain = heads_there.get(lane)
            if chain is None or (chain.receipts, chain.head) != (no, digest):
                problems.append(f"lane {lane}: hash chain head differs between store and central")
        by_sale = {sale_id: decode_record(body).total for _, _, sale_id, body, _ in journal}
        for sale_id, total in receipts.items():
            if by_sale.get(sale_id) != total:
                problems.append(f"receipt {sale_id} handed to a till is missing or different in the journal")
        stock_here = dict(local.execute("SELECT item, qty FROM stock WHERE qty != 0").fetchall())
        stock_there = dict(
            remote.execute("SELECT item, qty FROM stock WHERE location = ? AND qty != 0", (store,)).fetchall()
        )
        sums = "SELECT item, SUM(delta) FROM stock_moves WHERE store = ? GROUP BY item"
        moved = dict(remote.execute(sums, (store,)).fetchall())
        if stock_here != stock_there:
            problems.append(f"stock differs: store {stock_here} central {stock_there}")
        if {k: v for k, v in moved.items() if v} != stock_there:
            problems.append(f"central's stock is not the sum of its deltas: {moved} vs {stock_there}")
        sold: Counter[str] = Counter()
        for _, _, _, body, _ in journal:
            r = decode_record(body)
            if r.kind == "sale":
                for line in r.lines:
                    if not line.voided:
                        sold[line.item] -= line.qty
        if {k: v for k, v in sold.items() if v} != stock_here:
            problems.append(f"store stock is not what its journal sold: {dict(sold)} vs {stock_here}")
    finally:
        local.close()
        remote.close()
    return problems
