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
    Migration(
        3,
        # Master registers (central/registers/catalog.py). Every row carries the catalogue version
        # that last changed it, so distribution can later send "everything after version N".
        # A price's store '' is the chain price; ends = 0 (and starts = 0) is a standing price,
        # otherwise the campaign window is [starts, ends) in epoch ms.
        """
        CREATE TABLE catalog_version (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            version INTEGER NOT NULL
        );
        INSERT INTO catalog_version (id, version) VALUES (1, 0);
        CREATE TABLE vat_rates (
            code TEXT PRIMARY KEY,
            rate INTEGER NOT NULL CHECK (rate BETWEEN 0 AND 10000),
            version INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE item_groups (
            item_group TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            parent TEXT REFERENCES item_groups (item_group) DEFERRABLE INITIALLY DEFERRED,
            version INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE stores (
            store TEXT PRIMARY KEY CHECK (store <> ''),
            name TEXT NOT NULL,
            version INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE items (
            item TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            receipt_text TEXT NOT NULL,
            item_group TEXT REFERENCES item_groups (item_group) DEFERRABLE INITIALLY DEFERRED,
            vat_rate INTEGER NOT NULL CHECK (vat_rate BETWEEN 0 AND 10000),
            unit TEXT NOT NULL CHECK (unit IN ('piece', 'kg')),
            info TEXT NOT NULL,
            warranty TEXT NOT NULL,
            popup TEXT NOT NULL,
            active INTEGER NOT NULL CHECK (active IN (0, 1)),
            version INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE barcodes (
            code TEXT PRIMARY KEY,
            item TEXT NOT NULL REFERENCES items (item) DEFERRABLE INITIALLY DEFERRED,
            version INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX barcodes_item ON barcodes (item);
        CREATE TABLE prices (
            item TEXT NOT NULL REFERENCES items (item) DEFERRABLE INITIALLY DEFERRED,
            store TEXT NOT NULL,
            starts INTEGER NOT NULL,
            ends INTEGER NOT NULL,
            price INTEGER NOT NULL CHECK (price >= 0),
            currency TEXT NOT NULL,
            version INTEGER NOT NULL,
            PRIMARY KEY (item, store, starts, ends),
            CHECK ((starts = 0 AND ends = 0) OR (starts >= 0 AND starts < ends))
        ) WITHOUT ROWID;
        """,
    ),
    Migration(
        4,
        # Distribution reads "rows changed after version N" in (version, key) order, so a transfer
        # can resume after any row and rows changed while it runs come again later in it.
        """
        CREATE INDEX vat_rates_version ON vat_rates (version, code);
        CREATE INDEX item_groups_version ON item_groups (version, item_group);
        CREATE INDEX items_version ON items (version, item);
        CREATE INDEX barcodes_version ON barcodes (version, code);
        CREATE INDEX prices_version ON prices (version, item, store, starts, ends);
        """,
    ),
    # 5: payments (central/registers/giftcards.py,
    # rates.py, customers.py). A card's balance changes only through a move, whose id makes it idempotent.
    Migration(
        5,
        """
        CREATE TABLE giftcards (
            card TEXT PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('giftcard', 'voucher')),
            currency TEXT NOT NULL,
            balance INTEGER NOT NULL CHECK (balance >= 0),
            issued_at INTEGER NOT NULL,
            active INTEGER NOT NULL DEFAULT 1
        ) WITHOUT ROWID;
        CREATE TABLE giftcard_moves (
            move TEXT PRIMARY KEY,
            card TEXT NOT NULL,
            kind TEXT NOT NULL,
            amount INTEGER NOT NULL,
            store TEXT NOT NULL,
            sale_id TEXT NOT NULL,
            at INTEGER NOT NULL,
            offline INTEGER NOT NULL,
            voided INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID;
        CREATE INDEX giftcard_moves_card ON giftcard_moves (card);
        CREATE TABLE giftcard_overdrafts (
            move TEXT PRIMARY KEY,
            card TEXT NOT NULL,
            store TEXT NOT NULL,
            sale_id TEXT NOT NULL,
            taken INTEGER NOT NULL,
            overdraft INTEGER NOT NULL,
            at INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE exchange_rates (
            base TEXT NOT NULL,
            currency TEXT NOT NULL,
            rate INTEGER NOT NULL CHECK (rate > 0),
            at INTEGER NOT NULL,
            PRIMARY KEY (base, currency)
        ) WITHOUT ROWID;
        CREATE TABLE customers (
            customer TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            active INTEGER NOT NULL DEFAULT 1
        ) WITHOUT ROWID;
        """,
    ),
    Migration(
        6,
        # Tills and their configuration (receipt texts, quick keys): registers like the others, with
        # a version per row and the (version, key) index distribution reads them by.
        """
        CREATE TABLE tills (
            store TEXT NOT NULL,
            till TEXT NOT NULL,
            name TEXT NOT NULL,
            lane INTEGER NOT NULL CHECK (lane BETWEEN 1 AND 999),
            version INTEGER NOT NULL,
            PRIMARY KEY (store, till)
        ) WITHOUT ROWID;
        CREATE INDEX tills_version ON tills (version, store, till);
        CREATE TABLE till_configs (
            store TEXT PRIMARY KEY,
            receipt_header TEXT NOT NULL,
            receipt_footer TEXT NOT NULL,
            quick_keys TEXT NOT NULL,
            version INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX till_configs_version ON till_configs (version, store);
        """,
    ),
    Migration(
        7,
        # The catalogue's epoch: a random name given once, when the database is made, so a store can
        # tell "version 12 of this catalogue" from version 12 of another central (a restore from some
        # other lineage, a store moved to another chain) and take a fresh snapshot instead.
        """
        ALTER TABLE catalog_version ADD COLUMN epoch TEXT NOT NULL DEFAULT '';
        UPDATE catalog_version SET epoch = lower(hex(randomblob(8)));
        """,
    ),
    Migration(
        8,
        # Deleted prices leave a tombstone with the version that deleted them, so distribution can tell
        # a store to drop a price it holds (a campaign entered by mistake). Re-adding the price removes
        # its tombstone.
        """
        CREATE TABLE price_tombstones (
            item TEXT NOT NULL,
            store TEXT NOT NULL,
            starts INTEGER NOT NULL,
            ends INTEGER NOT NULL,
            version INTEGER NOT NULL,
            PRIMARY KEY (item, store, starts, ends)
        ) WITHOUT ROWID;
        CREATE INDEX price_tombstones_version ON price_tombstones (version, item, store, starts, ends);
        """,
    ),
    Migration(
        9,
        # The store registry (central/registers/identities.py): a store's status and its open enrolment
        # token (only the token's SHA-256, with its expiry), and every key the store ever had, never
        # deleted (a revoked store's past records still verify). A key is current while retired_at is
        # NULL; signed_by names the key that signed it in a rotation ('' when it came with a token).
        """
        CREATE TABLE store_identities (
            store TEXT PRIMARY KEY,
            status TEXT NOT NULL CHECK (status IN ('pending', 'enrolled', 'revoked')),
            token_hash BLOB,
            token_expires INTEGER NOT NULL DEFAULT 0,
            created_at INTEGER NOT NULL,
            enrolled_at INTEGER,
            revoked_at INTEGER
        ) WITHOUT ROWID;
        CREATE TABLE store_keys (
            store TEXT NOT NULL REFERENCES store_identities (store),
            key_id TEXT NOT NULL,
            public BLOB NOT NULL CHECK (length(public) = 32),
            added_at INTEGER NOT NULL,
            retired_at INTEGER,
            signed_by TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (store, key_id)
        ) WITHOUT ROWID;
        """,
    ),
    Migration(
        10,
        # The verified journal (central/registers/sales.py): each sale keeps its chain hash as central
        # derived it and the store key's signature with the key's id ('' / x'' : applied before this).
        # event_digests: what was applied at each (store, stream, seq), so a resend is told from a
        # different event under a used number (central/registers/cursors.py); the journal's own sales
        # rows serve for it (they keep the whole event). alarms: what an operator
        # must look at (central/registers/alarms.py); a repeat of the newest alarm of its store only
        # counts up.
        """
        ALTER TABLE sales ADD COLUMN hash BLOB NOT NULL DEFAULT x'';
        ALTER TABLE sales ADD COLUMN sig BLOB NOT NULL DEFAULT x'';
        ALTER TABLE sales ADD COLUMN key TEXT NOT NULL DEFAULT '';
        CREATE TABLE event_digests (
            store TEXT NOT NULL,
            stream TEXT NOT NULL,
            seq INTEGER NOT NULL,
            digest BLOB NOT NULL,
            PRIMARY KEY (store, stream, seq)
        ) WITHOUT ROWID;
        CREATE TABLE alarms (
            id INTEGER PRIMARY KEY,
            store TEXT NOT NULL,
            kind TEXT NOT NULL,
            detail TEXT NOT NULL,
            first_at INTEGER NOT NULL,
            last_at INTEGER NOT NULL,
            count INTEGER NOT NULL DEFAULT 1
        );
        CREATE INDEX alarms_store ON alarms (store, id);
        """,
    ),
    Migration(
        11,
        # Authorisation of stores' gift card credits (central/registers/giftcards.py): limits per store
        # (store '' is the chain's, for every store without its own row; amounts in minor units), and
        # what each credit names and when central took it, so "credited against this receipt" and
        # "credited by this store today" are sums over the moves themselves, never counters that drift.
        # Offline credits that broke the rules are applied or held, and flagged for someone to follow up.
        """
        CREATE TABLE giftcard_limits (
            store TEXT PRIMARY KEY,
            per_move INTEGER NOT NULL CHECK (per_move >= 0),
            per_day INTEGER NOT NULL CHECK (per_day >= 0)
        ) WITHOUT ROWID;
        INSERT INTO giftcard_limits (store, per_move, per_day) VALUES ('', 100000, 500000);
        ALTER TABLE giftcard_moves ADD COLUMN refund_of TEXT NOT NULL DEFAULT '';
        ALTER TABLE giftcard_moves ADD COLUMN day TEXT NOT NULL DEFAULT '';
        CREATE INDEX giftcard_credits_by_receipt ON giftcard_moves (refund_of, card) WHERE kind = 'credit';
        CREATE INDEX giftcard_credits_by_day ON giftcard_moves (store, day) WHERE kind = 'credit';
        CREATE TABLE giftcard_flags (
            move TEXT PRIMARY KEY,
            card TEXT NOT NULL,
            store TEXT NOT NULL,
            refund_of TEXT NOT NULL,
            amount INTEGER NOT NULL,
            applied INTEGER NOT NULL CHECK (applied IN (0, 1)),
            reason TEXT NOT NULL,
            at INTEGER NOT NULL
        ) WITHOUT ROWID;
        """,
    ),
    # 12: the operator register (issue 13): a PIN is stored only
    # as its slow hash (protocol.pins); distribution sends it only to the stores the operator works at.
    Migration(
        12,
        """
        CREATE TABLE operators (
            number TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('cashier', 'supervisor', 'manager')),
            stores TEXT NOT NULL,
            pin_hash TEXT NOT NULL,
            version INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX operators_version ON operators (version, number);
        """,
    ),
    # 13 (issue 14, discounts): the register of discount reasons, distributed to the stores with the catalogue
    # like every register (a version per row, the (version, key) index distribution reads them by).
    Migration(
        13,
        """
        CREATE TABLE discount_reasons (
            code TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            active INTEGER NOT NULL CHECK (active IN (0, 1)),
            version INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX discount_reasons_version ON discount_reasons (version, code);
        """,
    ),
    # 14 (issue 14, sellfix): a refund is a journal record of kind "sale" naming the receipt it pays back
    # (SaleRecord.refund_of); kept beside it so central lists and counts refunds apart from sales without
    # decoding every body. NULL: a row stored before this column (its body says), '' : not a refund.
    Migration(
        14,
        """
        ALTER TABLE sales ADD COLUMN refund_of TEXT;
        """,
    ),
    # 15 (issue 14, park): a training sale is kept apart from the real ones in central's figures. Records
    # from before training mode existed were never training sales, so the default needs no backfill.
    Migration(
        15,
        """
        ALTER TABLE sales ADD COLUMN training INTEGER NOT NULL DEFAULT 0;
        """,
    ),
    # 16 (issue 14, receipts): what was returned of each receipt, chain-wide (central/registers/returns.py): per
    # line of the original receipt, per refund (`claim`, the refund's sale id) and the store refunding it; held
    # (a refund open at a store, asked for over the link) or returned (the refund's journal record arrived).
    Migration(
        16,
        """
        CREATE TABLE returns (
            receipt TEXT NOT NULL,
            line INTEGER NOT NULL,
            claim TEXT NOT NULL,
            store TEXT NOT NULL,
            qty INTEGER NOT NULL CHECK (qty > 0),
            state TEXT NOT NULL CHECK (state IN ('held', 'returned')),
            at INTEGER NOT NULL,
            PRIMARY KEY (receipt, line, claim)
        ) WITHOUT ROWID;
        CREATE INDEX returns_claim ON returns (claim);
        """,
    ),
]
