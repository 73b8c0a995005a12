"""Receipt ids: store-lane-number, as printed under a receipt's code, typed at a return and named by a
gift card credit. Central reads them too (whose receipt a credit pays back), so the reading lives here,
beside the frames both sides speak. A store id may hold dashes; lane and number never do."""

from __future__ import annotations

from protocol import gs1
from protocol.frames import SaleRecord


def parse_receipt_id(text: str) -> tuple[str, int, int] | None:
    """(store, lane, receipt number) of a receipt id; None when `text` is not one."""
    parts = text.strip().rsplit("-", 2)
    if len(parts) != 3 or not parts[0]:
        return None
    if not all(gs1.digits(n) and len(n) <= 12 for n in parts[1:]):  # ASCII digits, int64-safe: SQLite takes it
        return None
    return parts[0], int(parts[1]), int(parts[2])


def sold_lines(record: SaleRecord) -> dict[int, int]:
    """What a receipt sold that can come back, per line number: its live lines of a positive quantity (a
    voided line was never sold, a returned line went the other way). The store's refund check and central's
    returns register count against the same lines."""
    return {line.no: line.qty for line in record.lines if not line.voided and line.qty > 0}
