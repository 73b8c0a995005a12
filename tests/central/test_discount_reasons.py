"""Central's register of discount reasons (issue 14): imported from a file all or nothing like every
register, exported back identical, and sent to every store in the catalogue's chunks."""

from __future__ import annotations

from pathlib import Path

import pytest

from central.registers import imports
from protocol.frames import CatalogPull
from storepos import commands
from tests.kit.catalog import read


def run(capsys: pytest.CaptureFixture[str], db: Path, path: Path) -> tuple[int, str, str]:
    code = commands.central_import(db, "discount-reasons", path, "SEK")
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_reasons_import_all_or_nothing_and_travel_in_the_catalogue(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "central.db"
    bad = tmp_path / "bad.csv"
    bad.write_text("code,name\nTWO WORDS,x\nOK,\n")
    code, _, err = run(capsys, db, bad)
    assert code == 1
    assert "bad.csv line 2, column code" in err and "bad.csv line 3, column name" in err
    good = tmp_path / "reasons.csv"
    good.write_text("code,name,active\nDAMAGED,Damaged goods,true\nOLD,Old reason,false\n")
    code, out, err = run(capsys, db, good)
    assert (code, err) == (0, "") and "discount-reasons 2 added" in out
    exported = tmp_path / "out.csv"
    assert commands.central_export(db, "discount-reasons", exported, "SEK") == 0
    assert exported.read_text() == "code,name,active\nDAMAGED,Damaged goods,true\nOLD,Old reason,false\n"
    conn = imports.open_catalog(db, create=False)
    try:
        chunk = read(conn, CatalogPull(base=0))
    finally:
        conn.close()
    assert chunk.done and chunk.discount_reasons == [("DAMAGED", "Damaged goods", 1), ("OLD", "Old reason", 0)]
