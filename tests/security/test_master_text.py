"""Text from master data never reaches a printer, a display, a terminal or a spreadsheet as a command,
and an export cannot be redirected: issue 13's attacks through the catalogue, end to end through the
real import command, the real receipt encoder and the real files."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
import pytest

from central.registers import catalog
from devices import display
from devices.escpos import ReceiptLayout, encode_receipt, receipt_text
from protocol.codec import SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK, FrameError, LinkCodec, TillCodec
from protocol.text import from_spreadsheet_safe, plain, spreadsheet_safe
from runtime.database import open_connection
from storepos import commands
from tests.central.test_catalog_import import GROUPS, STORES, VAT, run_import, write
from tests.kit.printing import make_record

DRAWER_KICK = b"\x1bp\x00\x19\xfa"  # ESC p 0 25 250: what opened the drawer on a gift-card-only sale
ANSI = "\x1b[2J\x1b[31m"
HOSTILE = "Milk\x1bp\x00\x19\xfa 1 l" + ANSI + "\u202e\u200b\x07"


def load_items(capsys: pytest.CaptureFixture[str], folder: Path, db: Path, items_csv: str) -> tuple[int, str]:
    for kind, text in (("vat-rates", VAT), ("groups", GROUPS), ("stores", STORES)):
        assert run_import(capsys, db, kind, write(folder, f"{kind}.csv", text))[0] == 0
    code, _, err = run_import(capsys, db, "items", write(folder, "items.csv", items_csv))
    return code, err


def item_names(db: Path) -> dict[str, str]:
    conn = open_connection(db, readonly=True)
    try:
        return dict(conn.execute("SELECT item, name FROM items"))
    finally:
        conn.close()


def test_control_and_format_characters_are_removed_at_import(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "central.db"
    header = "item,name,receipt_text,item_group,vat_rate,unit,info,warranty,popup,active\n"
    name = HOSTILE.replace("\x00", "")  # a CSV cannot carry NUL; the JSON test below does
    code, err = load_items(capsys, tmp_path, db, header + f'1001,"{name}",,dairy,1200,piece,,,"Age\x1b[8m 18+",true\n')
    assert (code, err) == (0, "")
    stored = item_names(db)["1001"]
    assert stored == "Milkp\u00fa 1 l[2J[31m", repr(stored)
    assert not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in stored)


def test_json_import_removes_nul_and_escapes_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "central.db"
    for kind, text in (("vat-rates", VAT), ("groups", GROUPS), ("stores", STORES)):
        assert run_import(capsys, db, kind, write(tmp_path, f"{kind}.csv", text))[0] == 0
    items = [{"item": "1001", "name": HOSTILE, "vat_rate": 1200, "item_group": "dairy"}]
    path = tmp_path / "items.json"
    path.write_bytes(msgspec.json.encode(items))
    assert run_import(capsys, db, "items", path)[0] == 0
    assert "\x1b" not in item_names(db)["1001"] and "\x00" not in item_names(db)["1001"]


def test_json_nested_too_deeply_is_one_clear_error_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "central.db"
    path = tmp_path / "items.json"
    path.write_bytes(b"[" * 200_000 + b"]" * 200_000)
    code, out, err = run_import(capsys, db, "items", path)
    assert code == 1, (out, err)
    assert "nested too deeply" in err and "Traceback" not in err + out


def test_a_receipt_never_carries_printer_commands_from_an_item_name() -> None:
    record = make_record()
    record.lines[0].name = HOSTILE
    data = encode_receipt(ReceiptLayout(), record)
    assert DRAWER_KICK not in data
    assert b"\x1b[" not in data  # no ANSI either (ESC [ is not ESC/POS, but it is no letter)
    clean = encode_receipt(ReceiptLayout(), make_record())
    assert data.count(b"\x1b") == clean.count(b"\x1b")  # only the layout's own commands
    text = receipt_text(ReceiptLayout(header=["Shop\x1b[2J"]), record)
    assert "\x1b" not in text and "\u202e" not in text


def test_the_customer_display_and_the_terminal_till_show_plain_text() -> None:
    line, _ = display.item_lines(HOSTILE, "16.90")
    assert "\x1b" not in line and "\u202e" not in line
    assert plain(f"! bad: {HOSTILE}") == "! bad: Milkp\u00fa 1 l[2J[31m"


def test_csv_export_neutralises_formula_cells_and_imports_back_unchanged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "central.db"
    header = "item,name,receipt_text,item_group,vat_rate,unit,info,warranty,popup,active\n"
    rows = (
        '1001,"=HYPERLINK(""http://evil.example"",""x"")",,dairy,1200,piece,,,,true\n'
        "1002,+1+1,,dairy,1200,piece,-5% today,@home,,true\n"
        "1003,Plain name,,dairy,1200,piece,,,,true\n"
    )
    assert load_items(capsys, tmp_path, db, header + rows) == (0, "")
    out = tmp_path / "export.csv"
    assert commands.central_export(db, "items", out, "SEK") == 0
    exported = out.read_text()
    for line in exported.splitlines()[1:]:
        for cell in line.split(","):
            assert not cell.lstrip('"').startswith(("=", "+", "-", "@")), line
    before = item_names(db)
    assert run_import(capsys, db, "items", out)[0] == 0
    assert item_names(db) == before  # the apostrophes came off again
    assert spreadsheet_safe("-3") == "'-3" and from_spreadsheet_safe("'-3") == "-3"
    assert from_spreadsheet_safe("'quoted") == "'quoted"  # only a guard the export added is removed


def test_export_never_writes_through_a_planted_partial_symlink(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "central.db"
    header = "item,name,receipt_text,item_group,vat_rate,unit,info,warranty,popup,active\n"
    assert load_items(capsys, tmp_path, db, header + "1001,Milk,,dairy,1200,piece,,,,true\n") == (0, "")
    victim = tmp_path / "victim.txt"
    victim.write_text("do not touch")
    out = tmp_path / "items.csv"
    os.symlink(victim, tmp_path / "items.csv.partial")
    assert commands.central_export(db, "items", out, "SEK") == 0
    assert victim.read_text() == "do not touch"
    assert not out.is_symlink() and "Milk" in out.read_text()
    os.symlink(victim, tmp_path / "linked.csv")
    assert commands.central_export(db, "items", tmp_path / "linked.csv", "SEK") == 0
    assert victim.read_text() == "do not touch"  # the link at the final name is replaced, not followed
    assert catalog.version(open_connection(db, readonly=True)) >= 1


@pytest.mark.parametrize("subprotocol", [SUBPROTOCOL_MSGPACK, SUBPROTOCOL_JSON])
def test_deeply_nested_frames_are_frame_errors_not_tracebacks(subprotocol: str) -> None:
    codec = TillCodec(subprotocol, "store")
    data: bytes | str = b"\x91" * 200_000 + b"\x90" if subprotocol == SUBPROTOCOL_MSGPACK else "[" * 200_000
    with pytest.raises(FrameError):
        codec.decode(data)
    with pytest.raises(FrameError):
        LinkCodec().decode(b"\x91" * 200_000 + b"\x90")
