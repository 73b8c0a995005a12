"""Keeps the store's replica following central's catalogue, over the sync link's session.

On every session it pulls whatever central has after the replica's version (or resumes a transfer a
dropped link or a restart cut short), then waits for central's notice of a newer version and pulls
again. Each chunk is staged durably before the next is asked for, so memory stays at one chunk
however big the catalogue, and a cut costs at most the chunk in flight. Lanes never wait long for
any of this: they sell from the live tables, which change only when a transfer completes, and a
large one is made live a slice per database job (replica.apply_slice), their jobs served between.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

import msgspec
import trio

from protocol.frames import CatalogChunk, CatalogPull
from runtime.clock import Clock
from runtime.database import Database
from runtime.health import HealthBoard
from storenode.sync import replica

log = logging.getLogger(__name__)


class TransferRefused(Exception):
    """Central said it cannot continue this transfer from where the store stands."""


@dataclass
class ReplicaView:
    """What `store status` and the tills are shown about the replica."""

    version: int = 0
    central: int = 0  # the newest version central has announced
    behind_since: int = 0  # business time (epoch ms) since the replica has lagged central; 0: it has not


class CatalogFollower:
    name = "catalog"

    def __init__(
        self,
        db: Database,
        health: HealthBoard,
        clock: Clock,
        *,
        chunk_timeout: float = 30.0,
        direct_rows: int = replica.DIRECT_ROWS,
        slice_rows: int = replica.SLICE_ROWS,
    ) -> None:
        self.db = db
        self.health = health
        self.clock = clock
        self.chunk_timeout = chunk_timeout
        self.direct_rows = direct_rows  # a complete transfer with more rows than this goes live in slices
        self.slice_rows = slice_rows
        self.view = ReplicaView()
        self.resumed = 0  # transfers taken up again where a cut left them (observable for tests)
        self._newer = trio.Event()
        self._chunks: trio.MemorySendChannel[CatalogChunk | TransferRefused] | None = None
        self._encoder = msgspec.msgpack.Encoder()
        self._pulls = itertools.count(1)
        self._asked = 0  # the id of the pull waiting for its chunk; 0: none
        self._epoch = ""  # central's catalogue epoch, from its welcome
        self._live = trio.lowlevel.ParkingLot()  # woken whenever view.version changes

    async def start(self) -> None:
        """Read the replica's version before the lanes sell from it, so status is right from the start."""
        self.view.version = (await self.db.read(replica.state)).version
        self._live.unpark_all()
        self._report()

    async def wait_version(self, version: int) -> None:
        """Until the replica selling in the lanes is at `version` (bound it with trio.fail_after): for
        consoles and tests, which would otherwise poll the view."""
        while self.view.version != version:
            await self._live.park()

    def _report(self, error: str | None = None) -> None:
        view = self.view
        if view.central > view.version:
            view.behind_since = view.behind_since or self.clock.now_ms()
        else:
            view.behind_since = 0
        state = "behind" if view.behind_since else "current"
        self.health.set(self.name, state, error=error, detail=f"version {view.version} of {view.central}")

    # Called by the sync link's receiver for frames that belong to the catalogue.

    def announced(self, version: int, epoch: str = "") -> None:
        self._epoch = epoch or self._epoch
        if version > self.view.central or version < self.view.version:  # newer, or central started over
            self.view.central = version
            self._report()
            self._newer.set()

    def received(self, chunk: CatalogChunk) -> None:
        if self._chunks is None or chunk.id != self._asked:
            # A duplicate or a late answer to an earlier pull: taken as the answer to this one, its
            # position (or, from an old snapshot, its "replace everything") would corrupt the transfer.
            log.warning("a catalogue chunk for pull %d, not the one waiting (%d); ignored", chunk.id, self._asked)
            return
        self._asked = 0
        self._chunks.send_nowait(chunk)  # the channel is unbounded: this never blocks

    def refused(self, message: str) -> None:
        if self._chunks is not None and self._asked:
            self._asked = 0
            self._chunks.send_nowait(TransferRefused(message))

    async def follow(self, send: Callable[[bytes], Awaitable[None]]) -> None:
        """Runs for one link session; the link ends the session (and this) on any connection trouble."""
        send_chunks, receive_chunks = trio.open_memory_channel[CatalogChunk | TransferRefused](math.inf)
        self._chunks = send_chunks
        try:
            while True:
                self._newer = trio.Event()
                await self._transfer(send, receive_chunks)
                if self.view.central <= self.view.version:
                    await self._newer.wait()
        finally:
            self._chunks = None

    async def _origin(self) -> tuple[int, bytes]:
        """Where a transfer starts: resumed where a cut left it, else after the replica's version, or
        from nothing when the replica's versions count in another catalogue than central's (central
        rebuilt from another lineage, or the store moved): those compare with nothing here. The live
        copy sells on meanwhile; a staged transfer of the wrong lineage is refused by central by its
        position, and then forgotten."""
        now = await self.db.read(replica.state)
        other = bool(now.epoch and self._epoch and now.epoch != self._epoch)
        if (
            now.transfer_base is not None
            and now.transfer_base in (now.version, 0)
            and not (other and now.transfer_base)
        ):
            self.resumed += 1
            log.info("catalogue transfer on version %d resumed where it was cut", now.transfer_base)
            return now.transfer_base, now.cursor
        if now.transfer_base is not None:  # staged on a version this transfer does not build on
            await self.db.write(replica.forget_transfer)
        if other:
            log.warning(
                "central's catalogue is %s, this store's copy is of %s: taking a snapshot", self._epoch, now.epoch
            )
            return 0, b""
        return now.version, b""

    async def _transfer(
        self,
        send: Callable[[bytes], Awaitable[None]],
        chunks: trio.MemoryReceiveChannel[CatalogChunk | TransferRefused],
    ) -> None:
        ready = (await self.db.read(replica.state)).ready
        if ready is not None:  # complete when a restart cut its build short
            log.info("catalogue version %d is complete here: making it live", ready)
            self._went_live(await self.apply_ready())
            await self.drain()
            return
        await self.drain()
        base, cursor = await self._origin()
        while True:
            self._asked = next(self._pulls)
            await send(self._encoder.encode(CatalogPull(base=base, cursor=cursor, id=self._asked)))
            with trio.fail_after(self.chunk_timeout):
                chunk = await chunks.receive()
            if isinstance(chunk, TransferRefused):
                log.warning("central refused to continue the catalogue transfer (%s); starting it over", chunk)
                await self.db.write(replica.forget_transfer)
                base, cursor = await self._origin()
                continue
            try:
                applied = await self.db.write(
                    partial(replica.stage, chunk=chunk, asked=base, direct_rows=self.direct_rows)
                )
            except replica.ReplicaGap as exc:
                log.error("catalogue: %s; asking for what this store missed", exc)
                self._report(error=str(exc))
                base, cursor = await self._origin()
                continue
            self.view.central = max(self.view.central, chunk.version)
            if applied is None and chunk.done:
                applied = await self.apply_ready()
            if applied is not None:
                self._went_live(applied)
                await self.drain()
                return
            base, cursor = chunk.base, chunk.cursor
            self._report()

    def _went_live(self, version: int) -> None:
        log.info("catalogue version %d live (was %d)", version, self.view.version)
        self.view.version = version
        self._live.unpark_all()
        self._report()

    async def apply_ready(self) -> int:
        """Make a complete transfer live a slice per job, so lanes' writes queue behind one slice at
        most; returns its version once the swap has committed."""
        rows = self.slice_rows
        while (live := await self.db.write(partial(replica.apply_slice, rows=rows))) is None:
            pass
        return live

    async def drain(self) -> None:
        """Delete what the last swap retired, a slice per job (a restart resumes it)."""
        rows = self.slice_rows
        while not await self.db.write(partial(replica.drain_slice, rows=rows)):
            pass
