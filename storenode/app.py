"""The store node's supervision tree, assembled from its config.

root (one-for-all: the database first, everything else depends on it)
  ├─ database
  ├─ journal signing (transient: signs rows journaled before records were signed, before the link sends)
  ├─ catalog load (transient: runs once per root start)
  ├─ lanes (one-for-one, escalates: a lane that keeps dying means the node is unwell)
  ├─ devices (one-for-one, never escalates: a dead printer must not stop a lane)
  ├─ sync (never escalates: the store sells offline)
  └─ till gateway
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import trio

from devices.scanner import ScanEvent
from protocol.frames import (
    ActorStatus,
    GiftCardInfo,
    GiftCardQuery,
    GiftCardQuestion,
    ItemInfo,
    ItemSearch,
    PriceCheck,
    Scan,
    SearchResult,
    Status,
    StatusRequest,
    StockAt,
    StockInfo,
    StockQuery,
    StockQuestion,
)
from protocol.gs1 import decode as decode_label
from protocol.identity import IdentityError
from runtime.clock import Clock, SystemClock
from runtime.database import Database
from runtime.health import HealthBoard
from runtime.mailbox import ActorFailed, Rejected
from runtime.supervision import Backoff, ChildSpec, Intensity, Restart, Strategy, Supervisor
from storenode import gateway_tls, operators, peripherals, stock, till_credentials
from storenode import identity as store_identity
from storenode.config import StoreConfig
from storenode.gateway import LANE_TIMEOUT, Gateway
from storenode.journal import chain, index
from storenode.lanes import parking
from storenode.lanes.basket import Item
from storenode.lanes.lane import Do, Lane, Republish, StoreContext
from storenode.schema import MIGRATIONS
from storenode.sync import replica
from storenode.sync.catalog import CatalogFollower
from storenode.sync.link import NO_ANSWER, LinkDown, SyncLink
from storenode.sync.outbox import OutboxSignal

log = logging.getLogger(__name__)

KEY_FILE = Path(store_identity.FOLDER) / store_identity.KEY  # under the store's data_dir


def load_signer(config: StoreConfig) -> chain.Signer:
    """The store key as the journal signs with it: read once here (made, and logged, when there is none),
    so lanes get a signer handed down instead of reading key files. A key file that cannot be used is
    said here and the node sells on: its records are journaled unsigned and signed at the first start
    with a usable key (chain.sign_unsigned), before the link sends them. After a rotation central has
    accepted, records are signed with the old key until the next start: central keeps retired keys."""
    try:
        me, _ = store_identity.load(config.data_path, config.store)
    except IdentityError as exc:
        log.error("store %s journals unsigned until its key can be used: %s", config.store, exc)
        return chain.Signer(config.store, None)
    return chain.Signer(config.store, me.key)


def _private(db: Path) -> None:
    """The database file readable by this user only (0600), made so before SQLite opens it: SQLite
    creates its -wal and -shm files with the database's own permissions."""
    if db.exists():
        os.chmod(db, 0o600)
    else:
        os.close(os.open(db, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600))


class StoreNode:
    def __init__(self, config: StoreConfig, *, clock: Clock | None = None) -> None:
        self.config = config
        config.data_path.mkdir(parents=True, exist_ok=True)
        catalog_path = Path(config.catalog) if config.catalog else replica.demo_catalog_path()
        self.catalog = replica.read_catalog(catalog_path)  # refuse a bad catalogue before anything starts
        _private(config.db_path)  # it holds operators' PIN hashes
        self.health = HealthBoard()
        self.db = Database(config.db_path, MIGRATIONS)
        self.signal = OutboxSignal()
        self.signer = load_signer(config)
        self.lane_devices, self.device_specs = peripherals.build(config, self.health, self._scanned)
        self.clock = clock or SystemClock()
        self.catalog_follower = CatalogFollower(self.db, self.health, self.clock)
        self.link = SyncLink(config, self.db, self.signal, self.health, catalog=self.catalog_follower)
        self.ctx = StoreContext(
            config=config,
            db=self.db,
            health=self.health,
            clock=self.clock,
            signal=self.signal,
            link_state=lambda: ("online" if self.link.online else "offline") if config.central.url else "",
            ask=self.link.ask,
            signer=self.signer,
            devices=self.lane_devices,
        )
        self.lanes = {n: Lane(n, self.ctx) for n in config.lanes}
        owners = {name: n for n, mine in self.lane_devices.items() for name in mine.names}
        self.health.listeners.append(lambda h: self._republish(owners.get(h.name)))
        self.link.on_change.append(self._link_changed)
        self.gateway = Gateway(
            config,
            self.lanes,
            {
                StatusRequest: lambda _: self.status(),
                StockQuery: self.stock_query,
                ItemSearch: self.search,
                PriceCheck: self.price_check,
                GiftCardQuery: self.giftcard_query,
            },
            self.admit,
            gateway_tls.context(config),
        )

    def _link_changed(self, online: bool) -> None:
        for number in self.lanes:
            self._republish(number)

    def _republish(self, lane: int | None) -> None:
        if lane in self.lanes:
            self.lanes[lane].mailbox.tell_nowait(Republish())  # a full mailbox is busy and publishes soon

    async def _scanned(self, lane: int, event: ScanEvent) -> None:
        """A scan from the lane's scanner is exactly a scan from its till; refusals reach the tills."""
        with contextlib.suppress(Rejected, ActorFailed, trio.TooSlowError), trio.fail_after(LANE_TIMEOUT):
            await self.lanes[lane].mailbox.ask(Do(Scan(code=event.code), None))

    @property
    def url(self) -> str:
        return self.gateway.url

    async def admit(self, credential: str, lane: int) -> str:
        """Why a till presenting `credential` may not say hello on `lane`, or "" (storenode.till_credentials)."""
        return await self.db.read(lambda c: till_credentials.check(c, credential, lane))

    def tree(self) -> Supervisor:
        lanes = Supervisor(
            "lanes",
            [ChildSpec(lane.name, lane.run) for lane in self.lanes.values()],
            intensity=Intensity(max_restarts=5, within=10.0),
            health=self.health,
        )
        devices = Supervisor(
            "devices",
            self.device_specs,
            backoff=Backoff(initial=0.5, cap=30.0),
            escalate=False,
            health=self.health,
        )
        sync = Supervisor(
            "sync-supervisor", [ChildSpec(self.link.name, self.link.run)], escalate=False, health=self.health
        )
        children = [
            ChildSpec("database", self.db.run),
            ChildSpec("journal-signing", self._sign_journal, Restart.TRANSIENT),
            ChildSpec("catalog", self._load_catalog, Restart.TRANSIENT),
            ChildSpec("lanes", lanes.run),
            ChildSpec("devices", devices.run),
            ChildSpec("sync-supervisor", sync.run),
            ChildSpec("gateway", self.gateway.run),
        ]
        if not self.device_specs:  # a supervisor of nothing would end at once, and a permanent child may not
            children = [c for c in children if c.name != "devices"]
        return Supervisor(
            "store",
            children,
            strategy=Strategy.ONE_FOR_ALL,
            health=self.health,
        )

    async def _sign_journal(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Rows journaled before records were signed get their signature now, in one job, before the link
        starts: every record central receives is signed."""
        signed = await self.db.write(lambda c: chain.sign_unsigned(c, self.signer), durable=True)
        if signed:
            log.info("signed %d journal records made before records were signed", signed)
        indexed = await self.db.write(index.backfill)  # issue 14: receipts journaled before the index
        if indexed:
            log.info("indexed %d journal records made before the receipt index", indexed)
        task_status.started()

    async def _load_catalog(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        count = await self.db.write(lambda c: replica.load(c, self.catalog, self.config.currency))
        operators_in_file = len(self.catalog.operators)
        if count is None:
            log.info("%d operators in the catalogue file; items come from central's catalogue", operators_in_file)
        else:
            log.info("catalogue file loaded: %d items, %d operators", count, operators_in_file)
        await self._report_lockouts()
        await self.catalog_follower.start()
        task_status.started()

    async def run(
        self,
        *,
        ready: Callable[[StoreNode], None] | None = None,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.tree().run)
            await self.gateway.listening.wait()  # a supervisor is "started" even while a child retries
            log.info("store %s ready: tills connect to %s", self.config.store, self.url)
            if ready is not None:
                ready(self)
            task_status.started()

    async def stock_query(self, query: StockQuery) -> StockInfo:
        """Stock here from the replica, elsewhere from central; offline, a clear note instead of a hang."""

        def local(c: sqlite3.Connection) -> tuple[Item, int]:
            item = replica.lookup(c, query.code, self.config.store, self.config.currency, self.clock.now_ms())
            if item is None:
                raise Rejected("unknown_barcode", f"no item has barcode {query.code}")
            return item, stock.level(c, item.item)

        item, here = await self.db.read(local)
        info = StockInfo(item=item.item, name=item.name, here=here)
        try:
            levels = (await self.link.ask(StockQuestion(item=item.item))).levels
            info.elsewhere = [
                StockAt(location=x.location, qty=x.qty) for x in levels if x.location != self.config.store
            ]
        except (LinkDown, *NO_ANSWER) as exc:
            info.note = f"other stores unknown: central is unreachable ({exc})"
        return info

    async def giftcard_query(self, query: GiftCardQuery) -> GiftCardInfo:
        """A gift card's balance, as central holds it (balances live only there)."""
        try:
            card = (await self.link.ask(GiftCardQuestion(card=query.card.strip()))).card
        except LinkDown as exc:
            raise Rejected("unknown_card", str(exc)) from None
        except NO_ANSWER:
            raise Rejected("central_offline", "gift card balances are held at central, which is unreachable") from None
        return GiftCardInfo(card=card.card, kind=card.kind, balance=card.balance, currency=card.currency)

    async def _report_lockouts(self) -> None:
        """The operators alarm, as the database has it now (a lock that ran out is cleared here)."""
        now = self.clock.now_ms()
        operators.report(self.health, await self.db.read(lambda c: operators.locked(c, now)))

    async def status(self) -> Status:
        await self._report_lockouts()
        backlog, receipts = self.signal.backlog, await self.db.read(chain.last_receipts)
        return Status(
            store=self.config.store,
            link="online" if self.link.online else "offline",
            outbox=backlog,
            actors=[
                ActorStatus(name=h.name, state=h.state, restarts=h.restarts, last_error=h.last_error, detail=h.detail)
                for h in self.health.snapshot()
            ],
            journal={str(lane): no for lane, no in receipts.items()},
            replica=self.catalog_follower.view.version,
            central_catalog=self.catalog_follower.view.central,
            behind_since=self.catalog_follower.view.behind_since,
            parked=await self.db.read(parking.count),
        )

    async def search(self, query: ItemSearch) -> SearchResult:
        if not 1 <= query.limit <= 200:
            raise Rejected("bad_limit", f"a search returns 1 to 200 items, not {query.limit}")
        store, currency, now = self.config.store, self.config.currency, self.clock.now_ms()
        try:
            found = await self.db.read(lambda c: replica.search(c, query.text, query.limit, store, currency, now))
        except replica.SearchRefused as exc:
            raise Rejected("bad_search", str(exc)) from None
        return SearchResult(text=query.text, items=found)

    async def price_check(self, query: PriceCheck) -> ItemInfo:
        """A price check reads a shelf label as a scan would, a scale's label included."""
        code = query.code.strip()
        label = decode_label(code, self.config.gs1)
        store, currency, now = self.config.store, self.config.currency, self.clock.now_ms()
        info = await self.db.read(lambda c: replica.item_info(c, label.key if label else code, store, currency, now))
        if info is None:
            raise Rejected("unknown_barcode", f"no item has barcode {code}")
        info.code = code
        return info
