"""The terminal till's park, parked, resume and training commands: parsed, shown, and a scripted session
against a real store node (two lanes, real websockets, no central)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from protocol.frames import Park, ParkedList, ParkedQuery, ParkedSale, Resume, SaleState, Training
from tests.kit.nodes import T0, start_store
from tests.kit.payments import COFFEE, MILK
from till.terminal import InputError, parse, run_till, show, show_state


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("park", Park()),
        ("parked", ParkedQuery()),
        ("resume P12", Resume(id="P12")),
        ("RESUME s001-p3", Resume(id="s001-p3")),
        ("training on approve 2 4321", Training(on=True, approver="2", approver_pin="4321")),
        ("training off", Training(on=False)),
    ],
)
def test_parse(line: str, expected: object) -> None:
    assert parse(line, "SEK", 0) == expected


@pytest.mark.parametrize("line", ["park now", "resume", "resume P1 P2", "training", "training maybe", "parked 2"])
def test_parse_refuses(line: str) -> None:
    with pytest.raises(InputError):
        parse(line, "SEK", 0)


def test_parked_list_and_training_shown() -> None:
    listing = ParkedList(sales=[ParkedSale(id="P7", lane=2, operator="1", at=T0, lines=3, total=10170, currency="SEK")])
    text = show(listing, timezone="UTC")
    assert "1 parked" in text and "P7" in text and "lane 2" in text and "SEK 101.70" in text
    assert show(ParkedList()) == "no sales are parked in this store"
    state = SaleState(lane=1, status="ready", currency="SEK", operator="1", training=True)
    assert show_state(state).startswith("** TRAINING / ÖVNING ** [lane 1 | ready")
    assert "TRAINING" not in show_state(SaleState(lane=1, status="ready", currency="SEK"))


async def test_park_on_lane_1_and_resume_on_lane_2_from_the_terminal(tmp_path: Path, nursery: trio.Nursery) -> None:
    store = await start_store(tmp_path / "node", nursery)
    one, two = tmp_path / "one.txt", tmp_path / "two.txt"
    one.write_text(f"login 1 1234\n2*{MILK}\n{COFFEE}\npark\nparked\ntraining on\ntraining on approve 2 4321\nquit\n")
    two.write_text("login 2 4321\nparked\nresume P1\nresume P1\ncash\nresume P1\nquit\n")
    out: list[str] = []
    with trio.fail_after(30):
        assert await run_till(store.url, 1, "T1", one, read_stdin=False, out=out.append) == 0
        first = "\n".join(out)
        out.clear()
        assert await run_till(store.url, 2, "T2", two, read_stdin=False, out=out.append) == 0
        second = "\n".join(out)
    assert "sale parked as P1" in first and "1 parked" in first
    assert "! approval_needed: switching lane 1 into training mode needs a supervisor's approval" in first
    assert "** TRAINING / ÖVNING ** [lane 1 | ready" in first
    assert "resumed P1 (parked on lane 1) at its parked prices" in second
    assert "! already_resumed: parked sale P1 was resumed already" in second
    assert "! sale_open: finish or park sale" in second  # this lane has a sale now
    assert "-- receipt" in second
