"""A store node with a lane full of simulated peripherals: real TCP and pseudo-terminal I/O."""

from __future__ import annotations

from pathlib import Path

import trio

from devices import display
from devices.sim.kit import LaneKit
from protocol.frames import CashTender, Error, Login, Receipt, SaleState, Scan, Total
from runtime.clock import FixedClock
from storenode.app import StoreNode
from storenode.config import load_config
from tests.kit.waits import until
from till.client import connect

MILK, BANANAS, COFFEE = "7310000000010", "7310000000058", "7310000000034"

STORE = """\
store = "S001"
name = "Kit Store"
lanes = [1, 2]
data_dir = "store-data"
timezone = "Europe/Stockholm"

[gateway]
port = 0
"""


async def test_a_lane_sells_with_scanner_scale_display_printer_and_drawer(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    kit = LaneKit(tmp_path, 1)
    await nursery.start(kit.run)
    (tmp_path / "store.toml").write_text(STORE + kit.devices_toml())
    store = StoreNode(load_config(tmp_path / "store.toml"), clock=FixedClock(1_795_000_000_000))
    await nursery.start(store.run)
    with trio.fail_after(30):
        async with connect(store.url, lane=1, till="T1") as till:
            await till.request(Login(operator="1", pin="1234"))
            await until(till, lambda s: s.devices.get("printer-1") == "running")
            await kit.scanner.scan(MILK)  # the scanner, not the till
            state = await until(till, lambda s: len(s.lines) == 1)
            assert state.lines[0].code == MILK and state.message == "Milk 1.5% 1 l 15.90"
            await kit.display.wait_for(*display.item_lines("Milk 1.5% 1 l", "15.90"))
            await kit.scanner.scan("0000000000017")  # unknown: the refusal reaches the till by itself
            while not any(n.code == "unknown_barcode" for n in till.notices):
                await till.pushed.wait()

            kit.scale.grams, kit.scale.motion = 532, True
            moving = await till.request(Scan(code=BANANAS))
            assert isinstance(moving, Error) and moving.code == "motion"
            kit.scale.motion = False
            weighed = await till.request(Scan(code=BANANAS))
            assert isinstance(weighed, SaleState)
            assert (weighed.lines[-1].weight_g, weighed.lines[-1].amount) == (532, 1327)  # 24.95/kg, half up
            await kit.display.wait_for(*display.item_lines("0.532 kg Bananas", "13.27"))

            total = await till.request(Total())
            assert isinstance(total, SaleState) and total.cash_due == 2900
            await kit.display.wait_for(*display.total_lines("SEK 29.00"))
            receipt = await till.request(CashTender(amount=5000))
            assert isinstance(receipt, Receipt) and receipt.change == 2100
            await kit.printer.wait_until(lambda: "Receipt S001-1-1" in kit.printer.text())
            printed = kit.printer.text()
            assert "0.532 kg x 24.95/kg" in printed and "[QR: S001-1-1]" in printed and "CET" in printed
            assert kit.printer.kicks == 1  # the drawer opened on the cash tender
            await kit.display.wait_for(*display.change_lines("50.00", "21.00"))

            printer = store.lane_devices[1].printer
            assert printer is not None
            await printer.drained()  # the printer confirmed receipt 1 (a status reply after it)
            kit.unplug_printer()  # the printer dies; the lane keeps selling
            await until(till, lambda s: s.devices.get("printer-1") not in ("running", None))
            await till.request(Scan(code=COFFEE))
            second = await till.request(CashTender(amount=10000))
            assert isinstance(second, Receipt) and second.receipt_no == 2
            status = await store.status()
            assert {a.name: a.state for a in status.actors}["printer-1"] != "running"
            await kit.replug_printer()
            await kit.printer.wait_until(lambda: "Receipt S001-1-2" in kit.printer.text())
            assert kit.printer.text().count("Receipt S001-1-1\n") == 1  # printed once, not again
