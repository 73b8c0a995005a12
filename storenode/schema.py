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
    Migration(
        5,
        # The replica of central's registers (storenode/sync/replica.py): the same tables and column
        # order as central's, so rows go from the wire into SQL as they are. Prices move out of items,
        # as at central. The stage_ tables hold a transfer in progress; the live ones change only when
        # it is complete, in one transaction. The old items had nothing central does not resend or the
        # catalogue file does not reload at start, so they are rebuilt rather than altered.
        """
        DROP TABLE barcodes;
        DROP TABLE items;
        CREATE TABLE items (
            item TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            receipt_text TEXT NOT NULL,
            item_group TEXT,
            vat_rate INTEGER NOT NULL,
            unit TEXT NOT NULL,
            info TEXT NOT NULL,
            warranty TEXT NOT NULL,
            popup TEXT NOT NULL,
            active INTEGER NOT NULL
        );
        CREATE TABLE barcodes (code TEXT PRIMARY KEY, item TEXT NOT NULL) WITHOUT ROWID;
        CREATE INDEX barcodes_item ON barcodes (item, code);
        CREATE TABLE prices (
            item TEXT NOT NULL,
            store TEXT NOT NULL,
            starts INTEGER NOT NULL,
            ends INTEGER NOT NULL,
            price INTEGER NOT NULL,
            currency TEXT NOT NULL,
            PRIMARY KEY (item, store, starts, ends)
        ) WITHOUT ROWID;
        CREATE TABLE vat_rates (code TEXT PRIMARY KEY, rate INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE item_groups (item_group TEXT PRIMARY KEY, name TEXT NOT NULL, parent TEXT) WITHOUT ROWID;
        CREATE TABLE stage_items (
            item TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            receipt_text TEXT NOT NULL,
            item_group TEXT,
            vat_rate INTEGER NOT NULL,
            unit TEXT NOT NULL,
            info TEXT NOT NULL,
            warranty TEXT NOT NULL,
            popup TEXT NOT NULL,
            active INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE stage_barcodes (code TEXT PRIMARY KEY, item TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE stage_prices (
            item TEXT NOT NULL,
            store TEXT NOT NULL,
            starts INTEGER NOT NULL,
            ends INTEGER NOT NULL,
            price INTEGER NOT NULL,
            currency TEXT NOT NULL,
            PRIMARY KEY (item, store, starts, ends)
        ) WITHOUT ROWID;
        CREATE TABLE stage_vat_rates (code TEXT PRIMARY KEY, rate INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE stage_item_groups (item_group TEXT PRIMARY KEY, name TEXT NOT NULL, parent TEXT) WITHOUT ROWID;
        CREATE TABLE replica (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            version INTEGER NOT NULL,
            transfer_base INTEGER,
            cursor BLOB NOT NULL
        );
        INSERT INTO replica (id, version, transfer_base, cursor) VALUES (1, 0, NULL, x'');
        CREATE VIRTUAL TABLE items_fts USING fts5(
            name, receipt_text, content='items', content_rowid='rowid', tokenize='unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER items_fts_insert AFTER INSERT ON items BEGIN
            INSERT INTO items_fts (rowid, name, receipt_text) VALUES (new.rowid, new.name, new.receipt_text);
        END;
        CREATE TRIGGER items_fts_delete AFTER DELETE ON items BEGIN
            INSERT INTO items_fts (items_fts, rowid, name, receipt_text)
            VALUES ('delete', old.rowid, old.name, old.receipt_text);
        END;
        CREATE TRIGGER items_fts_update AFTER UPDATE OF name, receipt_text ON items BEGIN
            INSERT INTO items_fts (items_fts, rowid, name, receipt_text)
            VALUES ('delete', old.rowid, old.name, old.receipt_text);
            INSERT INTO items_fts (rowid, name, receipt_text) VALUES (new.rowid, new.name, new.receipt_text);
        END;
        """,
    ),
    # 6: payments: the last exchange rates central
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
    Migration(
        7,
        # The replica of central's tills and till configuration (this store's and the chain's).
        """
        CREATE TABLE tills (
            store TEXT NOT NULL,
            till TEXT NOT NULL,
            name TEXT NOT NULL,
            lane INTEGER NOT NULL,
            PRIMARY KEY (store, till)
        ) WITHOUT ROWID;
        CREATE TABLE till_configs (
            store TEXT PRIMARY KEY,
            receipt_header TEXT NOT NULL,
            receipt_footer TEXT NOT NULL,
            quick_keys TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE stage_tills (
            store TEXT NOT NULL,
            till TEXT NOT NULL,
            name TEXT NOT NULL,
            lane INTEGER NOT NULL,
            PRIMARY KEY (store, till)
        ) WITHOUT ROWID;
        CREATE TABLE stage_till_configs (
            store TEXT PRIMARY KEY,
            receipt_header TEXT NOT NULL,
            receipt_footer TEXT NOT NULL,
            quick_keys TEXT NOT NULL
        ) WITHOUT ROWID;
        """,
    ),
    # 8: refunds of a receipt: each journal row names the receipt it refunds (SaleRecord.refund_of), so
    # what went back already is found by index, from the journal itself, however many partial refunds.
    Migration(
        8,
        """
        ALTER TABLE journal ADD COLUMN refund_of TEXT NOT NULL DEFAULT '';
        CREATE INDEX journal_refund_of ON journal (refund_of) WHERE refund_of != '';
        """,
    ),
    Migration(
        9,
        # The epoch of central's catalogue the replica's version counts in ('' : not known yet).
        """
        ALTER TABLE replica ADD COLUMN epoch TEXT NOT NULL DEFAULT '';
        """,
    ),
    Migration(
        10,
        # Prices central deleted, staged with a transfer like the rows it sends.
        """
        CREATE TABLE stage_price_deletes (
            item TEXT NOT NULL,
            store TEXT NOT NULL,
            starts INTEGER NOT NULL,
            ends INTEGER NOT NULL,
            PRIMARY KEY (item, store, starts, ends)
        ) WITHOUT ROWID;
        """,
    ),
    Migration(
        11,
        # Each lane row counts its saves: the lane's state file says which save its records build on.
        """
        ALTER TABLE lanes ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
        """,
    ),
    Migration(
        12,
        # A large transfer goes live through shadow tables built a slice at a time
        # (storenode/sync/shadow.py): `ready` is the version of a complete transfer being built (NULL:
        # none), `ready_epoch` its epoch, and replica_build the plan of slices with each one's position.
        """
        ALTER TABLE replica ADD COLUMN ready INTEGER;
        ALTER TABLE replica ADD COLUMN ready_epoch TEXT NOT NULL DEFAULT '';
        CREATE TABLE replica_build (
            step INTEGER PRIMARY KEY,
            action TEXT NOT NULL,
            target TEXT NOT NULL,
            source TEXT NOT NULL,
            columns TEXT NOT NULL,
            keys TEXT NOT NULL,
            after TEXT
        );
        """,
    ),
    Migration(
        13,
        # Every journal record is signed by the store key over its chain hash (storenode/journal/chain.py),
        # kept beside it with the key's id. Rows from before this migration are signed once, at the node's
        # next start; so the append-only trigger now lets exactly that through: a signature set once on an
        # unsigned row, every other column as it was. The index finds a record's signature by its outbox
        # seq (covering: no second lookup), so the link reads it in the job that reads the outbox.
        """
        ALTER TABLE journal ADD COLUMN sig BLOB NOT NULL DEFAULT x'';
        ALTER TABLE journal ADD COLUMN key TEXT NOT NULL DEFAULT '';
        DROP TRIGGER journal_no_update;
        CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal
        WHEN OLD.sig != x'' OR NEW.sig = x'' OR NEW.key = ''
            OR (NEW.lane, NEW.receipt_no, NEW.kind, NEW.sale_id, NEW.body, NEW.prev_hash, NEW.hash, NEW.seq,
                NEW.refund_of)
            IS NOT (OLD.lane, OLD.receipt_no, OLD.kind, OLD.sale_id, OLD.body, OLD.prev_hash, OLD.hash, OLD.seq,
                OLD.refund_of)
        BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
        CREATE INDEX journal_seq ON journal (seq, sig, key);
        """,
    ),
    # 14: operators (issue 13). Central's operator register is
    # replicated like the catalogue (operators/stage_operators, central's columns: the PIN only as its slow
    # hash, protocol.pins); the catalogue file's operators, for a chain that holds none at central, live
    # apart (file_operators). The old table held PBKDF2 hashes of the file's PINs, remade at every start:
    # nothing to keep. Wrong PINs count per operator in the database, so a lockout holds on every lane and
    # across restarts; approvals outside a sale (stock, the terminal's end of day) are kept in `approvals`.
    Migration(
        14,
        """
        DROP TABLE operators;
        CREATE TABLE operators (
            number TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            role TEXT NOT NULL,
            stores TEXT NOT NULL,
            pin_hash TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE stage_operators (
            number TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            role TEXT NOT NULL,
            stores TEXT NOT NULL,
            pin_hash TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE file_operators (
            number TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            role TEXT NOT NULL,
            pin_hash TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE operator_lockouts (
            number TEXT PRIMARY KEY,
            failures INTEGER NOT NULL,
            locked_until INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE approvals (
            at INTEGER NOT NULL,
            lane INTEGER NOT NULL,
            operator TEXT NOT NULL,
            approver TEXT NOT NULL,
            action TEXT NOT NULL,
            detail TEXT NOT NULL
        );
        -- A store that already holds central's catalogue may have pulled the versions that brought
        -- central's operators with a program that did not keep them: it takes one snapshot (a transfer
        -- from 0, staged beside the live tables, which sell on meanwhile), so the operators arrive.
        DELETE FROM stage_vat_rates WHERE (SELECT version FROM replica) > 0 AND (SELECT ready FROM replica) IS NULL;
        DELETE FROM stage_item_groups WHERE (SELECT version FROM replica) > 0 AND (SELECT ready FROM replica) IS NULL;
        DELETE FROM stage_items WHERE (SELECT version FROM replica) > 0 AND (SELECT ready FROM replica) IS NULL;
        DELETE FROM stage_barcodes WHERE (SELECT version FROM replica) > 0 AND (SELECT ready FROM replica) IS NULL;
        DELETE FROM stage_prices WHERE (SELECT version FROM replica) > 0 AND (SELECT ready FROM replica) IS NULL;
        DELETE FROM stage_tills WHERE (SELECT version FROM replica) > 0 AND (SELECT ready FROM replica) IS NULL;
        DELETE FROM stage_till_configs WHERE (SELECT version FROM replica) > 0 AND (SELECT ready FROM replica) IS NULL;
        DELETE FROM stage_price_deletes WHERE (SELECT version FROM replica) > 0 AND (SELECT ready FROM replica) IS NULL;
        UPDATE replica SET transfer_base = 0, cursor = x'' WHERE version > 0 AND ready IS NULL;
        """,
    ),
    Migration(
        15,
        """
        -- Till credentials (storenode/till_credentials.py): a till proves one in its hello. Only a hash of
        -- the secret is kept; `lanes` is a comma list of the lanes it may attach to (0: asking only).
        CREATE TABLE till_credentials (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            lanes TEXT NOT NULL,
            secret_hash BLOB NOT NULL,
            created INTEGER NOT NULL,
            revoked INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID;
        """,
    ),
    # 16 (issue 14, discounts): central's register of discount reasons, replicated with the catalogue
    # (discount_reasons/stage_discount_reasons, central's columns), and the catalogue file's reasons for a
    # store without central (file_discount_reasons; central's, once it sent any, alone decide). A store that
    # already holds central's catalogue takes one snapshot (staged beside the live tables, which sell on
    # meanwhile) so reasons central held before this store was upgraded arrive too.
    Migration(
        16,
        """
        CREATE TABLE discount_reasons (
            code TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            active INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE stage_discount_reasons (
            code TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            active INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE file_discount_reasons (
            code TEXT PRIMARY KEY,
            name TEXT NOT NULL
        ) WITHOUT ROWID;
        DELETE FROM stage_vat_rates WHERE (SELECT version FROM replica) > 0 AND (SELECT ready FROM replica) IS NULL;
        DELETE FROM stage_item_groups WHERE (SELECT version FROM replica) > 0 AND (SELECT ready FROM replica) IS NULL;
        DELETE FROM stage_items WHERE (SELECT version FROM replica) > 0 AND (SELECT ready FROM replica) IS NULL;
        DELETE FROM stage_barcodes WHERE (SELECT version FROM replica) > 0 AND (SELECT ready FROM replica) IS NULL;
        DELETE FROM stage_prices WHERE (SELECT version FROM replica) > 0 AND (SELECT ready FROM replica) IS NULL;
        DELETE FROM stage_tills WHERE (SELECT version FROM replica) > 0 AND (SELECT ready FROM replica) IS NULL;
        DELETE FROM stage_till_configs WHERE (SELECT version FROM replica) > 0 AND (SELECT ready FROM replica) IS NULL;
        DELETE FROM stage_price_deletes WHERE (SELECT version FROM replica) > 0 AND (SELECT ready FROM replica) IS NULL;
        DELETE FROM stage_operators WHERE (SELECT version FROM replica) > 0 AND (SELECT ready FROM replica) IS NULL;
        UPDATE replica SET transfer_base = 0, cursor = x'' WHERE version > 0 AND ready IS NULL;
        """,
    ),
    # 18 (issue 14, park): sales parked at the store, resumed on any of its lanes (storenode.lanes.parking)
    Migration(
        18,
        """
        -- `no` is the short id a cashier types (P<no>); AUTOINCREMENT never hands out a number twice, so a
        -- resumed id cannot come back naming another sale. `state` is the lane's sale as it was (msgpack).
        CREATE TABLE parked_sales (
            no INTEGER PRIMARY KEY AUTOINCREMENT,
            sale_id TEXT NOT NULL UNIQUE,
            lane INTEGER NOT NULL,
            operator TEXT NOT NULL,
            parked_at INTEGER NOT NULL,
            lines INTEGER NOT NULL,
            total INTEGER NOT NULL,
            state BLOB NOT NULL
        );
        """,
    ),
    # 19 (issue 14, receipts): the receipt index a cashier looks receipts up by (storenode/journal/index.py),
    # written in the transaction that journals each receipt; the receipts journaled before it are listed in
    # receipt_index_backlog and indexed once at the node's start. Copies made of each receipt, counted in the
    # transaction that journals the copy event (storenode/lanes/lookup.py). Other stores' receipts as central
    # sent them for a return here (their lines and what central says was returned of them elsewhere).
    Migration(
        19,
        """
        CREATE TABLE receipt_index (
            lane INTEGER NOT NULL,
            receipt_no INTEGER NOT NULL,
            closed_at INTEGER NOT NULL,
            total INTEGER NOT NULL,
            kind TEXT NOT NULL,
            PRIMARY KEY (lane, receipt_no)
        ) WITHOUT ROWID;
        CREATE INDEX receipt_index_at ON receipt_index (closed_at, lane, receipt_no);
        CREATE INDEX receipt_index_total ON receipt_index (total, closed_at, lane, receipt_no);
        CREATE TABLE receipt_cards (
            card TEXT NOT NULL,
            closed_at INTEGER NOT NULL,
            lane INTEGER NOT NULL,
            receipt_no INTEGER NOT NULL,
            PRIMARY KEY (card, closed_at, lane, receipt_no)
        ) WITHOUT ROWID;
        CREATE TABLE receipt_index_backlog (
            lane INTEGER PRIMARY KEY,
            done INTEGER NOT NULL,
            upto INTEGER NOT NULL
        );
        INSERT INTO receipt_index_backlog (lane, done, upto) SELECT lane, 0, MAX(receipt_no) FROM journal GROUP BY lane;
        CREATE TABLE receipt_copies (
            receipt TEXT PRIMARY KEY,
            copies INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE foreign_receipts (
            receipt TEXT PRIMARY KEY,
            body BLOB NOT NULL,
            fetched INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE foreign_returned (
            receipt TEXT NOT NULL,
            line INTEGER NOT NULL,
            qty INTEGER NOT NULL,
            PRIMARY KEY (receipt, line)
        ) WITHOUT ROWID;
        """,
    ),
    # 20 (issue 14, cash): the cash management bookkeeping beside the journal (storenode/lanes/cash.py), each
    # row written in the same transaction as the event it belongs to. cash_counts: each lane's last cash
    # count (its receipt number), so the next count reads only the journal after it; cash_nosales: no-sale
    # drawer openings per day, lane and operator; cash_keys: a till's id for a cash action, so a retried
    # command is answered with the event already journaled instead of a second one.
    Migration(
        20,
        """
        CREATE TABLE cash_counts (
            lane INTEGER PRIMARY KEY,
            receipt_no INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE cash_nosales (
            day TEXT NOT NULL,
            lane INTEGER NOT NULL,
            operator TEXT NOT NULL,
            n INTEGER NOT NULL,
            PRIMARY KEY (day, lane, operator)
        ) WITHOUT ROWID;
        CREATE TABLE cash_keys (
            lane INTEGER NOT NULL,
            key TEXT NOT NULL,
            receipt_no INTEGER NOT NULL,
            PRIMARY KEY (lane, key)
        ) WITHOUT ROWID;
        """,
    ),
    # 21: wrong PINs are forgotten a day after the last one (storenode/operators.failed), so numbers tried
    # one after another do not grow the table without end; rows from before count from now.
    Migration(
        21,
        """
        ALTER TABLE operator_lockouts ADD COLUMN last_at INTEGER NOT NULL DEFAULT 0;
        UPDATE operator_lockouts SET last_at = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER);
        CREATE INDEX operator_lockouts_last ON operator_lockouts (last_at);
        """,
    ),
]
