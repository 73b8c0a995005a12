"""Central's schema, as numbered migrations (append new ones; never edit a released one)."""

from runtime.database import Migration

MIGRATIONS = [
    Migration(
        1,
        """
        CREATE TABLE stream_cursors (
            store TEXT NOT NULL,
            stream TEXT NOT NULL,
            seq INTEGER NOT NULL,
            PRIMARY KEY (store, stream)
        ) WITHOUT ROWID;
        CREATE TABLE sales (
            store TEXT NOT NULL,
            lane INTEGER NOT NULL,
            receipt_no INTEGER NOT NULL,
            kind TEXT NOT NULL,
            sale_id TEXT NOT NULL UNIQUE,
            currency TEXT NOT NULL,
            total INTEGER NOT NULL,
            closed_at INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            body BLOB NOT NULL,
            PRIMARY KEY (store, lane, receipt_no)
        ) WITHOUT ROWID;
        """,
    ),
    Migration(
        2,
        """
        CREATE TABLE stock (
            location TEXT NOT NULL,
            item TEXT NOT NULL,
            qty INTEGER NOT NULL,
            PRIMARY KEY (location, item)
        ) WITHOUT ROWID;
        CREATE TABLE stock_moves (
            store TEXT NOT NULL,
            seq INTEGER NOT NULL,
            item TEXT NOT NULL,
            reason TEXT NOT NULL,
            delta INTEGER NOT NULL,
            ref TEXT NOT NULL,
            at INTEGER NOT NULL
        );
        CREATE INDEX stock_moves_store ON stock_moves (store, seq);
        """,
    ),
]
