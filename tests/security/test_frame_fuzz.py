"""Every frame a till may send, with arbitrary field values, takes no lane down (issue 13, "Must hold"):
after any sequence of them the lane actor is the one that started, every command got an answer, the
lane's `internal` refusal (a bug caught by the lane's guard) never appears, a normal sale completes
with a receipt and the journal verifies with the store key.

Two rigs: the lane actor alone (tests/kit/lanes.py, a fresh lane for every example, many examples),
and a real store node's gateway over websockets (fewer examples, one node, raw frames and bytes too).
Runs are derandomized, so CI sees the same examples every time; FUZZ_EXAMPLES=N raises the counts for a
soak run (`FUZZ_EXAMPLES=5000 pytest tests/security/test_frame_fuzz.py`).
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from trio.testing import MockClock

from protocol.frames import (
    CancelSale,
    CashTender,
    Command,
    Error,
    Login,
    Receipt,
    ResolvePayment,
    SaleState,
    Scan,
    TillFrame,
    Total,
)
from storenode.journal import chain
from tests.kit.fuzzing import CASHIER, CASHIER_PIN, MANAGER, MANAGER_PIN, MILK, commands
from tests.kit.lanes import FakeCentral, LaneRig, open_lane

SOAK = int(os.environ.get("FUZZ_EXAMPLES", "0"))
LANE_EXAMPLES = SOAK or 200
BOUND = 120  # virtual seconds for one example on the lane rig

FUZZ = settings(
    max_examples=LANE_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],  # no explain phase: it reruns every failure
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


def on_lane_rig(body: Callable[[LaneRig], Awaitable[None]]) -> None:
    """Run `body` against a fresh lane (its own database) on trio's autojump clock."""
    clock = MockClock(autojump_threshold=0)

    async def main() -> None:
        with tempfile.TemporaryDirectory() as folder:
            async with trio.open_nursery() as nursery:
                with trio.fail_after(BOUND):
                    central = FakeCentral(giftcards={"GC-1": 50_00}, customers={"C1": "Acme AB"})
                    rig = await open_lane(Path(folder), nursery, clock, central=central)
                    await body(rig)
                clock.autojump_threshold = math.inf  # the database thread's shutdown is real work
                nursery.cancel_scope.cancel()

    trio.run(main, clock=clock)


async def answer(rig: LaneRig, command: Command) -> TillFrame:
    """The till's answer to `command` (its ref's first frame, or the refusal): it always gets one."""
    command.ref = 0  # the rig numbers it
    seen = len(rig.till.frames)
    try:
        return await rig.do(command)
    except StopIteration:
        raise AssertionError(f"no answer to {command!r}: {rig.till.frames[seen:]!r}") from None


def not_internal(frame: TillFrame, command: Command) -> None:
    assert not (isinstance(frame, Error) and frame.code == "internal"), (command, frame)


async def sell(rig: LaneRig) -> None:
    """A normal sale from whatever the fuzzing left: the cashier logs in, a card call running beside the
    lane ends, one in doubt is resolved, a sale left open is cancelled with the manager's approval, then
    milk is sold for cash and a receipt printed."""
    settled = await rig.till.until(lambda s: s.status != "paying")
    if settled.status == "closed":  # logged out (or never logged in)
        login = await answer(rig, Login(operator=CASHIER, pin=CASHIER_PIN))
        assert isinstance(login, SaleState), login
    if rig.terminal.unresolved is not None:
        assert isinstance(await answer(rig, ResolvePayment()), SaleState)
    state = await rig.till.until(lambda s: s.status != "paying")
    if state.status in ("open", "tender"):
        cancelled = await answer(rig, CancelSale(approver=MANAGER, approver_pin=MANAGER_PIN))
        assert isinstance(cancelled, SaleState | Receipt), (state, cancelled)
    await rig.till.until(lambda s: s.status == "ready")  # card payments are reversed one by one first
    receipts = len(rig.till.receipts)
    assert isinstance(await answer(rig, Scan(code=MILK)), SaleState)
    assert isinstance(await answer(rig, Total()), SaleState)
    paid = await answer(rig, CashTender(amount=100_000))
    assert isinstance(paid, Receipt | SaleState), paid
    assert len(rig.till.receipts) == receipts + 1


async def verified(rig: LaneRig) -> None:
    signer = rig.lane.ctx.signer
    with rig.work.held():
        checked, problems = await rig.db.read(lambda c: chain.verify(c, "S001", {signer.key_id: signer.public}))
    assert checked >= 1 and problems == [], problems


def fuzz_lane(sequence: list[Command], *, internal_allowed: bool) -> None:
    async def body(rig: LaneRig) -> None:
        lane = rig.lane
        assert isinstance(await answer(rig, Login(operator=CASHIER, pin=CASHIER_PIN)), SaleState)
        for command in sequence:
            frame = await answer(rig, command)
            event(f"{type(command).__name__} -> {frame.code if isinstance(frame, Error) else type(frame).__name__}")
            if not internal_allowed:
                not_internal(frame, command)
        assert rig.lane is lane and not rig.till.dropped
        await sell(rig)
        await verified(rig)

    on_lane_rig(body)


@FUZZ
@given(st.lists(commands(within=True), max_size=8))
def test_commands_within_the_frame_bounds_never_fail_a_lane(sequence: list[Command]) -> None:
    """What a till can get through the decoder: every command answered, never `internal`."""
    fuzz_lane(sequence, internal_allowed=False)


@settings(FUZZ, max_examples=SOAK or 60)
@given(st.lists(commands(within=False), max_size=6))
def test_commands_beyond_the_frame_bounds_leave_the_lane_selling(sequence: list[Command]) -> None:
    """Values the decoder refuses, handed to the lane anyway (defence in depth): the lane may refuse them
    as `internal`, but lives on, the same actor, and sells."""
    fuzz_lane(sequence, internal_allowed=True)
