"""The scanner line decoder on its own: bytes in, scans out, however the bytes are split."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.scanner import MAX_LINE, ScanEvent, ScannerDecoder, aim_symbology


def feed_all(decoder: ScannerDecoder, *chunks: bytes) -> list[ScanEvent]:
    events: list[ScanEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    return events


def codes(events: list[ScanEvent]) -> list[str]:
    return [e.code for e in events]


@pytest.mark.parametrize(
    ("terminator", "wire"),
    [
        ("auto", b"4006381333931\r7310865004703\r"),
        ("auto", b"4006381333931\n7310865004703\n"),
        ("auto", b"4006381333931\r\n7310865004703\r\n"),
        ("auto", b"4006381333931\n\r7310865004703\n\r"),
        ("CR", b"4006381333931\r7310865004703\r"),
        ("CR", b"4006381333931\r\n7310865004703\r\n"),  # a CRLF scanner on a CR host still works
        ("LF", b"4006381333931\n7310865004703\n"),
        ("LF", b"4006381333931\r\n7310865004703\r\n"),
        ("CRLF", b"4006381333931\r\n7310865004703\r\n"),
    ],
)
def test_terminators(terminator: str, wire: bytes) -> None:
    assert codes(ScannerDecoder(terminator).feed(wire)) == ["4006381333931", "7310865004703"]


def test_crlf_mode_needs_the_lf() -> None:
    decoder = ScannerDecoder("CRLF")
    assert decoder.feed(b"12\r34\r") == []
    assert codes(decoder.feed(b"\n")) == ["1234"]


def test_crlf_in_auto_mode_split_between_reads_is_one_scan() -> None:
    decoder = ScannerDecoder("auto")
    assert codes(feed_all(decoder, b"4006381333931\r", b"\n", b"7310865004703\r", b"\n")) == [
        "4006381333931",
        "7310865004703",
    ]


def test_unknown_terminator_is_refused() -> None:
    with pytest.raises(ValueError, match="terminator"):
        ScannerDecoder("NUL")


@given(st.lists(st.integers(min_value=1, max_value=40), max_size=12), st.sampled_from(["auto", "CR", "CRLF"]))
def test_split_reads_change_nothing(cuts: list[int], terminator: str) -> None:
    wire = b"]E04006381333931\r\n]C0ABC-123\x1d42\r\n]Q1https://example.com/x?y=1\r\n"
    decoder = ScannerDecoder(terminator, aim=True)
    chunks, rest = [], wire
    for cut in cuts:
        chunks.append(rest[:cut])
        rest = rest[cut:]
    chunks.append(rest)
    assert feed_all(decoder, *chunks) == [
        ScanEvent("4006381333931", "EAN-13"),
        ScanEvent("ABC-123\x1d42", "Code 128"),
        ScanEvent("https://example.com/x?y=1", "QR Code"),
    ]


@pytest.mark.parametrize(
    ("identifier", "name"),
    [
        ("E0", "EAN-13"),
        ("E4", "EAN-8"),
        ("A0", "Code 39"),
        ("C0", "Code 128"),
        ("C1", "GS1-128"),
        ("Q1", "QR Code"),
        ("d2", "GS1 DataMatrix"),
        ("I1", "Interleaved 2 of 5"),
        ("W9", "]W9"),
    ],
)
def test_aim_names(identifier: str, name: str) -> None:
    assert aim_symbology(identifier) == name
    assert ScannerDecoder(aim=True).feed(f"]{identifier}12345\r".encode()) == [ScanEvent("12345", name)]


def test_aim_off_keeps_the_prefix_as_data() -> None:
    assert ScannerDecoder(aim=False).feed(b"]E04006381333931\r") == [ScanEvent("]E04006381333931", None)]


def test_aim_on_without_prefix_keeps_the_code() -> None:
    assert ScannerDecoder(aim=True).feed(b"4006381333931\r") == [ScanEvent("4006381333931", None)]


def test_aim_identifier_without_data_is_dropped() -> None:
    decoder = ScannerDecoder(aim=True)
    assert decoder.feed(b"]E0\r]E\r1\r") == [ScanEvent("1", None)]
    assert decoder.dropped == 2


def test_empty_lines_are_ignored() -> None:
    assert codes(ScannerDecoder().feed(b"\r\r\n\n\r\n123\r\r")) == ["123"]


def test_noise_on_an_idle_line_is_skipped() -> None:
    decoder = ScannerDecoder()
    assert codes(decoder.feed(b"\x00\xff\x13\x1b4006381333931\r")) == ["4006381333931"]
    assert decoder.dropped == 0


def test_a_line_with_noise_inside_is_dropped_not_repaired() -> None:
    decoder = ScannerDecoder()
    assert codes(decoder.feed(b"400638\x00\xff1333931\r7310865004703\r")) == ["7310865004703"]
    assert decoder.dropped == 1


def test_group_separator_is_data() -> None:
    # FNC1 in GS1 barcodes: the end of a variable-length element string, so it must survive.
    assert codes(ScannerDecoder().feed(b"0107310865004703\x1d10ABC\r")) == ["0107310865004703\x1d10ABC"]


def test_over_long_line_is_dropped_up_to_its_terminator() -> None:
    decoder = ScannerDecoder()
    assert decoder.feed(b"9" * (MAX_LINE + 1)) == []
    assert decoder.feed(b"99999" * 10) == []
    assert codes(decoder.feed(b"999\r4006381333931\r")) == ["4006381333931"]
    assert decoder.dropped == 1


def test_line_of_exactly_max_length_is_delivered() -> None:
    assert codes(ScannerDecoder().feed(b"7" * MAX_LINE + b"\r")) == ["7" * MAX_LINE]


def test_partial_line_after_a_pause_is_dropped_as_truncated() -> None:
    decoder = ScannerDecoder(max_gap=0.25)
    assert decoder.feed(b"40063", now=10.0) == []
    assert codes(decoder.feed(b"7310865004703\r", now=10.5)) == ["7310865004703"]
    assert decoder.dropped == 1


def test_partial_line_continued_promptly_is_kept() -> None:
    decoder = ScannerDecoder(max_gap=0.25)
    assert decoder.feed(b"40063", now=10.0) == []
    assert codes(decoder.feed(b"81333931\r", now=10.1)) == ["4006381333931"]


def test_pauses_between_lines_are_fine() -> None:
    decoder = ScannerDecoder(max_gap=0.25)
    assert codes(decoder.feed(b"1\r", now=1.0)) == ["1"]
    assert codes(decoder.feed(b"2\r", now=100.0)) == ["2"]
    assert decoder.dropped == 0


def test_without_times_no_pause_rule_applies() -> None:
    decoder = ScannerDecoder(max_gap=0.25)
    assert codes(feed_all(decoder, b"400", b"6\r")) == ["4006"]


def test_reset_forgets_a_partial_line() -> None:
    decoder = ScannerDecoder()
    decoder.feed(b"40063")
    decoder.reset()
    assert codes(decoder.feed(b"7\r")) == ["7"]
