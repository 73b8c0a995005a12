"""`storepos demo`, the README's first command, runs end to end and stops cleanly on Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from central.registers import catalog
from central.registers.catalog import REGISTERS
from devices import display
from protocol.gs1 import Gs1Config
from runtime.database import open_connection
from storenode.sync import replica
from storepos.demo import import_catalogue

pytestmark = pytest.mark.e2e  # real storepos processes: left out of the fast loop


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_demo_sells_shows_central_and_stops_on_ctrl_c(tmp_path: Path, stop: signal.Signals) -> None:
    """A plain test driving a child process line by line; the timeouts bound it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "storepos", "demo", "--dir", str(tmp_path), "--no-interactive"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # so a failing test can stop the demo and the nodes it started, together
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        watchdog = threading.Timer(60, proc.kill)
        watchdog.start()
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("demo running"):
                break
        watchdog.cancel()
        text = "".join(lines)
        assert "demo running; Ctrl-C stops it" in text, text
        assert "Receipt 1" in text and "-- receipt 1 done, change 46.00" in text
        assert "> (scanner) 7310000000027" in text and "Butter 500 g" in text  # the lane's scanner
        assert "0.532 kg x 24.95" in text  # weighed at the lane's scale
        paid, change = display.change_lines("250.00", "46.00")
        assert f"[{paid}]\n[{change}]" in text  # the customer display
        assert "drawer kicked 1 time(s)" in text and "[QR: DEMO01-1-1]" in text  # printer and drawer
        assert "store DEMO01: 1 sale(s), total SEK 204.07" in text
        assert "central at wss://127.0.0.1:" in text and "made chain CA" in (tmp_path / "central-init.log").read_text()
        assert "store DEMO01 sells from catalogue version 4 from central" in text  # not from its own file
        assert "> find pap\nfound 2 for 'pap':" in text and "Paper towels 4 rolls" in text
        assert "Lager 3.5% 50 cl (1021, 7310000000218): SEK 16.95 (VAT 12%)\n  !! Check age: 18+" in text
        proc.send_signal(stop)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    # the nodes it started are gone: nothing listens where they did, and the journal verifies
    for ready in ("store.ready", "central.ready"):
        port = int(json.loads((tmp_path / ready).read_text())["url"].rsplit(":", 1)[1])
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"{ready}: still listening"
    verify = subprocess.run(
        [sys.executable, "-m", "storepos", "store", "verify-journal", "--config", str(tmp_path / "store.toml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode == 0, verify.stdout
    # Nothing failed. A device actor may have been restarted on a loaded machine (the simulators share
    # the demo's process); the supervisor logs that as a warning, and it is not a failure of the node.
    for log in ("store.log", "central.log"):
        text = (tmp_path / log).read_text()
        assert " ERROR " not in text and "giving up" not in text, text[-3000:]
    assert "Traceback" not in (tmp_path / "central.log").read_text()


def test_the_demo_catalogue_reaches_central_as_the_file_holds_it(tmp_path: Path) -> None:
    """What the demo imports at central is the packaged file, whole; the store's GS1 layout decides
    which of its short codes are weight keys, so a layout without them refuses the import."""
    db = tmp_path / "central.db"
    assert import_catalogue(db, tmp_path / "files", "SEK", Gs1Config()) == 4
    assert import_catalogue(db, tmp_path / "files", "SEK", Gs1Config()) == 4  # again: nothing changes
    conn = open_connection(db, readonly=True)
    try:
        items = {r.item: (r.name, r.unit, r.popup, r.vat_rate) for r in catalog.rows(conn, REGISTERS["items"])}
        prices = {(r.item, r.store, r.ends): r.price for r in catalog.rows(conn, REGISTERS["prices"])}
        codes = {(r.code, r.item) for r in catalog.rows(conn, REGISTERS["barcodes"])}
    finally:
        conn.close()
    demo = replica.read_catalog(replica.demo_catalog_path())
    assert items == {i.item: (i.name, i.unit, i.popup, i.vat_rate) for i in demo.items}
    assert prices == {(i.item, "", 0): i.price for i in demo.items}
    assert codes == {(code, i.item) for i in demo.items for code in i.barcodes}
    assert items["1021"][2] == "Check age: 18+" and ("2300005", "1005") in codes
    with pytest.raises(SystemExit, match="2300005"):
        import_catalogue(tmp_path / "other.db", tmp_path / "files", "SEK", Gs1Config(weight_prefixes=["24"]))
