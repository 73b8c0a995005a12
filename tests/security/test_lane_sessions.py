"""The lane's side of till sessions, on the autojump clock (tests/kit/lanes.py): what a till hears that it
did not ask carries ref 0, a device acts only while someone is logged in at the lane's till, and a till
that is gone takes its session along."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
from trio.testing import MockClock

from devices.terminal import Report
from protocol.frames import EndOfDay, Error, Login, SaleState, Scan, TerminalReport
from runtime.mailbox import Rejected
from storenode.lanes.lane import Attach, Detach, Do
from tests.kit.lanes import FakeTill, LaneRig, open_lane

MILK = "7310000000010"


@pytest.fixture
async def rig(tmp_path: Path, nursery: trio.Nursery, autojump_clock: MockClock) -> AsyncIterator[LaneRig]:
    with trio.fail_after(60):
        rig = await open_lane(tmp_path, nursery, autojump_clock)
    yield rig


async def test_a_device_scan_reaches_the_till_with_ref_0_and_only_in_a_session(rig: LaneRig) -> None:
    with trio.fail_after(60):
        with pytest.raises(Rejected, match="not_logged_in"):  # a scanner at a lane nobody is logged in at
            await rig.lane.mailbox.ask(Do(Scan(code=MILK, ref=77), None))
        assert isinstance(rig.till.frames[-1], Error) and rig.till.frames[-1].ref == 0
        assert isinstance(await rig.do(Login(operator="1", pin="1234")), SaleState)
        await rig.lane.mailbox.ask(Do(Scan(code=MILK, ref=77), None))
        state = rig.till.state
        assert state is not None and len(state.lines) == 1 and state.ref == 0  # 77 was not the till's


async def test_an_end_of_day_report_goes_with_ref_0_to_a_till_that_took_over(rig: LaneRig) -> None:
    release = trio.Event()

    async def slow_end_of_day() -> Report:
        await release.wait()
        return Report(ok=True, currency="SEK")

    rig.terminal.end_of_day = slow_end_of_day  # type: ignore[method-assign]
    with trio.fail_after(120):
        assert isinstance(await rig.do(Login(operator="1", pin="1234")), SaleState)
        with rig.work.held():  # runs beside the lane, answered later; a supervisor approves it
            await rig.lane.mailbox.ask(Do(EndOfDay(ref=41, approver="2", approver_pin="4321"), rig.till))
        other = FakeTill()
        other.till = "T2"
        with rig.work.held():
            await rig.lane.mailbox.ask(Attach(other, takeover=Login(operator="1", pin="1234")))
        assert rig.till.dropped and isinstance(rig.till.frames[-1], Error)
        assert rig.till.frames[-1].code == "taken_over"
        release.set()
        while not any(isinstance(f, TerminalReport) for f in other.frames):
            await other._pushed.park()
        assert all(getattr(f, "ref", 0) == 0 for f in other.frames)
        assert not any(isinstance(f, TerminalReport) for f in rig.till.frames)


async def test_a_detached_till_takes_its_session_with_it(rig: LaneRig) -> None:
    with trio.fail_after(60):
        assert isinstance(await rig.do(Login(operator="1", pin="1234")), SaleState)
        await rig.lane.mailbox.ask(Detach(rig.till))
        other = FakeTill()
        await rig.lane.mailbox.ask(Attach(other))
        with pytest.raises(Rejected, match="not_logged_in"):
            await rig.lane.mailbox.ask(Do(Scan(code=MILK), other))
        with pytest.raises(Rejected, match="not_attached"):  # the gone till's late command is not done
            await rig.lane.mailbox.ask(Do(Scan(code=MILK), rig.till))
        welcome_state = other.frames[0].state  # type: ignore[attr-defined]
        assert welcome_state.status == "closed" and welcome_state.operator == ""
