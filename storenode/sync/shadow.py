"""Large tables rebuilt beside the live ones a slice at a time, and swapped in by renames.

The store has one database connection, owned by one thread, and every lane's write queues for it. A
large change applied in one transaction (a million prices: most of a second) holds every lane for
that long. Built instead in a `next_` copy of each large table, one bounded slice per transaction,
the lanes' jobs are served between the slices; the copy goes live by renames in one short
transaction, so a reader sees the old content or the new, never a mix, and a kill at any instant
leaves one or the other. What was live is renamed `retired_...` and emptied afterwards, again in
slices: dropping a million-row table at once takes about as long as filling it.

The plan of slices and the position of each lives in `replica_build`, written in the same transaction
as the slice it describes, so a build cut by a crash goes on from the last committed slice.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
from collections.abc import Sequence

SHADOW = "next_"
RETIRED = "retired_"

# How a step fills its target from its source: rows copied, rows merged over what is there (the newer
# wins), or target rows whose keys the source lists removed.
COPY, UPSERT, DELETE = "copy", "upsert", "delete"


def _sql(conn: sqlite3.Connection, name: str) -> str:
    row = conn.execute("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?", (name,)).fetchone()
    if row is None:
        raise LookupError(f"no table {name}")
    return str(row[0])


def exists(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def _named(sql: str, name: str) -> str:
    """A CREATE [VIRTUAL] TABLE statement for another name (SQLite quotes a renamed table's name)."""
    return re.sub(r'^(CREATE (?:VIRTUAL )?TABLE\s+)("[^"]+"|\w+)', lambda m: m.group(1) + f'"{name}"', sql, count=1)


def new_tag() -> str:
    """A name part no earlier build used: retired tables and indexes linger until drained."""
    return secrets.token_hex(4)


def create_shadow(conn: sqlite3.Connection, table: str, tag: str) -> str:
    """An empty `next_` twin of `table` with its indexes (built with the rows, never in the swap).
    Index names carry `tag` (from `new_tag()`): the live table's indexes keep theirs until retired."""
    shadow = SHADOW + table
    conn.execute(_named(_sql(conn, table), shadow))
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL", (table,)
    ).fetchall()
    for name, sql in indexes:
        fresh = f"{re.sub(r'_v[0-9a-f]{8}$', '', name)}_v{tag}"
        on = re.sub(rf'\bON\s+("{table}"|{table})\s*\(', f'ON "{shadow}" (', sql, count=1)
        conn.execute(re.sub(r"^(CREATE (?:UNIQUE )?INDEX\s+)(\"[^\"]+\"|\w+)", rf'\1"{fresh}"', on, count=1))
    return shadow


def keys_of(conn: sqlite3.Connection, table: str) -> tuple[str, ...]:
    """The primary key's columns in order; a table without a declared key is walked by rowid."""
    info = conn.execute(f'PRAGMA table_info("{table}")').fetchall()
    pk = sorted((row[5], row[1]) for row in info if row[5])
    return tuple(name for _, name in pk) or ("rowid",)


def plan(
    conn: sqlite3.Connection, action: str, target: str, source: str, columns: Sequence[str], keys: Sequence[str]
) -> None:
    """Append a step to the build: `source` walked in key order into `target`, a slice per call to `step`."""
    conn.execute(
        "INSERT INTO replica_build (action, target, source, columns, keys) VALUES (?, ?, ?, ?, ?)",
        (action, target, source, ",".join(columns), ",".join(keys)),
    )


def steps_left(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM replica_build").fetchone()[0])


def step(conn: sqlite3.Connection, rows: int) -> bool:
    """One slice (at most `rows` source rows) of the first step left; False when none was left."""
    row = conn.execute(
        "SELECT step, action, target, source, columns, keys, after FROM replica_build ORDER BY step LIMIT 1"
    ).fetchone()
    if row is None:
        return False
    number, action, target, source, column_list, key_list, after = row
    columns, keys = column_list.split(","), key_list.split(",")
    k = ", ".join(keys)
    marks = ", ".join("?" * len(keys))
    start: list[object] = json.loads(after) if after is not None else []
    where = f"({k}) > ({marks})" if start else "true"
    end = conn.execute(
        f"SELECT {k} FROM {source} WHERE {where} ORDER BY {k} LIMIT 1 OFFSET ?", (*start, rows - 1)
    ).fetchone()
    bounds: tuple[object, ...] = (*start, *end) if end else tuple(start)
    if end:
        where += f" AND ({k}) <= ({marks})"
    names = ", ".join(columns)
    if action == DELETE:
        conn.execute(f"DELETE FROM {target} WHERE ({k}) IN (SELECT {k} FROM {source} WHERE {where})", bounds)
    else:
        insert = f"INSERT INTO {target} ({names}) SELECT {names} FROM {source} WHERE {where} ORDER BY {k}"
        if action == UPSERT:
            updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in keys)
            insert += f" ON CONFLICT ({k}) DO " + (f"UPDATE SET {updates}" if updates else "NOTHING")
        conn.execute(insert, bounds)
    if end:
        conn.execute("UPDATE replica_build SET after = ? WHERE step = ?", (json.dumps(list(end)), number))
    else:
        conn.execute("DELETE FROM replica_build WHERE step = ?", (number,))
    return True


def retire(conn: sqlite3.Connection, table: str, tag: str) -> None:
    """Take `table` out of use at once (a rename); `drain` empties and drops it later."""
    conn.execute(f'ALTER TABLE "{table}" RENAME TO "{RETIRED}{tag}_{table}"')


def renew(conn: sqlite3.Connection, table: str, tag: str) -> None:
    """Swap a full table (without secondary indexes) for an empty one of the same shape, at once."""
    sql = _sql(conn, table)
    retire(conn, table, tag)
    conn.execute(_named(sql, table))


def discard(conn: sqlite3.Connection) -> None:
    """Give up a build: its plan goes, its `next_` tables are retired (their rows are drained later)."""
    conn.execute("DELETE FROM replica_build")
    names = conn.execute(
        r"SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND name LIKE 'next\_%' ESCAPE '\'"
    ).fetchall()
    virtual = [name for name, sql in names if sql.startswith("CREATE VIRTUAL")]
    for name, _ in names:
        if not any(name.startswith(v + "_") for v in virtual):  # a virtual table's own tables move with it
            retire(conn, name, new_tag())


def drain(conn: sqlite3.Connection, rows: int) -> bool:
    """Delete up to `rows` rows of a retired table, dropping it once empty; True when none is left.

    A retired full-text index is emptied through its own tables (rows of an index nobody reads any
    more) but for its settings, then dropped: dropping it whole would free every page at once."""
    names = dict(
        conn.execute(
            r"SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND name LIKE 'retired\_%' ESCAPE '\'"
        ).fetchall()
    )
    if not names:
        return True
    virtual = [name for name, sql in names.items() if sql.startswith("CREATE VIRTUAL")]
    owned = {name: v for name in names for v in virtual if name.startswith(v + "_")}
    # What of a full-text index's own tables may go before it is dropped: all but its settings and, in
    # its data, the two records FTS5 keeps below rowid 10 (averages, structure); its constructor,
    # which even dropping it runs, reads those.
    deletable = {name: "true" for name in names}
    for v in virtual:
        deletable.pop(f"{v}_config", None)
        deletable[f"{v}_data"] = "id > 10"
    for name in sorted(deletable, key=lambda n: (n not in owned, n)):
        if name in virtual:
            continue
        where = deletable[name]
        if conn.execute(f'SELECT 1 FROM "{name}" WHERE {where} LIMIT 1').fetchone() is None:
            if name not in owned:
                conn.execute(f'DROP TABLE "{name}"')
                return False
            continue
        k = ", ".join(keys_of(conn, name))
        conn.execute(f'DELETE FROM "{name}" WHERE ({k}) IN (SELECT {k} FROM "{name}" WHERE {where} LIMIT ?)', (rows,))
        return False
    conn.execute(f'DROP TABLE "{virtual[0]}"')  # its own tables are empty by now
    return False
