"""The scale actor through a real pty: only fresh, stable, positive weights; every refusal has a code."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from devices.scale import Scale, ScaleError, Weight
from devices.serialport import PortLost, SerialSettings
from devices.sim.pty import VirtualPort
from devices.sim.scale import ScaleSim
from runtime.health import HealthBoard
from runtime.mailbox import Rejected
from runtime.supervision import ChildSpec
from tests.kit.devices import devices_supervisor

DEADLINE = 10


@asynccontextmanager
async def weighing(port: VirtualPort, **options: float) -> AsyncIterator[tuple[Scale, ScaleSim, HealthBoard]]:
    board = HealthBoard()
    sim = ScaleSim(port)
    scale = Scale("scale-1", SerialSettings(port.path), board, **options)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        await nursery.start(sim.run)
        await nursery.start(scale.run)
        yield scale, sim, board
        nursery.cancel_scope.cancel()


async def refusal(scale: Scale) -> ScaleError:
    with pytest.raises(ScaleError) as info:
        await scale.weigh()
    return info.value


async def test_stable_weight_in_grams(port: VirtualPort) -> None:
    with trio.fail_after(DEADLINE):
        async with weighing(port) as (scale, sim, board):
            assert board.get("scale-1").state == "online"
            sim.grams = 1234
            assert await scale.weigh() == Weight(1234)
            assert sim.requests == 1


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        ({"grams": 800, "motion": True}, "motion"),
        ({"grams": 15_001}, "over_capacity"),
        ({"grams": -40}, "under_zero"),
        ({"grams": 0}, "zero_weight"),
        ({"zero_error": True}, "zero_error"),
    ],
)
async def test_conditions_are_reported_with_codes(port: VirtualPort, setup: dict[str, object], code: str) -> None:
    with trio.fail_after(DEADLINE):
        async with weighing(port) as (scale, sim, _):
            for key, value in setup.items():
                setattr(sim, key, value)
            error = await refusal(scale)
            assert error.code == code
            assert isinstance(error, Rejected)  # crosses a mailbox to the till; restarts nothing
            # The condition passes: the next weighing works on the same connection.
            sim.motion = sim.zero_error = False
            sim.grams = 500
            assert await scale.weigh() == Weight(500)


async def test_every_weighing_is_a_fresh_read(port: VirtualPort) -> None:
    with trio.fail_after(DEADLINE):
        async with weighing(port) as (scale, sim, _):
            sim.grams = 500
            assert await scale.weigh() == Weight(500)
            sim.grams = 1200
            assert await scale.weigh() == Weight(1200)
            sim.motion = True
            assert (await refusal(scale)).code == "motion"
            assert sim.requests == 3


async def test_a_late_answer_never_passes_for_a_fresh_one(port: VirtualPort) -> None:
    with trio.fail_after(DEADLINE):
        async with weighing(port, answer_within=0.2, forget_after=1.0) as (scale, sim, _):
            sim.grams, sim.delay = 500, 0.5  # the answer to this request comes after the till gave up
            assert (await refusal(scale)).code == "no_answer"
            sim.grams, sim.delay = 1200, 0.0  # the item changed; the stale "500" is still on its way
            assert await scale.weigh() == Weight(1200)


async def test_a_caller_giving_up_early_does_not_shift_later_answers(port: VirtualPort) -> None:
    with trio.fail_after(DEADLINE):
        async with weighing(port, answer_within=2.0, forget_after=3.0) as (scale, sim, _):
            sim.grams, sim.delay = 300, 0.3
            with trio.move_on_after(0.1):  # the till's own deadline, shorter than the scale's
                await scale.weigh()
            sim.grams, sim.delay = 900, 0.0
            assert await scale.weigh() == Weight(900)


async def test_silence_is_no_answer(port: VirtualPort) -> None:
    with trio.fail_after(DEADLINE):
        async with weighing(port, answer_within=0.2, forget_after=0.5) as (scale, sim, _):
            sim.silent, sim.grams = True, 700
            error = await refusal(scale)
            assert error.code == "no_answer" and "did not answer" in error.message
            sim.silent = False
            assert await scale.weigh() == Weight(700)  # after waiting out the lost request


async def test_garbage_around_answers_is_skipped(port: VirtualPort) -> None:
    with trio.fail_after(DEADLINE):
        async with weighing(port) as (scale, sim, board):
            sim.grams = 2500
            sim.garbage = b"\xff\x00\x13noise\x0201.7"  # line noise and a stray, truncated frame
            assert await scale.weigh() == Weight(2500)
            assert await scale.weigh() == Weight(2500)
            assert board.get("scale-1").state == "online"


async def test_a_truncated_answer_costs_one_weighing_not_the_link(port: VirtualPort) -> None:
    with trio.fail_after(DEADLINE):
        async with weighing(port, answer_within=0.2, forget_after=0.5) as (scale, sim, _):
            sim.grams, sim.truncate = 1500, True
            assert (await refusal(scale)).code == "no_answer"
            sim.truncate = False
            sim.grams = 1600
            assert await scale.weigh() == Weight(1600)
            assert await scale.weigh() == Weight(1600)


async def test_concurrent_callers_each_get_their_own_answer(port: VirtualPort) -> None:
    with trio.fail_after(DEADLINE):
        async with weighing(port) as (scale, sim, _):
            sim.grams = 321
            results: list[Weight] = []

            async def one() -> None:
                results.append(await scale.weigh())

            async with trio.open_nursery() as nursery:
                for _ in range(5):
                    nursery.start_soon(one)
            assert results == [Weight(321)] * 5
            assert sim.requests == 5


async def test_offline_scale_answers_no_answer_at_once(tmp_path: Path) -> None:
    scale = Scale("scale-1", SerialSettings(str(tmp_path / "absent")), HealthBoard())
    with trio.fail_after(DEADLINE):
        error = await refusal(scale)
    assert error.code == "no_answer" and "offline" in error.message


async def test_unplug_mid_weighing(port: VirtualPort) -> None:
    board = HealthBoard()
    sim = ScaleSim(port)
    scale = Scale("scale-1", SerialSettings(port.path), board)
    lost: list[PortLost] = []
    ended = trio.Event()

    async def life(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await scale.run(task_status=task_status)
        except PortLost as exc:
            lost.append(exc)
        ended.set()

    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            await nursery.start(sim.run)
            await nursery.start(life)
            sim.silent = True

            async def pull_the_cable() -> None:
                while sim.requests == 0:  # noqa: ASYNC110 - the simulator is plain data too
                    await trio.sleep(0.01)
                port.unplug()

            nursery.start_soon(pull_the_cable)
            error = await refusal(scale)
            assert error.code == "no_answer" and "offline" in error.message
            await ended.wait()  # the actor ends by itself
            nursery.cancel_scope.cancel()
    assert len(lost) == 1
    assert board.get("scale-1").state == "offline"
    assert not scale.online


async def test_supervised_scale_comes_back(tmp_path: Path) -> None:
    port = VirtualPort(tmp_path / "scale")
    port.plug()
    board = HealthBoard()
    scale = Scale("scale-1", SerialSettings(port.path), board)
    sim = ScaleSim(port)
    devices = devices_supervisor(board, ChildSpec("scale-1", scale.run))
    try:
        with trio.fail_after(DEADLINE):
            async with trio.open_nursery() as nursery:
                await nursery.start(sim.run)
                await nursery.start(devices.run)
                sim.grams = 250
                assert await scale.weigh() == Weight(250)
                port.unplug()
                await board.wait_until("scale-1", lambda h: h.restarts >= 2)
                assert (await refusal(scale)).code == "no_answer"
                port.plug()
                await board.wait_until("scale-1", lambda h: h.state == "online")
                sim.grams = 260
                assert await scale.weigh() == Weight(260)
                nursery.cancel_scope.cancel()
    finally:
        port.close()
