"""The store's link over TLS: it talks only to a central whose certificate it trusts (the chain's CA
or central's own certificate pinned), and a central it does not trust gets nothing and deletes nothing.
Plain ws:// only when the config says `insecure = true`, and then with a warning at every start."""

from __future__ import annotations

import logging
from pathlib import Path

import msgspec
import pytest
import trio

from central.app import CentralNode
from central.registers import sales
from devtools.certificates import central_context, make_chain
from protocol import tls
from protocol.frames import CashTender, Login, Receipt, Scan
from runtime.clock import FixedClock
from storenode.app import StoreNode
from storenode.config import ConfigError, StoreConfig, load_config
from tests.kit import certificates
from tests.kit.nodes import T0, central_node, enrolled, make_store_config
from tests.kit.waits import drained
from till.client import connect

MILK = "7310000000010"


def trusting(tmp_path: Path, url: str, ca: Path) -> StoreConfig:
    config = make_store_config(tmp_path, central_url=url)
    return msgspec.structs.replace(config, central=msgspec.structs.replace(config.central, ca=str(ca)))


async def sell(store: StoreNode, count: int) -> None:
    async with connect(store.url, lane=1, till="T1") as till:
        await till.request(Login(operator="1", pin="1234"))
        for _ in range(count):
            await till.request(Scan(code=MILK))
            assert isinstance(await till.request(CashTender(amount=2000)), Receipt)


async def received(central: CentralNode, store: str = "S001") -> int:
    return len(await central.db.read(lambda c: sales.receipts(c, store)))


async def test_a_central_with_another_chains_certificate_gets_nothing_and_deletes_nothing(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    """A fake central (a certificate from a CA the store does not trust) would welcome the store with
    whatever cursors it likes; the store never gets as far as a hello, so nothing leaves its outbox."""
    make_chain(tmp_path / "other")
    fake = CentralNode(tmp_path / "fake" / "central.db", port=0, ssl_context=central_context(tmp_path / "other"))
    await nursery.start(fake.run)
    store = StoreNode(make_store_config(tmp_path, central_url=fake.url), clock=FixedClock(T0))
    await nursery.start(store.run)
    with trio.fail_after(20):
        health = await store.health.wait_until("sync", lambda h: "not trusted" in h.last_error)
        await sell(store, 2)
        before = (await store.status()).outbox
        assert before == 4  # two sales, two stock moves
        # Another attempt or two, refused the same way, deletes nothing either.
        await trio.sleep(1.0)
        status = await store.status()
    assert status.outbox == before and status.link == "offline"
    assert health.last_error.startswith("central's certificate is not trusted: certificate of 127.0.0.1:")
    assert "unable to get local issuer certificate" in health.last_error
    assert fake.ingest.links == {} and await received(fake) == 0


async def test_a_pinned_central_certificate_is_trusted_alone(
    tmp_path: Path, central: CentralNode, nursery: trio.Nursery
) -> None:
    config = trusting(tmp_path, central.url, certificates.chain() / tls.CENTRAL_CERT)
    store = StoreNode(enrolled(config, central), clock=FixedClock(T0))
    await nursery.start(store.run)
    with trio.fail_after(20):
        await sell(store, 1)
        await drained(store)
    assert await received(central) == 1


async def test_a_pin_to_another_certificate_of_the_same_chain_is_refused(
    tmp_path: Path, central: CentralNode, nursery: trio.Nursery
) -> None:
    """Pinned means that certificate only: the chain's proxy certificate does not vouch for central's."""
    pinned = certificates.chain() / "proxy.pem"
    store = StoreNode(trusting(tmp_path, central.url, pinned), clock=FixedClock(T0))
    await nursery.start(store.run)
    with trio.fail_after(20):
        health = await store.health.wait_until("sync", lambda h: "not trusted" in h.last_error)
        await sell(store, 1)
    assert "central's certificate is not trusted" in health.last_error
    assert not store.link.online and await received(central) == 0


async def test_a_host_the_certificate_does_not_name_is_refused(
    tmp_path: Path, central: CentralNode, nursery: trio.Nursery
) -> None:
    """Central's test certificate names 127.0.0.1 and localhost; dialled by another of its addresses
    (127.0.0.2 reaches the same listener only if bound to it, so bind central there), it is refused."""
    other = central_node(tmp_path / "other" / "central.db", host="127.0.0.2")
    await nursery.start(other.run)
    store = StoreNode(make_store_config(tmp_path, central_url=other.url), clock=FixedClock(T0))
    await nursery.start(store.run)
    with trio.fail_after(20):
        health = await store.health.wait_until("sync", lambda h: "not trusted" in h.last_error)
    assert "127.0.0.2" in health.last_error and "mismatch" in health.last_error.lower()


async def test_insecure_plain_ws_still_links_and_warns_at_start(
    tmp_path: Path, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    plain = CentralNode(tmp_path / "central" / "central.db", port=0)
    await nursery.start(plain.run)
    assert plain.url.startswith("ws://")
    config = make_store_config(tmp_path, central_url=plain.url, insecure=True)
    store = StoreNode(enrolled(config, plain), clock=FixedClock(T0))
    with caplog.at_level(logging.WARNING, logger="storenode.sync.link"):
        await nursery.start(store.run)
        with trio.fail_after(20):
            await sell(store, 1)
            await drained(store)
    assert await received(plain) == 1
    assert any("plain ws://" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


async def test_plain_ws_without_insecure_is_not_dialled(
    tmp_path: Path, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    """load_config refuses this; a config built in code is refused again by the link itself."""
    plain = CentralNode(tmp_path / "central" / "central.db", port=0)
    await nursery.start(plain.run)
    store = StoreNode(make_store_config(tmp_path, central_url=plain.url), clock=FixedClock(T0))
    await nursery.start(store.run)
    with trio.fail_after(20):
        health = await store.health.wait_until("sync", lambda h: h.state == "refused")
        await sell(store, 1)
        await trio.sleep(0.5)
    assert "insecure = true" in health.last_error
    assert plain.ingest.links == {} and await received(plain) == 0 and (await store.status()).outbox == 2


BASE = 'store = "S1"\nlanes = [1]\n[central]\n'


@pytest.mark.parametrize(
    ("central", "says"),
    [
        ('url = "ws://central:8700"\n', "set central.insecure = true"),
        ('url = "wss://central:8700"\n', "central.ca must name"),
        ('url = "http://central:8700"\nca = "ca.pem"\n', "must be wss://host:port"),
        ('url = "wss://central:8700"\nca = "nowhere.pem"\n', "nowhere.pem is not a file"),
    ],
    ids=["plain-ws", "no-ca", "http", "missing-ca"],
)
def test_a_link_config_without_tls_or_trust_is_refused_at_load(tmp_path: Path, central: str, says: str) -> None:
    (tmp_path / "store.toml").write_text(BASE + central)
    with pytest.raises(ConfigError, match=says):
        load_config(tmp_path / "store.toml")


def test_ca_is_found_beside_the_config_and_insecure_allows_ws(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_bytes((certificates.ca()).read_bytes())
    (tmp_path / "store.toml").write_text(BASE + 'url = "wss://central:8700"\nca = "ca.pem"\n')
    assert load_config(tmp_path / "store.toml").central.ca == str(tmp_path / "ca.pem")
    (tmp_path / "store.toml").write_text(BASE + 'url = "ws://central:8700"\ninsecure = true\n')
    assert load_config(tmp_path / "store.toml").central.insecure
