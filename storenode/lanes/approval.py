"""What a cashier may not do alone: each rule says whether an action needs a supervisor, and why.

Decisions only (plain functions of the lane's state, what was scanned and store.toml's [approval]); the
lane asks for the supervisor's number and PIN and journals who approved (storenode.lanes.lane).

How a till gives an approval: the command itself carries it (`approver`, `approver_pin`, appended with
defaults to Scan, ReturnItem, VoidLine, CancelSale, EndOfDay, StockMove, StockCount, GiveDiscount and
OverridePrice). A till sends the command; a refusal `approval_needed` says what needs approval and why; the
till asks the supervisor to type their number and PIN and sends the same command again with them. Chosen
over a separate `Approve` command preceding the action because the approval then covers exactly that one
command: there is no
approval waiting on the lane for whatever comes next, nothing to expire, and nothing another command
(or another till) could use up. An operator logged in as supervisor or manager approves their own
actions (their login was the PIN check); it is journaled the same way.

Rules, with store.toml's defaults:
- voiding a line after total (the customer has seen the amount to pay);
- cancelling a sale with lines (a cancelled sale is where money goes missing between scan and drawer);
- the card terminal's end of day (it closes the terminal's batch for the whole lane);
- receipt-less returns worth more than `approval.receiptless_returns` (100.00) in one sale, counted
  together, so splitting a return into small ones gains nothing; a price-embedded label returned without
  a receipt always (its printed price is whatever the label says: 999.99 for an item sold at 0.01);
- a receipt-less return of an item the store refunded on a receipt in the last `approval.refunded_days`
  (30), whatever the amount;
- a price-embedded label outside 1/`label_factor` to `label_factor` times the item's price (10), or
  for an item without a price here; a weighed item's label up to `label_factor` kg at its kilo price;
- a stock move, or a count, changing the level by more than `approval.stock_moves` (100);
- a manual price of a line (`manual_price`, storenode.lanes.discounts.override): always;
- a manual discount beyond store.toml's sales.cashier_discount_percent (10.00 %) of the line or the sale
  (`discount`, storenode.lanes.discounts counts a cashier's discounts of it together).

Receipt-less refunds twice over (the same item back to the card on its receipt, then in cash without
one): where the store can know it, it stops it: the journal holds every refund of a receipt with its
lines, so a receipt-less return of an item refunded on a receipt lately needs a supervisor, however
cheap. Where it cannot (goods refunded at another store, or long ago; a receipt-less return is by
nature unlinked), it bounds what a cashier can pay out alone: above the small per-sale amount, a
supervisor sees the customer and the goods.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.frames import RecordLine
from protocol.money import format_money, format_rate, round_half_up
from storenode.config import ApprovalConfig
from storenode.lanes.basket import TENDER, Item, LaneState


@dataclass(frozen=True)
class Needed:
    action: str  # as journaled: void | cancel | endofday | return | label | stock | price | discount
    what: str  # the action in words, for the refusal
    why: str
    detail: str  # what the journal keeps with the approver


def void(state: LaneState, no: int) -> Needed | None:
    if state.status != TENDER:
        return None
    return Needed("void", f"voiding line {no}", "the sale is already totalled", f"line {no}")


def cancel(state: LaneState) -> Needed | None:
    if not state.lines:
        return None
    count = len(state.lines)
    return Needed("cancel", f"cancelling sale {state.sale_id}", f"it has {count} line(s)", f"{count} lines")


def end_of_day(terminal: str) -> Needed:
    return Needed("endofday", f"the end of day of {terminal}", "it closes the terminal's batch", terminal)


def receiptless(state: LaneState) -> int:
    """What the sale's returned lines (a sale that is not a refund of a receipt) pay back, in minor units."""
    if state.refund_of:
        return 0
    return -sum(line.amount for line in state.lines if line.amount < 0 and not line.voided)


def returned(
    before: LaneState,
    after: LaneState,
    config: ApprovalConfig,
    currency: str,
    *,
    price_label: bool,
    refunded_on: str | None = None,
) -> Needed | None:
    """A receipt-less return just added (the last line of `after`); `refunded_on`: a receipt the store
    lately refunded the same item on (storenode.lanes.refunds.refunded_on_receipt)."""
    line = after.lines[-1]
    amount = format_money(-line.amount, currency)
    detail = f"line {line.no} {line.code} {amount}"
    what = f"returning {line.name} without a receipt"
    if price_label:
        return Needed("return", what, "its price comes from a price label", detail)
    if refunded_on:
        why = f"{line.name} went back on receipt {refunded_on} lately: it may be paid back twice"
        return Needed("return", what, why, f"{detail} (refunded on {refunded_on})")
    back = receiptless(after)
    if back <= config.receiptless_returns:
        return None
    limit = format_money(config.receiptless_returns, currency)
    why = f"{format_money(back, currency)} would go back without a receipt, more than {limit}"
    return Needed("return", f"returning {line.name} for {amount}", why, detail)


def label(item: Item, price: int, config: ApprovalConfig, currency: str) -> Needed | None:
    """A price-embedded label sold: within the item's allowed range, or a supervisor's approval."""
    factor = config.label_factor
    shown = format_money(price, currency)
    what, detail = f"selling {item.name} at {shown} from its label", f"{item.item} {shown}"
    if item.price <= 0:
        return Needed("label", what, f"{item.name} has no price here to check the label against", detail)
    usual = format_money(item.price, currency)
    if price > item.price * factor:
        return Needed("label", what, f"more than {factor} times its price {usual}", detail)
    if not item.weighed and price * factor < item.price:
        return Needed("label", what, f"less than 1/{factor} of its price {usual}", detail)
    return None


def stock(change: int, config: ApprovalConfig, what: str) -> Needed | None:
    if abs(change) <= config.stock_moves:
        return None
    return Needed("stock", what, f"it changes the stock by {change}, more than {config.stock_moves}", f"{change:+d}")


def manual_price(line: RecordLine, price: int, currency: str) -> Needed:
    """A line's unit price typed at the till: always a supervisor's."""
    shown = format_money(price, currency)
    return Needed(
        "price",
        f"selling line {line.no} ({line.name}) at {shown} by hand",
        "a price typed at the till",
        f"line {line.no} {line.item} {shown}",
    )


def discount(what: str, shown: str, cut: int, whole: int, limit: int, detail: str) -> Needed | None:
    """A manual discount taking `cut` off what costs `whole` (the cashier's discounts of it together):
    beyond `limit` (hundredths of a percent, of `whole` rounded half up as a discount's percent is) a
    supervisor's."""
    if cut <= round_half_up(limit * whole, 10_000):
        return None
    return Needed(
        "discount", f"a discount of {shown} on {what}", f"it is more than the cashier's {format_rate(limit)}", detail
    )
