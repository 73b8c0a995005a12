"""Receipt-by-receipt comparison of central's copy of a store's journal with the store's own.

Central asks the store over its live link, a lane and a page at a time, and compares chain hashes:
central re-derives each receipt's hash from the bytes it holds, so equal hashes mean equal receipts
and an identical history before them. A receipt central lacks that is still in the store's outbox
is in transit, not lost; anything else is a difference.
"""

from __future__ import annotations

from functools import partial

from central.registers import sales
from protocol.frames import JournalQuestion, LanesQuestion, ReconcileReport
from protocol.link import Ask
from runtime.database import Database

PAGE = 5_000


async def reconcile(store: str, db: Database, ask: Ask) -> ReconcileReport:
    theirs = (await ask(LanesQuestion())).last
    ours = await db.read(lambda c: sales.lanes(c, store))
    report = ReconcileReport(store=store, compared=0, in_transit=0, differences=[])
    for lane in sorted(set(theirs) | set(ours)):
        hashes = await db.read(partial(sales.receipt_hashes, store=store, lane=lane))
        after = 0
        while True:
            page = await ask(JournalQuestion(lane=lane, after=after, limit=PAGE))
            for entry in page.entries:
                report.compared += 1
                where = f"lane {lane} receipt {entry.receipt_no}"
                held = hashes.pop(entry.receipt_no, None)
                if held is None:
                    if entry.pending:
                        report.in_transit += 1
                    else:
                        report.differences.append(f"{where}: missing at central and no longer in the store's outbox")
                elif held != entry.hash:
                    report.differences.append(f"{where}: central's copy differs from the store's journal")
                elif entry.pending:
                    pass  # applied at central, ack not yet back at the store: normal
            if len(page.entries) < PAGE:
                break
            after = page.entries[-1].receipt_no
        for receipt_no in sorted(hashes):
            report.differences.append(f"lane {lane} receipt {receipt_no}: at central but not in the store's journal")
    return report
