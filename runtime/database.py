"""The single owner of a node's SQLite file: stdlib sqlite3 on one dedicated worker thread.

aiosqlite's model (one connection, one thread, a queue in front) done the Trio way: callers hand
the actor a function of a connection; the actor drains everything queued meanwhile and runs it as one
transaction, one savepoint per job, so N concurrent writers share one commit (group commit) while a
failing job is rolled back alone. Jobs that need to survive power loss (a completed sale) ask for
`durable=True`, which makes that commit use synchronous=FULL; everything else survives a process
crash with WAL's synchronous=NORMAL at a fraction of the cost.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import trio

log = logging.getLogger(__name__)

T = TypeVar("T")
Job = Callable[[sqlite3.Connection], T]


@dataclass(frozen=True)
class Migration:
    """One numbered schema step; applied once, in order, each in its own transaction."""

    version: int
    sql: str


class DatabaseError(Exception):
    """The database could not be opened or migrated."""


@dataclass(slots=True)
class _Work:
    job: Job[Any]
    durable: bool


_Outcome = tuple[bool, Any]  # (ok, result or exception)


def open_connection(path: str | Path, *, readonly: bool = False) -> sqlite3.Connection:
    """Connection settings shared by the actor and by offline readers (CLI tools, tests)."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    else:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


@contextlib.contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction on a plain connection (the operator commands run beside a node): taken at
    the start, so what it checks is what is there when it writes; committed whole or rolled back."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration]) -> int:
    """Bring the schema up to the newest migration; returns the version reached."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
    done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    versions = [m.version for m in migrations]
    if versions != sorted(set(versions)):
        raise DatabaseError(f"migrations must be numbered uniquely and in order: {versions}")
    unknown = done - set(versions)
    if unknown:
        raise DatabaseError(f"database has migrations this program does not know: {sorted(unknown)}")
    for m in migrations:
        if m.version in done:
            continue
        try:
            conn.execute("BEGIN IMMEDIATE")
            for statement in _statements(m.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations VALUES (?, datetime('now'))",
                (m.version,),
            )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise DatabaseError(f"migration {m.version} failed: {exc}") from exc
    return max(versions, default=0)


def _statements(sql: str) -> list[str]:
    """Split a migration into statements at complete-statement boundaries (triggers contain ';')."""
    out: list[str] = []
    current = ""
    for line in sql.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                out.append(current)
            current = ""
    if current.strip():
        out.append(current)
    return out


class _Pending:
    """One caller's job on its way through the worker thread, and the way back to that caller."""

    __slots__ = ("event", "outcome", "work")

    def __init__(self, work: _Work) -> None:
        self.work = work
        self.event = trio.Event()
        self.outcome: _Outcome = (False, None)


class Database:
    """Handle and actor in one: hold the handle anywhere, run `run` under the supervisor.

    The worker thread is the actor: its queue is the mailbox, and it forms the group commits itself
    by draining whatever is queued when it finishes a commit. Callers wake straight from the thread's
    answer, with no Trio task in between: every hop costs a scan's latency budget.
    """

    def __init__(
        self,
        path: str | Path,
        migrations: Sequence[Migration] = (),
        *,
        capacity: int = 4096,
        max_batch: int = 512,
    ) -> None:
        self.path = Path(path)
        self._migrations = list(migrations)
        self._queue: queue.SimpleQueue[_Pending | object] = queue.SimpleQueue()  # outlives restarts
        self._slots = trio.Semaphore(capacity)  # bounded: callers wait rather than grow the queue
        self._max_batch = max_batch
        self.commits = 0  # observable group-commit behaviour for tests and benchmarks
        self.jobs = 0

    async def write(self, job: Job[T], *, durable: bool = False) -> T:
        """Run `job` inside a transaction; returns after it is committed.

        A caller that gives up early (its deadline passes) learns nothing about the outcome: a job
        already queued commits anyway. Such a caller must look the outcome up.
        """
        await trio.lowlevel.checkpoint_if_cancelled()  # a cancelled caller queues nothing (yields only then)
        try:  # a free slot is taken without yielding: `async with` would reschedule this task once more
            self._slots.acquire_nowait()
        except trio.WouldBlock:
            await self._slots.acquire()
        try:
            pending = _Pending(_Work(job, durable))
            self._queue.put(pending)
            await pending.event.wait()
        finally:
            self._slots.release()
        ok, value = pending.outcome
        if ok:
            return value  # type: ignore[no-any-return]
        raise value

    async def read(self, job: Job[T]) -> T:
        return await self.write(job)

    def reader(self) -> sqlite3.Connection:
        """A read-only connection for the calling thread (a lane's point lookups from the event loop).

        WAL gives each read transaction a snapshot of the last commit before it began and never makes it
        wait for the writer, so a lookup here costs microseconds instead of a hop to the worker thread and
        back, and sees what a job queued now would see. Only for small reads: a long one would stall the
        event loop. Open it once the actor has started (the file exists and is migrated); the caller
        closes it. Its busy timeout is short: a WAL reader waits only in rare cases (WAL-index recovery
        after a crash), and the caller can then ask the actor instead.
        """
        conn = open_connection(self.path, readonly=True)
        conn.execute("PRAGMA busy_timeout=100")
        return conn

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        opened, ended = trio.Event(), trio.Event()
        failure: list[BaseException] = []
        token = trio.lowlevel.current_trio_token()
        stop = object()  # this run's own stop sign: one left over from an earlier run is skipped

        def started(error: BaseException | None) -> None:
            if error is not None:
                failure.append(error)
            opened.set()

        def finished(error: BaseException | None) -> None:
            if error is not None:
                failure.append(error)
            ended.set()

        def delivered(batch: list[_Pending], outcomes: list[_Outcome]) -> None:
            self.commits += 1
            self.jobs += len(batch)
            for pending, outcome in zip(batch, outcomes, strict=True):
                pending.outcome = outcome
                pending.event.set()

        thread = threading.Thread(
            target=self._serve,
            args=(token, stop, started, delivered, finished),
            name=f"sqlite:{self.path.name}",
            daemon=True,
        )
        thread.start()
        try:
            await opened.wait()
            if failure:
                raise failure[0]
            task_status.started()
            await ended.wait()  # only if the thread died: a database that cannot commit must be restarted
            raise DatabaseError(f"the database thread for {self.path} stopped: {failure[0] if failure else '?'}")
        finally:
            self._queue.put(stop)
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(thread.join)

    def _serve(
        self,
        token: trio.lowlevel.TrioToken,
        stop: object,
        started: Callable[[BaseException | None], None],
        delivered: Callable[[list[_Pending], list[_Outcome]], None],
        finished: Callable[[BaseException | None], None],
    ) -> None:
        """The worker thread: open, migrate, then commit batches until told to stop."""
        try:
            conn = open_connection(self.path)
            migrate(conn, self._migrations)
        except (sqlite3.Error, OSError, DatabaseError) as exc:
            refusal = exc if isinstance(exc, DatabaseError) else DatabaseError(f"cannot open {self.path}: {exc}")
            token.run_sync_soon(started, refusal)
            return
        token.run_sync_soon(started, None)
        error: BaseException | None = None
        batch: list[_Pending] = []
        try:
            while True:
                batch = []
                stopping = False
                item = self._queue.get()
                while True:
                    if item is stop:
                        stopping = True
                    elif isinstance(item, _Pending):
                        batch.append(item)
                    # anything else is an earlier run's stop sign: skip it
                    if stopping or len(batch) >= self._max_batch:
                        break
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                if batch:
                    outcomes = _run_batch(conn, [pending.work for pending in batch])
                    token.run_sync_soon(delivered, batch, outcomes)
                if stopping:
                    return
        except trio.RunFinishedError:
            return
        except Exception as exc:  # a bug or a broken file: fail the batch, end the run, get restarted
            error = exc
            failed: list[_Outcome] = [(False, exc)] * len(batch)
            token.run_sync_soon(delivered, batch, failed)
        finally:
            with contextlib.suppress(sqlite3.Error):  # a connection that broke cannot even roll back
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                conn.close()
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(finished, error)


def _run_batch(conn: sqlite3.Connection, works: list[_Work]) -> list[_Outcome]:
    durable = any(w.durable for w in works)
    if durable:
        conn.execute("PRAGMA synchronous=FULL")
    outcomes: list[_Outcome] = []
    try:
        conn.execute("BEGIN IMMEDIATE")
        if len(works) == 1:  # alone in its transaction: a failure rolls the transaction back, no savepoint needed
            try:
                outcomes.append((True, works[0].job(conn)))
            except Exception as exc:
                conn.execute("ROLLBACK")
                return [(False, exc)]
        else:
            outcomes = _run_jobs(conn, works)
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return [(False, exc)] * len(works)
    finally:
        if durable:
            conn.execute("PRAGMA synchronous=NORMAL")
    return outcomes


def _run_jobs(conn: sqlite3.Connection, works: list[_Work]) -> list[_Outcome]:
    """Each job in its own savepoint, so one failing job is rolled back alone."""
    outcomes: list[_Outcome] = []
    for work in works:
        conn.execute("SAVEPOINT job")
        try:
            value = work.job(conn)
        except Exception as exc:
            conn.execute("ROLLBACK TO job")
            conn.execute("RELEASE job")
            outcomes.append((False, exc))
        else:
            conn.execute("RELEASE job")
            outcomes.append((True, value))
    return outcomes
