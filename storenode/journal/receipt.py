"""The customer receipt as text, derived from the journal record alone (so a reprint is identical)."""

from __future__ import annotations

import datetime as dt

from protocol.frames import SaleRecord
from protocol.money import format_money, format_rate

WIDTH = 42


def _row(left: str, right: str, width: int = WIDTH) -> str:
    room = width - len(right) - 1
    return f"{left[:room]:<{room}} {right}"


def render(record: SaleRecord, *, store_name: str, header: list[str], footer: list[str]) -> str:
    cur = record.currency
    money = lambda amount: format_money(amount, cur)  # noqa: E731
    when = dt.datetime.fromtimestamp(record.closed_at / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = [line.center(WIDTH).rstrip() for line in [store_name or record.store, *header]]
    out.append(_row(f"Lane {record.lane}", f"Receipt {record.receipt_no}"))
    out.append(_row(when, f"Operator {record.operator}"))
    if record.kind == "cancel":
        out.append("*** SALE CANCELLED - NOT A RECEIPT ***".center(WIDTH).rstrip())
    out.append("-" * WIDTH)
    for line in record.lines:
        amount = money(line.amount)
        if line.voided:
            out.append(_row(f"VOID {line.name}", f"-{amount}"))
            continue
        if line.qty == 1:
            out.append(_row(line.name, amount))
        else:
            out.append(line.name[:WIDTH])
            out.append(_row(f"  {line.qty} x {money(line.unit_price)}", amount))
    out.append("-" * WIDTH)
    out.append(_row("TOTAL", f"{cur} {money(record.total)}"))
    if record.kind == "sale":
        if record.rounding:
            out.append(_row("Cash rounding", money(record.rounding)))
            out.append(_row("To pay", money(record.total + record.rounding)))
        for tender in record.tenders:
            out.append(_row(tender.kind.capitalize(), money(tender.amount)))
        out.append(_row("Change", money(record.change)))
    out.append("")
    out.append(_row("VAT", "Gross        VAT"))
    for vat in record.vat:
        out.append(_row(f"  {format_rate(vat.rate)}", f"{money(vat.gross):>10} {money(vat.vat):>10}"))
    out.append("")
    out.extend(line.center(WIDTH).rstrip() for line in footer)
    out.append(f"Sale {record.sale_id}")
    return "\n".join(out) + "\n"
