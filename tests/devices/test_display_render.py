"""Customer display bytes and 2 x 20 fitting, checked through the simulator's screen model."""

from __future__ import annotations

from devices.display import (
    WIDTH,
    change_lines,
    displayable,
    fit,
    initialise,
    item_lines,
    pair,
    render,
    right,
    total_lines,
)
from devices.sim.display import Screen


def shown(*frames: bytes) -> tuple[str, str]:
    screen = Screen()
    for frame in frames:
        screen.feed(frame)
    return screen.lines


def test_initialise_is_the_documented_sequence() -> None:
    # ESC @, ESC t 2 (PC850), US MD1 (overwrite), US C 0 (cursor off), CLR
    assert initialise() == b"\x1b@\x1bt\x02\x1f\x01\x1fC\x00\x0c"


def test_render_positions_both_lines_explicitly() -> None:
    data = render("Milk", "12.50")
    assert data.startswith(b"\x1f$\x01\x01Milk")
    assert b"\x1f$\x01\x02" in data
    assert len(data) == 2 * (4 + WIDTH)


def test_item_on_screen() -> None:
    assert shown(initialise(), render(*item_lines("Milk 1 l", "12.50"))) == (
        "Milk 1 l            ",
        "               12.50",
    )


def test_new_frame_fully_replaces_a_longer_old_one() -> None:
    first = render(*item_lines("Organic whole milk 1.5 l", "123 456.00"))
    second = render(*item_lines("Egg", "3.00"))
    assert shown(initialise(), first, second) == ("Egg".ljust(WIDTH), "3.00".rjust(WIDTH))


def test_total_and_change_on_screen() -> None:
    assert shown(initialise(), render(*total_lines("123.50"))) == ("TOTAL".ljust(20), "123.50".rjust(20))
    assert shown(initialise(), render(*change_lines("200.00", "76.50"))) == (
        "PAID          200.00",
        "CHANGE         76.50",
    )


def test_labels_can_be_localised() -> None:
    lines = change_lines("200.00", "76.50", paid_label="Betalt", change_label="Växel")
    assert shown(initialise(), render(*lines)) == ("Betalt        200.00", "Växel          76.50")


def test_nordic_letters_go_out_in_pc850() -> None:
    data = render("Räksmörgås", "")
    assert "Räksmörgås".encode("cp850") in data
    assert shown(initialise(), data)[0] == "Räksmörgås".ljust(20)


def test_without_initialise_the_display_would_show_pc437() -> None:
    # The code page matters: without ESC t 2 the same bytes read differently (this guards the choice).
    assert shown(render("Ø", ""))[0][0] != "Ø"
    assert shown(initialise(), render("Ø", ""))[0][0] == "Ø"


def test_long_names_are_cut_and_lines_are_exactly_twenty() -> None:
    top, bottom = item_lines("Ekologisk mellanmjölk 1,5 % 1 liter", "19.90")
    assert top == "Ekologisk mellanmjöl"
    assert len(top) == len(bottom) == WIDTH


def test_amounts_are_never_cut() -> None:
    assert right("1" * 21) == "*" * 20
    assert pair("TOTAL", "1" * 25) == "*" * 20
    assert pair("Extraordinarily long label", "1234.50") == "Extraordinar 1234.50"
    assert pair("X", "1" * 20) == "1" * 20


def test_transliteration_happens_before_fitting() -> None:
    # "€" becomes "EUR": the name grows, the amount still sits at the right edge.
    _top, bottom = change_lines("€€€€€€€€€€€€€€€€€€€€", "5.00")
    assert bottom.endswith("5.00") and len(bottom) == WIDTH
    assert fit("Price in €") == "Price in EUR".ljust(20)


def test_unmappable_and_control_characters() -> None:
    assert displayable("Crème brûlée") == "Crème brûlée"  # all in PC850
    assert displayable("Łódź") == "?ódz"
    assert displayable("a\x1b@b\nc\x0cd") == "a@b c d"  # never a command from an item name (protocol.text)
    assert displayable("\u201cquoted\u201d \u2013 ok\u2026") == '"quoted" - ok...'
    for ch in displayable("☃ Ω ≈ ✓ \u0301 \u00ad"):
        ch.encode("cp850")  # every result encodes, one byte each
    assert len(displayable("☃Ω≈✓").encode("cp850")) == 4


def test_screen_model_handles_split_commands() -> None:
    data = initialise() + render("Split", "frames")
    screen = Screen()
    for i in range(len(data)):
        screen.feed(data[i : i + 1])
    assert screen.lines == ("Split".ljust(20), "frames".ljust(20))
