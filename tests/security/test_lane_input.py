"""Input that once took a lane down (and, repeated, the whole store) now gets a refusal, and the lane
goes on selling with its till still attached: issue 13's attacks on the lane, on the fast lane rig."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
from trio.testing import MockClock

from protocol.frames import CashTender, Error, Login, Receipt, RefundOf, ReturnItem, SaleState, Scan, Total
from tests.kit.lanes import LaneRig, open_lane
from tests.kit.payments import MILK

BOUND = 120  # virtual seconds


@pytest.fixture
async def rig(tmp_path: Path, nursery: trio.Nursery, autojump_clock: MockClock) -> AsyncIterator[LaneRig]:
    with trio.fail_after(BOUND):
        rig = await open_lane(tmp_path, nursery, autojump_clock)
        assert isinstance(await rig.do(Login(operator="1", pin="1234")), SaleState)
    yield rig


async def sells_after(rig: LaneRig) -> None:
    """The same lane actor, the same till, a whole sale: nothing was restarted or dropped."""
    state = await rig.do(Scan(code=MILK))
    assert isinstance(state, SaleState) and state.lines, state
    total = await rig.do(Total())
    assert isinstance(total, SaleState)
    paid = await rig.do(CashTender(amount=100_000))
    assert isinstance(paid, Receipt | SaleState), paid
    assert any(isinstance(r, Receipt) for r in rig.till.receipts)


@pytest.mark.parametrize(
    "code",
    ["2300005\u00b21234\u00b2", "\u0663" * 13, "7310000000010\x1b[2J", "x" * 5000, "73100 00000010", "\u202e123"],
)
async def test_a_scan_of_a_code_no_symbology_makes_is_refused_and_the_lane_sells_on(rig: LaneRig, code: str) -> None:
    with trio.fail_after(BOUND):
        lane = rig.lane
        answer = await rig.do(Scan(code=code))
        assert isinstance(answer, Error) and answer.code == "bad_barcode", answer
        assert len(answer.message) < 200  # the refusal does not echo the code back
        assert rig.lane is lane
        await sells_after(rig)


async def test_a_tender_beyond_64_bits_on_a_refund_answers_internal_and_the_lane_sells_on(rig: LaneRig) -> None:
    """Cash of 2**64 - 1 tendered on a refund overflowed SQLite's integers and crashed the lane; now the
    command is refused (`internal`, with a log reference, until tenders are bounded at the frame) and
    the lane reloads what it had saved, its till still attached."""
    with trio.fail_after(BOUND):
        await sells_after(rig)
        refund = await rig.do(RefundOf(receipt="S001-1-1"))
        assert isinstance(refund, SaleState), refund
        assert isinstance(await rig.do(ReturnItem(code=MILK)), SaleState)
        assert isinstance(await rig.do(Total()), SaleState)
        lane = rig.lane
        answer = await rig.do(CashTender(amount=2**64 - 1))
        assert isinstance(answer, Error), answer
        assert answer.code in ("internal", "bad_amount", "tender_too_large"), answer
        assert rig.lane is lane
        assert len(await rig.journal()) == 1  # the refund did not close on that tender


async def test_a_receipt_id_with_a_superscript_digit_is_refused(rig: LaneRig) -> None:
    with trio.fail_after(BOUND):
        answer = await rig.do(RefundOf(receipt="S001-1-\u00b9"))
        assert isinstance(answer, Error) and answer.code == "bad_receipt", answer
        await sells_after(rig)
