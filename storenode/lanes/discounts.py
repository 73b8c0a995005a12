"""Manual discounts and price overrides at the lane: the decisions that give them, as plain functions of
the lane's state and the command (like storenode.lanes.basket). How they price the sale's lines (price
overrides, then line discounts, then sale discounts spread by largest remainder; VAT after them) is the
rule in protocol.discounting, shared with receipts and refunds.

Limits: a cashier alone gives up to store.toml's sales.cashier_discount_percent (10.00 %) of the line,
or of the sale; more needs a supervisor (storenode.lanes.approval; the approver's number and PIN ride
on the command, as for a void). A price override always needs one. Neither is given in a refund (it
pays back what the receipt's lines cost, discounts included) or once money was taken for the sale.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from protocol.discounting import AMOUNT, PERCENT, PERCENT_SCALE, PRICE, net_amounts
from protocol.frames import GiveDiscount, OverridePrice, RecordDiscount, RecordLine
from protocol.money import format_money, format_rate
from runtime.mailbox import Rejected
from storenode.lanes import approval
from storenode.lanes.basket import OPEN, TENDER, LaneState

MAX_DISCOUNTS = 100  # per sale: more is a slip, not a sale


# -- decisions --------------------------------------------------------------------------------------------


def _require_discountable(state: LaneState) -> None:
    if state.status not in (OPEN, TENDER):
        raise Rejected("no_sale", "no sale is open")
    if state.refund_of:
        raise Rejected(
            "refund_discount",
            f"this sale refunds receipt {state.refund_of}: it pays back what the receipt's lines cost, "
            "discounts included, and takes no discount of its own",
        )
    if state.tenders:
        raise Rejected(
            "payment_started",
            "money was already taken for this sale: a discount now would leave it overpaid; "
            "give discounts before the payment, or cancel the sale",
        )
    if len(state.discounts) >= MAX_DISCOUNTS:
        raise Rejected("too_many_discounts", f"a sale takes at most {MAX_DISCOUNTS} discounts")


def _reason(reason: str, reasons: Iterable[str]) -> str:
    code = reason.strip()
    known = sorted(reasons)
    if code not in known:
        listed = ", ".join(known) or "none are registered (central's discount reasons, or the catalogue file)"
        raise Rejected("bad_reason", f"{code!r} is not a discount reason; the reasons are: {listed}")
    return code


def _sold_line(state: LaneState, no: int) -> RecordLine:
    if not 1 <= no <= len(state.lines):
        raise Rejected("no_such_line", f"line {no} does not exist (the sale has {len(state.lines)} lines)")
    line = state.lines[no - 1]
    if line.voided:
        raise Rejected("bad_discount", f"line {no} is voided")
    if line.qty < 0 or line.amount < 0:
        raise Rejected("bad_discount", f"line {no} is a return: returns are not discounted")
    return line


def discount(
    state: LaneState, command: GiveDiscount, reasons: Iterable[str], limit: int, currency: str
) -> tuple[LaneState, approval.Needed | None]:
    """The sale with the discount given, and what needs a supervisor (None: within the cashier's `limit`,
    in hundredths of a percent of what the discount applies to)."""
    _require_discountable(state)
    reason = _reason(command.reason, reasons)
    if bool(command.percent) == bool(command.amount):
        raise Rejected("bad_discount", "give a discount as a percent or as an amount (one of them, more than 0)")
    if command.amount < 0:
        raise Rejected("bad_discount", "a discount amount must be more than 0")
    if command.percent and not 0 < command.percent <= PERCENT_SCALE:
        raise Rejected("bad_discount", "a discount percent must be more than 0 and at most 100")
    net, _ = net_amounts(state.lines, state.discounts)
    if command.line:
        line = _sold_line(state, command.line)
        base, what = net[line.no], f"line {line.no} ({line.name})"
    else:
        base, what = sum(a for a in net.values() if a > 0), "the sale"
    if base <= 0:
        raise Rejected("bad_discount", f"{what} costs nothing now: there is nothing to take off")
    if command.amount > base:
        raise Rejected(
            "bad_discount",
            f"{format_money(command.amount, currency)} is more than {what} costs "
            f"({format_money(base, currency)}): a total never goes below zero",
        )
    kind, value = (PERCENT, command.percent) if command.percent else (AMOUNT, command.amount)
    given = RecordDiscount(line=command.line, kind=kind, value=value, amount=0, reason=reason)
    new = msgspec.structs.replace(state, discounts=[*state.discounts, given])
    cut, whole = _cashiers_cut(new, command.line)
    shown_value = format_rate(value) if kind == PERCENT else format_money(value, currency)
    detail = f"line {command.line} {kind} {shown_value} {reason}"
    return new, approval.discount(what, shown_value, cut, whole, limit, detail)


def _cashiers_cut(state: LaneState, no: int) -> tuple[int, int]:
    """What the discounts no supervisor approved (the one just given included) take off line `no` (0: the
    sale), and what it costs without them: the cashier's limit counts them together, so two discounts of
    10 % on one line are a discount of 19 %, not two within the limit."""
    lines = [state.lines[no - 1]] if no else state.lines
    prices = [d for d in state.discounts if d.kind == PRICE]
    own = [d for d in state.discounts if d.kind == PRICE or not d.approver]
    if no:
        own = [d for d in own if d.line == no]
    before = {n: amount for n, amount in net_amounts(lines, prices)[0].items() if amount > 0}
    after = net_amounts(lines, own)[0]
    return sum(before.values()) - sum(after[n] for n in before), sum(before.values())


def override(
    state: LaneState, command: OverridePrice, reasons: Iterable[str], currency: str
) -> tuple[LaneState, approval.Needed]:
    """The sale with a line's unit price set by hand; always a supervisor's."""
    _require_discountable(state)
    reason = _reason(command.reason, reasons)
    line = _sold_line(state, command.line)
    if command.price < 0:
        raise Rejected("bad_price", "a price cannot be negative")
    if any(d.kind == PRICE and d.line == line.no for d in state.discounts):
        raise Rejected("already_overridden", f"line {line.no} has a price set by hand already; void it and scan again")
    given = RecordDiscount(line=line.no, kind=PRICE, value=command.price, amount=0, reason=reason)
    new = msgspec.structs.replace(state, discounts=[*state.discounts, given])
    return new, approval.manual_price(line, command.price, currency)


def approved(state: LaneState, approver: str) -> LaneState:
    """The discount just given (the last one) carries who approved it."""
    if not approver or not state.discounts:
        return state
    last = msgspec.structs.replace(state.discounts[-1], approver=approver)
    return msgspec.structs.replace(state, discounts=[*state.discounts[:-1], last])
