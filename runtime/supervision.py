"""Supervision trees: restart what failed, back off while it keeps failing, give up upwards when restarting
does not help.

Every life of a child runs inside a wrapper task that catches its `Exception` and reports the exit over a
channel. The supervisor loop then decides restarts one exit at a time, so it never has to pick apart Trio's
exception groups, and a failing child can never take its siblings' nursery down with it. Cancellation is
not caught anywhere: stopping a supervisor is a clean stop of its whole subtree, never a failure.
"""

from __future__ import annotations

import enum
import logging
import math
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import trio

from runtime.health import HealthBoard

log = logging.getLogger(__name__)

ActorFn = Callable[..., Awaitable[None]]
_ACTIVE = ("starting", "running", "backoff")


class Restart(enum.Enum):
    PERMANENT = "permanent"  # restarted even after a normal return: it is meant to run for ever
    TRANSIENT = "transient"  # restarted only after an exception: returning means its job is done
    TEMPORARY = "temporary"  # never restarted: a retry would do more harm than the loss


class Strategy(enum.Enum):
    ONE_FOR_ONE = "one_for_one"  # children are independent
    ONE_FOR_ALL = "one_for_all"  # later children depend on earlier ones (the database first)


def _jitter(base: float, fraction: float, rng: random.Random | None) -> float:
    """Spread retries so a fleet of stores does not hammer central in lockstep after an outage."""
    if not fraction:
        return base
    uniform = rng.uniform if rng is not None else random.uniform
    return max(0.0, base * (1.0 + uniform(-fraction, fraction)))


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff, so a crash loop costs little CPU and little log noise."""

    initial: float = 0.1
    cap: float = 30.0
    factor: float = 2.0
    jitter: float = 0.0  # a fraction: 0.2 means +-20 %
    reset_after: float = 10.0  # a child up this long is healthy again: its failure count starts over

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        if failures < 1:
            return 0.0
        try:
            raw = self.initial * self.factor ** (failures - 1)
        except OverflowError:  # a never-escalating child retries for ever, so the exponent keeps growing
            raw = math.inf
        return _jitter(min(self.cap, raw), self.jitter, rng)


@dataclass(frozen=True)
class Intensity:
    """How much restarting is still worth it: beyond this the fault is not in the child but around it."""

    max_restarts: int = 5
    within: float = 10.0


def _describe(error: BaseException | None) -> str:
    return "returned" if error is None else f"{type(error).__name__}: {error}"


class Escalation(Exception):
    """A supervisor gave up; to its own parent this is an ordinary child failure."""

    def __init__(self, supervisor: str, cause: BaseException | None) -> None:
        super().__init__(f"supervisor {supervisor!r} gave up, last exit: {_describe(cause)}")
        self.supervisor = supervisor
        self.cause = cause


@dataclass
class ChildSpec:
    name: str
    start: ActorFn  # async def run(*, task_status=trio.TASK_STATUS_IGNORED); must call task_status.started()
    restart: Restart = Restart.PERMANENT


class _Ready(trio.TaskStatus[object]):
    """Stands in for `nursery.start`'s task_status, so a child's exception reaches our wrapper as itself,
    not wrapped in an exception group, and a failure before readiness cannot abort the supervisor's start."""

    def __init__(self, on_ready: Callable[[], None]) -> None:
        self._on_ready = on_ready

    def started(self, value: object = None) -> None:
        self._on_ready()


@dataclass(eq=False)
class _Child:
    spec: ChildSpec
    failures: int = 0  # consecutive; drives the backoff
    alive: bool = False  # a wrapper exists (running, starting or waiting out its backoff)
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)


@dataclass(frozen=True)
class _Exit:
    child: _Child
    error: Exception | None
    up_for: float | None  # None: it never became ready


class Supervisor:
    """Owns a list of children for as long as `run` runs. Not re-entrant: one `run` at a time (a parent
    supervisor guarantees that, as it only restarts a child after the previous life has ended)."""

    def __init__(
        self,
        name: str,
        children: list[ChildSpec],
        *,
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        backoff: Backoff = Backoff(),
        intensity: Intensity = Intensity(),
        escalate: bool = True,
        health: HealthBoard | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self._specs = list(children)
        self._strategy = strategy
        self._backoff = backoff
        self._intensity = intensity
        self._escalate = escalate
        self._health = health
        self._rng = rng
        self._children: list[_Child] = []
        self._restarts: deque[float] = deque()
        self._nursery: trio.Nursery | None = None
        self._send: trio.MemorySendChannel[_Exit] | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Every run starts from scratch, so a parent restarting this subtree gets a clean one."""
        self._children = [_Child(spec) for spec in self._specs]
        self._restarts.clear()
        self._publish(self.name, "starting")
        self._send, receive = trio.open_memory_channel[_Exit](math.inf)
        gave_up: _Exit | None = None
        try:
            async with trio.open_nursery() as self._nursery:
                for child in self._children:
                    await self._spawn(child, 0.0, wait=True)
                self._publish(self.name, "running")
                task_status.started()
                gave_up = await self._supervise(receive)
                self._nursery.cancel_scope.cancel()  # escalating: the remaining children go with us
        finally:  # also on cancellation, so the board never shows a stopped tree as running
            for name in [c.spec.name for c in self._children] + [self.name]:
                if self._health is not None and self._health.get(name).state in _ACTIVE:
                    self._health.set(name, "stopped")
        if gave_up is not None:
            cause = gave_up.error
            self._publish(gave_up.child.spec.name, "failed", cause)
            self._publish(self.name, "failed", cause)
            limit = self._intensity
            log.error(
                "%s: more than %d restarts within %g s, giving up",
                self.name,
                limit.max_restarts,
                limit.within,
                exc_info=cause,
            )
            raise Escalation(self.name, cause) from cause

    async def _spawn(self, child: _Child, delay: float, *, wait: bool = False) -> None:
        """Start one life of a child; `wait` keeps start order meaningful (ready, or already failed)."""
        assert self._nursery is not None
        child.alive = True
        child.scope = trio.CancelScope()
        settled = trio.Event()
        self._nursery.start_soon(self._life, child, delay, settled, name=f"{self.name}/{child.spec.name}")
        if wait:
            await settled.wait()

    async def _life(self, child: _Child, delay: float, settled: trio.Event) -> None:
        """Run one life and report how it ended; only cancellation from outside escapes from here."""
        assert self._send is not None
        name = child.spec.name
        ready_at: float | None = None
        error: Exception | None = None

        def ready() -> None:
            nonlocal ready_at
            ready_at = trio.current_time()
            self._publish(name, "running")
            settled.set()

        try:
            with child.scope:
                if delay > 0:
                    await trio.sleep(delay)
                self._publish(name, "starting")
                try:
                    await child.spec.start(task_status=_Ready(ready))
                except Exception as exc:
                    error = exc
        finally:
            settled.set()
        up_for = None if ready_at is None else trio.current_time() - ready_at
        self._send.send_nowait(_Exit(child, error, up_for))

    async def _supervise(self, receive: trio.MemoryReceiveChannel[_Exit]) -> _Exit | None:
        """Handle exits one at a time until no child is left; returns the exit that made us give up."""
        while any(c.alive for c in self._children):
            ended = await receive.receive()
            child, error = ended.child, ended.error
            child.alive = False
            name = child.spec.name
            restart = child.spec.restart
            if not (restart is Restart.PERMANENT or (restart is Restart.TRANSIENT and error is not None)):
                level = logging.INFO if error is None else logging.WARNING
                log.log(level, "%s: %s ended, not restarted", self.name, name, exc_info=error)
                self._publish(name, "stopped", error)
                continue
            if ended.up_for is not None and ended.up_for >= self._backoff.reset_after:
                child.failures = 0
            child.failures += 1
            delay = self._backoff.delay(child.failures, self._rng)
            if self._too_many_restarts():
                if self._escalate:
                    return ended
                delay = _jitter(self._backoff.cap, self._backoff.jitter, self._rng)
            log.warning(
                "%s: %s ended (%s), restart in %.3g s",
                self.name,
                name,
                _describe(error),
                delay,
                exc_info=error,
            )
            if self._strategy is Strategy.ONE_FOR_ONE:
                self._mark_restart(child, error)
                await self._spawn(child, delay)
            else:
                await self._restart_all(child, error, receive, delay)
        return None

    def _too_many_restarts(self) -> bool:
        """Record a restart now and tell whether the recent ones exceed the intensity limit."""
        now = trio.current_time()
        self._restarts.append(now)
        while self._restarts[0] <= now - self._intensity.within:
            self._restarts.popleft()
        return len(self._restarts) > self._intensity.max_restarts

    async def _restart_all(
        self,
        trigger: _Child,
        error: Exception | None,
        receive: trio.MemoryReceiveChannel[_Exit],
        delay: float,
    ) -> None:
        """Siblings that depend on each other restart together and in order, and only once every old life
        has really ended, so no new life ever meets an old one (e.g. two owners of one database file)."""
        again = [c for c in self._children if (c.alive or c is trigger) and c.spec.restart is not Restart.TEMPORARY]
        dropped = [c for c in self._children if c.alive and c not in again]
        for c in self._children:
            c.scope.cancel()
        while any(c.alive for c in self._children):
            (await receive.receive()).child.alive = False
        for c in dropped:
            self._publish(c.spec.name, "stopped")
        for c in again:
            self._mark_restart(c, error if c is trigger else None)
        await trio.sleep(delay)
        for c in again:
            await self._spawn(c, 0.0, wait=True)

    def _mark_restart(self, child: _Child, error: Exception | None) -> None:
        self._publish(child.spec.name, "backoff", error)
        if self._health is not None:
            self._health.get(child.spec.name).restarts += 1

    def _publish(self, name: str, state: str, error: BaseException | None = None) -> None:
        if self._health is not None:
            self._health.set(name, state, error=None if error is None else _describe(error))
