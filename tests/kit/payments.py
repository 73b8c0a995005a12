"""Paying at a store node: the demo catalogue's codes, the ZVT simulator as lane 1's terminal, selling and
paying through a till, and a gift card's balance at central."""

from __future__ import annotations

from central.app import CentralNode
from central.registers import giftcards
from devices.sim.zvt import ZvtSimulator
from protocol.frames import CardTender, Login, SaleState, Scan
from tests.kit.waits import until
from till.client import TillClient

MILK, BUTTER, COFFEE = "7310000000010", "7310000000027", "7310000000034"
FULL_PAN = "4761739001010119"  # the simulator's card


def sim_terminal() -> ZvtSimulator:
    sim = ZvtSimulator(currency="SEK")
    sim.send_full_pan = True  # the hardest case: the terminal sends the whole number; the store must mask it
    return sim


async def pay_by_card(till: TillClient, command: CardTender | None = None) -> SaleState:
    """Start a card payment and wait for its outcome: the lane as it stands once it is no longer paying."""
    answer = await till.request(command or CardTender())
    assert isinstance(answer, SaleState) and answer.status == "paying", answer
    return await until(till, lambda s: s.status != "paying")


async def balance_of(central: CentralNode, card: str) -> int:
    found = await central.db.read(lambda c: giftcards.balance(c, card))
    assert found is not None
    return found.balance


async def selling(till: TillClient, *codes: str) -> None:
    await till.request(Login(operator="1", pin="1234"))
    for code in codes:
        await till.request(Scan(code=code))
