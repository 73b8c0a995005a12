"""8217 frames: weights, status bits, and everything a noisy line can do to them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.scale import Reading, ScaleDecoder, ScaleStatus
from devices.sim.pty import VirtualPort
from devices.sim.scale import ScaleSim


def grams(frames: list[Reading | ScaleStatus]) -> list[int]:
    return [f.grams for f in frames if isinstance(f, Reading)]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"01.234", 1234),
        (b"00.000", 0),
        (b" 0.250", 250),
        (b"12.5", 12500),
        (b".500", 500),
        (b"001234", 1234),  # no decimal point: three implied decimals (kg)
        (b"01.234KG", 1234),
        (b"1.5 kg", 1500),
        (b"250G", 250),
        (b"01.000LB", 454),  # 453.59237 g
        (b"02.205lb", 1000),
        (b"01.234N", 1234),
        (b"-0.120", -120),
        (b"0.0005", 1),  # high resolution: rounded half up
    ],
)
def test_weights(body: bytes, expected: int) -> None:
    assert grams(ScaleDecoder().feed(b"\x02" + body + b"\r")) == [expected]


def test_pound_scales() -> None:
    assert grams(ScaleDecoder(unit="lb", decimals=2).feed(b"\x020220\r")) == [998]  # 2.20 lb


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (0x41, "motion"),
        (0x42, "over_capacity"),
        (0x44, "under_zero"),
        (0x48, "zero_error"),
        (0x50, "zero_weight"),  # centre of zero only: nothing on the scale
        (0x40, "zero_weight"),
        (0x43, "over_capacity"),  # over capacity and moving: take it off first
        (0x45, "under_zero"),
        (0xC1, "motion"),  # the parity bit does not matter
        (0x61, "motion"),  # neither does bit 5 (net weight on some scales, always 1 on others)
    ],
)
def test_status_bits(status: int, code: str) -> None:
    (frame,) = ScaleDecoder().feed(b"\x02?" + bytes([status]) + b"\r")
    assert isinstance(frame, ScaleStatus)
    assert frame.problem()[0] == code


def test_status_flags() -> None:
    (frame,) = ScaleDecoder().feed(b"\x02?\x5f\r")
    assert isinstance(frame, ScaleStatus)
    assert (frame.motion, frame.over_capacity, frame.under_zero, frame.outside_zero, frame.centre_of_zero) == (
        True,
        True,
        True,
        True,
        True,
    )


def test_noise_between_frames_is_skipped() -> None:
    decoder = ScaleDecoder()
    assert grams(decoder.feed(b"\xff\x00garbage\n\x0201.234\r\n\x13\x0200.500\r")) == [1234, 500]
    assert decoder.dropped == 0


def test_truncated_frame_is_dropped_at_the_next_stx() -> None:
    decoder = ScaleDecoder()
    assert grams(decoder.feed(b"\x0201.2\x0200.750\r")) == [750]
    assert decoder.dropped == 1


def test_unreadable_frames_are_dropped() -> None:
    decoder = ScaleDecoder()
    bad = [b"\x02abc\r", b"\x02\r", b"\x02?\r", b"\x02?AB\r", b"\x021.2.3\r", b"\x02--1\r", b"\x02 . \r"]
    assert decoder.feed(b"".join(bad) + b"\x0201.000\r") == [Reading(1000, "01.000")]
    assert decoder.dropped == len(bad)


def test_over_long_frame_is_dropped() -> None:
    decoder = ScaleDecoder()
    assert decoder.feed(b"\x02" + b"1" * 40 + b"\r\x0202.000\r") == [Reading(2000, "02.000")]
    assert decoder.dropped == 1


def test_unknown_unit_is_refused() -> None:
    with pytest.raises(ValueError, match="unit"):
        ScaleDecoder(unit="stone")


@given(st.lists(st.integers(min_value=1, max_value=9), max_size=10))
def test_split_reads_change_nothing(cuts: list[int]) -> None:
    wire = b"\x0201.234\r\x02?\x41\r\xff\x0200.050\r"
    decoder = ScaleDecoder()
    frames: list[Reading | ScaleStatus] = []
    rest = wire
    for cut in cuts:
        frames += decoder.feed(rest[:cut])
        rest = rest[cut:]
    frames += decoder.feed(rest)
    assert frames == [Reading(1234, "01.234"), ScaleStatus(0x41), Reading(50, "00.050")]


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ({"grams": 1234}, Reading(1234, "01.234")),
        ({"grams": 0}, Reading(0, "00.000")),
        ({"grams": 16000}, ScaleStatus(0x42)),
        ({"grams": -5}, ScaleStatus(0x44)),
        ({"grams": 500, "motion": True}, ScaleStatus(0x41)),
        ({"zero_error": True}, ScaleStatus(0x48)),
    ],
)
def test_simulator_frames_decode(setup: dict[str, object], expected: Reading | ScaleStatus) -> None:
    sim = ScaleSim(VirtualPort("/nonexistent/never-plugged"))
    for key, value in setup.items():
        setattr(sim, key, value)
    assert ScaleDecoder().feed(sim.frame()) == [expected]
