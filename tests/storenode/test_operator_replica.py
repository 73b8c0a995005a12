"""A store upgraded to keep central's operators (store migration 14): one that already sells from
central's catalogue takes one snapshot, so operators published before the upgrade arrive; one that
never heard from central is left as it was."""

from __future__ import annotations

from pathlib import Path

from runtime.database import migrate, open_connection
from storenode.schema import MIGRATIONS
from storenode.sync import replica


def test_a_store_holding_centrals_catalogue_takes_one_snapshot_after_the_upgrade(tmp_path: Path) -> None:
    for version, expected in ((7, (7, 0)), (0, (0, None))):
        conn = open_connection(tmp_path / f"store-{version}.db")
        try:
            migrate(conn, [m for m in MIGRATIONS if m.version < 14])
            conn.execute(
                "UPDATE replica SET version = ?, transfer_base = ?, cursor = x'01'", (version, version or None)
            )
            conn.execute("INSERT INTO stage_items VALUES ('x', 'X', '', NULL, 2500, 'piece', '', '', '', 1)")
            conn.commit()
            migrate(conn, MIGRATIONS)
            now = replica.state(conn)
            assert (now.version, now.transfer_base) == expected
            staged = conn.execute("SELECT count(*) FROM stage_items").fetchone()[0]
            assert staged == (0 if version else 1)  # a snapshot starts from an empty stage
            assert conn.execute("SELECT count(*) FROM operators").fetchone()[0] == 0
        finally:
            conn.close()
