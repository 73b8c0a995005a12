"""`storepos demo`: central and one store as real processes, then a scripted till, then yours.

The nodes run exactly as in production (`storepos central run`, `storepos store run`), on ports the
OS picks, with their logs in the demo folder so the till's screen stays readable. The store's
packaged catalogue is imported at central first, as an operator would, so the lane sells from what
central distributed rather than from the file it would fall back on alone.
"""

from __future__ import annotations

import signal
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import msgspec
import trio

from central.registers import catalog, identities, imports, sales
from devices.sim.kit import LaneKit
from protocol import tls
from protocol.frames import Status
from protocol.gs1 import Gs1Config
from protocol.money import format_money
from runtime.clock import SystemClock
from runtime.database import migrate, open_connection
from runtime.files import PUBLIC, SECRET, replace_file
from runtime.ready import wait_ready_file
from storenode import gateway_tls, identity, till_credentials
from storenode.config import StoreConfig, load_config
from storenode.identity import save_token
from storenode.schema import MIGRATIONS
from storenode.sync import replica
from till.client import TillClient, connect
from till.terminal import Hook, run_till, show_state

CREDENTIAL_FILE = "till.credential"

STORE_TOML = """\
store = "DEMO01"
name = "storepos demo store"
currency = "SEK"
lanes = [1, 2]
data_dir = "store-data"
receipt_header = ["Storgatan 1, Stockholm", "Org.nr 556000-0000"]
timezone = "Europe/Stockholm"

[gateway]
host = "127.0.0.1"
port = 0

[central]
url = "{central}"
ca = "ca.pem"
heartbeat = 2.0
"""


def run_demo(folder: Path | None, *, interactive: bool) -> int:
    folder = folder or Path(tempfile.mkdtemp(prefix="storepos-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        return trio.run(_demo, folder.resolve(), interactive)
    except* KeyboardInterrupt:  # Ctrl-C, possibly wrapped by the simulators' nursery: a clean stop
        print("\ndemo stopped")
    return 0


async def _start(args: list[str], log: Path) -> trio.Process:
    with log.open("ab") as sink:
        return await trio.lowlevel.open_process(
            [sys.executable, "-m", "storepos", *args], stdin=subprocess.DEVNULL, stdout=sink, stderr=sink
        )


async def _stop(proc: trio.Process) -> None:
    with trio.CancelScope(shield=True):
        if proc.returncode is None:
            proc.terminate()
            with trio.move_on_after(5):
                await proc.wait()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _node(args: list[str], folder: Path, name: str) -> tuple[trio.Process, str]:
    ready = folder / f"{name}.ready"
    ready.unlink(missing_ok=True)
    proc = await _start([*args, "--ready-file", str(ready)], folder / f"{name}.log")
    try:
        with trio.fail_after(30):
            info = await wait_ready_file(ready, alive=lambda: proc.returncode is None and proc.poll() is None)
    except (RuntimeError, trio.TooSlowError):
        await _stop(proc)
        tail = (folder / f"{name}.log").read_text()[-2000:]
        raise SystemExit(f"storepos demo: {name} did not start; its log ends:\n{tail}") from None
    return proc, info["url"]


def _sales_at_central(db: Path) -> str | None:
    if not db.exists():
        return None
    conn = open_connection(db, readonly=True)
    try:
        found = sales.summaries(conn)
    finally:
        conn.close()
    if not found:
        return None
    s = found[0]
    return f"store {s.store}: {s.sales} sale(s), total {s.currency} {format_money(s.total, s.currency)}"


async def _await_sale(db: Path) -> str:
    """Central is another process: polling its database is the honest way to watch it."""
    with trio.fail_after(30):
        while (seen := await trio.to_thread.run_sync(_sales_at_central, db)) is None:  # noqa: ASYNC110
            await trio.sleep(0.1)
    return seen


def catalogue_files(folder: Path, currency: str) -> list[tuple[str, Path]]:
    """The packaged demo catalogue as the files an operator imports at central, in import order."""
    demo = replica.read_catalog(replica.demo_catalog_path())
    registers: dict[str, list[msgspec.Struct]] = {
        "vat-rates": [catalog.VatRate(code=f"VAT{r // 100}", rate=r) for r in sorted({i.vat_rate for i in demo.items})],
        "items": [
            catalog.Item(
                item=i.item, name=i.name, vat_rate=i.vat_rate, unit="kg" if i.unit == "kg" else "piece", popup=i.popup
            )
            for i in demo.items
        ],
        "barcodes": [catalog.Barcode(code=code, item=i.item) for i in demo.items for code in i.barcodes],
        "prices": [imports.PriceRow(item=i.item, price=format_money(i.price, currency)) for i in demo.items],
    }
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for kind, rows in registers.items():
        path = folder / f"{kind}.json"
        path.write_bytes(msgspec.json.format(msgspec.json.encode(rows), indent=2) + b"\n")
        files.append((kind, path))
    return files


def import_catalogue(db: Path, folder: Path, currency: str, gs1: Gs1Config) -> int:
    """Import the demo catalogue as `storepos central import` does, checked against the store's GS1
    layout (its weight keys); returns central's catalogue version."""
    conn = imports.open_catalog(db, create=True)
    try:
        version = 0
        for kind, path in catalogue_files(folder, currency):
            try:
                version = imports.import_file(conn, kind, path, currency=currency, gs1=gs1).version
            except imports.Rejected as exc:
                raise SystemExit(f"storepos demo: central refused {path}:\n" + "\n".join(exc.errors)) from None
        return version
    finally:
        conn.close()


def enrol_tills(folder: Path, config: StoreConfig) -> str:
    """Set the store's tills up as an operator would, before the store starts: its till certificate
    issued by the chain CA in `folder` (`storepos central store cert`), copied to the store's tls/;
    and one till credential for lanes 1 and 2 (`storepos store till enroll`), kept in
    till.credential (0600) for the demo's tills. Returns the credential."""
    tls.issue_server(folder, ["127.0.0.1", "localhost"], stem=f"store-{config.store}")
    target = gateway_tls.folder(config)
    target.mkdir(parents=True, exist_ok=True)
    for suffix, mode in ((".pem", PUBLIC), (".key", SECRET)):
        data = (folder / f"store-{config.store}{suffix}").read_bytes()
        replace_file(target / f"{gateway_tls.STEM}{suffix}", data, mode=mode)
    conn = open_connection(config.db_path)
    try:
        migrate(conn, MIGRATIONS)
        credential = till_credentials.enrol(conn, config.lanes, "demo tills", SystemClock().now_ms())
    finally:
        conn.close()
    replace_file(folder / CREDENTIAL_FILE, credential.encode() + b"\n", mode=SECRET)
    return credential


async def _await_replica(store_url: str, version: int, credential: str, context: ssl.SSLContext) -> bool:
    """The store pulls central's catalogue on its own; the script should sell from it, so wait."""
    with trio.move_on_after(30):
        while True:
            with trio.move_on_after(5):
                async with connect(
                    store_url, lane=0, attach=False, credential=credential, ssl_context=context
                ) as client:
                    status = await client.status()
                    if isinstance(status, Status) and status.replica >= version:
                        return True
            await trio.sleep(0.1)
    return False


def device_hook(kit: LaneKit, out: Callable[[str], None] = print) -> Hook:
    """Lines starting with @ drive lane 1's simulated devices: `@scan CODE` scans at the lane's
    scanner, `@weigh GRAMS` puts goods on its scale, `@display` reads its customer display."""

    async def hook(line: str, client: TillClient) -> bool:
        match line.split():
            case ["@scan", code]:
                out(f"> (scanner) {code}")
                before = client.state.lines if client.state else []
                await kit.scanner.scan(code)
                with trio.move_on_after(10):
                    while client.state is None or client.state.lines == before:
                        await client.pushed.wait()
                if client.state is not None:
                    out(show_state(client.state))
                return True
            case ["@weigh", grams] if grams.isdigit():
                kit.scale.grams = int(grams)
                out(f"> (scale) {int(grams)} g on the scale")
                return True
            case ["@display"]:
                top, bottom = kit.display.lines
                out(f"customer display: [{top}] [{bottom}]")
                return True
            case [word, *_] if word.startswith("@"):
                out("! devices: @scan CODE, @weigh GRAMS, @display")
                return True
        return False

    return hook


async def _demo(folder: Path, interactive: bool) -> int:
    print(f"storepos demo in {folder} (logs: central.log, store.log)")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_stop_on_sigterm, nursery.cancel_scope)
        kit = LaneKit(folder, 1)
        await nursery.start(kit.run)
        try:
            return await _nodes(folder, kit, interactive)
        finally:
            nursery.cancel_scope.cancel()
    print("\ndemo stopped")
    return 0


async def _stop_on_sigterm(scope: trio.CancelScope) -> None:
    """SIGTERM (a service manager, `kill`) stops the demo as Ctrl-C does: the nodes it started go too."""
    with trio.open_signal_receiver(signal.SIGTERM) as signals:
        async for _ in signals:
            scope.cancel()
            return


async def _init_central(folder: Path, db: Path) -> None:
    """`storepos central init`, as an operator runs it once: the chain CA, central's certificate
    (the store's ca = "ca.pem" is the CA in this same folder) and the database."""
    done = await trio.run_process(
        [sys.executable, "-m", "storepos", "central", "init", "--db", str(db)],
        stdin=subprocess.DEVNULL,
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    (folder / "central-init.log").write_bytes(done.stdout + done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"storepos demo: central init failed:\n{done.stderr.decode(errors='replace')}")


async def _nodes(folder: Path, kit: LaneKit, interactive: bool) -> int:
    central_db = folder / "central.db"
    await _init_central(folder, central_db)
    central, central_url = await _node(["central", "run", "--db", str(central_db), "--port", "0"], folder, "central")
    try:
        config = folder / "store.toml"
        config.write_text(STORE_TOML.format(central=central_url) + kit.devices_toml())
        settings = load_config(config)
        files = folder / "catalogue"
        version = await trio.to_thread.run_sync(import_catalogue, central_db, files, settings.currency, settings.gs1)
        token = await trio.to_thread.run_sync(identities.enrol_at, central_db, settings.store)
        save_token(settings.data_path, token)
        print(f"store DEMO01 enrolled at central; its one-time token waits in {identity.folder(settings.data_path)}")
        settings.data_path.mkdir(parents=True, exist_ok=True)
        credential = await trio.to_thread.run_sync(enrol_tills, folder, settings)
        context = tls.client_context(folder / tls.CA_CERT)
        print(
            f"store DEMO01's tills enrolled (credential in {folder / CREDENTIAL_FILE}); its till certificate "
            "issued by the chain CA"
        )
        store, store_url = await _node(["store", "run", "--config", str(config)], folder, "store")
        try:
            print(f"central at {central_url} (TLS: chain CA {folder / 'ca.pem'})")
            print(f"store DEMO01 with lanes 1 and 2 at {store_url}")
            if await _await_replica(store_url, version, credential, context):
                print(f"store DEMO01 sells from catalogue version {version} from central (imported from {files})")
            else:
                print(f"! store DEMO01 has not received central's catalogue version {version}; see store.log")
            print(
                f"lane 1 has a simulated receipt printer (port {kit.printer.port}), scanner, display, scale "
                f"and card terminal (ZVT, port {kit.terminal.port})\n"
            )
            script = Path(str(resources.files("storepos") / "data" / "demo_till.txt"))
            hook = device_hook(kit)
            print("--- scripted till on lane 1 ---")
            await run_till(
                store_url,
                1,
                "demo-till-1",
                script,
                read_stdin=False,
                hook=hook,
                credential=credential,
                ssl_context=context,
            )
            with trio.move_on_after(10):  # the display's bytes cross a pseudo-terminal after the receipt
                await kit.display.wait_until(lambda shown: shown[1].startswith("CHANGE"))
            top, bottom = kit.display.lines
            print(f"\n--- customer display ---\n[{top}]\n[{bottom}]")
            with trio.move_on_after(10):
                await kit.printer.wait_until(lambda: "[CUT]" in kit.printer.text())
            print(f"\n--- receipt printer (ESC/POS decoded); drawer kicked {kit.printer.kicks} time(s) ---")
            print(kit.printer.text().rstrip())
            print("\n--- at central ---")
            print(await _await_sale(central_db))
            print(f"\nTry: storepos central sales --db {central_db}")
            print(f"     storepos central reconcile --store DEMO01 --url {central_url} --central-dir {folder}")
            print(f"     storepos central import prices {files / 'prices.json'} --db {central_db}  (edit it first)")
            trusting = f"--credential {folder / CREDENTIAL_FILE} --trust {folder / tls.CA_CERT}"
            print(f"     storepos store status --config {config} --url {store_url} {trusting}")
            print(f"     storepos store verify-journal --config {config}")
            print(f"     storepos till --store {store_url} --lane 2 {trusting}")
            print(f"     storepos store till list --config {config}")
            if interactive:
                print("\n--- your till on lane 1: login 1 1234, then scan barcodes (e.g. 7310000000010); help ---")
                print("    the scripted till's login ended with its connection: a login belongs to one till")
                print("    @scan CODE scans at the lane's scanner, @weigh GRAMS uses its scale, @display reads it")
                print("    card pays at the lane's card terminal; giftcard, invoice and split tenders need central")
                await run_till(store_url, 1, "demo-till-1", hook=hook, credential=credential, ssl_context=context)
            print("demo running; Ctrl-C stops it")
            await trio.sleep_forever()
        finally:
            await _stop(store)
    finally:
        await _stop(central)
    return 0
