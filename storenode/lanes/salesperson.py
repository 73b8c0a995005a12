"""The sale's salesperson (issue 14): whose sale it is for commission and follow-up, beside the operator who
works the till. Decisions only, as pure functions of the lane's state, store.toml's `[sales] salesperson`
and what the lane read from the operator register; the lane reads, saves and publishes (storenode.lanes.lane).

Rules:
- `off` (the default): the command is refused, so a till cannot put a number on a sale the store never asks
  for (nothing would check or report it).
- `optional`: a number may be entered (or cleared) until the sale closes.
- `required`: as optional, and the sale cannot be totalled or paid without one: the lane refuses Total and
  every tender until it has one (a refund too: its salesperson takes the commission back).
- Who may be a salesperson: any operator the store's register lets work at this store (the same look-up a
  login makes, storenode.operators.find), whatever the role. No PIN: the salesperson is named, not logged in,
  and naming someone gives them nothing but the sale on their figures.
- When: on a lane with no sale the number opens the sale it is for, so it is saved with that sale (a
  `kill -9` right after keeps it: the sale survives a restart, a lane merely ready does not); during a sale it
  may be changed until the sale closes. The journal record carries it (SaleRecord.salesperson), and so do the
  receipt and central's listing.
"""

from __future__ import annotations

import msgspec

from runtime.mailbox import Rejected
from storenode.lanes import basket
from storenode.lanes.basket import OPEN, READY, TENDER, LaneState
from storenode.operators import Operator


def number_of(text: str) -> str:
    """The number as typed, refused before anything is looked up when it cannot be an operator number."""
    number = text.strip()
    if len(number) > 32 or not number.isprintable():
        raise Rejected("bad_salesperson", "a salesperson is an operator number, such as 17")
    return number


def enter(state: LaneState, number: str, mode: str, found: Operator | None, sale_id: str, now_ms: int) -> LaneState:
    """The lane with the sale's salesperson set to `number` (`found`: who the register says that is, or None),
    or cleared when `number` is empty. A lane with no sale opens one (`sale_id`) to hold it."""
    if mode == "off":
        raise Rejected(
            "salesperson_off", "this store does not take a salesperson on its sales ([sales] salesperson = off)"
        )
    basket.require_operator(state)
    if state.status not in (READY, OPEN, TENDER):
        raise Rejected("no_sale", "no sale is open")
    if not number:
        if mode == "required":
            raise Rejected("salesperson_needed", "this store needs a salesperson on every sale: enter another number")
        return msgspec.structs.replace(state, salesperson="")
    if found is None:
        raise Rejected("unknown_salesperson", f"{number} is not an operator of this store")
    current = basket.open_sale(state, sale_id, now_ms) if state.status == READY else state
    return msgspec.structs.replace(current, salesperson=found.number)


def require(state: LaneState, mode: str) -> None:
    """Refuse totalling or paying a sale without a salesperson where the store requires one."""
    if mode == "required" and state.status in (OPEN, TENDER) and not state.salesperson:
        raise Rejected(
            "salesperson_needed",
            "this store needs a salesperson on every sale: enter one (salesperson <number>) before total or payment",
        )
