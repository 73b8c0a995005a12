"""Operators at a store (issue 13 item 4), over real till connections: wrong PINs lock the operator on
every lane and across a restart of the store (a new hello gives no new guesses), the store shows the
alarm, an unknown number does the same hash work as a known one, and central's register (distributed
with the catalogue) decides who logs in where."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
import trio

from central.app import CentralNode
from central.registers.catalog import Operator, Store
from protocol import pins
from protocol.frames import Error, Login, Status, TillFrame
from runtime.clock import FixedClock
from storenode import operators
from storenode.app import StoreNode
from tests.kit.catalog import commit, seed_central
from tests.kit.nodes import T0, make_store_config, stoppable, store_node
from till.client import connect

BOUND = 60


def code_of(answer: TillFrame) -> str:
    return answer.code if isinstance(answer, Error) else type(answer).__name__


async def login(node: StoreNode, lane: int, operator: str, pin: str) -> str:
    async with connect(node.url, lane=lane, till=f"T{lane}-{operator}-{pin}") as till:
        return code_of(await till.request(Login(operator=operator, pin=pin)))


async def alarm(node: StoreNode) -> tuple[str, str]:
    async with connect(node.url, lane=0, attach=False) as client:
        status = await client.status()
    assert isinstance(status, Status)
    entry = next(a for a in status.actors if a.name == operators.HEALTH)
    return entry.state, entry.detail


async def started(nursery: trio.Nursery, folder: Path, clock: FixedClock) -> tuple[StoreNode, trio.CancelScope]:
    node, scope = StoreNode(make_store_config(folder), clock=clock), trio.CancelScope()
    await nursery.start(stoppable, scope, node.run)
    return node, scope


async def test_wrong_pins_lock_the_operator_on_every_lane_and_across_a_restart(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    with trio.fail_after(BOUND):
        clock = FixedClock(T0)
        node, scope = await started(nursery, tmp_path, clock)
        async with connect(node.url, lane=1, till="T1") as till:
            for _ in range(5):
                assert code_of(await till.request(Login(operator="1", pin="9999"))) == "wrong_pin"
            answer = await till.request(Login(operator="1", pin="1234"))
            assert isinstance(answer, Error) and answer.code == "locked" and "operator 1" in answer.message
        assert await login(node, 1, "1", "1234") == "locked"  # a new hello gives no new guesses
        assert await login(node, 2, "1", "1234") == "locked"  # nor another lane: the cashier sees it too
        assert await login(node, 2, "2", "4321") == "SaleState"  # another operator is not affected
        state, detail = await alarm(node)
        assert state == "alarm" and "operator 1 locked until" in detail
        assert (tmp_path / "store" / "store.db").stat().st_mode & 0o777 == 0o600  # it holds PIN hashes

        scope.cancel()  # the store stops; its database keeps the count
        node, scope = await started(nursery, tmp_path, clock)
        assert await login(node, 1, "1", "1234") == "locked"
        assert (await alarm(node))[0] == "alarm"
        clock.advance(15 * 60_000)  # store.toml's operators.lockout_minutes, by the store's clock
        assert await login(node, 1, "1", "1234") == "SaleState"
        assert await alarm(node) == ("ok", "no operator locked out")
        scope.cancel()


async def test_an_unknown_number_runs_the_same_hash_work_and_locks_alike(
    tmp_path: Path, nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No wall-clock assertion: the unknown number is shown to take the dummy hash's path (the same
    scrypt parameters as a real PIN's), and to count towards a lockout as a known one does."""
    derived: list[tuple[bytes, int, int, int]] = []
    real = pins._derive
    pins.dummy_hash()  # made once per process (cached): not part of what a login does

    def watched(pin: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
        derived.append((salt, n, r, p))
        return real(pin, salt, n, r, p, length)

    monkeypatch.setattr(pins, "_derive", watched)
    with trio.fail_after(BOUND):
        node, scope = await started(nursery, tmp_path, FixedClock(T0))
        assert await login(node, 1, "42", "1234") == "wrong_pin"
        assert await login(node, 1, "1", "9999") == "wrong_pin"
        (unknown_salt, *unknown_cost), (known_salt, *known_cost) = derived
        assert unknown_cost == known_cost == [pins.N, pins.R, pins.P]
        assert unknown_salt == bytes(pins.SALT_BYTES) != known_salt  # the dummy hash's
        for _ in range(4):
            assert await login(node, 2, "42", "1234") == "wrong_pin"
        assert await login(node, 2, "42", "1234") == "locked"
        scope.cancel()


async def test_centrals_register_decides_who_logs_in_at_which_store(
    tmp_path: Path, central: CentralNode, nursery: trio.Nursery
) -> None:
    with trio.fail_after(BOUND):
        node = store_node(tmp_path, central, "S001")
        await nursery.start(node.run)
        assert await login(node, 1, "1", "1234") == "SaleState"  # central holds no operator: the file's list
        await seed_central(central, 3)
        await commit(central, "stores", [Store(store="S001", name="Main"), Store(store="S002", name="Harbour")])
        kim, jo = pins.hash_pin("8041"), pins.hash_pin("4711")
        version = await commit(
            central,
            "operators",
            [
                Operator(number="7", name="Kim", role="supervisor", stores="S001", pin_hash=kim),
                Operator(number="8", name="Jo", stores="S002", pin_hash=jo),
            ],
        )
        await node.catalog_follower.wait_version(version)
        assert await login(node, 1, "7", "8041") == "SaleState"
        assert await login(node, 1, "8", "4711") == "wrong_pin"  # works at S002 only; S001 has no hash of Jo's
        assert await login(node, 1, "1", "1234") == "wrong_pin"  # central's register replaced the file's list
        held = await node.db.read(lambda c: c.execute("SELECT number, pin_hash FROM operators").fetchall())
        assert sorted(held) == [("7", kim), ("8", "")]
        changed = await commit(
            central, "operators", [Operator(number="7", name="Kim", role="supervisor", stores="S001", pin_hash=jo)]
        )
        await node.catalog_follower.wait_version(changed)
        assert await login(node, 2, "7", "8041") == "wrong_pin"
        assert await login(node, 2, "7", "4711") == "SaleState"


def test_a_catalogue_file_with_plain_text_pins_is_refused(tmp_path: Path) -> None:
    from storenode.sync import replica

    demo = msgspec.json.decode(replica.demo_catalog_path().read_bytes())
    demo["operators"] = [{"number": "1", "name": "Alex", "pin": "1234"}]
    path = tmp_path / "catalog.json"
    path.write_bytes(msgspec.json.encode(demo))
    with pytest.raises(replica.CatalogError, match="plain-text pin; give pin_hash"):
        replica.read_catalog(path)
    assert b'"pin"' not in replica.demo_catalog_path().read_bytes()


def test_pin_hash_prints_a_hash_for_a_catalogue_file_and_never_the_pin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    from storepos import commands

    monkeypatch.setattr("sys.stdin", io.StringIO("80417\n"))
    assert commands.pin_hash() == 0
    out = capsys.readouterr().out.strip()
    assert "80417" not in out and pins.verify("80417", out)
    monkeypatch.setattr("sys.stdin", io.StringIO("1111\n"))
    assert commands.pin_hash() == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "one digit repeated" in captured.err and "1111" not in captured.err
