"""Payouts and cash counts in a real store process killed (-9) at random instants while a till sends them:
after each restart the till sends again whatever it did not hear answered, under the same key, and in the
end every action is journaled exactly once (nothing lost, nothing doubled), the journal verifies, and every
count expected exactly what the journal says the drawer held (the lane's last-count bookkeeping, written
in the count's own transaction, never disagrees with the journal)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import trio
from trio_websocket import ConnectionClosed, HandshakeError

from devtools.processes import STORE_TOML, Processes, storepos
from protocol.frames import (
    CashAmount,
    CashCount,
    CashDone,
    CashDrop,
    Command,
    Counted,
    FloatMove,
    Login,
    Payout,
    SaleRecord,
)
from tests.kit.journal import journal_at
from till.client import TillDisconnected, connect

pytestmark = pytest.mark.e2e  # real storepos processes: left out of the fast loop

ROUNDS = 3
LOST = (OSError, HandshakeError, ConnectionClosed, TillDisconnected)


class Heard:
    """The answers a till heard, by key; `reached` is set once `target` of them are in."""

    def __init__(self) -> None:
        self.answers: dict[str, CashDone] = {}
        self.target = 0
        self.reached = trio.Event()

    def add(self, key: str, answer: CashDone) -> None:
        self.answers[key] = answer
        if len(self.answers) >= self.target:
            self.reached.set()


async def _send(url: str, actions: list[tuple[str, Command]], heard: Heard) -> None:
    """Log in and send every action not yet heard answered, in order, until done or the store dies."""
    try:
        async with connect(url, lane=1, till="T1") as till:
            await till.request(Login(operator="1", pin="1234"))
            for key, command in actions:
                if key in heard.answers:
                    continue
                answer = await till.request(command)
                assert isinstance(answer, CashDone), answer
                heard.add(key, answer)
    except LOST:
        pass  # killed under it: the next round sends again what was not heard


async def _crash_rounds(
    tmp_path: Path, procs: Processes, actions: list[tuple[str, Command]], seed: int
) -> dict[str, CashDone]:
    """Send `actions` (key, command) in order, killing the store in each of ROUNDS runs at a random instant
    while commands are in flight (a few ms after some answer), resending from the first unanswered one
    after each restart; returns the answers heard, by key."""
    config = tmp_path / "store.toml"
    config.write_text(STORE_TOML.format(central="", ca=""))
    rng = random.Random(seed)
    heard = Heard()
    for n in range(ROUNDS + 1):
        store, url = await procs.start(f"store{n}", "store", "run", "--config", str(config))
        heard.target = len(heard.answers) + rng.randrange(3, len(actions) // (ROUNDS + 1))
        heard.reached = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_send, url, actions, heard)
            if n < ROUNDS:
                await heard.reached.wait()
                await trio.sleep(rng.uniform(0, 0.02))  # somewhere inside the next command's work
                procs.kill9(store)
        if n < ROUNDS:
            await store.wait()
    assert set(heard.answers) == {key for key, _ in actions}
    verify = await storepos("store", "verify-journal", "--config", str(config))
    assert verify.returncode == 0, verify.stdout.decode()
    return heard.answers


def _events(tmp_path: Path, code: str) -> list[SaleRecord]:
    records = journal_at(tmp_path / "store-data" / "store.db")
    return [r for r in records if r.event is not None and r.event.code == code]


async def test_payouts_under_kill_9_are_journaled_once_each(tmp_path: Path, procs: Processes) -> None:
    actions: list[tuple[str, Command]] = [
        (f"P{i}", Payout(amount=100 + i, account="postage", reason=f"stamps {i}", key=f"P{i}")) for i in range(60)
    ]
    with trio.fail_after(180):
        heard = await _crash_rounds(tmp_path, procs, actions, seed=14)
    payouts = _events(tmp_path, "payout")
    refs = [r.event.ref for r in payouts if r.event is not None]
    assert sorted(refs) == sorted(key for key, _ in actions)  # each once: none lost, none doubled
    for record in payouts:
        assert record.event is not None
        i = int(record.event.ref[1:])
        assert [(t.currency, t.amount) for t in record.event.amounts] == [("SEK", -(100 + i))]
        assert heard[record.event.ref].receipt_no == record.receipt_no  # what the till heard is what was journaled


async def test_counts_under_kill_9_expect_what_the_journal_holds(tmp_path: Path, procs: Processes) -> None:
    rng = random.Random(7)
    actions: list[tuple[str, Command]] = []
    for i in range(20):
        actions.append((f"F{i}", FloatMove(amounts=[CashAmount(amount=1000 + i)], key=f"F{i}")))
        actions.append((f"D{i}", CashDrop(amounts=[CashAmount(amount=100)], key=f"D{i}")))
        actions.append((f"C{i}", CashCount(counts=[Counted(counted=rng.randrange(0, 5000))], key=f"C{i}")))
    with trio.fail_after(180):
        await _crash_rounds(tmp_path, procs, actions, seed=41)
    records = journal_at(tmp_path / "store-data" / "store.db")
    events = [r for r in records if r.event is not None]
    assert sorted(r.event.ref for r in events if r.event) == sorted(key for key, _ in actions)
    held = 0  # replayed from the journal alone: each count expects the last counted plus what moved since
    counts = 0
    for record in events:
        assert record.event is not None
        if record.event.code == "count":
            (line,) = record.event.counts
            assert line.expected == held, record.event.ref
            held = line.counted
            counts += 1
        else:
            held += sum(t.amount for t in record.event.amounts)
    assert counts == 20
