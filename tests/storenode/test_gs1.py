"""GS1 variable-measure labels: decoded purely, and sold at a lane without a scale."""

from __future__ import annotations

import pytest
import trio

from protocol.frames import Error, Login, SaleState, Scan
from protocol.gs1 import Gs1Config, Measured, check_digit, decode, valid
from storenode.app import StoreNode
from till.client import connect

CONFIG = Gs1Config()


@pytest.mark.parametrize(
    ("body", "digit"), [("731000000001", "0"), ("400638133393", "1"), ("9638507", "4"), ("03600029145", "2")]
)
def test_check_digit_ean13_ean8_upca(body: str, digit: str) -> None:
    assert check_digit(body) == digit
    assert valid(body + digit)
    assert not valid(body + str((int(digit) + 1) % 10))


def test_decode_weight_and_price_labels() -> None:
    assert decode("2300005005320", CONFIG) == Measured(key="2300005", weight_g=532)
    assert decode("2100005015004", CONFIG) == Measured(key="2100005", price=1500)
    assert decode("2300005005321", CONFIG) is None  # wrong check digit: not a label
    assert decode("7310000000010", CONFIG) is None  # an ordinary EAN-13
    assert decode("2900005005322", CONFIG) is None  # prefix 29 not configured as variable measure
    assert decode("2900005005322", Gs1Config(weight_prefixes=["29"])) == Measured(key="2900005", weight_g=532)


async def test_labels_sell_at_a_lane_without_a_scale(store: StoreNode) -> None:
    with trio.fail_after(20):
        async with connect(store.url, lane=2, till="T2") as till:
            await till.request(Login(operator="1", pin="1234"))
            weighed = await till.request(Scan(code="2300005005320"))
            assert isinstance(weighed, SaleState)
            line = weighed.lines[-1]
            assert (line.name, line.weight_g, line.amount) == ("Bananas", 532, 1327)
            priced = await till.request(Scan(code="2100005015004"))
            assert isinstance(priced, SaleState)
            assert (priced.lines[-1].amount, priced.lines[-1].weight_g) == (1500, 601)  # 15.00 at 24.95/kg
            no_scale = await till.request(Scan(code="7310000000058"))  # the plain barcode needs the scale
            assert isinstance(no_scale, Error) and no_scale.code == "no_scale"
            piece = await till.request(Scan(code="2300001005328"))  # key of no item
            assert isinstance(piece, Error) and piece.code == "unknown_barcode"
