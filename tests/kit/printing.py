"""What device tests print: a sale record with every line kind a receipt shows, a shop's receipt layout,
and a receipt printer on memory streams to the virtual printer (so tests can run on the autojump clock)."""

from __future__ import annotations

import functools

import trio

from devices.escpos import ReceiptLayout
from devices.receipt_printer import ReceiptPrinter, StreamTransport
from devices.sim.printer import VirtualPrinter
from protocol.frames import RecordLine, RecordTender, RecordVat, SaleRecord
from runtime.health import HealthBoard
from tests.kit.nodes import T0


def make_record(receipt_no: int = 42, *, kind: str = "sale") -> SaleRecord:
    """A cash sale with two VAT rates, a multi-quantity line, a voided line, cash rounding and change."""
    lines = [
        RecordLine(1, "i1", "7310000000010", "Mjölk 1l", 1, 1690, 1690, 1200, False),
        RecordLine(2, "i2", "7310000000027", "Kaffe 500g", 3, 5990, 17970, 1200, False),
        RecordLine(3, "i3", "7310000000034", "Kvällstidning", 1, 2500, 2500, 600, True),
        RecordLine(4, "i4", "7310000000041", "Batterier AA", 1, 8950, 8950, 2500, False),
    ]
    return SaleRecord(
        store="S001",
        lane=1,
        receipt_no=receipt_no,
        kind=kind,
        sale_id=f"sale-{receipt_no}",
        operator="1",
        opened_at=T0,
        closed_at=T0 + 60_000,
        currency="SEK",
        lines=lines,
        total=28610,
        rounding=-10,
        vat=[RecordVat(1200, 19660, 2106), RecordVat(2500, 8950, 1790)],
        tenders=[RecordTender("cash", "SEK", 30000)] if kind == "sale" else [],
        change=1400 if kind == "sale" else 0,
    )


LAYOUT = ReceiptLayout(
    store_name="Hörnbutiken", header=["Storgatan 1", "Org.nr 556000-0000"], footer=["Välkommen åter"]
)


def memory_printer(
    sim: VirtualPrinter, health: HealthBoard, nursery: trio.Nursery, **options: object
) -> ReceiptPrinter:
    """No sockets, so the autojump clock can run: only the actor's own waits take (virtual) time."""
    sim.plug_in()
    transport = StreamTransport(functools.partial(sim.connect_memory, nursery), "memory")
    return ReceiptPrinter("printer", transport, health, layout=LAYOUT, **options)  # type: ignore[arg-type]
