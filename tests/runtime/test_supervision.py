"""Supervisor behaviour in virtual time: with the autojump clock every restart happens at an exact instant,
so the tests assert on the timeline itself rather than on "eventually"."""

from __future__ import annotations

import itertools
import logging
import math
import random
from dataclasses import dataclass, field

import pytest
import trio

from runtime.health import HealthBoard
from runtime.supervision import (
    Backoff,
    ChildSpec,
    Escalation,
    Intensity,
    Restart,
    Strategy,
    Supervisor,
)

# A slow, constant backoff with a huge intensity budget, unless a test is about those.
STEADY = Backoff(initial=1.0, factor=1.0, cap=1.0, reset_after=1000.0)
LENIENT = Intensity(max_restarts=1000, within=1000.0)


class Boom(Exception):
    pass


@dataclass
class Probe:
    """A child whose lives are scripted: life n runs lives[n-1] = (seconds up, how it ends), then for ever."""

    name: str
    lives: list[tuple[float, str]] = field(default_factory=list)  # "crash" | "return" | "crash-on-start"
    ready_after: float = 0.0
    journal: list[str] = field(default_factory=list)
    starts: list[float] = field(default_factory=list)
    cancelled: int = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        life = len(self.starts) + 1
        up, end = self.lives[life - 1] if life <= len(self.lives) else (math.inf, "run")
        self.starts.append(trio.current_time())
        self.journal.append(f"start {self.name}")
        try:
            await trio.sleep(self.ready_after)
            if end == "crash-on-start":
                raise Boom(f"{self.name} #{life}")
            task_status.started()
            await trio.sleep(up)
        except trio.Cancelled:
            self.cancelled += 1
            self.journal.append(f"stop {self.name}")
            raise
        if end == "crash":
            raise Boom(f"{self.name} #{life}")

    def spec(self, restart: Restart = Restart.PERMANENT) -> ChildSpec:
        return ChildSpec(self.name, self.run, restart)


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


async def run_until(supervisor: Supervisor, deadline: float) -> None:
    """Run the supervisor until virtual time `deadline`; it must still be supervising by then."""
    with trio.move_on_at(deadline) as scope:
        await supervisor.run()
    assert scope.cancelled_caught, "supervisor returned before the deadline"


def test_backoff_delay_is_exponential_capped_and_jittered() -> None:
    backoff = Backoff(initial=0.5, factor=2.0, cap=5.0)
    assert [backoff.delay(n) for n in range(6)] == [0.0, 0.5, 1.0, 2.0, 4.0, 5.0]
    assert backoff.delay(100_000) == 5.0  # a child retried for ever must not overflow the exponent
    jittery = Backoff(initial=10.0, cap=10.0, jitter=0.2)
    delays = [jittery.delay(3, random.Random(seed)) for seed in range(50)]
    assert all(8.0 <= d <= 12.0 for d in delays)
    assert len(set(delays)) > 40
    assert jittery.delay(3, random.Random(7)) == jittery.delay(3, random.Random(7))


async def test_one_for_one_restarts_only_the_crashed_child(autojump_clock: trio.abc.Clock) -> None:
    with trio.fail_after(100):
        crashy = Probe("crashy", lives=[(1.0, "crash"), (1.0, "crash")])
        steady = Probe("steady")
        backoff = Backoff(initial=0.5, factor=2.0, reset_after=100.0)
        sup = Supervisor("sup", [crashy.spec(), steady.spec()], backoff=backoff, intensity=LENIENT)
        await run_until(sup, 20.0)
        assert crashy.starts == [0.0, 1.5, 3.5]
        assert steady.starts == [0.0]
        assert steady.cancelled == 1  # only by the final cancellation


async def test_backoff_grows_exponentially_up_to_the_cap(autojump_clock: trio.abc.Clock) -> None:
    with trio.fail_after(100):
        child = Probe("child", lives=[(0.0, "crash")] * 6)
        backoff = Backoff(initial=1.0, factor=2.0, cap=5.0, reset_after=100.0)
        sup = Supervisor("sup", [child.spec()], backoff=backoff, intensity=LENIENT)
        await run_until(sup, 50.0)
        assert gaps(child.starts) == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


@pytest.mark.parametrize(("up_for", "next_gap"), [(10.0, 1.0), (9.5, 4.0)])
async def test_failure_count_resets_after_staying_up(
    autojump_clock: trio.abc.Clock, up_for: float, next_gap: float
) -> None:
    with trio.fail_after(100):
        child = Probe("child", lives=[(0.0, "crash"), (0.0, "crash"), (up_for, "crash")])
        backoff = Backoff(initial=1.0, factor=2.0, cap=100.0, reset_after=10.0)
        sup = Supervisor("sup", [child.spec()], backoff=backoff, intensity=LENIENT)
        await run_until(sup, 50.0)
        assert gaps(child.starts) == [1.0, 2.0, up_for + next_gap]


@pytest.mark.parametrize(
    ("restart", "end", "lives"),
    [
        (Restart.PERMANENT, "return", 2),
        (Restart.PERMANENT, "crash", 2),
        (Restart.TRANSIENT, "return", 1),
        (Restart.TRANSIENT, "crash", 2),
        (Restart.TEMPORARY, "return", 1),
        (Restart.TEMPORARY, "crash", 1),
    ],
)
async def test_restart_types(autojump_clock: trio.abc.Clock, restart: Restart, end: str, lives: int) -> None:
    with trio.fail_after(100):
        health = HealthBoard()
        child = Probe("child", lives=[(1.0, end)])
        sibling = Probe("sibling")  # keeps the supervisor busy when the child is not restarted
        sup = Supervisor("sup", [child.spec(restart), sibling.spec()], backoff=STEADY, health=health)
        await run_until(sup, 10.0)
        assert child.starts == [0.0, 2.0][:lives]
        assert health.get("child").restarts == lives - 1
        if lives == 1:
            assert health.get("child").state == "stopped"
            assert health.get("child").last_error == ("Boom: child #1" if end == "crash" else "")
        assert sibling.starts == [0.0]


async def test_returns_when_every_child_ended_for_good(autojump_clock: trio.abc.Clock) -> None:
    with trio.fail_after(100):
        health = HealthBoard()
        done = Probe("done", lives=[(1.0, "return")])
        once = Probe("once", lives=[(2.0, "crash")])
        sup = Supervisor(
            "sup", [done.spec(Restart.TRANSIENT), once.spec(Restart.TEMPORARY)], backoff=STEADY, health=health
        )
        await sup.run()
        assert trio.current_time() == 2.0
        assert [h.state for h in health.snapshot()] == ["stopped", "stopped", "stopped"]


async def test_intensity_exceeded_escalates_with_the_cause(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    with trio.fail_after(100):
        health = HealthBoard()
        crashy = Probe("crashy", lives=[(0.0, "crash")] * 10)
        steady = Probe("steady")
        sup = Supervisor(
            "sup",
            [crashy.spec(), steady.spec()],
            backoff=STEADY,
            intensity=Intensity(max_restarts=3, within=10.0),
            health=health,
        )
        with caplog.at_level(logging.WARNING, logger="runtime.supervision"):
            with pytest.raises(Escalation) as raised:
                await sup.run()
        assert trio.current_time() == 3.0  # crashes at 0, 1, 2 were restarted; the 4th is one too many
        assert crashy.starts == [0.0, 1.0, 2.0, 3.0]
        assert raised.value.supervisor == "sup"
        assert isinstance(raised.value.cause, Boom) and str(raised.value.cause) == "crashy #4"
        assert raised.value.__cause__ is raised.value.cause
        assert steady.cancelled == 1 and steady.starts == [0.0]
        assert (health.get("sup").state, health.get("sup").last_error) == ("failed", "Boom: crashy #4")
        assert health.get("crashy").state == "failed" and health.get("steady").state == "stopped"
        records = [r for r in caplog.records if r.name == "runtime.supervision"]
        assert [r.levelno for r in records] == [logging.WARNING] * 3 + [logging.ERROR]
        assert all(r.exc_info and isinstance(r.exc_info[1], Boom) for r in records)


async def test_intensity_window_slides(autojump_clock: trio.abc.Clock) -> None:
    with trio.fail_after(200):
        child = Probe("child", lives=[(4.0, "crash")] * 20)  # a restart every 5 s: 2 per 10 s window
        sup = Supervisor("sup", [child.spec()], backoff=STEADY, intensity=Intensity(max_restarts=2, within=10.0))
        await run_until(sup, 97.0)  # without the window sliding, the 3rd restart (at 14) would escalate
        assert len(child.starts) == 20


async def test_without_escalation_it_keeps_retrying_at_the_cap(autojump_clock: trio.abc.Clock) -> None:
    with trio.fail_after(100):
        health = HealthBoard()
        printer = Probe("printer", lives=[(0.0, "crash")] * 100)
        backoff = Backoff(initial=1.0, factor=1.0, cap=5.0)
        sup = Supervisor(
            "devices",
            [printer.spec()],
            backoff=backoff,
            intensity=Intensity(max_restarts=2, within=100.0),
            escalate=False,
            health=health,
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sup.run)
            await trio.sleep_until(23.0)
            entry = health.get("printer")
            assert (entry.state, entry.restarts, entry.last_error) == ("backoff", 7, "Boom: printer #7")
            assert health.get("devices").state == "running"
            nursery.cancel_scope.cancel()
        assert printer.starts == [0.0, 1.0, 2.0, 7.0, 12.0, 17.0, 22.0]
        assert health.get("devices").state == "stopped"  # the run was cancelled, not failed


async def test_one_for_all_restarts_every_sibling_in_order(autojump_clock: trio.abc.Clock) -> None:
    with trio.fail_after(100):
        health = HealthBoard()
        journal: list[str] = []
        db, lanes, sync = (
            Probe(name, ready_after=0.5, journal=journal, lives=lives)
            for name, lives in [("db", []), ("lanes", [(2.0, "crash")]), ("sync", [])]
        )
        report = Probe("report", journal=journal)
        sup = Supervisor(
            "root",
            [db.spec(), lanes.spec(), sync.spec(), report.spec(Restart.TEMPORARY)],
            strategy=Strategy.ONE_FOR_ALL,
            backoff=STEADY,
            intensity=LENIENT,
            health=health,
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(sup.run)
            assert trio.current_time() == 1.5  # each child was ready before the next one started
            await trio.sleep_until(10.0)
            nursery.cancel_scope.cancel()
        # lanes was ready at 1.0 and crashed at 3.0; the rest were stopped; all came back from 4.0, in order
        assert (db.starts, lanes.starts, sync.starts, report.starts) == ([0, 4], [0.5, 4.5], [1, 5], [1.5])
        assert journal[:4] == ["start db", "start lanes", "start sync", "start report"]
        assert sorted(journal[4:7]) == ["stop db", "stop report", "stop sync"]
        assert journal[7:10] == ["start db", "start lanes", "start sync"]
        assert [health.get(n).restarts for n in ("db", "lanes", "sync", "report")] == [1, 1, 1, 0]
        assert health.get("lanes").last_error == "Boom: lanes #1" and health.get("db").last_error == ""


async def test_nested_escalation_is_a_child_failure_of_the_parent(autojump_clock: trio.abc.Clock) -> None:
    with trio.fail_after(100):
        health = HealthBoard()
        till = Probe("till", lives=[(0.0, "crash")] * 10)
        other = Probe("other")
        lanes = Supervisor(
            "lanes",
            [till.spec(), other.spec()],
            backoff=STEADY,
            intensity=Intensity(max_restarts=1, within=10.0),
            health=health,
        )
        sync = Probe("sync")
        root = Supervisor(
            "root",
            [ChildSpec("lanes", lanes.run), sync.spec()],
            backoff=Backoff(initial=10.0, factor=1.0, reset_after=100.0),
            intensity=LENIENT,
            health=health,
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(root.run)
            await trio.sleep_until(25.0)
            entry = health.get("lanes")
            assert (entry.state, entry.restarts) == ("backoff", 3)
            assert entry.last_error == "Escalation: supervisor 'lanes' gave up, last exit: Boom: till #6"
            nursery.cancel_scope.cancel()
        # lanes gives up at 1 (its second restart), root brings it back at 11, it gives up at 12, and so on
        assert till.starts == [0.0, 1.0, 11.0, 12.0, 22.0, 23.0]
        assert other.starts == [0.0, 11.0, 22.0] and other.cancelled == 3
        assert sync.starts == [0.0]


async def test_cancelling_the_supervisor_stops_children_without_restart(
    autojump_clock: trio.abc.Clock,
) -> None:
    with trio.fail_after(100):
        health = HealthBoard()
        a, b = Probe("a"), Probe("b")
        sup = Supervisor("sup", [a.spec(), b.spec(Restart.TRANSIENT)], backoff=STEADY, health=health)
        with trio.move_on_after(5.0) as scope:
            await sup.run()
        assert scope.cancelled_caught  # the cancellation propagated out of run()
        await trio.sleep(10.0)  # nothing may come back to life afterwards
        assert (a.starts, b.starts, a.cancelled, b.cancelled) == ([0.0], [0.0], 1, 1)
        assert [(h.name, h.state, h.restarts) for h in health.snapshot()] == [
            ("a", "stopped", 0),
            ("b", "stopped", 0),
            ("sup", "stopped", 0),
        ]


class Fatal(BaseException):
    pass


async def test_base_exceptions_are_not_failures_they_propagate(autojump_clock: trio.abc.Clock) -> None:
    with trio.fail_after(100):

        async def doomed(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            task_status.started()
            await trio.sleep(1.0)
            raise Fatal("shutdown")

        steady = Probe("steady")
        sup = Supervisor("sup", [ChildSpec("doomed", doomed), steady.spec()], backoff=STEADY)
        with pytest.RaisesGroup(Fatal):
            await sup.run()
        assert trio.current_time() == 1.0
        assert steady.cancelled == 1 and steady.starts == [0.0]


async def test_startup_failure_does_not_block_supervisor_startup(autojump_clock: trio.abc.Clock) -> None:
    with trio.fail_after(100):
        health = HealthBoard()
        flaky = Probe("flaky", lives=[(0.0, "crash-on-start")])
        after = Probe("after")
        sup = Supervisor("sup", [flaky.spec(), after.spec()], backoff=STEADY, intensity=LENIENT, health=health)
        async with trio.open_nursery() as nursery:
            await nursery.start(sup.run)
            assert trio.current_time() == 0.0
            assert after.starts == [0.0]
            await trio.sleep(0.5)
            assert health.get("flaky").state == "backoff"
            await trio.sleep(5.0)
            nursery.cancel_scope.cancel()
        assert flaky.starts == [0.0, 1.0]
        entry = health.get("flaky")
        assert (entry.restarts, entry.last_error) == (1, "Boom: flaky #1")


async def test_health_board_follows_each_child(autojump_clock: trio.abc.Clock) -> None:
    with trio.fail_after(100):
        health = HealthBoard()
        child = Probe("child", lives=[(2.0, "crash"), (2.0, "crash")], ready_after=0.5)
        backoff = Backoff(initial=3.0, factor=1.0, reset_after=100.0)
        sup = Supervisor("sup", [child.spec()], backoff=backoff, intensity=LENIENT, health=health)

        def seen(name: str) -> tuple[str, int, str, float]:
            h = health.get(name)
            return h.state, h.restarts, h.last_error, h.since

        async with trio.open_nursery() as nursery:
            nursery.start_soon(sup.run)
            await trio.sleep_until(0.25)
            assert seen("child") == ("starting", 0, "", 0.0)
            assert seen("sup")[0] == "starting"
            await trio.sleep_until(1.0)
            assert seen("child") == ("running", 0, "", 0.5)
            assert seen("sup") == ("running", 0, "", 0.5)
            await trio.sleep_until(3.0)  # crashed at 2.5, back at 5.5
            assert seen("child") == ("backoff", 1, "Boom: child #1", 2.5)
            await trio.sleep_until(5.75)
            assert seen("child") == ("starting", 1, "Boom: child #1", 5.5)
            await trio.sleep_until(7.0)
            assert seen("child") == ("running", 1, "Boom: child #1", 6.0)
            await trio.sleep_until(20.0)
            assert seen("child") == ("running", 2, "Boom: child #2", 11.5)  # crashed at 8, back at 11
            nursery.cancel_scope.cancel()
        assert seen("child")[:2] == ("stopped", 2)
