"""The lane's sale in progress, as pure functions over an immutable-by-convention state.

Every change returns a new LaneState so the lane can compute it inside the database job that
persists it and adopt it only once it is committed: a crash between the two leaves the old state
both in memory and on disk, never a mixture.
"""

from __future__ import annotations

from collections import defaultdict

import msgspec

from protocol.discounting import net_amounts
from protocol.frames import (
    DiscountLine,
    Line,
    RecordApproval,
    RecordDiscount,
    RecordLine,
    RecordPayment,
    RecordTender,
    RecordVat,
    SaleRecord,
    SaleState,
    TenderLine,
    VatAmount,
)
from protocol.money import cash_round, format_money, round_half_up, vat_of
from runtime.mailbox import Rejected

MAX_QTY = 9999
MAX_LINES = 500

CLOSED, READY, OPEN, TENDER = "closed", "ready", "open", "tender"
PAYING = "paying"  # a card payment (or gift card redemption) is in flight or its outcome is in doubt


class Item(msgspec.Struct, frozen=True):
    item: str
    name: str
    price: int  # per piece, or per kg when weighed; -1: no price applies here now (not sellable)
    vat_rate: int
    unit: str = "piece"
    popup: str = ""  # shown to the cashier when scanned
    active: bool = True  # retired items are still known (returns, stock) but not sold

    @property
    def weighed(self) -> bool:
        return self.unit == "kg"


class CashBack(msgspec.Struct, frozen=True):
    """A refund of a receipt that took cash: what the sale took in cash (exactly, and into the drawer after
    rounding and change) and what the receipt's journaled refunds gave back of it, both ways. Read when the
    refund opens or changes (storenode.lanes.refunds.cash_back_of) so the till shows the cash the drawer
    will really pay, and read again by the closing in its own transaction, which decides."""

    taken_exact: int
    taken: int
    back_exact: int
    back: int

    def pays(self, exact: int, currency: str) -> int:
        """What the drawer pays (negative) for a refund whose cash part is `exact` (negative, before rounding):
        the cash-rounded total given back in cash over the receipt's refunds, this one included, less what
        the drawer already paid back; never past the cash the sale took, and all of what is left once the
        refunds give back all of its cash (the last of several partial refunds takes the remainder)."""
        given = self.back_exact - exact
        target = self.taken if given >= self.taken_exact else min(cash_round(given, currency), self.taken)
        return -max(0, target - self.back)


class LaneState(msgspec.Struct):
    lane: int
    status: str = CLOSED
    operator: str = ""
    sale_id: str = ""
    opened_at: int = 0
    lines: list[RecordLine] = []
    tenders: list[RecordTender] = []  # taken so far (a split payment); the sale closes when they cover it
    payments: list[RecordPayment] = []  # every money call of this sale and its outcome, for the journal
    pending: RecordPayment | None = None  # a money call that may have started: saved before it is sent
    status_before: str = ""  # what `status` was when the pending call began (tender, usually)
    cancelling: bool = False  # a cancel is undoing the sale's card payments one reversal at a time
    refund_of: str = ""  # a refund of this receipt id: only its lines come back, to the tenders it was paid with
    approvals: list[RecordApproval] = []  # supervisors' approvals given in this sale, journaled with it
    # Issue 14 (the cashier's day):
    salesperson: str = ""  # the sale's salesperson (operator number), journaled with it
    discounts: list[RecordDiscount] = []  # manual discounts and price overrides given, in order
    training: bool = False  # the lane is in training mode: a mode of the lane, kept from sale to sale
    cash_back: CashBack | None = None  # a refund of a receipt that took cash: how its cash is reconciled


def live_lines(state: LaneState) -> list[RecordLine]:
    return [line for line in state.lines if not line.voided]


def total(state: LaneState) -> int:
    """What the sale costs, after its discounts (protocol.discounting)."""
    if state.discounts:
        return sum(net_amounts(state.lines, state.discounts)[0].values())
    return sum(line.amount for line in state.lines if not line.voided)


def paid(state: LaneState) -> int:
    return sum(t.sale_value for t in state.tenders)


def due(state: LaneState) -> int:
    """What is still to pay (negative: to pay back), before any cash rounding."""
    return total(state) - paid(state)


def cash_due(state: LaneState, currency: str) -> int:
    return _cash_of(state, due(state), currency)


def _cash_of(state: LaneState, exact: int, currency: str) -> int:
    """What the drawer takes (or pays, negative) for `exact` due in cash: cash-rounded, except a refund of a
    receipt's cash, reconciled over the receipt's refunds (CashBack)."""
    if state.cash_back is not None and exact < 0:
        return state.cash_back.pays(exact, currency)
    return cash_round(exact, currency)


def require_unpaid(state: LaneState) -> None:
    """Lines are frozen once money was taken: changing them would leave a tender over or under the total."""
    if state.tenders:
        raise Rejected("payment_started", "money was already taken for this sale; pay the rest or cancel the sale")


def vat_breakdown(state: LaneState, net: dict[int, int] | None = None) -> list[RecordVat]:
    """VAT per rate, extracted from what the lines cost after discounts (`net`, when the caller has it)."""
    if net is None and state.discounts:
        net, _ = net_amounts(state.lines, state.discounts)
    gross: dict[int, int] = defaultdict(int)
    for line in live_lines(state):
        gross[line.vat_rate] += line.amount if net is None else net[line.no]
    return [RecordVat(rate=r, gross=g, vat=vat_of(g, r)) for r, g in sorted(gross.items())]


def open_sale(state: LaneState, sale_id: str, now_ms: int) -> LaneState:
    require_operator(state)
    if state.status in (OPEN, TENDER):
        raise Rejected("sale_open", f"sale {state.sale_id} is already open on lane {state.lane}")
    return msgspec.structs.replace(state, status=OPEN, sale_id=sale_id, opened_at=now_ms, lines=[], approvals=[])


def add_line(
    state: LaneState,
    item: Item,
    code: str,
    qty: int,
    *,
    returned: bool = False,
    weight_g: int = 0,
    price: int | None = None,
    merge: bool = False,
) -> LaneState:
    """Add `qty` of an item, or one weighed line of `weight_g` grams priced per kg, or one line at a
    `price` printed in its barcode; a returned item is the same line with negative quantity and amount.
    With `merge` (store.toml [sales] merge_lines) an item sold again goes onto its line (`merged_onto`)."""
    if not 1 <= qty <= MAX_QTY:
        raise Rejected("bad_quantity", f"quantity must be 1 to {MAX_QTY}, not {qty}")
    if item.weighed and weight_g <= 0 and price is None:
        raise Rejected("needs_weight", f"{item.name} is sold by weight: put it on the scale")
    if (weight_g or price is not None) and qty != 1:
        raise Rejected("bad_quantity", "a weighed item is one line per weighing")
    if returned:
        qty = -qty
    if state.status not in (OPEN, TENDER):
        raise Rejected("no_sale", "no sale is open")
    require_unpaid(state)
    onto = merged_onto(state, item, code, qty) if merge and not weight_g and price is None else None
    if onto is not None:
        lines = list(state.lines)
        lines[onto.no - 1] = msgspec.structs.replace(onto, qty=onto.qty + qty, amount=onto.amount + item.price * qty)
        return msgspec.structs.replace(state, status=OPEN, lines=lines)
    if len(state.lines) >= MAX_LINES:
        raise Rejected("basket_full", f"a sale holds at most {MAX_LINES} lines; total and start a new one")
    line = RecordLine(
        no=len(state.lines) + 1,
        item=item.item,
        code=code,
        name=item.name,
        qty=qty,
        unit_price=item.price if price is None else price,
        amount=(
            price * qty
            if price is not None
            else round_half_up(item.price * weight_g, 1000) * qty
            if weight_g
            else item.price * qty
        ),
        vat_rate=item.vat_rate,
        voided=False,
        weight_g=weight_g,
    )
    return msgspec.structs.replace(state, status=OPEN, lines=[*state.lines, line])


def merged_onto(state: LaneState, item: Item, code: str, qty: int) -> RecordLine | None:
    """The line a scan of `qty` x `item` (by `code`) goes onto when the store merges lines, or None for a
    line of its own.

    Only a plain sale of a piece item merges, onto the newest live line of the same item, barcode, price
    and VAT rate that no discount names. Never:
    - a weighed or price-embedded (GS1 label) item: each weighing or label is its own amount, kept as scanned;
    - onto a voided line: the void stays what it was, and the item is sold again on a line of its own;
    - a return, or anything in a refund of a receipt: a returned line is checked against the receipt line it
      comes from, and a receipt-less return is approved (or not) as the line it adds; each return stays its
      own line, so a void takes back exactly that return;
    - onto a line with a discount or price override: what the discount was given on must not grow after it;
    - beyond MAX_QTY: the scan starts a new line instead.
    The merged line keeps its number, so voids, refunds by line (RecordLine.origin) and approvals naming a
    line still name the same goods."""
    if qty <= 0 or item.weighed or state.refund_of:
        return None
    discounted = {d.line for d in state.discounts}
    for line in reversed(state.lines):
        if (
            not line.voided
            and line.qty > 0
            and not line.weight_g
            and not line.origin
            and (line.item, line.code, line.unit_price, line.vat_rate) == (item.item, code, item.price, item.vat_rate)
            and line.no not in discounted
            and line.qty + qty <= MAX_QTY
        ):
            return line
    return None


def scanned_line(before: LaneState, after: LaneState) -> RecordLine:
    """The line a scan added, or merged onto (store.toml [sales] merge_lines)."""
    if len(after.lines) > len(before.lines):
        return after.lines[-1]
    return next(new for new, old in zip(after.lines, before.lines, strict=True) if new != old)


def add_returned(state: LaneState, lines: list[RecordLine]) -> LaneState:
    """Lines of a refund, built from the receipt it refunds (storenode.lanes.refunds): numbered here."""
    if state.status not in (OPEN, TENDER):
        raise Rejected("no_sale", "no sale is open")
    require_unpaid(state)
    if len(state.lines) + len(lines) > MAX_LINES:
        raise Rejected("basket_full", f"a sale holds at most {MAX_LINES} lines; total and start a new one")
    numbered = [msgspec.structs.replace(line, no=len(state.lines) + i + 1) for i, line in enumerate(lines)]
    return msgspec.structs.replace(state, status=OPEN, lines=[*state.lines, *numbered])


def void_line(state: LaneState, no: int) -> LaneState:
    if state.status not in (OPEN, TENDER):
        raise Rejected("no_sale", "no sale is open")
    require_unpaid(state)
    if not 1 <= no <= len(state.lines):
        raise Rejected("no_such_line", f"line {no} does not exist (the sale has {len(state.lines)} lines)")
    if state.lines[no - 1].voided:
        raise Rejected("already_void", f"line {no} is already voided")
    lines = list(state.lines)
    lines[no - 1] = msgspec.structs.replace(lines[no - 1], voided=True)
    kept = [d for d in state.discounts if d.line != no]  # a voided line's discounts go with it
    return msgspec.structs.replace(state, status=OPEN, lines=lines, discounts=kept)


def to_total(state: LaneState) -> LaneState:
    if state.status not in (OPEN, TENDER):
        raise Rejected("no_sale", "no sale is open")
    if not live_lines(state):
        raise Rejected("empty_sale", "the sale has no items to total")
    return msgspec.structs.replace(state, status=TENDER)


MOST_CHANGE = 1_000_000  # minor units (10,000.00): more than any banknote pays over any sale


def check_cash(state: LaneState, amount: int, currency: str, most_change: int = MOST_CHANGE) -> int:
    """The cash due for this sale, after refusing a tender that cannot complete it.

    A sale with returns may be due negative: the customer tenders nothing and the change is the
    refund. A negative tender is refused: cash paid out is change, never a tender. So is a tender whose
    change would be beyond `most_change` (store.toml payments.max_change): a mistyped 10^15 was taken
    and printed a change of 1.8 x 10^19, and cash of 2^64 - 1 on a refund crashed the lane."""
    if amount < 0:
        raise Rejected("bad_amount", "a tender cannot be negative; tender 0 to refund a return")
    if state.status not in (OPEN, TENDER):
        raise Rejected("no_sale", "no sale is open")
    if not live_lines(state):
        raise Rejected("empty_sale", "the sale has no items to pay for")
    due = cash_due(state, currency)
    if amount < due:
        raise Rejected(
            "tender_short",
            f"tendered {format_money(amount, currency)} is less than {format_money(due, currency)} due",
        )
    if amount - due > most_change:
        raise Rejected(
            "tender_too_large",
            f"tendered {format_money(amount, currency)} would give more than {format_money(most_change, currency)}"
            " change; check the amount",
        )
    return due


def require_operator(state: LaneState) -> None:
    if state.status == CLOSED or not state.operator:
        raise Rejected("not_logged_in", f"no operator is logged in on lane {state.lane}")


def add_tender(state: LaneState, tender: RecordTender) -> LaneState:
    return msgspec.structs.replace(state, status=TENDER, tenders=[*state.tenders, tender])


def end_payment(state: LaneState, entry: RecordPayment, *, cancelling: bool | None = None) -> LaneState:
    """The money call in progress is over: its outcome joins the sale's payments and the lane goes back
    to where it was before the call (`cancelling` set as well, when the call's end also ends a cancel)."""
    after = msgspec.structs.replace(
        state, pending=None, payments=[*state.payments, entry], status=state.status_before or TENDER
    )
    return after if cancelling is None else msgspec.structs.replace(after, cancelling=cancelling)


def cleared(state: LaneState) -> LaneState:
    return LaneState(
        lane=state.lane, status=READY if state.operator else CLOSED, operator=state.operator, training=state.training
    )


def record(
    state: LaneState,
    *,
    store: str,
    receipt_no: int,
    kind: str,
    currency: str,
    closed_at: int,
    tendered: int = 0,
    cash: RecordTender | None = None,
) -> SaleRecord:
    """The journal record. A sale is closed by cash (`tendered`, or `cash` in a foreign currency) unless
    the tenders already taken cover it exactly; cash rounding applies to the cash part only (a refund of a
    receipt's cash: reconciled over the receipt's refunds, CashBack)."""
    amount = total(state)
    remaining = amount - paid(state)
    tenders: list[RecordTender] = []
    rounding = change = 0
    if kind == "sale":
        tenders = list(state.tenders)
        if remaining or not tenders:
            closing = cash or RecordTender(kind="cash", currency=currency, amount=tendered)
            cash_due_now = _cash_of(state, remaining, currency)
            rounding = cash_due_now - remaining
            change = closing.sale_value - cash_due_now
            tenders.append(closing)
    return SaleRecord(
        store=store,
        lane=state.lane,
        receipt_no=receipt_no,
        kind=kind,
        sale_id=state.sale_id,
        operator=state.operator,
        opened_at=state.opened_at,
        closed_at=closed_at,
        currency=currency,
        lines=list(state.lines),
        total=amount,
        rounding=rounding,
        vat=vat_breakdown(state),
        tenders=tenders,
        change=change,
        payments=list(state.payments),
        refund_of=state.refund_of,
        approvals=list(state.approvals),
        salesperson=state.salesperson,
        discounts=net_amounts(state.lines, state.discounts)[1],
        training=state.training,
    )


def to_frame(state: LaneState, currency: str, *, ref: int = 0, message: str = "") -> SaleState:
    net, priced = net_amounts(state.lines, state.discounts) if state.discounts else (None, [])
    amount = total(state) if net is None else sum(net.values())
    taken = paid(state)
    return SaleState(
        lane=state.lane,
        status=state.status,
        currency=currency,
        operator=state.operator,
        sale_id=state.sale_id,
        lines=[
            Line(
                no=x.no,
                item=x.item,
                code=x.code,
                name=x.name,
                qty=x.qty,
                unit_price=x.unit_price,
                amount=x.amount,
                vat_rate=x.vat_rate,
                voided=x.voided,
                weight_g=x.weight_g,
            )
            for x in state.lines
        ],
        total=amount,
        vat=[VatAmount(rate=v.rate, gross=v.gross, vat=v.vat) for v in vat_breakdown(state, net)],
        cash_due=_cash_of(state, amount - taken, currency),
        ref=ref,
        message=message,
        paid=taken,
        due=amount - taken,
        tenders=[
            TenderLine(kind=t.kind, amount=t.amount, currency=t.currency, value=t.sale_value, reference=t.reference)
            for t in state.tenders
        ],
        refund_of=state.refund_of,
        salesperson=state.salesperson,
        discounts=[
            DiscountLine(line=d.line, kind=d.kind, value=d.value, amount=d.amount, reason=d.reason, approver=d.approver)
            for d in priced
        ],
    )
