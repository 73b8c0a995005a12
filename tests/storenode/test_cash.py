"""Cash management at the lane (issue 14, Deliver 6), the lane actor alone with a real SQLite journal and a
real printer actor and drawer on the virtual printer, on the autojump clock: no-sale, payout voucher,
float, drop, deposits in several currencies, the count at shift end, and every refusal changing nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest
import trio
from trio.testing import MockClock

from devices.drawer import CashDrawer
from devices.escpos_decode import decode
from devices.receipt_printer import ReceiptPrinter
from devices.sim.printer import VirtualPrinter
from protocol.frames import (
    CardTender,
    CashAmount,
    CashCount,
    CashDeposit,
    CashDone,
    CashDrop,
    CashTender,
    Counted,
    Error,
    ExchangeRate,
    FloatMove,
    Login,
    NoSale,
    Payout,
    Receipt,
    RefundOf,
    ReturnItem,
    SaleRecord,
    SaleState,
    Scan,
    Total,
)
from storenode import rates
from storenode.config import ConfigError, PaymentsConfig, SalesConfig, load_config
from storenode.journal import chain
from storenode.lanes import cash
from tests.kit.lanes import LaneRig, open_lane
from tests.kit.nodes import T0
from tests.kit.payments import COFFEE, MILK
from tests.kit.printing import memory_printer

BOUND = 120  # virtual seconds
EUR_RATE = 11_500_000  # 11.50 SEK per EUR, in millionths per minor unit


@dataclass
class Cashier:
    rig: LaneRig
    sim: VirtualPrinter
    printer: ReceiptPrinter

    async def do(self, command: msgspec.Struct) -> object:
        return await self.rig.do(command)  # type: ignore[arg-type]

    async def events(self, code: str | None = None) -> list[SaleRecord]:
        return [
            r
            for r in await self.rig.journal()
            if r.kind == "event" and r.event is not None and (code is None or r.event.code == code)
        ]

    async def kicks(self, n: int) -> None:
        await self.sim.wait_until(lambda: self.sim.kicks == n)

    async def state_of_db(self) -> tuple[list[SaleRecord], int, list[tuple[object, ...]]]:
        """Everything a cash action may change: the journal, the outbox, the cash tables."""

        def read(c: object) -> list[tuple[object, ...]]:
            return [
                tuple(row)
                for table in ("cash_counts", "cash_nosales", "cash_keys")
                for row in c.execute(f"SELECT * FROM {table}")  # type: ignore[attr-defined]
            ]

        return await self.rig.journal(), await self.rig.outbox("journal"), await self.rig.db.read(read)


@pytest.fixture
async def till(tmp_path: Path, nursery: trio.Nursery, autojump_clock: MockClock) -> AsyncIterator[Cashier]:
    with trio.fail_after(BOUND):
        rig = await open_lane(tmp_path, nursery, autojump_clock, payments=PaymentsConfig(foreign_cash=["EUR"]))
        health = rig.lane.ctx.health
        sim = VirtualPrinter()
        printer = memory_printer(sim, health, nursery)
        drawer = CashDrawer("drawer-1", printer, health)
        await nursery.start(printer.run)
        await nursery.start(drawer.run)
        rig.lane.devices.printer, rig.lane.devices.drawer = printer, drawer
        sales = SalesConfig(payout_approval=20_000, payout_accounts=["supplies", "postage"], cash_most=1_000_000)
        rig.lane.ctx.config = msgspec.structs.replace(rig.lane.ctx.config, sales=sales)
        await rig.db.write(lambda c: rates.save(c, [ExchangeRate(base="SEK", currency="EUR", rate=EUR_RATE, at=T0)]))
        assert isinstance(await rig.do(Login(operator="1", pin="1234")), SaleState)
        yield Cashier(rig, sim, printer)


async def test_a_no_sale_opens_the_drawer_with_pin_and_reason_and_is_counted(till: Cashier) -> None:
    with trio.fail_after(BOUND):
        first = await till.do(NoSale(operator="1", pin="1234", reason="customer\x1b[2J wants change"))
        assert isinstance(first, CashDone) and first.code == "nosale", first
        await till.kicks(1)
        second = await till.do(NoSale(operator="1", pin="1234", reason="CHANGE"))
        assert isinstance(second, CashDone)
        await till.kicks(2)
    assert "no-sale 2 today of operator 1 on lane 1" in second.message
    records = await till.events("nosale")
    assert [r.event.reason for r in records if r.event] == ["customer[2J wants change", "CHANGE"]
    assert [r.receipt_no for r in records] == [first.receipt_no, second.receipt_no] == [1, 2]
    day = cash.day_of(T0, "UTC")
    assert await till.rig.db.read(lambda c: cash.nosales(c, day)) == {(1, "1"): 2}
    assert await till.rig.outbox("journal") == 2  # on its way to central like a sale


async def test_a_no_sale_is_refused_without_the_right_pin_a_reason_or_while_a_sale_is_open(till: Cashier) -> None:
    before = await till.state_of_db()
    with trio.fail_after(BOUND):
        wrong = await till.do(NoSale(operator="1", pin="9999", reason="change"))
        other = await till.do(NoSale(operator="2", pin="4321", reason="change"))
        empty = await till.do(NoSale(operator="1", pin="1234", reason=" \x00\x1b "))
        await till.do(Scan(code=MILK))
        open_sale = await till.do(NoSale(operator="1", pin="1234", reason="change"))
    assert isinstance(wrong, Error) and wrong.code == "wrong_pin"
    assert isinstance(other, Error) and other.code == "not_you"
    assert isinstance(empty, Error) and empty.code == "bad_reason"
    assert isinstance(open_sale, Error) and open_sale.code == "sale_open"
    assert await till.state_of_db() == before
    assert till.sim.kicks == 0


async def test_a_payout_prints_a_voucher_journals_negative_cash_and_opens_the_drawer(till: Cashier) -> None:
    with trio.fail_after(BOUND):
        done = await till.do(Payout(amount=12_50, account="Supplies", reason="milk for\x1bp\x00 the staff room"))
        assert isinstance(done, CashDone), done
        await till.kicks(1)
        await till.sim.wait_until(lambda: "PETTY CASH VOUCHER" in decode(bytes(till.sim.printed)))
    (record,) = await till.events("payout")
    assert record.event is not None
    assert record.event.account == "supplies" and record.event.reason == "milk forp the staff room"
    assert [(t.kind, t.currency, t.amount) for t in record.event.amounts] == [("cash", "SEK", -1250)]
    paper = decode(bytes(till.sim.printed))
    assert "Received by:" in paper and "-12.50" in paper and "milk forp the staff room" in paper
    assert b"\x1bp\x00the" not in bytes(till.sim.printed)  # the typed drawer kick never reached the printer
    assert "PETTY CASH VOUCHER" in done.text and done.amounts[0].amount == -1250


async def test_a_payout_above_the_limit_needs_a_supervisor(till: Cashier) -> None:
    before = await till.state_of_db()
    with trio.fail_after(BOUND):
        refused = await till.do(Payout(amount=20_001, account="postage", reason="stamps"))
        assert isinstance(refused, Error) and refused.code == "approval_needed", refused
        assert await till.state_of_db() == before
        cashier = await till.do(
            Payout(amount=20_001, account="postage", reason="stamps", approver="1", approver_pin="1234")
        )
        assert isinstance(cashier, Error) and cashier.code == "approval_needed"
        done = await till.do(
            Payout(amount=20_001, account="postage", reason="stamps", approver="2", approver_pin="4321")
        )
    assert isinstance(done, CashDone), done
    (record,) = await till.events("payout")
    assert record.event is not None and record.event.approver == "2"
    assert "Approved by" in done.text


@pytest.mark.parametrize(
    ("command", "code"),
    [
        (Payout(amount=0, account="postage", reason="stamps"), "bad_amount"),
        (Payout(amount=-500, account="postage", reason="stamps"), "bad_amount"),
        (Payout(amount=1_000_001, account="postage", reason="stamps"), "bad_amount"),
        (Payout(amount=500, account="casino", reason="stamps"), "bad_account"),
        (Payout(amount=500, account="postage", reason=""), "bad_reason"),
        (FloatMove(amounts=[]), "bad_amount"),
        (FloatMove(amounts=[CashAmount(amount=0)]), "bad_amount"),
        (CashDrop(amounts=[CashAmount(amount=-100)]), "bad_amount"),
        (CashDeposit(amounts=[CashAmount(amount=100, currency="USD")]), "bad_currency"),
        (
            CashDeposit(amounts=[CashAmount(amount=100, currency="EUR"), CashAmount(amount=1, currency="eur")]),
            "bad_amount",
        ),
        (CashDeposit(amounts=[CashAmount(amount=10**12)]), "bad_amount"),
        (CashCount(counts=[]), "bad_amount"),
        (CashCount(counts=[Counted(counted=-1)]), "bad_amount"),
        (CashCount(counts=[Counted(counted=100, currency="NOK")]), "bad_currency"),
        (CashCount(counts=[Counted(counted=100), Counted(counted=1, tender="bitcoin")]), "bad_tender"),
    ],
    ids=lambda x: type(x).__name__ if not isinstance(x, str) else x,
)
async def test_bad_input_is_refused_and_changes_nothing(till: Cashier, command: msgspec.Struct, code: str) -> None:
    before = await till.state_of_db()
    with trio.fail_after(BOUND):
        answer = await till.do(command)
    assert isinstance(answer, Error) and answer.code == code, answer
    assert answer.message
    assert await till.state_of_db() == before
    assert till.sim.kicks == 0


async def test_every_cash_action_is_refused_while_a_sale_is_open(till: Cashier) -> None:
    with trio.fail_after(BOUND):
        await till.do(Scan(code=MILK))
        before = await till.state_of_db()
        for command in (
            Payout(amount=500, account="postage", reason="stamps"),
            FloatMove(amounts=[CashAmount(amount=500)]),
            CashDrop(amounts=[CashAmount(amount=500)]),
            CashDeposit(amounts=[CashAmount(amount=500)]),
            CashCount(counts=[Counted(counted=0)]),
        ):
            answer = await till.do(command)
            assert isinstance(answer, Error) and answer.code == "sale_open", answer
        state = await till.do(Total())
        assert isinstance(state, SaleState) and state.status == "tender"
        answer = await till.do(CashDrop(amounts=[CashAmount(amount=500)]))
        assert isinstance(answer, Error) and answer.code == "sale_open"
    assert await till.state_of_db() == before


async def test_foreign_cash_is_kept_in_its_currency_at_the_rate_the_store_holds(till: Cashier) -> None:
    with trio.fail_after(BOUND):
        done = await till.do(CashDeposit(amounts=[CashAmount(amount=500_00), CashAmount(amount=20_00, currency="eur")]))
        assert isinstance(done, CashDone), done
        await till.kicks(1)
    (record,) = await till.events("deposit")
    assert record.event is not None
    assert [(t.currency, t.amount, t.value, t.rate) for t in record.event.amounts] == [
        ("SEK", 50000, 0, 0),
        ("EUR", 2000, 23000, EUR_RATE),
    ]
    assert "EUR 20.00" in done.text


async def test_a_foreign_amount_without_a_held_rate_is_refused(till: Cashier) -> None:
    await till.rig.db.write(lambda c: c.execute("DELETE FROM exchange_rates"))
    before = await till.state_of_db()
    with trio.fail_after(BOUND):
        answer = await till.do(FloatMove(amounts=[CashAmount(amount=100, currency="EUR")]))
    assert isinstance(answer, Error) and answer.code == "no_rate", answer
    assert await till.state_of_db() == before


async def test_the_count_expects_what_the_journal_says_since_the_last_count(till: Cashier) -> None:
    with trio.fail_after(BOUND):
        assert isinstance(
            await till.do(FloatMove(amounts=[CashAmount(amount=1000_00), CashAmount(amount=50_00, currency="EUR")])),
            CashDone,
        )
        await till.do(Scan(code=COFFEE))  # 69.95, cash 70.00 rounded, 100 tendered: 30.00 change
        sale = await till.do(CashTender(amount=100_00))
        assert isinstance(sale, Receipt) and sale.change == 3000
        await till.do(Scan(code=MILK))  # paid with EUR: no change beyond the rounding
        euro = await till.do(CashTender(amount=10_00, currency="EUR"))
        assert isinstance(euro, Receipt), euro
        assert isinstance(await till.do(CashDrop(amounts=[CashAmount(amount=500_00)])), CashDone)
        assert isinstance(await till.do(Payout(amount=25_00, account="postage", reason="stamps")), CashDone)
        assert isinstance(await till.do(CashDeposit(amounts=[CashAmount(amount=100_00)])), CashDone)
        await till.do(RefundOf(receipt=f"S001-1-{sale.receipt_no}"))
        await till.do(ReturnItem(code=COFFEE))
        refund = await till.do(CashTender(amount=0))
        assert isinstance(refund, Receipt) and refund.change == 70_00, refund
        euro_change = euro.change
        expected_sek = 1000_00 + 100_00 - 30_00 - euro_change - 500_00 - 25_00 + 100_00 - 70_00
        done = await till.do(
            CashCount(counts=[Counted(counted=expected_sek - 1_00), Counted(counted=60_00, currency="EUR")])
        )
        assert isinstance(done, CashDone), done
    lines = {(x.tender, x.currency): (x.expected, x.counted) for x in done.counts}
    assert lines == {("cash", "SEK"): (expected_sek, expected_sek - 100), ("cash", "EUR"): (6000, 6000)}
    (record,) = await till.events("count")
    assert record.event is not None and not record.event.amounts
    assert [(c.tender, c.currency, c.expected, c.counted) for c in record.event.counts] == [
        ("cash", "EUR", 6000, 6000),
        ("cash", "SEK", expected_sek, expected_sek - 100),
    ]
    assert "difference SEK -1.00" in done.message
    assert "CASH COUNT" in done.text and "-1.00" in done.text
    await till.sim.wait_until(lambda: "CASH COUNT" in decode(bytes(till.sim.printed)))

    # The next count starts from what was counted (it stayed in the drawer) and reads only what came after.
    with trio.fail_after(BOUND):
        assert isinstance(await till.do(CashDrop(amounts=[CashAmount(amount=expected_sek - 100)])), CashDone)
        again = await till.do(CashCount(counts=[Counted(counted=0), Counted(counted=6000, currency="EUR")]))
    assert isinstance(again, CashDone)
    assert {(x.currency, x.expected, x.counted) for x in again.counts} == {("SEK", 0, 0), ("EUR", 6000, 6000)}


async def test_other_tenders_are_expected_only_unless_counted(till: Cashier) -> None:
    with trio.fail_after(BOUND):
        await till.do(Scan(code=COFFEE))
        await till.do(CardTender())
        await till.rig.till.until(lambda s: s.status == "ready")
        done = await till.do(CashCount(counts=[Counted(counted=0)]))
        assert isinstance(done, CashDone), done
        card = next(x for x in done.counts if x.tender == "card")
        assert card.uncounted and card.expected == 6995
        counted = await till.do(CashCount(counts=[Counted(counted=0), Counted(counted=6995, tender="card")]))
    assert isinstance(counted, CashDone)
    # the first count closed the card's period: nothing is expected of it now
    assert [(x.tender, x.expected, x.counted, x.uncounted) for x in counted.counts] == [
        ("cash", 0, 0, False),
        ("card", 0, 6995, False),
    ]
    first = (await till.events("count"))[0]
    assert first.event is not None and "not counted: card 69.95" in first.event.detail


async def test_a_repeated_key_answers_with_the_event_already_journaled(till: Cashier) -> None:
    with trio.fail_after(BOUND):
        first = await till.do(Payout(amount=5_00, account="postage", reason="stamps", key="till-7-41"))
        again = await till.do(Payout(amount=5_00, account="postage", reason="stamps", key="till-7-41"))
        other = await till.do(CashDrop(amounts=[CashAmount(amount=5_00)], key="till-7-41"))
        await till.kicks(1)
    assert isinstance(first, CashDone) and isinstance(again, CashDone)
    assert again.receipt_no == first.receipt_no and again.event == first.event
    assert again.message.startswith("already recorded")
    assert isinstance(other, Error) and other.code == "key_used"
    assert len(await till.events("payout")) == 1
    assert till.sim.kicks == 1  # the same kick job: the drawer opened once


async def test_cash_events_in_training_are_journaled_as_training_and_move_no_expected_cash(till: Cashier) -> None:
    till.rig.lane.state = msgspec.structs.replace(till.rig.lane.state, training=True)
    with trio.fail_after(BOUND):
        assert isinstance(await till.do(FloatMove(amounts=[CashAmount(amount=100_00)])), CashDone)
        done = await till.do(CashCount(counts=[Counted(counted=0)]))
    assert isinstance(done, CashDone)
    assert [(x.expected, x.counted) for x in done.counts] == [(0, 0)]
    assert all(r.training for r in await till.events())
    assert await till.rig.db.read(lambda c: c.execute("SELECT count(*) FROM cash_counts").fetchone()[0]) == 0


async def test_the_journal_with_cash_events_verifies(till: Cashier) -> None:
    with trio.fail_after(BOUND):
        await till.do(FloatMove(amounts=[CashAmount(amount=100_00)]))
        await till.do(NoSale(operator="1", pin="1234", reason="change"))
        await till.do(CashCount(counts=[Counted(counted=100_00)]))
    signer = till.rig.lane.ctx.signer
    checked, problems = await till.rig.db.read(lambda c: chain.verify(c, "S001", {signer.key_id: signer.public}))
    assert (checked, problems) == (3, [])


async def test_expected_reads_only_the_journal_since_the_last_count(till: Cashier) -> None:
    """The count's cost follows one shift, not the store's history: rows before the last count are never
    decoded (here: made undecodable, and the count still works)."""
    with trio.fail_after(BOUND):
        await till.do(FloatMove(amounts=[CashAmount(amount=100_00)]))
        await till.do(CashCount(counts=[Counted(counted=100_00)]))
        await till.do(CashDeposit(amounts=[CashAmount(amount=5_00)]))

    def expected_with_old_rows_broken(c: object) -> dict[tuple[str, str], int]:
        conn = c  # type: ignore[assignment]
        conn.execute("DROP TRIGGER journal_no_update")  # type: ignore[attr-defined]
        conn.execute("UPDATE journal SET body = x'c1' WHERE receipt_no = 1")  # type: ignore[attr-defined]
        return cash.expected(conn, 1, "SEK")  # type: ignore[arg-type]

    held = await till.rig.db.write(expected_with_old_rows_broken)
    assert held == {("cash", "SEK"): 105_00}


def test_store_toml_cash_settings_are_read_and_checked(tmp_path: Path) -> None:
    toml = tmp_path / "store.toml"
    toml.write_text('store = "S1"\nlanes = [1]\n[sales]\npayout_approval = 10000\npayout_accounts = ["postage"]\n')
    sales = load_config(toml).sales
    assert (sales.payout_approval, sales.payout_accounts, sales.cash_most) == (10000, ["postage"], 10_000_000)
    toml.write_text('store = "S1"\nlanes = [1]\n[sales]\npayout_approval = -1\ncash_most = 0\npayout_accounts = [""]\n')
    with pytest.raises(ConfigError) as info:
        load_config(toml)
    assert "sales.payout_approval must be 0 to 10^12" in str(info.value)
    assert "sales.payout_accounts are names of 1 to 32 characters" in str(info.value)
