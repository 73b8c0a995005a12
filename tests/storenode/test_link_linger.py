"""The sync link lingers once a sale is queued, so the sales of one moment reach central as one batch."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
import trio

from central.app import CentralNode
from central.registers import sales
from protocol.frames import CashTender, Login, Receipt, Scan
from runtime.clock import FixedClock
from storenode.app import StoreNode
from storenode.config import ConfigError, load_config
from tests.kit.nodes import T0, enrolled, make_store_config
from tests.kit.waits import drained, online
from till.client import connect

MILK = "7310000000010"


async def test_two_sales_within_the_linger_go_to_central_in_one_batch_per_stream(
    tmp_path: Path, nursery: trio.Nursery, central: CentralNode
) -> None:
    config = make_store_config(tmp_path, central_url=central.url)
    config = msgspec.structs.replace(config, central=msgspec.structs.replace(config.central, linger=0.5))
    store = StoreNode(enrolled(config, central), clock=FixedClock(T0))
    with trio.fail_after(30):
        await nursery.start(store.run)
        await online(store)
        async with connect(store.url, lane=1, till="T1") as one, connect(store.url, lane=2, till="T2") as two:
            for till in (one, two):
                await till.request(Login(operator="1", pin="1234"))
                await till.request(Scan(code=MILK))
                assert isinstance(await till.request(CashTender(amount=2000)), Receipt)
        assert store.link.batches_sent == 0  # both are still lingering: the first waits its second out
        await drained(store)
        # Each sale queues a journal record and a stock movement: sent one by one, that is four batches.
        assert store.link.batches_sent == 2
        got = await central.db.read(sales.summaries)
        assert got[0].sales == 2


@pytest.mark.parametrize("linger", ["-0.1", "5.0", "9"])
def test_a_linger_below_zero_or_not_below_the_heartbeat_is_refused(tmp_path: Path, linger: str) -> None:
    (tmp_path / "store.toml").write_text(f'store = "S1"\nlanes = [1]\n[central]\nheartbeat = 5.0\nlinger = {linger}\n')
    with pytest.raises(ConfigError, match=r"central\.linger must be 0 or more and less than central\.heartbeat"):
        load_config(tmp_path / "store.toml")


def test_the_default_linger_is_a_tenth_of_a_second(tmp_path: Path) -> None:
    (tmp_path / "store.toml").write_text('store = "S1"\nlanes = [1]\n')
    assert load_config(tmp_path / "store.toml").central.linger == 0.1
