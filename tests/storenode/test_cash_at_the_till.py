"""Cash management seen at a till (issue 14, cash): the terminal till over a real websocket to a store node
with no central (offline by nature), its lane's receipt printer and drawer on the virtual printer over TCP:
a shift from the float to the count, each step's slip on the till and on paper, and the drawer kicked."""

from __future__ import annotations

from pathlib import Path

import msgspec
import trio

from devices.escpos_decode import decode
from devices.sim.printer import VirtualPrinter
from protocol.frames import ExchangeRate
from runtime.clock import FixedClock
from storenode import rates
from storenode.app import StoreNode
from storenode.config import DeviceConfig, PaymentsConfig
from tests.kit.journal import journal
from tests.kit.nodes import T0, make_store_config
from till.terminal import run_till

MILK = "7310000000010"  # 15.90


async def test_a_shift_of_cash_at_the_terminal_till(tmp_path: Path, nursery: trio.Nursery) -> None:
    sim = VirtualPrinter()
    with trio.fail_after(60):
        port = await nursery.start(sim.run)
        config = msgspec.structs.replace(
            make_store_config(tmp_path, lanes=(1,)),
            devices=[
                DeviceConfig(kind="printer", lane=1, port=f"tcp://127.0.0.1:{port}"),
                DeviceConfig(kind="drawer", lane=1),
            ],
            payments=PaymentsConfig(foreign_cash=["EUR"]),
        )
        node = StoreNode(config, clock=FixedClock(T0))
        await nursery.start(node.run)
        rate = ExchangeRate(base="SEK", currency="EUR", rate=11_500_000, at=T0)  # as central last published
        await node.db.write(lambda c: rates.save(c, [rate]))
        script = tmp_path / "shift.txt"
        script.write_text(
            "login 1 1234\n"
            "float in 1000 50 EUR\n"
            "nosale 1 1234 change for a customer\n"
            "nosale 1 0000 wrong pin\n"
            f"{MILK}\n"
            "payout 5 postage stamps\n"  # refused: the sale is open
            "cash 20\n"  # 16.00 in cash: 4.00 change
            "payout 12.50 postage stamps for the letters\n"
            "payout 900 repairs new lock\n"  # refused: above the limit without a supervisor
            "payout 0 postage stamps\n"
            "deposit 10 USD\n"
            "drop 500\n"
            "cashcount 499.40 50 EUR\n"
            "quit\n"
        )
        out: list[str] = []
        rc = await run_till(node.url, 1, "T1", script, read_stdin=False, out=out.append)
        await sim.wait_until(lambda: sim.kicks == 5 and "CASH COUNT" in decode(bytes(sim.printed)))
    text = "\n".join(out)
    assert rc == 0, text
    assert "FLOAT IN" in text and "-- float_in recorded as event 1 on lane 1: float in: SEK 1000.00, EUR 50.00" in text
    assert "-- nosale recorded as event 2 on lane 1: drawer opened, no sale (no-sale 1 today" in text
    assert "! wrong_pin: wrong operator number or PIN" in text
    assert "! sale_open: finish or cancel sale" in text
    assert "-- receipt 3 done, change 4.00" in text
    assert "PETTY CASH VOUCHER" in text and "Received by:" in text
    assert "! approval_needed: a payout of SEK 900.00 needs a supervisor's approval" in text
    assert "! bad_amount: an amount must be more than 0" in text
    assert "! bad_currency: this store does not keep cash in 'USD'" in text
    assert "CASH DROP TO SAFE" in text
    # 1000 + 16.00 - 12.50 - 500 = 503.50 expected; 499.40 counted
    assert "cash      expected SEK 503.50, counted 499.40, difference -4.10" in text
    assert "cash      expected EUR 50.00, counted 50.00, difference 0.00" in text
    assert "cash counted: difference SEK -4.10" in text
    paper = decode(bytes(sim.printed))
    for title in ("FLOAT IN", "PETTY CASH VOUCHER", "CASH DROP TO SAFE", "CASH COUNT"):
        assert title in paper
    assert "NO SALE" not in paper  # a no-sale opens the drawer; it prints nothing
    codes = [r.event.code if r.event else r.kind for r in journal(node)]
    assert codes == ["float_in", "nosale", "sale", "payout", "drop", "count"]
