"""Quick keys as a till configuration holds them: "label=barcode", one per line, in key order.

Central checks them on import and stores read them from their replica, so the text rule lives here,
beside the frames that carry it (TillConfigRow).
"""

from __future__ import annotations


def parse(text: str) -> list[tuple[str, str]]:
    """(label, barcode) pairs in key order; blank lines are skipped, a line without "=" has an empty
    barcode (central's import reports it)."""
    out = []
    for line in text.splitlines():
        if line.strip():
            label, _, code = line.partition("=")
            out.append((label.strip(), code.strip()))
    return out
