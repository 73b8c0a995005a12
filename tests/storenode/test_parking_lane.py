"""Park and resume on the lane actors alone (a real SQLite journal, a fake card terminal): a sale whose
card payment is in doubt is not parked; one whose card was declined is, and its declined attempt goes with
it to the lane that resumes it and is journaled once, with the sale."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
from trio.testing import MockClock

from protocol.frames import CardTender, CashTender, Error, Login, Park, Receipt, Resume, SaleState, Scan
from runtime.mailbox import Rejected
from storenode.lanes.lane import Attach, Do, Lane
from tests.kit.lanes import FakeTill, LaneRig, open_lane
from tests.kit.payments import COFFEE, MILK

BOUND = 120  # virtual seconds


@pytest.fixture
async def rig(tmp_path: Path, nursery: trio.Nursery, autojump_clock: MockClock) -> AsyncIterator[LaneRig]:
    with trio.fail_after(BOUND):
        rig = await open_lane(tmp_path, nursery, autojump_clock)
        assert isinstance(await rig.do(Login(operator="1", pin="1234")), SaleState)
    yield rig


async def parked_count(rig: LaneRig) -> int:
    return int(await rig.db.read(lambda c: c.execute("SELECT count(*) FROM parked_sales").fetchone()[0]))


async def card_outcome(rig: LaneRig) -> SaleState:
    answer = await rig.do(CardTender())
    assert isinstance(answer, SaleState) and answer.status == "paying", answer
    return await rig.till.until(lambda s: s.status != "paying" or "unknown" in s.message)


async def test_a_sale_with_its_card_payment_in_doubt_is_not_parked(rig: LaneRig) -> None:
    rig.terminal.outcomes = ["unknown"]
    with trio.fail_after(BOUND):
        await rig.do(Scan(code=MILK))
        before = await card_outcome(rig)
        assert before.status == "paying"
        refused = await rig.do(Park())
        assert isinstance(refused, Error) and refused.code == "payment_in_progress", refused
        assert rig.lane.state.status == "paying" and rig.lane.state.pending is not None
        assert await parked_count(rig) == 0 and await rig.journal() == []


async def test_a_declined_card_attempt_goes_with_the_parked_sale_and_is_journaled_once(
    rig: LaneRig, nursery: trio.Nursery
) -> None:
    rig.terminal.outcomes = ["declined"]
    with trio.fail_after(BOUND):
        await rig.do(Scan(code=COFFEE))
        declined = await card_outcome(rig)
        assert declined.status == "open" and declined.paid == 0
        parked = await rig.do(Park())
        assert isinstance(parked, SaleState) and parked.status == "ready", parked

        other = Lane(2, rig.lane.ctx)  # lane 2 of the same store: the same database and journal
        await nursery.start(other.run)
        till = FakeTill()
        await other.mailbox.ask(Attach(till))
        with rig.work.held():  # the login hashes its PIN in a thread
            await other.mailbox.ask(Do(Login(operator="2", pin="4321", ref=1), till))
        await other.mailbox.ask(Do(Resume(id="P1", ref=2), till))
        assert other.state.sale_id == declined.sale_id and [p.outcome for p in other.state.payments] == ["declined"]
        with pytest.raises(Rejected) as again:  # resumed once: the id is used up
            await other.mailbox.ask(Do(Resume(id="P1", ref=3), till))
        assert again.value.code == "sale_open"  # lane 2 has the sale now
        await other.mailbox.ask(Do(CashTender(amount=10000, ref=4), till))
        (receipt,) = [f for f in till.frames if isinstance(f, Receipt)]
        assert receipt.sale_id == declined.sale_id and receipt.total == declined.total

    records = await rig.journal()
    sales = [r for r in records if r.kind == "sale"]
    assert [(s.lane, s.sale_id) for s in sales] == [(2, declined.sale_id)]
    assert [p.outcome for p in sales[0].payments] == ["declined"]  # the attempt, once, with the sale
    assert [(r.lane, r.event.code) for r in records if r.event] == [(1, "park"), (2, "resume")]
    assert await parked_count(rig) == 0
