"""store.toml: what one store node runs. Unknown keys are refused, so a typo cannot go unnoticed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from devices.serialport import SerialSettings
from protocol.gs1 import Gs1Config


class ConfigError(ValueError):
    pass


class GatewayConfig(msgspec.Struct, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: int = 8701


class TillsConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Who may hold a till connection and for how long. A connection costs the store a descriptor before
    it has said anything, and a browser on the store's network is a client too: both are bounded here."""

    idle_logout: float = 900.0  # seconds without a command before the till's operator is logged out; 0: never
    per_address: int = 16  # connections open or opening at once from one address; beyond it, closed at once
    handshake_timeout: float = 5.0  # seconds to complete the websocket handshake, and again to say hello
    origins: list[str] = []  # browser tills' Origins (https://till.example); a request without one is no browser's
    insecure: bool = False  # serve tills plain ws://: anyone on the network reads credentials and sales
    recheck: float = 5.0  # seconds between checks of connected tills' credentials (a revoked one is closed); 0: never


class LinkConfig(msgspec.Struct, forbid_unknown_fields=True):
    url: str = ""  # wss://host:port of central; empty means this store runs without central
    ca: str = ""  # the chain's CA certificate, or central's own certificate pinned (relative to the config file)
    insecure: bool = False  # allow a plain ws:// url: anyone on the path reads and forges the link
    heartbeat: float = 5.0  # seconds between pings; a link without a pong is down within 3 heartbeats
    batch: int = 1000  # events per batch sent to central (and at most 512 KiB); up to 4 batches in flight
    linger: float = 0.1  # seconds the link waits, once a sale is queued, for more to send with it (0: none)


DEVICE_KINDS = ("printer", "drawer", "scanner", "display", "scale", "terminal")


class DeviceConfig(msgspec.Struct, forbid_unknown_fields=True):
    """One peripheral, bound to one lane. `port` is a serial device path (/dev/ttyUSB0) or, for a
    network printer or payment terminal (ZVT), tcp://host:port."""

    kind: str
    lane: int
    port: str = ""
    name: str = ""  # default: <kind>-<lane>
    baudrate: int = 9600
    profile: str = "TM-T88V"  # printer: python-escpos capability profile
    barcode: str = "qr"  # printer: qr | code128 | none, carrying the receipt id for returns
    alert_after: float = 60.0  # drawer: seconds open before an alert
    open_level_high: bool = True  # drawer: which sensor level means open (drawers differ)
    terminator: str = "auto"  # scanner: auto | CR | LF | CRLF
    aim: bool = False  # scanner: codes carry an AIM symbology prefix
    password: str = "000000"  # terminal: the ZVT password
    payment_timeout: float = 180.0  # terminal: seconds a customer has for card and PIN before "unknown"

    @property
    def label(self) -> str:
        return self.name or f"{self.kind}-{self.lane}"

    @property
    def serial(self) -> SerialSettings:
        """The serial line the device is on; framing is left to its driver, which knows the device's own.
        Raises ValueError for a setting no serial port takes (`device_problems` reports it)."""
        return SerialSettings(self.port, baudrate=self.baudrate)


class PaymentsConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Tenders beyond cash and card. Gift cards live at central; while it is unreachable a store either
    refuses them (`reject`) or takes up to `giftcard_offline_limit` minor units per card (`allow`),
    reconciled at central when the link is back, any overdraft reported there."""

    giftcard_offline: str = "reject"  # reject | allow
    giftcard_offline_limit: int = 0
    foreign_cash: list[str] = []  # currencies accepted as cash at central's published rate, e.g. ["EUR"]
    max_change: int = 1_000_000  # minor units: a cash tender giving more change is refused as mistyped


class OperatorsConfig(msgspec.Struct, forbid_unknown_fields=True):
    """PIN guessing: `pin_failures` wrong PINs in a row lock that operator (on every lane, across
    restarts: the count is in the store's database) for `lockout_minutes`; the store shows an alarm."""

    pin_failures: int = 5
    lockout_minutes: float = 15.0


class ApprovalConfig(msgspec.Struct, forbid_unknown_fields=True):
    """What a cashier may do alone; beyond it a supervisor approves at the same till (storenode.lanes.approval).
    Voiding after total, cancelling a sale with lines and the terminal's end of day always need one."""

    receiptless_returns: int = 10_000  # minor units returned without a receipt in one sale (100.00)
    stock_moves: int = 100  # units (or grams) one stock move or count may change the level by
    label_factor: int = 10  # a price label may say at most this many times the item's price (and no less than 1/x)
    refunded_days: int = 30  # a receipt-less return of an item refunded on a receipt this lately needs approval


class SalesConfig(msgspec.Struct, forbid_unknown_fields=True):
    """How this store's tills sell (issue 14): the store's till configuration, in store.toml so a store
    without central has it too and every lane of the store works alike. Each part of the cashier's day
    keeps its settings in its own block below."""

    # salesperson and lines
    # a salesperson (an operator number of this store) on each sale: off refuses the command; required refuses
    # total and payment without one (storenode/lanes/salesperson.py)
    salesperson: Literal["off", "optional", "required"] = "off"
    merge_lines: bool = True  # scanning an item again adds to its line (never for weighed or price-embedded items)
    # manual discounts: what a cashier gives alone; beyond it a supervisor approves
    # hundredths of a percent of a line or of the sale (10.00 %), the cashier's discounts of it counted together
    # (storenode.lanes.discounts); 0: every discount needs a supervisor; 10000: none does
    cashier_discount_percent: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 1000
    # receipts
    copies: int = 1  # copy receipts that may be printed of one receipt (the store's fiscal rule)
    # cash management (storenode/lanes/cash.py)
    payout_approval: int = 50_000  # minor units: a petty-cash payout above this needs a supervisor (500.00)
    # the accounts a payout may be booked to, as the store's bookkeeping names them; an empty list takes any
    # account the cashier types (1 to 32 characters, letters, digits, space, - _ . /)
    payout_accounts: list[str] = msgspec.field(
        default_factory=lambda: ["supplies", "cleaning", "postage", "refreshments", "repairs", "other"]
    )
    cash_most: int = 10_000_000  # minor units: the most one cash movement or count line may be (100,000.00)
    # training


class StoreConfig(msgspec.Struct, forbid_unknown_fields=True):
    store: str
    lanes: list[int]
    name: str = ""
    currency: str = "SEK"
    timezone: str = "UTC"  # IANA zone for receipt times, e.g. Europe/Stockholm
    data_dir: str = "store-data"
    catalog: str = ""  # a catalogue JSON file; empty means the packaged demo catalogue
    receipt_header: list[str] = []
    receipt_footer: list[str] = msgspec.field(default_factory=lambda: ["Thank you for shopping with us"])
    gateway: GatewayConfig = msgspec.field(default_factory=GatewayConfig)
    central: LinkConfig = msgspec.field(default_factory=LinkConfig)
    tills: TillsConfig = msgspec.field(default_factory=TillsConfig)
    devices: list[DeviceConfig] = []
    gs1: Gs1Config = msgspec.field(default_factory=Gs1Config)  # variable-measure barcode layout
    payments: PaymentsConfig = msgspec.field(default_factory=lambda: PaymentsConfig())
    operators: OperatorsConfig = msgspec.field(default_factory=lambda: OperatorsConfig())
    approval: ApprovalConfig = msgspec.field(default_factory=lambda: ApprovalConfig())
    sales: SalesConfig = msgspec.field(default_factory=lambda: SalesConfig())
    cpu: int | None = None  # keep every thread of the node on this CPU core (Linux): see runtime/affinity.py

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def db_path(self) -> Path:
        return self.data_path / "store.db"


def load_config(path: str | Path) -> StoreConfig:
    path = Path(path)
    try:
        config = msgspec.toml.decode(path.read_bytes(), type=StoreConfig)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    if not config.lanes or len(set(config.lanes)) != len(config.lanes) or min(config.lanes) < 1:
        raise ConfigError(f"{path}: lanes must be distinct positive numbers, got {config.lanes}")
    problems = device_problems(config)
    if config.payments.giftcard_offline not in ("reject", "allow"):
        problems.append("payments.giftcard_offline must be reject or allow")
    if config.cpu is not None and config.cpu < 0:
        problems.append(f"cpu must be a CPU number (0 or more), not {config.cpu}")
    if not 0 <= config.central.linger < config.central.heartbeat:
        problems.append(
            f"central.linger must be 0 or more and less than central.heartbeat, not {config.central.linger}"
        )
    problems.extend(link_problems(config.central))
    if not 0 <= config.payments.max_change <= 10**12:
        problems.append(f"payments.max_change must be 0 to 10^12 minor units, not {config.payments.max_change}")
    if config.tills.idle_logout < 0:
        problems.append(f"tills.idle_logout must be seconds (0: never), not {config.tills.idle_logout}")
    if config.tills.per_address < 1:
        problems.append(f"tills.per_address must be 1 or more, not {config.tills.per_address}")
    if not 0 < config.tills.handshake_timeout <= 60:
        problems.append(
            f"tills.handshake_timeout must be above 0 and at most 60 s, not {config.tills.handshake_timeout}"
        )
    if config.operators.pin_failures < 1 or config.operators.lockout_minutes <= 0:
        problems.append("operators.pin_failures must be 1 or more and operators.lockout_minutes more than 0")
    approval = config.approval
    if min(approval.receiptless_returns, approval.stock_moves, approval.refunded_days) < 0 or approval.label_factor < 1:
        problems.append("approval limits cannot be negative, and approval.label_factor is 1 or more")
    if not 0 <= config.sales.payout_approval <= 10**12 or not 1 <= config.sales.cash_most <= 10**12:
        problems.append("sales.payout_approval must be 0 to 10^12 and sales.cash_most 1 to 10^12 minor units")
    if any(not 1 <= len(account.strip()) <= 32 for account in config.sales.payout_accounts):
        problems.append("sales.payout_accounts are names of 1 to 32 characters")
    if config.payments.giftcard_offline_limit < 0:
        problems.append("payments.giftcard_offline_limit cannot be negative")
    try:
        ZoneInfo(config.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"timezone {config.timezone!r} is not a known IANA zone (e.g. Europe/Stockholm)")
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems))
    if not Path(config.data_dir).is_absolute():
        config = msgspec.structs.replace(config, data_dir=str((path.parent / config.data_dir).resolve()))
    if config.catalog and not Path(config.catalog).is_absolute():
        config = msgspec.structs.replace(config, catalog=str((path.parent / config.catalog).resolve()))
    if config.central.ca and not Path(config.central.ca).is_absolute():
        ca = str((path.parent / config.central.ca).resolve())
        config = msgspec.structs.replace(config, central=msgspec.structs.replace(config.central, ca=ca))
    if config.central.ca and urlsplit(config.central.url).scheme == "wss" and not Path(config.central.ca).is_file():
        raise ConfigError(f"{path}: central.ca {config.central.ca} is not a file (copy ca.pem from central's folder)")
    return config


def link_problems(link: LinkConfig) -> list[str]:
    """What is wrong with [central]: TLS is the default, plain ws:// only when asked for by name. The
    store node checks this again before it dials, for a config not read from a file."""
    if not link.url:
        return []
    scheme = urlsplit(link.url).scheme
    if scheme == "ws" and not link.insecure:
        return [
            f"central.url {link.url} is plain ws://, readable and forgeable on the way: use wss:// with "
            "central.ca, or set central.insecure = true to accept that"
        ]
    if scheme == "wss" and not link.ca:
        return [
            "central.ca must name the certificate central's is checked against: the chain's ca.pem from "
            "central's folder (made by `storepos central init`), or central's own central.pem to pin it"
        ]
    if scheme not in ("ws", "wss"):
        return [f"central.url must be wss://host:port, not {link.url}"]
    return []


def device_problems(config: StoreConfig) -> list[str]:
    """Everything wrong with the [[devices]] entries, so one look at the error fixes them all."""
    problems = []
    seen: set[str] = set()
    singles: set[tuple[int, str]] = set()
    printers = {d.lane for d in config.devices if d.kind == "printer"}
    for n, device in enumerate(config.devices, 1):
        where = f"devices entry {n} ({device.label})"
        if device.kind not in DEVICE_KINDS:
            problems.append(f"{where}: kind must be one of {', '.join(DEVICE_KINDS)}")
        if device.lane not in config.lanes:
            problems.append(f"{where}: lane {device.lane} is not one of the store's lanes {config.lanes}")
        if device.label in seen:
            problems.append(f"{where}: the name {device.label} is used twice")
        seen.add(device.label)
        if device.kind != "scanner":
            if (device.lane, device.kind) in singles:
                problems.append(f"{where}: lane {device.lane} has more than one {device.kind}")
            singles.add((device.lane, device.kind))
        if device.kind == "drawer":
            if device.lane not in printers:
                problems.append(f"{where}: a drawer opens through its lane's printer; lane {device.lane} has none")
        elif not device.port:
            problems.append(f"{where}: needs a port (a serial device path, or tcp://host:port for a printer)")
        elif device.port.startswith("tcp://"):
            if device.kind not in ("printer", "terminal"):
                problems.append(f"{where}: only a printer or a payment terminal can be on tcp://")
        else:
            try:
                device.serial  # noqa: B018 - built for its checks
            except ValueError as exc:
                problems.append(f"{where}: {exc}")
        if device.terminator not in ("auto", "CR", "LF", "CRLF"):
            problems.append(f"{where}: terminator must be auto, CR, LF or CRLF")
        if device.barcode not in ("qr", "code128", "none"):
            problems.append(f"{where}: barcode must be qr, code128 or none")
    return problems
