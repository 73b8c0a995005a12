"""The terminal till's receipt commands (issue 14, receipts): lookups, copies, and how results show."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from protocol.frames import CopyReceipt, ReceiptFound, ReceiptList, ReceiptQuery
from storenode.app import StoreNode
from till.terminal import InputError, parse, run_till, show


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("receipt S001-1-42", ReceiptQuery(receipt="S001-1-42")),
        ("receipts", ReceiptQuery()),
        ("receipts --from 2026-12-01 --to 2026-12-05", ReceiptQuery(since="2026-12-01", until="2026-12-05")),
        ("receipts --amount 49.00", ReceiptQuery(amount=4900)),
        ("receipts --card 0119 --limit 5", ReceiptQuery(card="0119", limit=5)),
        ("copy S001-1-42", CopyReceipt(receipt="S001-1-42")),
    ],
)
def test_receipt_commands(line: str, expected: object) -> None:
    assert parse(line, "SEK", 0) == expected


@pytest.mark.parametrize("line", ["receipts --amount", "receipts --colour red", "receipts --amount 4x", "copy"])
def test_bad_receipt_commands(line: str) -> None:
    with pytest.raises(InputError):
        parse(line, "SEK", 0)


def test_a_list_shows_one_line_a_receipt_and_says_when_there_are_more() -> None:
    frame = ReceiptList(
        receipts=[
            ReceiptFound(receipt="S001-1-42", closed_at=1_795_000_000_000, total=4900, currency="SEK", cards=["0119"]),
            ReceiptFound(
                receipt="S001-1-40", closed_at=1_794_990_000_000, total=-2450, currency="SEK", refund_of="S001-1-7"
            ),
        ],
        more=True,
    )
    lines = show(frame).splitlines()
    assert "S001-1-42" in lines[0] and "49.00" in lines[0] and "*0119" in lines[0]
    assert "refund of S001-1-7" in lines[1] and "more" in lines[2]
    assert show(ReceiptList()) == "no receipts found"
    assert show(ReceiptList(receipts=frame.receipts[:1], text="COPY / KOPIA\nTOTAL\n")) == "COPY / KOPIA\nTOTAL"


async def test_a_scripted_lookup_and_copy(store: StoreNode, tmp_path: Path) -> None:
    script = tmp_path / "s.txt"
    script.write_text(
        "login 1 1234\n7310000000010\ncash\nreceipts --amount 15.90\nreceipt S001-1-1\ncopy S001-1-1\n"
        "copy S001-1-1\nreceipts --card 0119\nquit\n"
    )
    out: list[str] = []
    with trio.fail_after(20):
        rc = await run_till(store.url, 1, "T1", script, read_stdin=False, out=out.append)
    text = "\n".join(out)
    assert rc == 0
    assert "  S001-1-1" in text and "SEK 15.90" in text
    assert "COPY / KOPIA" in text and "copy 1 / kopia 1" in text
    assert "! copy_limit: receipt S001-1-1 has had 1 of the 1 copy this store allows" in text
    assert "no receipts found" in text
