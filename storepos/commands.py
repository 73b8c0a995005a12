"""What each `storepos` subcommand does; argument parsing stays in cli.py."""

from __future__ import annotations

import contextlib
import logging
import socket
import sqlite3
import ssl
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import msgspec
import trio
from trio_websocket import ConnectionClosed, HandshakeError

from central import operators
from central.app import PER_ADDRESS, CentralNode
from central.registers import alarms, imports, sales
from central.schema import MIGRATIONS as CENTRAL_MIGRATIONS
from protocol import identity, tls
from protocol.codec import ADMIN_SUBPROTOCOL, FrameError, LinkCodec
from protocol.frames import AdminHello, AdminWelcome, Error, LinkReply, LinkRequest, ReconcileReport
from protocol.money import format_money
from protocol.tls import CA_CERT, TlsError, client_context
from protocol.websocket import dial
from runtime.affinity import AffinityError, pin_process
from runtime.clock import SystemClock
from runtime.database import migrate, open_connection
from runtime.ready import write_ready_file
from storenode import gateway_tls
from storenode import operators as till_operators
from storenode.app import KEY_FILE, StoreNode
from storenode.config import ConfigError, StoreConfig, load_config
from storenode.identity import RETIRED
from storenode.journal import chain
from storenode.lanes import parking
from storenode.sync import outbox, replica
from storenode.sync.replica import CatalogError
from till.client import connect, read_credential, trust

log = logging.getLogger(__name__)


T = TypeVar("T")


def fail(message: str) -> None:
    print(f"storepos: {message}", file=sys.stderr)


def default_hosts() -> list[str]:
    """The names central's certificate is valid for unless `central init --host` says otherwise."""
    return list(dict.fromkeys(["localhost", "127.0.0.1", socket.gethostname()]))


def central_init(db: Path, hosts: list[str]) -> int:
    """Central's folder (the database's): the chain CA, central's certificate and the database, each
    made only when missing, so running it again changes nothing. Exit 0, or 2 when it cannot."""
    folder = db.resolve().parent
    made: list[str] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if tls.make_ca(folder):
            made.append(f"chain CA {folder / tls.CA_CERT} (key {tls.CA_KEY}, 0600: keep it off the network)")
        names = hosts or default_hosts()
        if tls.issue_server(folder, names):
            made.append(f"central's certificate {folder / tls.CENTRAL_CERT} for {', '.join(names)} (key 0600)")
        if not db.exists():
            conn = open_connection(db)
            try:
                migrate(conn, CENTRAL_MIGRATIONS)
            finally:
                conn.close()
            made.append(f"central's database {db}")
        if not operators.token_path(folder).exists():
            operators.ensure_token(folder)
            made.append(f"operator token {operators.token_path(folder)} (0600) for the admin commands")
    except (OSError, ValueError, sqlite3.Error) as exc:
        fail(f"central init in {folder}: {exc}")
        return 2
    for line in made:
        print(f"made {line}")
    if not made:
        print(f"central in {folder} has its CA, certificate, database and operator token already; nothing made")
    print(f'stores trust it with, in store.toml [central]: ca = "{folder / tls.CA_CERT}" (url wss://HOST:PORT)')
    return 0


def central_tls(db: Path, *, insecure: bool) -> ssl.SSLContext | None:
    """What `central run` serves with: the certificate `central init` put beside the database, or
    plain ws with --insecure, warned about at every start. Missing or unusable material exits 2."""
    if insecure:
        log.warning(
            "central serves plain ws:// (--insecure): stores' links cross the network readable, and "
            "nothing proves to a store that this is its central"
        )
        return None
    folder = db.resolve().parent
    cert, key = folder / tls.CENTRAL_CERT, folder / tls.CENTRAL_KEY
    if not (cert.exists() and key.exists()):
        fail(
            f"no TLS certificate in {folder} ({tls.CENTRAL_CERT}, {tls.CENTRAL_KEY}): run "
            f"`storepos central init --db {db}` first (or --insecure for plain ws, never in production)"
        )
        raise SystemExit(2)
    try:
        return tls.server_context(cert, key)
    except tls.TlsError as exc:
        fail(str(exc))
        raise SystemExit(2) from None


async def central_run(
    db: Path,
    host: str,
    port: int,
    ready_file: Path | None,
    chunk_rows: int | None = None,
    *,
    context: ssl.SSLContext | None = None,
    per_address: int = PER_ADDRESS,
) -> None:
    operators.ensure_token(db.parent)  # central init makes it too; a central without one admits no operator
    node = CentralNode(db, host=host, port=port, chunk_rows=chunk_rows, ssl_context=context, per_address=per_address)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        if ready_file is not None:
            write_ready_file(ready_file, url=node.url)


def _read_central(db: Path, read: Callable[[sqlite3.Connection], T]) -> T | None:
    """What `read` finds in central's database, read-only; None (said on stderr) when there is no
    database or it cannot be read, for the command to exit 2."""
    if not db.exists():
        fail(f"{db}: no central database here (start it with `storepos central run --db {db}`)")
        return None
    conn = open_connection(db, readonly=True)
    try:
        return read(conn)
    except sqlite3.OperationalError as exc:
        fail(f"{db}: {exc}")
        return None
    finally:
        conn.close()


def central_alarms(db: Path, store: str | None) -> int:
    """Exit 1 when there are alarms (so scripts notice), 0 when none."""
    found = _read_central(db, lambda conn: alarms.alarms(conn, store))
    if found is None:
        return 2
    if not found:
        print("no alarms" + (f" for store {store}" if store else ""))
        return 0
    for a in found:
        repeats = f" (x{a.count}, last {_utc(a.last_at)})" if a.count > 1 else ""
        print(f"alarm {a.id} {_utc(a.first_at)} store {a.store} {a.kind}{repeats}: {a.detail}")
    return 1


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def central_verify_journal(db: Path, store: str | None) -> int:
    verified = _read_central(db, lambda conn: sales.verify(conn, store))
    if verified is None:
        return 2
    checked, problems = verified
    for problem in problems:
        print(f"journal broken: {problem}")
    if problems:
        return 1
    print(f"central's journal intact: {checked} records, receipts gapless, hash chains and every signature verified")
    return 0


def central_sales(db: Path, store: str | None) -> int:
    if store:
        records = _read_central(db, lambda conn: sales.listing(conn, store))
        if records is None:
            return 2
        if not records:
            print(f"no sales from store {store}")
        for r in records:
            of = f"  refund of {r.refund_of}" if r.refund_of else ""
            by = f"  salesperson {r.salesperson}" if r.salesperson else ""
            mark = "  TRAINING" if r.training else ""
            print(
                f"{r.store} lane {r.lane} receipt {r.receipt_no:>6} {r.kind:<6} "
                f"{r.currency} {format_money(r.total, r.currency):>10}  sale {r.sale_id}{of}{by}{mark}"
            )
        return 0
    summaries = _read_central(db, sales.summaries)
    if summaries is None:
        return 2
    if not summaries:
        print("no sales have arrived yet")
    for s in summaries:
        print(
            f"store {s.store}: {s.sales} sales, {s.cancelled} cancelled, "
            f"total {s.currency} {format_money(s.total, s.currency)}"
            + (f" ({s.training} training sales, not counted)" if s.training else "")
            + f"; {s.refunds} refunds, refunded {s.currency} {format_money(s.refunded, s.currency)}"
        )
    return 0


def _on_catalog(db: Path, file: Path, work: Callable[[sqlite3.Connection], str], *, create: bool, undone: str) -> int:
    """Run one operator command on central's catalogue and print its line: exit 0 when it ran, 1 when
    the file was rejected (every error on stderr, nothing `undone`), 2 when it could not be tried
    (file, database or options)."""
    try:
        conn = imports.open_catalog(db, create=create)
        try:
            line = work(conn)
        finally:
            conn.close()
    except imports.Rejected as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        fail(f"{file.name} rejected with {len(exc.errors)} errors; nothing was {undone}")
        return 1
    except imports.Unusable as exc:
        fail(str(exc))
        return 2
    except sqlite3.Error as exc:
        fail(f"{db}: {exc}")
        return 2
    print(line)
    return 0


def central_import(db: Path, register: str, file: Path, currency: str) -> int:
    def work(conn: sqlite3.Connection) -> str:
        applied = imports.import_file(conn, register, file, currency=currency)
        outcome = "catalogue version" if applied.changed else "nothing changed; catalogue version stays"
        return (
            f"{file.name}: {register} {applied.inserted} added, {applied.updated} changed, "
            f"{applied.unchanged} unchanged; {outcome} {applied.version}"
        )

    return _on_catalog(db, file, work, create=True, undone="applied")


def central_delete(db: Path, register: str, file: Path, currency: str) -> int:
    def work(conn: sqlite3.Connection) -> str:
        count, version = imports.delete_file(conn, register, file, currency=currency)
        return f"{file.name}: {count} {register} deleted; catalogue version {version}"

    return _on_catalog(db, file, work, create=False, undone="deleted")


def central_export(db: Path, register: str, file: Path, currency: str) -> int:
    def work(conn: sqlite3.Connection) -> str:
        count, version = imports.export_file(conn, register, file, currency=currency)
        return f"{file.name}: {count} {register} at catalogue version {version}"

    return _on_catalog(db, file, work, create=False, undone="written")


async def central_reconcile(url: str, store: str, central_dir: Path = Path(".")) -> int:
    """Exit 0 when central and the store agree receipt by receipt (in-transit receipts are not a
    difference), 1 when they differ, 2 when the comparison could not be made. The operator token (and,
    over wss, the chain's CA) are read from central's folder, `central_dir`."""
    codec = LinkCodec()
    try:
        token = operators.read_token(central_dir)
    except operators.TokenError as exc:
        fail(f"{exc}; give central's folder with --central-dir")
        return 2
    options: dict[str, object] = {}
    if url.startswith("wss://"):
        try:
            options["ssl_context"] = client_context(central_dir / CA_CERT)
        except TlsError as exc:
            fail(f"{exc}; give central's folder with --central-dir")
            return 2
    try:
        with trio.fail_after(300):
            async with dial(url, subprotocols=[ADMIN_SUBPROTOCOL], **options) as ws:
                await ws.send_message(codec.encode(AdminHello(token=token)))
                welcome = codec.decode(await ws.get_message())
                if not isinstance(welcome, AdminWelcome):
                    fail(f"central refused the operator: {getattr(welcome, 'message', type(welcome).__name__)}")
                    return 2
                await ws.send_message(
                    codec.encode(LinkRequest(id=1, kind="reconcile", body=msgspec.msgpack.encode(store)))
                )
                reply = codec.decode(await ws.get_message())
    except (OSError, HandshakeError, ConnectionClosed, trio.TooSlowError) as exc:
        fail(f"cannot reach central at {url}: {type(exc).__name__}: {exc}")
        return 2
    except FrameError as exc:
        fail(f"central at {url} sent what is not a frame: {exc}")
        return 2
    if not isinstance(reply, LinkReply) or not reply.ok:
        fail(f"reconcile failed: {getattr(reply, 'error', '') or getattr(reply, 'message', reply)}")
        return 2
    report = msgspec.msgpack.decode(reply.body, type=ReconcileReport)
    for line in report.differences:
        print(line)
    verdict = "agree" if not report.differences else f"differ in {len(report.differences)} places"
    print(
        f"store {report.store}: {report.compared} receipts compared, {report.in_transit} in transit; "
        f"central and store {verdict}"
    )
    return 1 if report.differences else 0


def store_config(path: Path) -> StoreConfig | None:
    try:
        return load_config(path)
    except ConfigError as exc:
        fail(str(exc))
        return None


async def store_run(config: StoreConfig, ready_file: Path | None) -> None:
    if config.cpu is not None:  # first, so every thread the node starts inherits it
        try:
            pin_process(config.cpu)
        except AffinityError as exc:
            fail(str(exc))
            raise SystemExit(2) from None
    try:
        node = StoreNode(config)
    except CatalogError as exc:
        fail(f"catalogue refused: {exc}")
        raise SystemExit(2) from None
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        if ready_file is not None:
            write_ready_file(ready_file, url=node.url)


def replica_line(version: int, central: int, behind_since: int) -> str:
    """The replica's version and how far it lags central, in versions and in time."""
    if not behind_since:
        return f"version {version}, up to date with central" if central else f"version {version}"
    lag = max(0, SystemClock().now_ms() - behind_since) // 1000
    return f"version {version}, {central - version} behind central's {central} for {lag} s"


async def store_status(
    config_path: Path, url: str | None, credential_file: Path | None = None, trust_file: Path | None = None
) -> int:
    config = store_config(config_path)
    if config is None:
        return 2
    scheme = "ws" if config.tills.insecure else "wss"
    url = url or f"{scheme}://{config.gateway.host}:{config.gateway.port}"
    try:
        credential = read_credential(credential_file) if credential_file else None
        pinned = gateway_tls.cert_path(config)
        context = trust(trust_file or (pinned if pinned.exists() else None))
    except (ValueError, OSError) as exc:
        fail(str(exc))
        return 2
    try:
        with trio.fail_after(5):
            async with connect(url, lane=0, attach=False, credential=credential, ssl_context=context) as client:
                status = await client.status()
    except (OSError, trio.TooSlowError, ConnectionError) as exc:
        print(f"store {config.store}: node not reachable at {url} ({type(exc).__name__}: {exc})")
        if config.db_path.exists():
            conn = open_connection(config.db_path, readonly=True)
            try:
                print(f"  outbox (not yet at central): {outbox.backlog(conn)} events")
                print(f"  catalogue: version {replica.state(conn).version}")
                for lane, no in sorted(chain.last_receipts(conn).items()):
                    print(f"  lane {lane}: last receipt {no}")
                try:
                    locks = till_operators.locked(conn, SystemClock().now_ms())
                except sqlite3.OperationalError:  # a database from before lockouts were kept
                    locks = []
                for number, until in locks:
                    print(
                        f"  alarm: operator {number} locked after wrong PINs until {till_operators.clock_text(until)}"
                    )
                with contextlib.suppress(sqlite3.OperationalError):  # a database from before parking
                    print(f"  parked sales: {parking.count(conn)} (storepos store parked lists them)")
            finally:
                conn.close()
        return 1
    if isinstance(status, Error):
        fail(f"{status.code}: {status.message}")
        return 1
    print(f"store {status.store}: central link {status.link}, outbox {status.outbox} events not yet at central")
    print(f"  catalogue: {replica_line(status.replica, status.central_catalog, status.behind_since)}")
    for lane_name, no in sorted(status.journal.items()):
        print(f"  lane {lane_name}: last receipt {no}")
    print(f"  parked sales: {status.parked} (storepos store parked lists them)")
    for actor in status.actors:
        extra = f" ({actor.detail})" if actor.detail else ""
        error = f" last error: {actor.last_error}" if actor.last_error else ""
        print(f"  {actor.name:<16} {actor.state:<10} restarts {actor.restarts}{extra}{error}")
    return 0


def store_parked(config_path: Path) -> int:
    """The sales parked at the store and not resumed, read from its database (node running or not): until
    a day close reports them (parking.left_parked), this is where a supervisor sees what was left."""
    config = store_config(config_path)
    if config is None:
        return 2
    if not config.db_path.exists():
        fail(f"{config.db_path}: no store database")
        return 2
    conn = open_connection(config.db_path, readonly=True)
    try:
        left = parking.left_parked(conn, config.currency)
    except sqlite3.OperationalError:  # the store has not run since parking came
        left = []
    finally:
        conn.close()
    if not left:
        print(f"store {config.store}: no sales are parked")
        return 0
    print(f"store {config.store}: {len(left)} sales parked (resume <id> at any lane of the store):")
    for p in left:
        print(
            f"  {p.id:<8} lane {p.lane:<3} operator {p.operator:<6} parked {_utc(p.at)}  {p.lines:>3} lines "
            f"{p.currency} {format_money(p.total, p.currency):>10}"
        )
    return 0


def verify_journal(config_path: Path) -> int:
    config = store_config(config_path)
    if config is None:
        return 2
    if not config.db_path.exists():
        fail(f"{config.db_path}: no store database")
        return 2
    try:
        keys = _store_keys(config.data_path)
    except identity.IdentityError as exc:
        fail(f"cannot check the journal's signatures: {exc}")
        return 2
    conn = open_connection(config.db_path, readonly=True)
    try:
        checked, problems = chain.verify(conn, config.store, keys)
    finally:
        conn.close()
    for problem in problems:
        print(f"journal broken: {problem}")
    if problems:
        return 1
    print(
        f"journal intact: {checked} receipts, every lane's numbers gapless, hash chain and store key signatures"
        " verified"
    )
    return 0


def _store_keys(data_dir: Path) -> dict[str, bytes]:
    """The store's current key and the ones rotated out (kept in identity/retired/), by key id: records
    signed before a rotation verify with the key that signed them."""
    paths = [data_dir / KEY_FILE, *sorted((data_dir / KEY_FILE.parent / RETIRED).glob("*.key"))]
    publics = [identity.public_bytes(identity.load_private(path)) for path in paths]
    return {identity.key_id(public): public for public in publics}


def pin_hash() -> int:
    """A PIN's stored form for a catalogue file's `pin_hash` (a store without central): the PIN is read
    without echo, checked against the PIN policy and never printed."""
    import getpass

    from protocol import pins

    pin = getpass.getpass("PIN: ") if sys.stdin.isatty() else sys.stdin.readline().strip()
    problem = pins.policy_problem(pin)
    if problem is not None:
        fail(problem)
        return 2
    print(pins.hash_pin(pin))
    return 0
