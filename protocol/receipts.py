"""Receipt ids: store-lane-number, as printed under a receipt's code, typed at a return and named by a
gift card credit. Central reads them too (whose receipt a credit pays back), so the reading lives here,
beside the frames both sides speak. A store id may hold dashes; lane and number never do."""

from __future__ import annotations


def parse_receipt_id(text: str) -> tuple[str, int, int] | None:
    """(store, lane, receipt number) of a receipt id; None when `text` is not one."""
    parts = text.strip().rsplit("-", 2)
    if len(parts) != 3 or not parts[0] or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    if not parts[1].isascii() or not parts[2].isascii() or len(parts[1]) > 9 or len(parts[2]) > 18:
        return None  # isdigit() takes other scripts' digits; sizes keep int() and SQL integers sane
    return parts[0], int(parts[1]), int(parts[2])
