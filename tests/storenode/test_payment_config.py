"""store.toml for payments: a [[devices]] terminal on tcp:// or serial, and the gift card offline policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from devices.serialport import SerialSettings
from devices.terminal import ZvtSerial, ZvtTcp, ZvtTerminal
from runtime.health import HealthBoard
from storenode import peripherals
from storenode.config import ConfigError, load_config

BASE = 'store = "S1"\nlanes = [1, 2]\n'


async def _no_scan(lane: int, event: object) -> None:
    pass


def test_terminals_on_tcp_and_serial_are_built_per_lane(tmp_path: Path) -> None:
    (tmp_path / "store.toml").write_text(
        BASE
        + '[payments]\ngiftcard_offline = "allow"\ngiftcard_offline_limit = 50000\nforeign_cash = ["EUR"]\n'
        + '[[devices]]\nkind = "terminal"\nlane = 1\nport = "tcp://10.0.0.5:20007"\npayment_timeout = 90\n'
        + '[[devices]]\nkind = "terminal"\nlane = 2\nport = "/dev/ttyUSB3"\npassword = "123456"\n'
    )
    config = load_config(tmp_path / "store.toml")
    assert config.payments.giftcard_offline_limit == 50000
    lanes, specs = peripherals.build(config, HealthBoard(), _no_scan)  # type: ignore[arg-type]
    one, two = lanes[1].terminal, lanes[2].terminal
    assert isinstance(one, ZvtTerminal) and isinstance(two, ZvtTerminal)
    assert one._transport == ZvtTcp("10.0.0.5", 20007) and lanes[1].payment_timeout == 90
    assert two._transport == ZvtSerial(SerialSettings("/dev/ttyUSB3")) and two.password == "123456"
    assert [s.name for s in specs] == ["terminal-1", "terminal-2"]


def test_bad_payment_settings_are_refused_together(tmp_path: Path) -> None:
    (tmp_path / "store.toml").write_text(
        BASE
        + '[payments]\ngiftcard_offline = "sometimes"\ngiftcard_offline_limit = -1\n'
        + '[[devices]]\nkind = "terminal"\nlane = 1\n'
        + '[[devices]]\nkind = "terminal"\nlane = 1\nname = "t2"\nport = "x"\n'
    )
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "store.toml")
    text = str(info.value)
    assert "giftcard_offline must be reject or allow" in text and "cannot be negative" in text
    assert "needs a port" in text and "lane 1 has more than one terminal" in text
