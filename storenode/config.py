"""store.toml: what one store node runs. Unknown keys are refused, so a typo cannot go unnoticed."""

from __future__ import annotations

from pathlib import Path

import msgspec


class ConfigError(ValueError):
    pass


class GatewayConfig(msgspec.Struct, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: int = 8701


class LinkConfig(msgspec.Struct, forbid_unknown_fields=True):
    url: str = ""  # ws://host:port of central; empty means this store runs without central
    heartbeat: float = 5.0  # seconds between pings; a link without a pong is down within 3 heartbeats
    batch: int = 500  # events per batch sent to central (up to 4 batches in flight)


class StoreConfig(msgspec.Struct, forbid_unknown_fields=True):
    store: str
    lanes: list[int]
    name: str = ""
    currency: str = "SEK"
    data_dir: str = "store-data"
    catalog: str = ""  # a catalogue JSON file; empty means the packaged demo catalogue
    receipt_header: list[str] = []
    receipt_footer: list[str] = msgspec.field(default_factory=lambda: ["Thank you for shopping with us"])
    gateway: GatewayConfig = msgspec.field(default_factory=GatewayConfig)
    central: LinkConfig = msgspec.field(default_factory=LinkConfig)

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
    if not Path(config.data_dir).is_absolute():
        config = msgspec.structs.replace(config, data_dir=str((path.parent / config.data_dir).resolve()))
    if config.catalog and not Path(config.catalog).is_absolute():
        config = msgspec.structs.replace(config, catalog=str((path.parent / config.catalog).resolve()))
    return config
