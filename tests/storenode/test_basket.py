"""The pure basket functions of a lane: state transitions, totals, VAT, journal record and till frame."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.frames import Line, RecordLine, RecordTender, RecordVat, SaleRecord, SaleState, VatAmount
from protocol.money import vat_of
from runtime.mailbox import Rejected
from storenode.lanes import basket
from storenode.lanes.basket import (
    CLOSED,
    MAX_LINES,
    MAX_QTY,
    OPEN,
    READY,
    TENDER,
    Item,
    LaneState,
    add_line,
    check_cash,
    cleared,
    open_sale,
    record,
    to_frame,
    to_total,
    vat_breakdown,
    void_line,
)

MILK = Item(item="MILK1", name="Milk 1l", price=1590, vat_rate=1200)
BUTTER = Item(item="BUTR", name="Butter", price=5995, vat_rate=1200)
COFFEE = Item(item="COFF", name="Coffee", price=6995, vat_rate=2500)
NEWS = Item(item="NEWS", name="Newspaper", price=2900, vat_rate=600)
STAMP = Item(item="STMP", name="Stamp", price=1500, vat_rate=0)
MILK_CODE, BUTTER_CODE, COFFEE_CODE = "7310000000010", "7310000000027", "7310000000034"

T_OPEN = 1_795_000_000_000
T_CLOSE = 1_795_000_060_000


def rejected(code: str) -> Any:
    return pytest.raises(Rejected, match=f"^{code}: ")


def ready(lane: int = 2, operator: str = "7") -> LaneState:
    return LaneState(lane=lane, status=READY, operator=operator)


def opened() -> LaneState:
    return open_sale(ready(), "S001-2-0001", T_OPEN)


def three_lines() -> LaneState:
    """Milk x2, butter (voided), coffee: total 101.75 SEK, 102.00 cash."""
    state = add_line(opened(), MILK, MILK_CODE, 2)
    state = add_line(state, BUTTER, BUTTER_CODE, 1)
    state = add_line(state, COFFEE, COFFEE_CODE, 1)
    return void_line(state, 2)


# -------------------------------------------------------------------------------------------------
# open_sale
# -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "state",
    [
        LaneState(lane=2),
        LaneState(lane=2, status=READY, operator=""),
        LaneState(lane=2, status=CLOSED, operator="7"),
    ],
    ids=["closed", "ready-without-operator", "closed-with-operator"],
)
def test_open_sale_needs_an_operator(state: LaneState) -> None:
    with rejected("not_logged_in") as info:
        open_sale(state, "S1", T_OPEN)
    assert info.value.code == "not_logged_in"
    assert info.value.message == "no operator is logged in on lane 2"


def test_open_sale() -> None:
    before = ready()
    after = open_sale(before, "S001-2-0001", T_OPEN)
    assert after == LaneState(lane=2, status=OPEN, operator="7", sale_id="S001-2-0001", opened_at=T_OPEN, lines=[])
    assert before == ready(), "open_sale must not mutate its input"


@pytest.mark.parametrize("status", [OPEN, TENDER])
def test_open_sale_refuses_when_a_sale_is_open(status: str) -> None:
    state = LaneState(lane=2, status=status, operator="7", sale_id="S-OLD")
    with rejected("sale_open") as info:
        open_sale(state, "S-NEW", T_OPEN)
    assert info.value.message == "sale S-OLD is already open on lane 2"


# -------------------------------------------------------------------------------------------------
# add_line
# -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("qty", [0, -1, MAX_QTY + 1, 10**9])
def test_add_line_quantity_bounds(qty: int) -> None:
    with rejected("bad_quantity") as info:
        add_line(opened(), MILK, MILK_CODE, qty)
    assert info.value.code == "bad_quantity"
    assert info.value.message == f"quantity must be 1 to 9999, not {qty}"


@pytest.mark.parametrize("qty", [1, 2, MAX_QTY])
def test_add_line_amount_is_price_times_qty(qty: int) -> None:
    state = add_line(opened(), MILK, MILK_CODE, qty)
    assert state.lines == [
        RecordLine(
            no=1,
            item="MILK1",
            code=MILK_CODE,
            name="Milk 1l",
            qty=qty,
            unit_price=1590,
            amount=1590 * qty,
            vat_rate=1200,
            voided=False,
        )
    ]
    assert basket.total(state) == 1590 * qty
    assert MAX_QTY == 9999


def test_add_line_needs_an_open_sale() -> None:
    with rejected("no_sale"):
        add_line(ready(), MILK, MILK_CODE, 1)
    with rejected("no_sale"):
        add_line(LaneState(lane=2), MILK, MILK_CODE, 1)


def test_add_line_numbering_counts_voided_lines() -> None:
    state = add_line(opened(), MILK, MILK_CODE, 1)
    state = add_line(state, COFFEE, COFFEE_CODE, 1)
    state = void_line(state, 2)
    state = add_line(state, BUTTER, BUTTER_CODE, 1)
    assert [(x.no, x.item, x.voided) for x in state.lines] == [
        (1, "MILK1", False),
        (2, "COFF", True),
        (3, "BUTR", False),
    ]


def test_add_line_does_not_mutate_input() -> None:
    before = opened()
    after = add_line(before, MILK, MILK_CODE, 1)
    assert before.lines == [] and len(after.lines) == 1


def test_add_line_in_tender_reopens_the_sale() -> None:
    state = to_total(add_line(opened(), MILK, MILK_CODE, 1))
    assert state.status == TENDER
    state = add_line(state, COFFEE, COFFEE_CODE, 1)
    assert state.status == OPEN
    assert basket.total(state) == 1590 + 6995


def test_add_line_basket_full() -> None:
    state = opened()
    for _ in range(MAX_LINES):
        state = add_line(state, STAMP, "S", 1)
    assert len(state.lines) == 500
    with rejected("basket_full"):
        add_line(state, STAMP, "S", 1)


# -------------------------------------------------------------------------------------------------
# void_line
# -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("no", [0, -1, 4, 99])
def test_void_unknown_line(no: int) -> None:
    with rejected("no_such_line") as info:
        void_line(three_lines(), no)
    assert info.value.message == f"line {no} does not exist (the sale has 3 lines)"


def test_void_twice() -> None:
    with rejected("already_void") as info:
        void_line(three_lines(), 2)
    assert info.value.message == "line 2 is already voided"


def test_void_needs_an_open_sale() -> None:
    with rejected("no_sale"):
        void_line(ready(), 1)


def test_voided_lines_are_excluded_from_total_and_vat() -> None:
    state = three_lines()
    assert [x.voided for x in state.lines] == [False, True, False]
    assert basket.total(state) == 3180 + 6995 == 10175
    assert basket.live_lines(state) == [state.lines[0], state.lines[2]]
    assert vat_breakdown(state) == [
        RecordVat(rate=1200, gross=3180, vat=341),
        RecordVat(rate=2500, gross=6995, vat=1399),
    ]
    # Voiding the last live line at a rate removes the rate altogether.
    state = void_line(state, 3)
    assert vat_breakdown(state) == [RecordVat(rate=1200, gross=3180, vat=341)]
    assert basket.total(state) == 3180


def test_void_in_tender_reopens_the_sale() -> None:
    state = to_total(three_lines())
    assert void_line(state, 1).status == OPEN


def test_void_does_not_mutate_input() -> None:
    state = add_line(opened(), MILK, MILK_CODE, 1)
    void_line(state, 1)
    assert state.lines[0].voided is False


# -------------------------------------------------------------------------------------------------
# to_total and check_cash
# -------------------------------------------------------------------------------------------------


def test_to_total_empty_sale() -> None:
    with rejected("empty_sale"):
        to_total(opened())
    all_voided = void_line(add_line(opened(), MILK, MILK_CODE, 1), 1)
    with rejected("empty_sale"):
        to_total(all_voided)


def test_to_total() -> None:
    state = to_total(three_lines())
    assert state.status == TENDER
    assert state.lines == three_lines().lines
    assert to_total(state).status == TENDER  # totalling again is harmless


def test_to_total_needs_an_open_sale() -> None:
    with rejected("no_sale"):
        to_total(ready())


def test_cash_due_rounds_to_whole_krona() -> None:
    assert basket.cash_due(three_lines(), "SEK") == 10200
    assert basket.cash_due(three_lines(), "EUR") == 10175
    assert basket.cash_due(three_lines(), "DKK") == 10200  # 101.75 -> 102.00 in 50 øre steps


@pytest.mark.parametrize("amount", [0, 10175, 10199])
def test_check_cash_short(amount: int) -> None:
    state = to_total(three_lines())
    with rejected("tender_short") as info:
        check_cash(state, amount, "SEK")
    paid = f"{amount // 100}.{amount % 100:02d}"
    assert info.value.message == f"tendered {paid} is less than 102.00 due"
    assert paid in info.value.message and "102.00" in info.value.message


@pytest.mark.parametrize("amount", [10200, 10201, 50000])
def test_check_cash_accepts_enough(amount: int) -> None:
    assert check_cash(to_total(three_lines()), amount, "SEK") == 10200


def test_check_cash_exact_total_in_euro() -> None:
    assert check_cash(three_lines(), 10175, "EUR") == 10175
    with rejected("tender_short") as info:
        check_cash(three_lines(), 10174, "EUR")
    assert info.value.message == "tendered 101.74 is less than 101.75 due"


def test_check_cash_refusals() -> None:
    with rejected("no_sale"):
        check_cash(ready(), 10000, "SEK")
    with rejected("empty_sale"):
        check_cash(opened(), 10000, "SEK")


# -------------------------------------------------------------------------------------------------
# vat_breakdown
# -------------------------------------------------------------------------------------------------


def test_vat_breakdown_groups_per_rate_sorted() -> None:
    state = opened()
    for item, qty in [(COFFEE, 1), (MILK, 2), (STAMP, 1), (NEWS, 1), (MILK, 1)]:
        state = add_line(state, item, "x", qty)
    assert vat_breakdown(state) == [
        RecordVat(rate=0, gross=1500, vat=0),
        RecordVat(rate=600, gross=2900, vat=164),  # 2900 * 6 / 106 = 164.15
        RecordVat(rate=1200, gross=4770, vat=511),  # 4770 * 12 / 112 = 511.07
        RecordVat(rate=2500, gross=6995, vat=1399),
    ]


def test_vat_breakdown_rounds_once_per_rate() -> None:
    # 19.90 at 12 % holds 2.1321 VAT: per line that rounds to 2.13, three lines 6.39.
    # Per rate the gross 59.70 holds 6.3964, which rounds to 6.40: the rule is per rate.
    item = Item(item="SOAP", name="Soap", price=1990, vat_rate=1200)
    state = opened()
    for _ in range(3):
        state = add_line(state, item, "s", 1)
    per_line = sum(vat_of(x.amount, x.vat_rate) for x in state.lines)
    assert per_line == 639
    assert vat_breakdown(state) == [RecordVat(rate=1200, gross=5970, vat=640)]


def test_vat_breakdown_empty() -> None:
    assert vat_breakdown(opened()) == []


# -------------------------------------------------------------------------------------------------
# record
# -------------------------------------------------------------------------------------------------


def test_record_sale() -> None:
    state = to_total(three_lines())
    rec = record(state, store="S001", receipt_no=7, kind="sale", currency="SEK", closed_at=T_CLOSE, tendered=20000)
    assert rec == SaleRecord(
        store="S001",
        lane=2,
        receipt_no=7,
        kind="sale",
        sale_id="S001-2-0001",
        operator="7",
        opened_at=T_OPEN,
        closed_at=T_CLOSE,
        currency="SEK",
        lines=[
            RecordLine(
                no=1,
                item="MILK1",
                code=MILK_CODE,
                name="Milk 1l",
                qty=2,
                unit_price=1590,
                amount=3180,
                vat_rate=1200,
                voided=False,
            ),
            RecordLine(
                no=2,
                item="BUTR",
                code=BUTTER_CODE,
                name="Butter",
                qty=1,
                unit_price=5995,
                amount=5995,
                vat_rate=1200,
                voided=True,
            ),
            RecordLine(
                no=3,
                item="COFF",
                code=COFFEE_CODE,
                name="Coffee",
                qty=1,
                unit_price=6995,
                amount=6995,
                vat_rate=2500,
                voided=False,
            ),
        ],
        total=10175,
        rounding=25,
        vat=[RecordVat(rate=1200, gross=3180, vat=341), RecordVat(rate=2500, gross=6995, vat=1399)],
        tenders=[RecordTender(kind="cash", currency="SEK", amount=20000)],
        change=9800,
    )


def test_record_sale_rounding_down_and_exact_tender() -> None:
    item = Item(item="BIG", name="Big", price=10149, vat_rate=2500)
    state = to_total(add_line(opened(), item, "b", 1))
    rec = record(state, store="S001", receipt_no=1, kind="sale", currency="SEK", closed_at=T_CLOSE, tendered=10100)
    assert (rec.total, rec.rounding, rec.change) == (10149, -49, 0)
    assert rec.tenders == [RecordTender(kind="cash", currency="SEK", amount=10100)]


def test_record_sale_in_euro_has_no_rounding() -> None:
    rec = record(three_lines(), store="S001", receipt_no=1, kind="sale", currency="EUR", closed_at=0, tendered=10200)
    assert (rec.total, rec.rounding, rec.change) == (10175, 0, 25)


def test_record_cancel() -> None:
    rec = record(three_lines(), store="S001", receipt_no=8, kind="cancel", currency="SEK", closed_at=T_CLOSE)
    assert rec.kind == "cancel"
    assert rec.tenders == []
    assert rec.change == 0
    assert rec.rounding == 0
    assert rec.total == 10175
    assert len(rec.lines) == 3
    assert rec.vat == vat_breakdown(three_lines())
    # A tender amount passed by mistake does not leak into a cancel record.
    rec = record(three_lines(), store="S001", receipt_no=8, kind="cancel", currency="SEK", closed_at=0, tendered=500)
    assert (rec.tenders, rec.change, rec.rounding) == ([], 0, 0)


def test_record_lines_are_a_copy() -> None:
    state = three_lines()
    rec = record(state, store="S001", receipt_no=1, kind="cancel", currency="SEK", closed_at=0)
    assert rec.lines == state.lines and rec.lines is not state.lines


# -------------------------------------------------------------------------------------------------
# to_frame and cleared
# -------------------------------------------------------------------------------------------------


def test_to_frame_mirrors_state() -> None:
    frame = to_frame(to_total(three_lines()), "SEK", ref=9, message="Coffee 69.95")
    assert frame == SaleState(
        lane=2,
        status="tender",
        currency="SEK",
        operator="7",
        sale_id="S001-2-0001",
        lines=[
            Line(
                no=1,
                item="MILK1",
                code=MILK_CODE,
                name="Milk 1l",
                qty=2,
                unit_price=1590,
                amount=3180,
                vat_rate=1200,
            ),
            Line(
                no=2,
                item="BUTR",
                code=BUTTER_CODE,
                name="Butter",
                qty=1,
                unit_price=5995,
                amount=5995,
                vat_rate=1200,
                voided=True,
            ),
            Line(
                no=3,
                item="COFF",
                code=COFFEE_CODE,
                name="Coffee",
                qty=1,
                unit_price=6995,
                amount=6995,
                vat_rate=2500,
            ),
        ],
        total=10175,
        vat=[VatAmount(rate=1200, gross=3180, vat=341), VatAmount(rate=2500, gross=6995, vat=1399)],
        cash_due=10200,
        ref=9,
        message="Coffee 69.95",
        due=10175,
    )


def test_to_frame_of_a_ready_lane() -> None:
    assert to_frame(ready(), "SEK") == SaleState(lane=2, status="ready", currency="SEK", operator="7")
    frame = to_frame(LaneState(lane=4), "NOK")
    assert (frame.status, frame.operator, frame.lines, frame.total, frame.cash_due) == ("closed", "", [], 0, 0)


def test_cleared_keeps_the_operator() -> None:
    after = cleared(to_total(three_lines()))
    assert after == LaneState(lane=2, status=READY, operator="7", sale_id="", opened_at=0, lines=[])
    assert cleared(LaneState(lane=3, status=OPEN, sale_id="X")) == LaneState(lane=3, status=CLOSED)


# -------------------------------------------------------------------------------------------------
# Property: totals and VAT agree for any basket
# -------------------------------------------------------------------------------------------------

BASKETS = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=100_000),  # price
        st.sampled_from([0, 600, 1200, 2500]),  # VAT rate
        st.integers(min_value=1, max_value=MAX_QTY),  # qty
        st.booleans(),  # voided
    ),
    min_size=1,
    max_size=30,
)


@settings(deadline=None)  # no wall-clock dependence
@given(lines=BASKETS)
def test_total_equals_vat_gross_and_vat_is_bounded(lines: list[tuple[int, int, int, bool]]) -> None:
    state = opened()
    for i, (price, rate, qty, _) in enumerate(lines):
        state = add_line(state, Item(item=f"I{i}", name=f"Item {i}", price=price, vat_rate=rate), str(i), qty)
    for i, (_, _, _, voided) in enumerate(lines):
        if voided:
            state = void_line(state, i + 1)

    total = basket.total(state)
    vat = vat_breakdown(state)
    assert total == sum(price * qty for price, _, qty, voided in lines if not voided)
    assert total == sum(v.gross for v in vat)
    assert 0 <= sum(v.vat for v in vat) <= total
    assert [v.rate for v in vat] == sorted({rate for _, rate, _, voided in lines if not voided})
    frame = to_frame(state, "SEK")
    assert frame.total == total
    assert frame.cash_due % 100 == 0 and abs(frame.cash_due - total) <= 50
