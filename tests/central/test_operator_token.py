"""The admin subprotocol's operator credential: central's operator.token (0600) first, over a real websocket
to a real central node; every refusal is one clear error, the connection closed, and central keeps serving
its stores and the next operator."""

from __future__ import annotations

import logging
import shutil
import stat
from pathlib import Path

import msgspec
import pytest
import trio
from trio_websocket import ConnectionClosed

from central import operators
from central.app import CentralNode
from protocol.codec import ADMIN_SUBPROTOCOL, LinkCodec
from protocol.frames import AdminHello, AdminWelcome, LinkError, LinkRequest
from protocol.websocket import dial
from runtime.ready import wait_ready_file
from storenode.app import StoreNode
from storepos.commands import central_reconcile, central_run
from tests.kit import certificates
from tests.kit.waits import online

CODEC = LinkCodec()


async def first_answer(url: str, *messages: bytes) -> object:
    """What central answers an admin connection that sends `messages`, and that it then closes it."""
    async with dial(url, subprotocols=[ADMIN_SUBPROTOCOL], ssl_context=certificates.trust()) as ws:
        for message in messages:
            await ws.send_message(message)
        answer = CODEC.decode(await ws.get_message())
        if not isinstance(answer, AdminWelcome):
            with pytest.raises(ConnectionClosed):
                await ws.get_message()
            assert ws.closed is not None and ws.closed.code == 1008
        return answer


def test_the_token_is_made_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = operators.ensure_token(tmp_path / "central")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = operators.read_token(tmp_path / "central")
    assert len(token) >= 43
    assert operators.ensure_token(tmp_path / "central") == path and operators.read_token(tmp_path / "central") == token
    assert [p.name for p in path.parent.iterdir()] == ["operator.token"]  # no staging file left behind
    with pytest.raises(operators.TokenError, match="no operator token"):
        operators.read_token(tmp_path / "elsewhere")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "operator.token").write_text("x" * 1000)
    with pytest.raises(operators.TokenError, match="not an operator token"):
        operators.read_token(tmp_path / "bad")


async def test_central_run_makes_the_token_when_there_is_none(tmp_path: Path, nursery: trio.Nursery) -> None:
    db, ready = tmp_path / "c" / "central.db", tmp_path / "ready"
    with trio.fail_after(20):
        nursery.start_soon(central_run, db, "127.0.0.1", 0, ready)
        assert (await wait_ready_file(ready))["url"].startswith("ws")
    token = db.parent / "operator.token"
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    nursery.cancel_scope.cancel()


async def test_an_operator_without_the_token_is_refused_and_central_keeps_serving(
    store: StoreNode,
    central: CentralNode,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    folder = central.db.path.parent
    operators.ensure_token(folder)
    request = CODEC.encode(LinkRequest(id=1, kind="reconcile", body=msgspec.msgpack.encode("S001")))
    with trio.fail_after(30), caplog.at_level(logging.WARNING, logger="central.ingest"):
        await online(store)
        # No token file on the operator's side: said before anything is sent.
        assert await central_reconcile(central.url, "S001", tmp_path / "nowhere") == 2
        assert "no operator token" in capsys.readouterr().err
        # A wrong token, a request with no hello first, garbage, an oversized hello: one refusal each.
        wrong = tmp_path / "wrong"
        wrong.mkdir()
        (wrong / "operator.token").write_text("not-the-token\n")
        shutil.copy(certificates.ca(), wrong / "ca.pem")  # central is trusted; the token is what is wrong
        assert await central_reconcile(central.url, "S001", wrong) == 2
        assert "central refused the operator: wrong operator token" in capsys.readouterr().err
        refusals = [
            await first_answer(central.url, request),
            await first_answer(central.url, b"\xc1garbage"),
            await first_answer(central.url, CODEC.encode(AdminHello(token="x" * 5000))),
            await first_answer(central.url, CODEC.encode(AdminHello(token="")), request),
        ]
        assert all(isinstance(r, LinkError) and r.code in ("unauthorised", "bad_frame") for r in refusals), refusals
        logged = [r.getMessage() for r in caplog.records if "operator tool from 127.0.0.1" in r.getMessage()]
        assert len(logged) == 5 and "wrong operator token" in logged[0]
        # Central still serves its store and the operator holding the token.
        assert store.link.online
        assert await central_reconcile(central.url, "S001", folder) == 0
        assert "central and store agree" in capsys.readouterr().out
        welcome = await first_answer(central.url, CODEC.encode(AdminHello(token=operators.read_token(folder))))
        assert welcome == AdminWelcome(node="central")


async def test_a_central_without_a_token_admits_no_operator(
    central: CentralNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = tmp_path / "operator"
    operators.ensure_token(mine)  # the operator holds some token; central's folder has none
    shutil.copy(certificates.ca(), mine / "ca.pem")
    with trio.fail_after(20):
        assert await central_reconcile(central.url, "S001", mine) == 2
    assert "central has no operator token" in capsys.readouterr().err


async def test_an_operator_tool_that_says_nothing_is_refused_in_bounded_time(
    central: CentralNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("central.ingest.HELLO_TIMEOUT", 0.2)
    with trio.fail_after(10):
        refused = await first_answer(central.url)
    assert isinstance(refused, LinkError) and refused.code == "timeout"


async def test_reconcile_over_wss_needs_the_chains_ca_in_centrals_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    operators.ensure_token(tmp_path)
    with trio.fail_after(10):
        assert await central_reconcile("wss://127.0.0.1:9", "S001", tmp_path) == 2
    err = capsys.readouterr().err
    assert "cannot load the trusted certificate" in err and "ca.pem" in err and "--central-dir" in err
