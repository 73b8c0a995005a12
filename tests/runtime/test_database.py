"""The database actor on real SQLite files: migrations, group commit, per-job rollback, kill -9."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import trio

from runtime.database import Database, DatabaseError, Migration, open_connection

SCHEMA = [
    Migration(1, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL);"),
    Migration(
        2,
        """
        CREATE TABLE log (id INTEGER PRIMARY KEY, what TEXT);
        CREATE TRIGGER t_log AFTER INSERT ON t BEGIN INSERT INTO log (what) VALUES (new.v); END;
        """,
    ),
]


async def test_migrations_apply_once_in_order(tmp_path: Path, nursery: trio.Nursery) -> None:
    path = tmp_path / "a.db"
    with trio.fail_after(10):
        db = Database(path, SCHEMA)
        await nursery.start(db.run)
        await db.write(lambda c: c.execute("INSERT INTO t (v) VALUES ('x')"))
        versions = await db.read(lambda c: [r[0] for r in c.execute("SELECT version FROM schema_migrations")])
        assert versions == [1, 2]
        assert await db.read(lambda c: c.execute("SELECT what FROM log").fetchall()) == [("x",)]
    again = Database(path, SCHEMA)  # a second start finds everything applied and changes nothing
    with trio.fail_after(10):
        async with trio.open_nursery() as inner:
            await inner.start(again.run)
            assert await again.read(lambda c: c.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0]) == 2
            inner.cancel_scope.cancel()


async def test_failed_migration_rolls_back_and_refuses_to_start(tmp_path: Path) -> None:
    bad = [*SCHEMA, Migration(3, "CREATE TABLE u (a); CREATE TABLE t (dup);")]
    db = Database(tmp_path / "b.db", bad)
    with trio.fail_after(10), pytest.raises(DatabaseError, match="migration 3 failed"):
        await db.run()
    conn = open_connection(tmp_path / "b.db")
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "u" not in tables and "t" in tables  # 1 and 2 stayed, 3 left nothing behind
    assert [r[0] for r in conn.execute("SELECT version FROM schema_migrations")] == [1, 2]


async def test_database_from_a_newer_program_is_refused(tmp_path: Path) -> None:
    conn = open_connection(tmp_path / "c.db")
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
    conn.execute("INSERT INTO schema_migrations VALUES (9, 'later')")
    conn.close()
    with trio.fail_after(10), pytest.raises(DatabaseError, match="does not know"):
        await Database(tmp_path / "c.db", SCHEMA).run()


async def test_concurrent_writes_share_commits_and_a_failing_job_is_rolled_back_alone(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    db = Database(tmp_path / "d.db", SCHEMA)
    await nursery.start(db.run)
    failures: list[Exception] = []

    async def writer(i: int) -> None:
        def job(c: sqlite3.Connection) -> int:
            c.execute("INSERT INTO t (id, v) VALUES (?, ?)", (i, f"v{i}"))
            if i == 13:
                raise ValueError("job 13 refuses")
            return i

        try:
            assert await db.write(job) == i
        except ValueError as exc:
            failures.append(exc)

    with trio.fail_after(10):
        async with trio.open_nursery() as writers:
            for i in range(200):
                writers.start_soon(writer, i)
    ids = await db.read(lambda c: [r[0] for r in c.execute("SELECT id FROM t ORDER BY id")])
    assert ids == [i for i in range(200) if i != 13]
    assert [str(e) for e in failures] == ["job 13 refuses"]
    assert db.jobs >= 200 and db.commits < db.jobs / 2  # grouped, not one commit per job
    # the trigger's row for 13 went with its savepoint too
    assert await db.read(lambda c: c.execute("SELECT COUNT(*) FROM log WHERE what = 'v13'").fetchone()[0]) == 0


async def test_durable_commit_restores_normal_sync(tmp_path: Path, nursery: trio.Nursery) -> None:
    db = Database(tmp_path / "e.db", SCHEMA)
    await nursery.start(db.run)
    with trio.fail_after(10):
        await db.write(lambda c: c.execute("INSERT INTO t (v) VALUES ('paid')"), durable=True)
        # 1 = NORMAL: the FULL used for the durable commit must not leak into later commits
        assert await db.read(lambda c: c.execute("PRAGMA synchronous").fetchone()[0]) == 1
        assert await db.read(lambda c: c.execute("PRAGMA journal_mode").fetchone()[0]) == "wal"


WRITER = textwrap.dedent(
    """
    import sys, trio
    from runtime.database import Database, Migration

    async def main():
        db = Database(sys.argv[1], [Migration(1, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL);")])
        async with trio.open_nursery() as n:
            await n.start(db.run)
            async def one(i):
                await db.write(lambda c: c.execute("INSERT INTO t (id, v) VALUES (?, ?)", (i, "x" * 200)))
                print(i, flush=True)
            for base in range(0, 10**6, 20):
                async with trio.open_nursery() as batch:
                    for i in range(base, base + 20):
                        batch.start_soon(one, i)

    trio.run(main)
    """
)


@pytest.mark.e2e  # a real writer process killed with SIGKILL
def test_every_acknowledged_write_survives_kill_9(tmp_path: Path) -> None:
    """A write whose caller was answered is on disk, whatever instant the process dies at.

    A plain (not async) test: it only drives a child process; the watchdog bounds it in time."""
    path = tmp_path / "crash.db"
    root = Path(__file__).resolve().parents[2]
    for kill_after in (1, 137, 1000):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True, cwd=root)
        watchdog = threading.Timer(60, proc.kill)
        watchdog.start()
        acked: list[int] = []
        assert proc.stdout is not None
        while len(acked) < kill_after:
            line = proc.stdout.readline()
            assert line, "writer died (or the watchdog killed it) before the test killed it"
            acked.append(int(line))
        watchdog.cancel()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        conn = open_connection(path)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        present = {r[0] for r in conn.execute("SELECT id FROM t")}
        conn.execute("DELETE FROM t")
        conn.close()
        assert set(acked) <= present


async def test_work_queued_while_the_actor_restarts_is_done_by_the_next_run(tmp_path: Path) -> None:
    db = Database(tmp_path / "r.db", SCHEMA)
    with trio.fail_after(20):
        async with trio.open_nursery() as first:
            await first.start(db.run)
            await db.write(lambda c: c.execute("INSERT INTO t (id, v) VALUES (1, 'a')"))
            first.cancel_scope.cancel()  # the supervisor stops it, e.g. a one-for-all restart
        results: list[int] = []
        answered = trio.Event()

        async def while_down() -> None:
            results.append(await db.write(lambda c: c.execute("INSERT INTO t (id, v) VALUES (2, 'b')").rowcount))
            answered.set()

        async with trio.open_nursery() as second:
            second.start_soon(while_down)
            await trio.sleep(0.05)  # queued with no thread running
            await second.start(db.run)  # the old run's stop sign must not stop this one
            await answered.wait()
            assert await db.read(lambda c: [r[0] for r in c.execute("SELECT id FROM t ORDER BY id")]) == [1, 2]
            second.cancel_scope.cancel()
    assert results == [1]


async def test_a_job_that_breaks_the_connection_fails_its_batch_and_the_run(tmp_path: Path) -> None:
    """Anything beyond a job's own error (here: the job closes the connection) ends the run loudly,
    so the supervisor restarts the database instead of leaving callers waiting for ever."""
    db = Database(tmp_path / "x.db", SCHEMA)
    broken: list[Exception] = []

    async def breaker() -> None:
        try:
            await db.write(lambda c: c.close())
        except sqlite3.ProgrammingError as exc:
            broken.append(exc)

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(breaker)  # queued before the thread starts: the queue outlives runs
            with pytest.raises(DatabaseError, match=r"the database thread for .* stopped"):
                await db.run()
    assert len(broken) == 1  # the caller was answered, not left waiting


async def test_writers_beyond_capacity_wait_for_a_slot_and_a_cancelled_one_queues_nothing(tmp_path: Path) -> None:
    db = Database(tmp_path / "c.db", SCHEMA, capacity=1)
    release = threading.Event()

    def blocking(c: sqlite3.Connection) -> int:
        release.wait(10)
        return c.execute("INSERT INTO t (id, v) VALUES (1, 'first')").rowcount

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await nursery.start(db.run)
            first: list[int] = []
            answered = trio.Event()

            async def holder() -> None:
                first.append(await db.write(blocking))
                answered.set()

            nursery.start_soon(holder)
            await trio.sleep(0.05)  # the holder has the only slot; its job blocks the thread
            with trio.move_on_after(0.2) as waited:
                await db.write(lambda c: c.execute("INSERT INTO t (id, v) VALUES (2, 'never')"))
            assert waited.cancelled_caught  # no slot: it waited and gave up before queueing
            with trio.CancelScope() as scope:
                scope.cancel()
                await db.write(lambda c: c.execute("INSERT INTO t (id, v) VALUES (3, 'never')"))
            assert scope.cancelled_caught
            release.set()
            await answered.wait()
            assert await db.read(lambda c: [r[0] for r in c.execute("SELECT id FROM t ORDER BY id")]) == [1]
            nursery.cancel_scope.cancel()
    assert first == [1]
