"""Store and central nodes in-process: their configs, and starting them on a fixed business clock."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central.app import CentralNode
from central.registers import identities
from devices.sim.zvt import ZvtSimulator
from devtools.certificates import provision
from devtools.processes import STORE_TOML
from protocol import identity
from protocol.frames import LinkHello
from runtime.clock import FixedClock
from storenode.app import StoreNode
from storenode.config import DeviceConfig, GatewayConfig, LinkConfig, PaymentsConfig, StoreConfig
from storenode.identity import save_token
from tests.kit import certificates

T0 = 1_795_000_000_000  # a fixed business instant (2026-11-17) so receipts are reproducible
HOUR = 3_600_000


def make_store_config(
    tmp_path: Path, *, central_url: str = "", lanes: tuple[int, ...] = (1, 2), insecure: bool = False
) -> StoreConfig:
    """Store S001 trusting the test chain's CA (`insecure`: a plain ws:// central allowed)."""
    return StoreConfig(
        store="S001",
        name="Test Store",
        lanes=list(lanes),
        data_dir=str(tmp_path / "store"),
        gateway=GatewayConfig(port=0),
        central=LinkConfig(url=central_url, heartbeat=1.0, ca=str(certificates.ca()), insecure=insecure),
    )


def central_node(db_path: Path, **options: Any) -> CentralNode:
    """A central serving wss with the test chain's certificate (port 0 unless `options` say otherwise),
    its folder holding that chain as `central init` leaves it (reconcile reads ca.pem there)."""
    provision(db_path.parent, certificates.chain())
    options.setdefault("port", 0)
    options.setdefault("ssl_context", certificates.central_context())
    return CentralNode(db_path, **options)


def enrolled(config: StoreConfig, central: CentralNode | Path) -> StoreConfig:
    """`config`'s store enrolled at `central` (a running node or its database file) as an operator
    does it: `storepos central store enroll` there, the token kept by `storepos store init --token`."""
    db = central if isinstance(central, Path) else central.db.path
    save_token(config.data_path, identities.enrol_at(db, config.store))
    return config


async def registered(central: CentralNode, store: str) -> tuple[LinkHello, Ed25519PrivateKey]:
    """A hello and key for a test speaking the link itself as `store`: the key registered at central
    through the registry's own function (no token); greet(ws, hello, peer=..., key=key) proves it."""
    key = identity.generate()
    public = identity.public_bytes(key)
    await central.db.write(partial(identities.register, store=store, public=public, now=T0))
    return LinkHello(node=store, role="store", key=public), key


async def start_store(
    folder: Path,
    nursery: trio.Nursery,
    central: CentralNode | str = "",
    *,
    url: str = "",
    store: str = "S001",
    payments: PaymentsConfig | None = None,
    sim: ZvtSimulator | None = None,
) -> StoreNode:
    """A store node on the fixed clock, with lane 1's card terminal when `sim` is given (started here).
    Given a central node, the store is enrolled there and linked to it (or to `url`, a proxy in front
    of it); given a url, linked to whatever answers there, unenrolled."""
    devices = []
    if sim is not None:
        port = sim.port or await nursery.start(sim.run)
        devices = [DeviceConfig(kind="terminal", lane=1, port=f"tcp://127.0.0.1:{port}", payment_timeout=30)]
    central_url = central if isinstance(central, str) else url or central.url
    config = msgspec.structs.replace(
        make_store_config(folder, central_url=central_url),
        store=store,
        devices=devices,
        payments=payments or PaymentsConfig(),
    )
    if not isinstance(central, str):
        enrolled(config, central)
    node = StoreNode(config, clock=FixedClock(T0))
    await nursery.start(node.run)
    return node


def store_node(
    tmp_path: Path, central: CentralNode, store: str, clock: FixedClock | None = None, *, url: str = ""
) -> StoreNode:
    """Store `store` enrolled at `central` and linked to it (or to `url`, a proxy in front of it), its
    data in its own folder."""
    config = msgspec.structs.replace(make_store_config(tmp_path / store, central_url=url or central.url), store=store)
    return StoreNode(enrolled(config, central), clock=clock or FixedClock(T0))


async def stoppable(
    scope: trio.CancelScope, run: Callable[..., Any], *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run a node under `scope`, so a test can stop it (and only it) by cancelling the scope."""
    with scope:
        await run(task_status=task_status)


def terminal_store(folder: Path, port: int) -> Path:
    """A store.toml (no central, SEK) whose lane 1 has the ZVT simulator on `port` as its terminal."""
    config = folder / "store.toml"
    config.write_text(
        STORE_TOML.format(central="", ca="").replace("lanes = [1, 2]", 'lanes = [1, 2]\ncurrency = "SEK"')
        + f'\n[[devices]]\nkind = "terminal"\nlane = 1\nport = "tcp://127.0.0.1:{port}"\n'
    )
    return config
