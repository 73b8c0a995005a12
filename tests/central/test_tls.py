"""Central's TLS port under bad input, and `storepos central init`.

Garbage, plain HTTP, a client that opens TCP and says nothing, one that starts the TLS handshake and
stalls, and one that finishes TLS but never asks for the websocket: each ends that connection only
(within the handshake bound, so no descriptor is held for long), and central goes on serving stores."""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

import pytest
import trio
from cryptography import x509

from central.registers import sales
from protocol import tls
from protocol.frames import CashTender, Login, Receipt, Scan
from storepos.commands import central_init
from tests.kit import certificates
from tests.kit.nodes import central_node, store_node
from tests.kit.waits import drained
from till.client import connect

MILK = "7310000000010"


def client_hello() -> bytes:
    """The first flight of a real TLS client, to send and then fall silent after."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls_object = certificates.trust().wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    with pytest.raises(ssl.SSLWantReadError):
        tls_object.do_handshake()
    return outgoing.read()


async def closed_by_peer(stream: trio.SocketStream) -> None:
    """Until central closes the connection (whatever it said first)."""
    try:
        while await stream.receive_some(4096):
            pass
    except trio.BrokenResourceError:
        pass


async def test_bad_clients_at_the_tls_port_end_alone_and_central_serves_on(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    central = central_node(tmp_path / "central" / "central.db", handshake_timeout=0.5)
    await nursery.start(central.run)
    with trio.fail_after(30):
        bad: list[trio.SocketStream] = []
        for first in (
            b"\x00\xff" * 200,  # garbage
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",  # plain HTTP
            b"",  # TCP open, nothing said
            client_hello(),  # a TLS handshake begun and never finished
        ):
            stream = await trio.open_tcp_stream("127.0.0.1", central.bound_port)
            if first:
                await stream.send_all(first)
            bad.append(stream)
        tls_only = await trio.open_ssl_over_tcp_stream(
            "127.0.0.1", central.bound_port, ssl_context=certificates.trust(), https_compatible=True
        )
        await tls_only.do_handshake()  # TLS done, then no websocket request

        store = store_node(tmp_path, central, "S001")  # while all of them hang on, a store links and sells
        await nursery.start(store.run)
        async with connect(store.url, lane=1, till="T1") as till:
            await till.request(Login(operator="1", pin="1234"))
            await till.request(Scan(code=MILK))
            assert isinstance(await till.request(CashTender(amount=2000)), Receipt)
        await drained(store)

        for stream in bad:
            await closed_by_peer(stream)
        try:
            assert await tls_only.receive_some(4096) == b""
        except trio.BrokenResourceError:
            pass

        other = store_node(tmp_path, central, "S002")  # and after them, another store still links
        await nursery.start(other.run)
        async with connect(other.url, lane=1, till="T1") as till:
            await till.request(Login(operator="1", pin="1234"))
            await till.request(Scan(code=MILK))
            assert isinstance(await till.request(CashTender(amount=2000)), Receipt)
        await drained(other)
    got = await central.db.read(lambda c: [r.store for r in sales.receipts(c, "S001") + sales.receipts(c, "S002")])
    assert got == ["S001", "S002"]


def test_central_init_makes_the_chain_once_with_private_keys_0600(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "central" / "central.db"
    assert central_init(db, ["central.example", "10.0.0.5"]) == 0
    first = capsys.readouterr().out
    folder = db.parent
    assert (
        "made chain CA" in first and "central.example, 10.0.0.5" in first and f"made central's database {db}" in first
    )
    assert "made operator token" in first
    for key in (tls.CA_KEY, tls.CENTRAL_KEY, "operator.token"):
        assert stat.S_IMODE((folder / key).stat().st_mode) == 0o600
    names = (tls.CA_KEY, tls.CA_CERT, tls.CENTRAL_KEY, tls.CENTRAL_CERT, "operator.token")
    made = {name: (folder / name).read_bytes() for name in names}

    assert central_init(db, []) == 0  # again: nothing replaced, however it is asked
    again = capsys.readouterr().out
    assert "nothing made" in again and "made" not in again.replace("nothing made", "")
    assert {name: (folder / name).read_bytes() for name in made} == made
    # What it made fits together: central's certificate is the CA's, for the names asked.
    ca = x509.load_pem_x509_certificate(made[tls.CA_CERT])
    cert = x509.load_pem_x509_certificate(made[tls.CENTRAL_CERT])
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["central.example"]
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["10.0.0.5"]
