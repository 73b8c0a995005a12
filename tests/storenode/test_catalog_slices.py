"""A large catalogue change goes live a slice per database job: a lane's write queued while a slice
runs is served before the next slice, while the old version still sells, and the new version goes
live whole afterwards."""

from __future__ import annotations

import sqlite3
import threading
from functools import partial
from pathlib import Path

import pytest
import trio
import trio.testing

from central.registers.catalog import Price
from protocol.frames import CatalogPull
from runtime.clock import FixedClock
from runtime.database import Database
from runtime.health import HealthBoard
from storenode.schema import MIGRATIONS
from storenode.sync import replica, shadow
from storenode.sync.catalog import CatalogFollower
from tests.kit.catalog import read, seed, write
from tests.kit.nodes import T0


async def test_a_lane_write_queued_during_a_slice_is_served_before_the_next_slice(
    tmp_path: Path, catalog_db: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(tmp_path / "store.db", MIGRATIONS)
    follower = CatalogFollower(db, HealthBoard(), FixedClock(T0), direct_rows=10, slice_rows=5)
    old = seed(catalog_db, 40)
    snapshot = read(catalog_db, CatalogPull(base=0))
    new = write(catalog_db, "prices", [Price(item=f"{n:04}", price=900 + n, currency="SEK") for n in range(40)])
    delta = read(catalog_db, CatalogPull(base=old))
    log: list[str] = []
    running = trio.Event()  # the first slice is running in the database thread
    go_on = threading.Event()  # ... and may finish
    token = trio.lowlevel.current_trio_token()
    apply_slice = replica.apply_slice

    def instrumented(conn: sqlite3.Connection, rows: int) -> int | None:
        if not log:
            token.run_sync_soon(running.set)
            assert go_on.wait(10), "the test never let the slice finish"
        live = apply_slice(conn, rows)
        log.append("slice" if live is None else "swap")
        return live

    def lane_job(conn: sqlite3.Connection) -> tuple[int, int | None, int, int]:
        """What a lane's scan does (a write beside a lookup), and what it saw of the build."""
        conn.execute("INSERT OR REPLACE INTO lanes (lane, state) VALUES (1, x'00')")
        seen = replica.state(conn)
        item = replica.lookup(conn, "0000003", "S001", "SEK", T0)
        assert item is not None
        log.append("lane")
        return seen.version, seen.ready, item.price, shadow.steps_left(conn)

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(db.run)
            for version, base, chunk in ((old, 0, snapshot), (new, old, delta)):
                assert chunk.done and chunk.version == version
                staged = await db.write(partial(replica.stage, chunk=chunk, asked=base, direct_rows=10))
                if version == old:
                    assert staged is None  # 120 rows: made live in slices too
                    assert await follower.apply_ready() == old
                    await follower.drain()
            assert staged is None and (await db.read(replica.state)).ready == new  # complete, not yet live
            monkeypatch.setattr(replica, "apply_slice", instrumented)
            applied: list[int] = []
            live = trio.Event()

            async def make_live() -> None:
                applied.append(await follower.apply_ready())
                live.set()

            nursery.start_soon(make_live)
            await running.wait()
            lane = trio.Event()
            seen: list[tuple[int, int | None, int, int]] = []

            async def scan() -> None:
                seen.append(await db.write(lane_job))
                lane.set()

            nursery.start_soon(scan)
            await trio.testing.wait_all_tasks_blocked()  # the lane's job is queued behind the slice
            go_on.set()
            await lane.wait()
            await live.wait()
            nursery.cancel_scope.cancel()

    assert log[:3] == ["slice", "lane", "slice"]  # served between the first two slices
    assert log.count("swap") == 1 and log[-1] == "swap" and log.count("slice") > 10
    version, ready, price, steps = seen[0]
    assert (version, ready, price) == (old, new, 103) and steps > 0  # the old version sold meanwhile
    assert applied == [new]
