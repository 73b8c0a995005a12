"""The single owner of a node's SQLite file: stdlib sqlite3 on one dedicated worker thread.

aiosqlite's model (one connection, one thread, a queue in front) done the Trio way: callers hand
the actor a function of a connection; the actor drains everything queued meanwhile and runs it as one
transaction, one savepoint per job, so N concurrent writers share one commit (group commit) while a
failing job is rolled back alone. Jobs that need to survive power loss (a completed sale) ask for
`durable=True`, which makes that commit use synchronous=FULL; everything else survives a process
crash with WAL's synchronous=NORMAL at a fraction of the cost.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import trio

from runtime.mailbox import Envelope, Mailbox

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


class Database:
    """Handle and actor in one: hold the handle anywhere, run `run` under the supervisor."""

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
        self._mailbox: Mailbox[_Work] = Mailbox(capacity)
        self._max_batch = max_batch
        self.commits = 0  # observable group-commit behaviour for tests and benchmarks
        self.jobs = 0

    async def write(self, job: Job[T], *, durable: bool = False) -> T:
        """Run `job` inside a transaction; returns after it is committed.

        A caller that gives up early (its deadline passes) learns nothing about the outcome: a job
        already on the worker thread commits anyway. Such a caller must look the outcome up.
        """
        return await self._mailbox.ask(_Work(job, durable), expires=False)

    async def read(self, job: Job[T]) -> T:
        return await self._mailbox.ask(_Work(job, False), expires=False)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        worker = _Worker(self.path, trio.lowlevel.current_trio_token())
        worker.start()
        try:
            ok, result = await worker.call(lambda conn: migrate(conn, self._migrations))
            if not ok:
                raise result
            task_status.started()
            while True:
                batch = [await self._mailbox.receive()]
                while len(batch) < self._max_batch:
                    try:
                        batch.append(self._mailbox.receive_nowait())
                    except trio.WouldBlock:
                        break
                await self._commit(worker, batch)
        finally:
            with trio.CancelScope(shield=True):
                await worker.stop()

    async def _commit(self, worker: _Worker, batch: list[Envelope[_Work]]) -> None:
        live = [env for env in batch if not env.expired]
        if not live:
            return
        works = [env.message for env in live]
        ok, outcomes = await worker.call(lambda conn: _run_batch(conn, works))
        if not ok:
            for env in live:
                env.fail(outcomes)
            raise outcomes
        self.commits += 1
        self.jobs += len(live)
        for env, (job_ok, value) in zip(live, outcomes, strict=True):
            if job_ok:
                env.reply(value)
            else:
                env.fail(value)


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


class _Worker:
    """The dedicated thread that owns the connection; results come back through the Trio token."""

    def __init__(self, path: Path, token: trio.lowlevel.TrioToken) -> None:
        self._path = path
        self._token = token
        self._queue: queue.SimpleQueue[tuple[Job[Any], Callable[[bool, Any], None]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name=f"sqlite:{path.name}", daemon=True)
        self._open_error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    async def call(self, job: Job[T]) -> tuple[bool, Any]:
        done = trio.Event()
        box: list[tuple[bool, Any]] = []

        def deliver(ok: bool, value: Any) -> None:
            box.append((ok, value))
            done.set()

        self._queue.put((job, deliver))
        await done.wait()
        return box[0]

    async def stop(self) -> None:
        self._queue.put(None)
        await trio.to_thread.run_sync(self._thread.join)

    def _loop(self) -> None:
        try:
            conn = open_connection(self._path)
        except Exception as exc:
            conn = None
            self._open_error = exc
        while True:
            item = self._queue.get()
            if item is None:
                break
            job, deliver = item
            if conn is None:
                outcome: tuple[bool, Any] = (False, DatabaseError(f"cannot open {self._path}: {self._open_error}"))
            else:
                try:
                    outcome = (True, job(conn))
                except BaseException as exc:
                    outcome = (False, exc)
            try:
                self._token.run_sync_soon(deliver, *outcome)
            except trio.RunFinishedError:
                break
        if conn is not None:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()
