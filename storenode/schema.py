"""The store node's schema, as numbered migrations (append new ones; never edit a released one)."""

from runtime.database import Migration

MIGRATIONS = [
    Migration(
        1,
        """
        CREATE TABLE items (
            item TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            price INTEGER NOT NULL,
            vat_rate INTEGER NOT NULL
        );
        CREATE TABLE barcodes (
            code TEXT PRIMARY KEY,
            item TEXT NOT NULL REFERENCES items(item)
        );
        CREATE TABLE operators (
            number TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            salt BLOB NOT NULL,
            pin_hash BLOB NOT NULL
        );
        CREATE TABLE lanes (
            lane INTEGER PRIMARY KEY,
            state BLOB NOT NULL
        );
        CREATE TABLE journal (
            lane INTEGER NOT NULL,
            receipt_no INTEGER NOT NULL,
            kind TEXT NOT NULL,
            sale_id TEXT NOT NULL UNIQUE,
            body BLOB NOT NULL,
            prev_hash BLOB NOT NULL,
            hash BLOB NOT NULL,
            PRIMARY KEY (lane, receipt_no)
        ) WITHOUT ROWID;
        CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal
        BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
        CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal
        BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
        CREATE TABLE streams (
            stream TEXT PRIMARY KEY,
            last_seq INTEGER NOT NULL
        );
        CREATE TABLE outbox (
            stream TEXT NOT NULL,
            seq INTEGER NOT NULL,
            kind TEXT NOT NULL,
            body BLOB NOT NULL,
            PRIMARY KEY (stream, seq)
        ) WITHOUT ROWID;
        """,
    ),
    Migration(
        2,
        """
        CREATE TABLE stock (
            item TEXT PRIMARY KEY,
            qty INTEGER NOT NULL
        );
        """,
    ),
    Migration(
        3,
        """
        ALTER TABLE items ADD COLUMN unit TEXT NOT NULL DEFAULT 'piece';
        """,
    ),
    Migration(
        4,
        """
        ALTER TABLE journal ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
        """,
    ),
    # 5 is the catalogue replica's (another branch). 6: payments: the last exchange rates central
    # published, so foreign cash is taken offline too.
    Migration(
        6,
        """
        CREATE TABLE exchange_rates (
            base TEXT NOT NULL,
            currency TEXT NOT NULL,
            rate INTEGER NOT NULL,
            at INTEGER NOT NULL,
            PRIMARY KEY (base, currency)
        ) WITHOUT ROWID;
        """,
    ),
]
