"""Which of an item's prices applies: one rule for central (price lists, exports) and the stores
(scans, price checks), so a shelf label printed from central and the till agree.

Order: a store campaign, then a chain campaign, then the store's standing price, then the chain
price. A campaign runs from its start (inclusive) to its end (exclusive), in epoch ms, on the clock
of whoever asks: a store activates a campaign it received days ago on time while offline. When
campaigns of the same rank overlap, the lowest price wins: the shelf may show either, and the
customer gets the better one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

CHAIN = ""  # the store column of a chain-wide price


class PriceRule(NamedTuple):
    store: str  # CHAIN or a store id
    starts: int
    ends: int  # 0 (with starts 0): a standing price
    price: int


class Applied(NamedTuple):
    price: int
    ends: int  # when the applied price stops (a campaign's end); 0 for a standing price


def applicable(rules: Iterable[PriceRule], store: str, at_ms: int) -> Applied | None:
    best: tuple[int, int, int, int] | None = None  # (standing?, chain?, price, ends): smallest wins
    for rule in rules:
        if rule.store not in (CHAIN, store):
            continue
        standing = rule.ends == 0
        if not standing and not rule.starts <= at_ms < rule.ends:
            continue
        rank = (int(standing), int(rule.store == CHAIN), rule.price, rule.ends)
        if best is None or rank < best:
            best = rank
    return None if best is None else Applied(best[2], best[3])
