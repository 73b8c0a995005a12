"""store.toml [[devices]]: every serial device gets its line as one SerialSettings; bad lines are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from devices.serialport import SerialSettings
from runtime.health import HealthBoard
from storenode import peripherals
from storenode.config import ConfigError, load_config

BASE = 'store = "S1"\nlanes = [1]\n'


async def _no_scan(lane: int, event: object) -> None:
    pass


def test_serial_devices_are_built_from_the_configured_line(tmp_path: Path) -> None:
    (tmp_path / "store.toml").write_text(
        BASE
        + '[[devices]]\nkind = "scale"\nlane = 1\nport = "/dev/ttyUSB1"\nbaudrate = 4800\n'
        + '[[devices]]\nkind = "display"\nlane = 1\nport = "/dev/ttyUSB2"\n'
        + '[[devices]]\nkind = "scanner"\nlane = 1\nport = "/dev/ttyUSB3"\nbaudrate = 115200\n'
    )
    config = load_config(tmp_path / "store.toml")
    lanes, _ = peripherals.build(config, HealthBoard(), _no_scan)  # type: ignore[arg-type]
    scale, display = lanes[1].scale, lanes[1].display
    assert scale is not None and display is not None
    assert scale.serial == SerialSettings("/dev/ttyUSB1", 4800, 7, "E", 1)  # the 8217 scale's own framing
    assert display.serial == SerialSettings("/dev/ttyUSB2", 9600, 8, "N", 1)
    assert [d.serial for d in config.devices][2] == SerialSettings("/dev/ttyUSB3", 115200)


def test_a_bad_baudrate_is_refused_with_the_device_named(tmp_path: Path) -> None:
    (tmp_path / "store.toml").write_text(
        BASE
        + '[[devices]]\nkind = "scanner"\nlane = 1\nport = "/dev/ttyUSB3"\nbaudrate = 0\n'
        + '[[devices]]\nkind = "printer"\nlane = 1\nport = "tcp://10.0.0.9:9100"\nbaudrate = 0\n'
    )
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "store.toml")
    text = str(info.value)
    assert "devices entry 1 (scanner-1): /dev/ttyUSB3: baudrate must be a positive whole number" in text
    assert "printer-1" not in text  # a network printer has no baud rate to get wrong
