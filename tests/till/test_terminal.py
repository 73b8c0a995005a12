"""The terminal till: line parsing, and a scripted session against a real store node."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
import trio

from central.app import CentralNode
from central.registers.catalog import Barcode, Item, Price, VatRate
from protocol.frames import (
    CancelSale,
    CardTender,
    CashTender,
    DiscountLine,
    EndOfDay,
    Found,
    GiftCardQuery,
    GiftCardTender,
    GiveDiscount,
    InvoiceTender,
    ItemInfo,
    ItemSearch,
    Line,
    Login,
    Logout,
    OverridePrice,
    PriceCheck,
    QuickKey,
    RefundOf,
    ResolvePayment,
    ReturnItem,
    SaleState,
    Scan,
    SearchResult,
    SetAside,
    StartSale,
    StatusRequest,
    TerminalReport,
    TerminalTotal,
    Total,
    VoidLine,
)
from runtime.clock import FixedClock
from storenode.app import StoreNode
from tests.kit.catalog import commit
from tests.kit.nodes import HOUR, T0, enrolled, make_store_config
from till.terminal import InputError, parse, run_till, show, show_state


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("7310000000010", Scan(code="7310000000010")),
        ("  7310000000010\r\n", Scan(code="7310000000010")),  # a keyboard-wedge scanner's CRLF
        ("3*7310000000010", Scan(code="7310000000010", qty=3)),
        ("scan 123 4", Scan(code="123", qty=4)),
        ("login 1 1234", Login(operator="1", pin="1234")),
        ("login 2 4321 take", Login(operator="2", pin="4321", take_sale=True)),
        ("LOGOUT", Logout()),
        ("start", StartSale()),
        ("void 2", VoidLine(line=2)),
        ("total", Total()),
        ("cash", CashTender(amount=19100)),
        ("cash 200", CashTender(amount=20000)),
        ("cash 12,50", CashTender(amount=1250)),
        ("cancel", CancelSale()),
        ("status", StatusRequest()),
        ("find ban", ItemSearch(text="ban")),
        ("FIND  Ban   Fre ", ItemSearch(text="Ban Fre")),  # the words as typed, however spaced
        ("price 7310000000218", PriceCheck(code="7310000000218")),
        ("help", "help"),
        ("quit", "quit"),
        ("# a comment", None),
        ("   ", None),
    ],
)
def test_parse(line: str, expected: object) -> None:
    assert parse(line, "SEK", 19100) == expected


@pytest.mark.parametrize(
    "line", ["bogus", "void x", "cash 1.234", "login 1", "3*", "scan", "cash 1e2", "find", "price", "price 1 2"]
)
def test_parse_refuses_with_a_reason(line: str) -> None:
    with pytest.raises(InputError, match=r"cannot read|unknown command"):
        parse(line, "SEK", 0)


async def test_scripted_session(store: StoreNode, tmp_path: Path) -> None:
    script = tmp_path / "s.txt"
    script.write_text("login 1 1234\n2*7310000000034\n7310000000010\nvoid 2\ntotal\ncash\nquit\nnever 1\n")
    out: list[str] = []
    with trio.fail_after(20):
        rc = await run_till(store.url, 1, "T1", script, read_stdin=False, out=out.append)
    text = "\n".join(out)
    assert rc == 0
    assert "[lane 1 | tender | operator 1 | online] to pay SEK 140.00" in text
    assert "Cash rounding                         0.10" in text  # 139.90 is paid as 140.00 in cash
    assert "-- receipt 1 done, change 0.00" in text
    assert "never" not in text  # quit ended the script


@pytest.mark.e2e  # seconds of the till's real reconnect backoff
async def test_unreachable_store_gives_up_with_a_message(tmp_path: Path) -> None:
    out: list[str] = []
    with trio.fail_after(30):
        rc = await run_till("ws://127.0.0.1:9", 1, "T1", None, read_stdin=False, out=out.append)
    assert rc == 1 and "cannot reach the store" in out[-1]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("card", CardTender()),
        ("card 50", CardTender(amount=5000)),
        ("cash 50 part", CashTender(amount=5000, part=True)),
        ("cash 10 eur", CashTender(amount=1000, currency="EUR")),
        ("cash 10 EUR part", CashTender(amount=1000, currency="EUR", part=True)),
        ("giftcard GC-1", GiftCardTender(card="GC-1")),
        ("giftcard GC-1 25", GiftCardTender(card="GC-1", amount=2500)),
        ("balance GC-1", GiftCardQuery(card="GC-1")),
        ("invoice C-77", InvoiceTender(customer="C-77")),
        ("resolve", ResolvePayment()),
        ("refund S001-1-42", RefundOf(receipt="S001-1-42")),
        ("setaside 2 4321 terminal replaced", SetAside(operator="2", pin="4321", reason="terminal replaced")),
        ("endofday", EndOfDay()),
        ("endofday approve 2 4321", EndOfDay(approver="2", approver_pin="4321")),
        ("void 3 approve 2 4321", VoidLine(line=3, approver="2", approver_pin="4321")),
        ("cancel APPROVE 7 0042", CancelSale(approver="7", approver_pin="0042")),
        (
            "return 7310000000010 3 approve 2 4321",
            ReturnItem(code="7310000000010", qty=3, approver="2", approver_pin="4321"),
        ),
    ],
)
def test_payment_commands(line: str, expected: object) -> None:
    assert parse(line, "SEK", 19100) == expected


@pytest.mark.parametrize(
    "line",
    [
        "cash 10 EUR USD",
        "cash 10 part part",
        "card x",
        "giftcard",
        "refund",
        "setaside 2 4321",
        "endofday 1",
        "total approve 2 4321",
    ],
)
def test_bad_payment_commands(line: str) -> None:
    with pytest.raises(InputError):
        parse(line, "SEK", 0)


def test_end_of_day_is_shown_with_its_card_groups() -> None:
    report = TerminalReport(
        lane=1, terminal="terminal-1", ok=True, currency="SEK", total=8585, count=2,
        totals=[TerminalTotal(card="Visa", count=2, amount=8585)], text="Kassenschnitt",
    )  # fmt: skip
    assert show(report) == "end of day at terminal-1: done, 2 payments, SEK 85.85\n  Visa: 2, 85.85\nKassenschnitt"


LAGER = "7310000000218"  # the demo catalogue's item with a pop-up text


def test_a_pop_up_is_the_last_line_of_the_lane() -> None:
    state = SaleState(lane=1, status="open", currency="SEK", message="Lager 16.95", popup="Check age: 18+")
    assert show_state(state).splitlines()[-1] == "!! Check age: 18+"
    assert "!!" not in show_state(msgspec.structs.replace(state, popup=""))


def test_found_items_with_and_without_a_price() -> None:
    found = SearchResult(
        text="ban",
        items=[
            Found(item="1005", name="Bananas", code="2300005", price=2495, unit="kg"),
            Found(item="1099", name="Banana bread", code="7310000000300"),
        ],
    )
    lines = show(found, currency="SEK").splitlines()
    assert lines[0] == "found 2 for 'ban':"
    assert "Bananas" in lines[1] and "2300005" in lines[1] and lines[1].endswith("24.95/kg")
    assert "Banana bread" in lines[2] and lines[2].endswith("no price")
    assert show(SearchResult(text="xyz"), currency="SEK") == "nothing found for 'xyz'"


def test_a_campaign_end_reads_in_the_store_zone_when_the_till_knows_it() -> None:
    info = ItemInfo(
        item="1021",
        name="Lager",
        code=LAGER,
        price=1295,
        currency="SEK",
        vat_rate=1200,
        campaign_ends=T0,  # 2026-11-18T11:06:40Z
        popup="Check age: 18+",
        warranty="none",
    )
    text = show(info, timezone="Europe/Stockholm")
    assert text.splitlines() == [
        f"Lager (1021, {LAGER}): SEK 12.95 (VAT 12%)",
        "  campaign price until 2026-11-18 12:06 CET",
        "  !! Check age: 18+",
        "  warranty: none",
    ]
    assert "campaign price until 2026-11-18T11:06:40Z" in show(info)
    assert "campaign price until 2026-11-18T11:06:40Z" in show(info, timezone="Mars/Olympus_Mons")
    unpriced = show(msgspec.structs.replace(info, price=-1, campaign_ends=0))
    assert unpriced.splitlines()[0] == f"Lager (1021, {LAGER}): no price"


async def test_find_price_check_and_pop_up_in_a_session(store: StoreNode, tmp_path: Path) -> None:
    script = tmp_path / "s.txt"
    script.write_text(f"find lag\nprice {LAGER}\nprice 999\nlogin 1 1234\n{LAGER}\n7310000000010\nquit\n")
    out: list[str] = []
    with trio.fail_after(20):
        rc = await run_till(store.url, 1, "T1", script, read_stdin=False, out=out.append)
    text = "\n".join(out)
    assert rc == 0
    assert f"found 1 for 'lag':\n  Lager 3.5% 50 cl               {LAGER}         16.95" in text
    assert f"Lager 3.5% 50 cl (1021, {LAGER}): SEK 16.95 (VAT 12%)\n  !! Check age: 18+" in text
    assert "! unknown_barcode: no item has barcode 999" in text
    scanned = text.split(f"> {LAGER}\n")[1].split("> 7310000000010")[0]
    assert scanned.rstrip().endswith("!! Check age: 18+")  # shown with the scan that brought it
    assert text.count("!! Check age") == 2  # the price check's and the scan's; not the next scan's


async def test_a_campaign_from_central_ends_in_the_store_zone(
    tmp_path: Path, central: CentralNode, nursery: trio.Nursery
) -> None:
    config = msgspec.structs.replace(make_store_config(tmp_path, central_url=central.url), timezone="Asia/Tokyo")
    store = StoreNode(enrolled(config, central), clock=FixedClock(T0))
    with trio.fail_after(30):
        await nursery.start(store.run)
        await commit(central, "vat-rates", [VatRate(code="A", rate=1200)])
        await commit(central, "items", [Item(item="1021", name="Lager", vat_rate=1200)])
        await commit(central, "barcodes", [Barcode(code=LAGER, item="1021")])
        version = await commit(
            central,
            "prices",
            [
                Price(item="1021", price=1695, currency="SEK"),
                Price(item="1021", starts=T0 - HOUR, ends=T0 + HOUR, price=1295, currency="SEK"),
            ],
        )
        await store.catalog_follower.wait_version(version)
        script = tmp_path / "s.txt"
        script.write_text(f"price {LAGER}\n")
        out: list[str] = []
        await run_till(store.url, 1, "T1", script, read_stdin=False, out=out.append)
    assert "SEK 12.95 (VAT 12%)\n  campaign price until 2026-11-18 21:06 JST" in "\n".join(out)


def test_quick_keys_scan_their_item_by_number() -> None:
    keys = [QuickKey(label="Milk", code="7310000000010"), QuickKey(label="Bananas", code="2300005")]
    assert parse("key 2", "SEK", 0, keys) == Scan(code="2300005")
    assert parse("keys", "SEK", 0, keys) == "keys"
    with pytest.raises(InputError, match="quick keys 1 to 2"):
        parse("key 3", "SEK", 0, keys)
    with pytest.raises(InputError, match="no quick keys"):
        parse("key 1", "SEK", 0)


# -- issue 14, manual discounts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("discount line 2 10% DAMAGED", GiveDiscount(line=2, percent=1000, reason="DAMAGED")),
        ("discount line 2 12.5% DAMAGED", GiveDiscount(line=2, percent=1250, reason="DAMAGED")),
        ("discount 5.00 GOODWILL", GiveDiscount(amount=500, reason="GOODWILL")),
        (
            "discount 20% STAFF approve 2 4321",
            GiveDiscount(percent=2000, reason="STAFF", approver="2", approver_pin="4321"),
        ),
        (
            "price 1 12.50 PRICEMATCH approve 2 4321",
            OverridePrice(line=1, price=1250, reason="PRICEMATCH", approver="2", approver_pin="4321"),
        ),
        ("price 7310000000010", PriceCheck(code="7310000000010")),
    ],
)
def test_discount_commands(line: str, expected: object) -> None:
    assert parse(line, "SEK", 0) == expected


@pytest.mark.parametrize("line", ["discount line x 10% A", "discount 1e2% A", "discount 5,,0 A", "price 1 abc A"])
def test_bad_discount_commands_are_refused_before_sending(line: str) -> None:
    with pytest.raises(InputError):
        parse(line, "SEK", 0)


def test_the_till_shows_each_discount_and_the_total_after_them() -> None:
    state = SaleState(
        lane=1,
        status="open",
        currency="SEK",
        lines=[
            Line(
                no=1,
                item="1003",
                code="7310000000034",
                name="Coffee 450 g",
                qty=1,
                unit_price=6995,
                amount=6995,
                vat_rate=1200,
            )
        ],
        total=6295,
        discounts=[DiscountLine(line=1, kind="percent", value=1000, amount=700, reason="DAMAGED")],
    )
    text = show_state(state)
    assert "discount line 1 10% DAMAGED" in text and "-7.00" in text and "TOTAL SEK 62.95" in text
