"""Receipt ids: store-lane-number, as printed under a receipt's code, typed at a return and named by a
gift card credit. Central reads them too (whose receipt a credit pays back), so the reading lives here,
beside the frames both sides speak. A store id may hold dashes; lane and number never do."""

from __future__ import annotations

from protocol import gs1


def parse_receipt_id(text: str) -> tuple[str, int, int] | None:
    """(store, lane, receipt number) of a receipt id; None when `text` is not one."""
    parts = text.strip().rsplit("-", 2)
    if len(parts) != 3 or not parts[0]:
        return None
    if not all(gs1.digits(n) and len(n) <= 12 for n in parts[1:]):  # ASCII digits, int64-safe: SQLite takes it
        return None
    return parts[0], int(parts[1]), int(parts[2])
