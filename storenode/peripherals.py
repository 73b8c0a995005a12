"""The store's peripherals built from [[devices]] in store.toml, grouped by the lane they serve.

Every device is its own actor under the devices supervisor (one-for-one, never escalates): a dead
printer backs off and retries while its lane goes on selling. A lane only ever calls the devices'
non-blocking methods (print, kick, show) or, for the scale, awaits a bounded answer.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from devices.display import CustomerDisplay
from devices.drawer import CashDrawer
from devices.escpos import ReceiptLayout
from devices.receipt_printer import ReceiptPrinter, StreamTransport, TcpTransport, Transport
from devices.scale import Scale
from devices.scanner import ScanEvent, Scanner
from devices.terminal import PaymentTerminal, ZvtSerial, ZvtTcp, ZvtTerminal, ZvtTransport
from runtime.health import HealthBoard
from runtime.supervision import ChildSpec
from storenode.config import DeviceConfig, StoreConfig

OnScan = Callable[[int, ScanEvent], Awaitable[None]]


@dataclass
class LaneDevices:
    printer: ReceiptPrinter | None = None
    drawer: CashDrawer | None = None
    display: CustomerDisplay | None = None
    scale: Scale | None = None
    terminal: PaymentTerminal | None = None
    payment_timeout: float = 180.0
    names: list[str] = field(default_factory=list)  # health entries the lane's till shows


def _printer_transport(device: DeviceConfig) -> Transport:
    if device.port.startswith("tcp://"):
        host, _, port = device.port.removeprefix("tcp://").rpartition(":")
        return TcpTransport(host or "127.0.0.1", int(port or 9100))
    serial = device.serial
    return StreamTransport(serial.open, serial.describe())


def _terminal_transport(device: DeviceConfig) -> ZvtTransport:
    if device.port.startswith("tcp://"):
        host, _, port = device.port.removeprefix("tcp://").rpartition(":")
        return ZvtTcp(host or "127.0.0.1", int(port or 20007))
    return ZvtSerial(device.serial)


def receipt_layout(config: StoreConfig, barcode: str = "qr") -> ReceiptLayout:
    """The till configuration's receipt: the same for the printer's paper and the till's screen."""
    return ReceiptLayout(
        store_name=config.name or config.store,
        header=config.receipt_header,
        footer=config.receipt_footer,
        barcode=barcode,  # type: ignore[arg-type]
        timezone=config.timezone,
    )


def build(config: StoreConfig, health: HealthBoard, on_scan: OnScan) -> tuple[dict[int, LaneDevices], list[ChildSpec]]:
    """The devices per lane and the supervisor's children (printers before the drawers that use them)."""
    lanes = {n: LaneDevices() for n in config.lanes}
    specs: list[ChildSpec] = []
    order = {kind: i for i, kind in enumerate(("printer", "drawer", "display", "scale", "scanner", "terminal"))}
    for device in sorted(config.devices, key=lambda d: order[d.kind]):
        mine = lanes[device.lane]
        name = device.label
        actor: ReceiptPrinter | CashDrawer | CustomerDisplay | Scale | Scanner | ZvtTerminal
        if device.kind == "printer":
            layout = receipt_layout(config, device.barcode)
            actor = mine.printer = ReceiptPrinter(
                name, _printer_transport(device), health, profile=device.profile, layout=layout
            )
        elif device.kind == "drawer":
            assert mine.printer is not None  # config validation guarantees it
            actor = mine.drawer = CashDrawer(
                name, mine.printer, health, alert_after=device.alert_after, open_level_high=device.open_level_high
            )
        elif device.kind == "display":
            actor = mine.display = CustomerDisplay(name, device.serial, health)
        elif device.kind == "scale":
            actor = mine.scale = Scale(name, device.serial, health)
        elif device.kind == "terminal":
            actor = ZvtTerminal(
                name, _terminal_transport(device), health, password=device.password, currency=config.currency
            )
            mine.terminal, mine.payment_timeout = actor, device.payment_timeout
        else:
            actor = Scanner(
                name,
                device.serial,
                health,
                functools.partial(on_scan, device.lane),
                terminator=device.terminator,
                aim=device.aim,
            )
        mine.names.append(name)
        specs.append(ChildSpec(name, actor.run))
    return lanes, specs
