"""Enrolled tills over TLS (issue 13 item 1), over real sockets: any client could attach to any lane
without a credential, over plain ws. Now the gateway serves wss with the store's certificate, and a till
attaches only with a credential enrolled for its lane; without one it gets one refusal and nothing else."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import msgspec
import pytest
import trio
from trio_websocket import ConnectionClosed

from protocol import tls
from protocol.codec import SUBPROTOCOL_MSGPACK, TillCodec
from protocol.frames import CashTender, Error, Hello, Login, Receipt, SaleState, Scan, Status, StatusRequest, TillFrame
from protocol.websocket import CertificateRefused
from runtime.clock import FixedClock
from runtime.database import open_connection
from storenode import gateway_tls, till_credentials
from storenode.app import StoreNode
from storenode.config import StoreConfig, TillsConfig
from storepos.cli import main
from tests.kit import certificates
from tests.kit.nodes import T0, make_store_config
from tests.kit.tills import dial_till
from till.client import TillDisconnected, connect, read_credential, trust

MILK = "7310000000010"


async def start(nursery: trio.Nursery, config: StoreConfig, clock: FixedClock) -> StoreNode:
    node = StoreNode(config, clock=clock)
    await nursery.start(node.run)
    return node


async def enrol(store: StoreNode, lanes: list[int]) -> str:
    return await store.db.write(lambda c: till_credentials.enrol(c, lanes, "test till", T0))


async def refused_alone(url: str, hello: Hello) -> Error:
    """Say `hello` then ask a question: the store answers the hello with one error and closes; the
    question gets nothing."""
    codec = TillCodec(SUBPROTOCOL_MSGPACK, "till")
    async with dial_till(url, subprotocols=[SUBPROTOCOL_MSGPACK]) as ws:
        await ws.send_message(codec.encode(hello))
        refusal = codec.decode(await ws.get_message())
        assert isinstance(refusal, Error), refusal
        heard: list[TillFrame] = []
        with pytest.raises(ConnectionClosed):
            await ws.send_message(codec.encode(StatusRequest(ref=7)))
            while True:
                heard.append(codec.decode(await ws.get_message()))
        assert heard == []
        assert ws.closed is not None and ws.closed.code == 1008
        return refusal


async def test_tills_without_a_valid_credential_for_the_lane_get_one_refusal_and_nothing_else(
    tmp_path: Path, nursery: trio.Nursery, clock: FixedClock
) -> None:
    store = await start(nursery, make_store_config(tmp_path), clock)
    with trio.fail_after(20):
        lane2 = await enrol(store, [2])
        revoked = await enrol(store, [1])
        await store.db.write(lambda c: till_credentials.revoke(c, revoked.partition(".")[0], T0))
        ident, _, secret = lane2.partition(".")
        cases = {
            "": "not_enrolled",
            "tc-00000000.guess": "not_enrolled",
            f"{ident}.{secret[:-1]}x": "not_enrolled",  # the right id, a wrong secret
            f"{ident}.": "not_enrolled",
            revoked: "revoked",
            lane2: "wrong_lane",
        }
        for credential, code in cases.items():
            for lane in (1,) if code == "wrong_lane" else (1, 0):
                refusal = await refused_alone(store.url, Hello(till="T", lane=lane, credential=credential))
                assert refusal.code == code, (credential, lane, refusal)
        # the store is unharmed: an enrolled till attaches to the lane the refused ones asked for
        async with connect(store.url, lane=2, credential=lane2) as till:
            assert isinstance(till.state, SaleState)


async def test_an_enrolled_till_sells_and_a_revoked_one_is_refused_at_its_next_hello(
    tmp_path: Path, nursery: trio.Nursery, clock: FixedClock
) -> None:
    store = await start(nursery, make_store_config(tmp_path), clock)
    with trio.fail_after(20):
        credential = await enrol(store, [1, 2])
        async with connect(store.url, lane=1, credential=credential) as till:
            assert isinstance(await till.request(Login(operator="1", pin="1234")), SaleState)
            assert isinstance(await till.request(Scan(code=MILK)), SaleState)
            receipt = await till.request(CashTender(amount=2000))
            assert isinstance(receipt, Receipt) and 0 < receipt.change <= 2000 - receipt.total  # SEK cash rounds
        async with connect(store.url, lane=0, attach=False, credential=credential) as asking:
            assert isinstance(await asking.status(), Status)  # any enrolled till may ask
        await store.db.write(lambda c: till_credentials.revoke(c, credential.partition(".")[0], T0 + 1))
        with pytest.raises(ConnectionRefusedError, match="revoked"):
            async with connect(store.url, lane=1, credential=credential):
                pass


async def test_a_till_trusting_another_ca_refuses_the_store_and_one_pinning_its_certificate_connects(
    tmp_path: Path, nursery: trio.Nursery, clock: FixedClock
) -> None:
    config = make_store_config(tmp_path)
    assert gateway_tls.ensure(config)  # `storepos store init`: self-signed, as for a store without central
    key = gateway_tls.folder(config) / "tills.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    store = await start(nursery, config, clock)
    assert store.url.startswith("wss://")
    other = tmp_path / "other-chain"
    tls.make_ca(other, "another chain")
    with trio.fail_after(20):
        for stranger in (other / tls.CA_CERT, certificates.ca()):  # another chain's CA; this chain's, not the store's
            with pytest.raises(CertificateRefused):
                async with connect(store.url, lane=1, ssl_context=tls.client_context(stranger)):
                    pass
        async with connect(store.url, lane=1, ssl_context=trust(gateway_tls.cert_path(config))) as till:
            assert isinstance(till.state, SaleState)


async def test_plain_ws_only_when_asked_for_and_warned_at_every_start(
    tmp_path: Path, nursery: trio.Nursery, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    config = msgspec.structs.replace(make_store_config(tmp_path), tills=TillsConfig(insecure=True))
    with caplog.at_level(logging.WARNING, logger="storenode.gateway_tls"):
        store = await start(nursery, config, clock)
    assert store.url.startswith("ws://")
    assert any("plain ws://" in r.getMessage() for r in caplog.records)
    with trio.fail_after(10):
        async with connect(store.url, lane=1) as till:  # the kit's credential: enrolled, as ever
            assert isinstance(till.state, SaleState)
        refusal = await refused_alone(store.url, Hello(till="T", lane=1))
        assert refusal.code == "not_enrolled"


def test_enroll_list_and_revoke_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "store.toml"
    config.write_text('store = "S9"\nlanes = [1, 2]\ndata_dir = "data"\n')
    assert main(["store", "till", "enroll", "--config", str(config), "--lane", "1", "--name", "front-1"]) == 0
    credential = capsys.readouterr().out.splitlines()[1]
    ident = credential.partition(".")[0]
    assert ident.startswith("tc-")
    conn = open_connection(tmp_path / "data" / "store.db", readonly=True)
    try:  # only the hash is kept
        stored = conn.execute("SELECT secret_hash FROM till_credentials").fetchone()[0]
        assert credential.partition(".")[2].encode() not in bytes(stored)
        assert till_credentials.check(conn, credential, 1) == ""
        assert till_credentials.check(conn, credential, 2) == "wrong_lane"
    finally:
        conn.close()
    assert main(["store", "till", "list", "--config", str(config)]) == 0
    assert f"{ident}  lanes 1" in capsys.readouterr().out
    assert main(["store", "till", "revoke", ident, "--config", str(config)]) == 0
    assert main(["store", "till", "list", "--config", str(config)]) == 0
    assert "revoked" in capsys.readouterr().out
    assert main(["store", "till", "revoke", "tc-nope", "--config", str(config)]) == 1
    assert main(["store", "till", "enroll", "--config", str(config), "--lane", "-1"]) == 2
    assert main(["store", "init", "--config", str(config)]) == 0
    assert (tmp_path / "data" / "tls" / "tills.pem").exists()


def test_a_credential_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "till.credential"
    path.write_text("tc-1.secret\n")
    os.chmod(path, 0o644)
    with pytest.raises(ValueError, match="chmod 600"):
        read_credential(path)
    assert main(["till", "--store", "wss://127.0.0.1:9", "--lane", "1", "--credential", str(path)]) == 2
    os.chmod(path, 0o600)
    assert read_credential(path) == "tc-1.secret"


async def test_a_till_revoked_while_connected_is_told_and_closed_and_its_sale_waits(
    tmp_path: Path, nursery: trio.Nursery, clock: FixedClock
) -> None:
    """A revocation is written by another process (`storepos store till revoke`): the gateway checks the
    connected tills' credentials again every `[tills] recheck` seconds, and one revoked meanwhile is told
    and closed; its open sale stays on the lane for its cashier, as on any detach."""
    config = msgspec.structs.replace(make_store_config(tmp_path), tills=TillsConfig(recheck=0.2, idle_logout=0))
    store = await start(nursery, config, clock)
    with trio.fail_after(20):
        credential = await enrol(store, [1])
        kept = await enrol(store, [1, 2])
        async with connect(store.url, lane=2, credential=kept) as other:
            async with connect(store.url, lane=1, credential=credential) as till:
                assert isinstance(await till.request(Login(operator="1", pin="1234")), SaleState)
                assert isinstance(await till.request(Scan(code=MILK)), SaleState)
                await store.db.write(lambda c: till_credentials.revoke(c, credential.partition(".")[0], T0 + 1))
                while not till.notices:
                    await till.pushed.wait()
                assert till.notices[0].code == "revoked"
                with pytest.raises((TillDisconnected, ConnectionClosed)):
                    await till.request(Scan(code=MILK))
            assert isinstance(await other.request(Login(operator="2", pin="4321")), SaleState)  # others go on
        async with connect(store.url, lane=1, credential=kept) as next_till:
            assert next_till.state is not None and [x.code for x in next_till.state.lines] == [MILK]
