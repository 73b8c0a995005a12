"""How a sale's manual discounts price its lines: the one rule the lane, the receipt, the refunds and the
property tests share, applied to a journal record's lines and discounts (SaleRecord.lines/.discounts) or
a lane's sale in progress alike.

A sale's lines keep the prices they were scanned at; what was given off is kept beside them, in the
order given, and every amount after discounts is derived from the two by `net_amounts`. The journal
record holds both, so a receipt, a refund and an audit recompute exactly what the till showed.

How a sale's discounts apply (the documented rule; `net_amounts`):
1. Price overrides first: the line costs its new unit price times its quantity (a line weighed at the
   lane: the new kilo price for its weight, rounded half up to the minor unit; a price label: the new
   price of the label). Returned lines are never repriced nor discounted (the lane refuses it; here
   they simply take nothing).
2. Then line discounts, in the order given, each on what its line costs at that point: a percent
   rounded half up to the minor unit, an amount at most what is left of the line.
3. Then sale discounts (line 0), in the order given, each on what the sale's sold lines (those with a
   positive amount; returned lines are never discounted) cost at that point, and spread over those
   lines in proportion to what each costs, by largest remainder: every line gets the floor of its
   exact share, and the minor units left over go one each to the lines with the largest remainders
   (the lower line number first on a tie). So the parts add up to the discount exactly, no line ever
   goes below zero, and a line's share is fixed by the sale alone, whichever line is refunded first.
A discount of a line voided later is dropped with it (basket.void_line). An amount given off is bounded
again whenever the sale changes: it never takes a line or the sale below zero.

VAT is extracted per rate from the lines' amounts after discounts (basket.vat_breakdown): a discount
takes its VAT with it, at the rate of the lines it lands on.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from protocol.frames import RecordDiscount, RecordLine
from protocol.money import format_money, format_rate, round_half_up

PERCENT_SCALE = 10_000  # a percent in hundredths: 1000 = 10.00 %
PERCENT, AMOUNT, PRICE = "percent", "amount", "price"


def spread(amount: int, weights: dict[int, int]) -> dict[int, int]:
    """`amount` split over the keys of `weights` in proportion to them, by largest remainder (see above):
    the parts add up to `amount` exactly and none exceeds its weight when `amount` does not exceed their sum."""
    whole = sum(weights.values())
    if not amount or whole <= 0:
        return dict.fromkeys(weights, 0)
    parts = {no: amount * weight // whole for no, weight in weights.items()}
    left = amount - sum(parts.values())
    by_remainder = sorted(weights, key=lambda no: (-(amount * weights[no] % whole), no))
    for no in by_remainder[:left]:
        parts[no] += 1
    return parts


def _overridden(line: RecordLine, price: int) -> int:
    """What a line costs at a unit price set by hand, in the terms its unit price is in: per kg for a line
    weighed at a scale (its amount is not its unit price: the kilo price for its weight), else per piece,
    which is also a price label's (its unit price is the label's price, whatever grams it stands for)."""
    if line.weight_g and line.unit_price * line.qty != line.amount:
        return round_half_up(price * line.weight_g, 1000) * line.qty
    return price * line.qty


def net_amounts(
    lines: Sequence[RecordLine], discounts: Sequence[RecordDiscount]
) -> tuple[dict[int, int], list[RecordDiscount]]:
    """What each live line costs after the discounts (by line number), and the discounts with the amount
    each takes off as the sale stands (the module's rule)."""
    net = {line.no: line.amount for line in lines if not line.voided}
    if not discounts:
        return net, []
    by_no = {line.no: line for line in lines if not line.voided}
    taken: dict[int, int] = {}  # index in `discounts` -> amount taken off
    ordered = sorted(range(len(discounts)), key=lambda i: (_stage(discounts[i]), i))
    for i in ordered:
        given = discounts[i]
        line = by_no.get(given.line)
        if given.kind == PRICE:
            if line is None or line.qty <= 0:  # a returned line goes back at what it cost: never repriced
                taken[i] = 0
                continue
            new = _overridden(line, given.value)
            taken[i] = net[line.no] - new
            net[line.no] = new
        elif given.line:
            base = net.get(given.line, 0)
            cut = off(given, base) if line is not None else 0
            taken[i] = cut
            if cut:
                net[given.line] = base - cut
        else:
            sold = {no: amount for no, amount in net.items() if amount > 0}
            cut = off(given, sum(sold.values()))
            taken[i] = cut
            for no, part in spread(cut, sold).items():
                net[no] -= part
    return net, [msgspec.structs.replace(d, amount=taken[i]) for i, d in enumerate(discounts)]


def _stage(given: RecordDiscount) -> int:
    """The order of the rule: price overrides, then line discounts, then sale discounts."""
    return 0 if given.kind == PRICE else 1 if given.line else 2


def off(given: RecordDiscount, base: int) -> int:
    """What a percent or amount discount takes off `base`: never more than all of it, nothing off nothing."""
    if base <= 0:
        return 0
    if given.kind == PERCENT:
        return min(base, round_half_up(base * given.value, PERCENT_SCALE))
    return min(base, given.value)


def label(given: RecordDiscount, currency: str) -> str:
    """How a discount reads on a receipt or a till: what kind, how much, and its reason code."""
    if given.kind == PRICE:
        return f"Price {format_money(given.value, currency)} ({given.reason})"
    if given.kind == PERCENT:
        return f"Discount {format_rate(given.value)} ({given.reason})"
    return f"Discount ({given.reason})"
