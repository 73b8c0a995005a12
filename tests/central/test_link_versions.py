"""A store and central of incompatible link versions refuse each other plainly, over real websockets:
central says why in an error frame and its log, the store reports it on its health board and in its
log, and does not hammer central with reconnects that cannot succeed."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import trio

from central.app import CentralNode
from runtime.clock import FixedClock
from storenode.app import StoreNode
from tests.kit.nodes import enrolled, make_store_config
from till.client import connect


@pytest.mark.e2e  # waits 1.5 s of real time to show there is no reconnect loop
@pytest.mark.parametrize(("store_version", "central_version"), [(2, 3), (3, 4)], ids=["older-store", "newer-central"])
async def test_a_store_of_another_version_is_refused_and_both_sides_say_why(
    tmp_path: Path,
    central: CentralNode,
    nursery: trio.Nursery,
    caplog: pytest.LogCaptureFixture,
    store_version: int,
    central_version: int,
) -> None:
    caplog.set_level(logging.INFO)
    central.ingest.version = central_version
    store = StoreNode(enrolled(make_store_config(tmp_path, central_url=central.url), central), clock=FixedClock(0))
    store.link.version = store_version
    await nursery.start(store.run)
    both = f"store S001 speaks link protocol version {store_version} but central speaks version {central_version}"
    with trio.fail_after(20):
        health = await store.health.wait_until("sync", lambda h: h.state == "incompatible")
        assert health.last_error.startswith("incompatible: central refused us: " + both)
        central_said = [r for r in caplog.records if r.name == "protocol.link" and both in r.getMessage()]
        assert len(central_said) == 1 and "incompatible_version" in central_said[0].getMessage()
        store_said = [r for r in caplog.records if r.name == "storenode.sync.link" and both in r.getMessage()]
        assert len(store_said) == 1 and store_said[0].levelno == logging.ERROR
        assert not store.link.online and "S001" not in central.ingest.links
        async with connect(store.url, lane=1, till="T1") as till:  # the store sells on, offline
            status = await till.status()
            assert status.link == "offline"  # type: ignore[union-attr]
        # No reconnect loop: the normal backoff would have tried again several times by now.
        await trio.sleep(1.5)
        assert len([r for r in caplog.records if r.name == "protocol.link" and both in r.getMessage()]) == 1
        assert store.health.get("sync").state == "incompatible"


async def test_a_compatible_store_is_welcomed(store: StoreNode) -> None:
    with trio.fail_after(20):
        health = await store.health.wait_until("sync", lambda h: h.state == "online")
    assert health.state == "online" and store.link.online
