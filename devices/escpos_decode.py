"""ESC/POS bytes back into what a person reads on the paper, so tests assert on the receipt, not on bytes.

Two layers: `split_commands` cuts a byte stream into whole commands (text runs included) and says how much
it consumed, leaving an incomplete trailing command for the next chunk (the virtual printer feeds it a TCP
stream chunk by chunk); `decode` renders a complete stream as text. Only the commands our encoder and
python-escpos emit are understood in depth; any other command is skipped by its known length, and an
unknown one by its two-byte prefix, so garbage never raises and never loops.
"""

from __future__ import annotations

from typing import NamedTuple

from escpos.capabilities import CAPABILITIES

ESC, GS, DLE, FS = 0x1B, 0x1D, 0x10, 0x1C
_TEXT_END = frozenset({ESC, GS, DLE, FS, *range(0x00, 0x20)})


class Command(NamedTuple):
    name: str  # "text", "LF", "ESC @", "GS ( k", "DLE EOT", ... or "unknown"
    raw: bytes  # the command exactly as sent
    params: bytes  # what follows the command bytes (for "text": the text bytes)


# Parameter bytes after the command letter, for the fixed-length commands.
_ESC_FIXED = {
    b"@": 0, b"t": 1, b"E": 1, b"a": 1, b"!": 1, b"d": 1, b"p": 3, b"M": 1, b"-": 1, b"{": 1, b"G": 1,
    b"J": 1, b"V": 1, b"2": 0, b"3": 1, b"r": 1, b"R": 1, b"U": 1, b" ": 1, b"$": 2, b"\\": 2, b"e": 1,
    b"=": 1, b"L": 0, b"S": 0, b"T": 1, b"W": 8, b"i": 0, b"m": 0, b"%": 1, b"B": 2, b"?": 1, b"c": 2,
}  # fmt: skip
_GS_FIXED = {
    b"!": 1, b"h": 1, b"w": 1, b"H": 1, b"f": 1, b"B": 1, b"b": 1, b"L": 2, b"W": 2, b"a": 1, b"r": 1,
    b"I": 1, b"P": 2, b"$": 2, b"\\": 2, b"T": 1, b"/": 1, b"^": 3, b"E": 1,
}  # fmt: skip
_DLE_DC4_FIXED = {1: 2, 2: 2, 3: 2, 7: 1, 8: 7}  # DLE DC4 fn ...: bytes after fn
_CONTROLS = {0x0A: "LF", 0x0D: "CR", 0x09: "HT", 0x0C: "FF"}
_NEED_MORE = -1


def _size(data: bytes, i: int) -> int:
    """Length of the command starting at data[i] (a command byte), or _NEED_MORE if it is cut off."""
    n = len(data)
    if i + 1 >= n:
        return _NEED_MORE
    lead, op = data[i], data[i + 1 : i + 2]
    if lead == DLE:
        if op == b"\x04" or op == b"\x05":  # DLE EOT n, DLE ENQ n
            return 3 if i + 2 < n else _NEED_MORE
        if op == b"\x14":
            if i + 2 >= n:
                return _NEED_MORE
            size = 3 + _DLE_DC4_FIXED.get(data[i + 2], 0)
            return size if i + size <= n else _NEED_MORE
        return 1  # a lone DLE: not a command we know, skip the byte
    fixed = (_ESC_FIXED if lead == ESC else _GS_FIXED if lead == GS else {}).get(op)
    if fixed is not None:
        return 2 + fixed if i + 2 + fixed <= n else _NEED_MORE
    if lead == GS and op == b"V":  # GS V m [n]: functions B, C, D carry a feed amount
        if i + 2 >= n:
            return _NEED_MORE
        size = 4 if data[i + 2] in (65, 66, 97, 98, 103, 104) else 3
        return size if i + size <= n else _NEED_MORE
    if lead == GS and op == b"k":  # GS k m: function A data ends in NUL, function B has a length byte
        if i + 3 >= n:
            return _NEED_MORE
        m = data[i + 2]
        if m <= 6:
            end = data.find(b"\x00", i + 3)
            return _NEED_MORE if end < 0 else end + 1 - i
        size = 4 + data[i + 3]
        return size if i + size <= n else _NEED_MORE
    if lead == GS and op == b"(":  # GS ( x pL pH data
        if i + 4 >= n:
            return _NEED_MORE
        size = 5 + data[i + 3] + 256 * data[i + 4]
        return size if i + size <= n else _NEED_MORE
    if lead == GS and op == b"8":  # GS 8 L p1 p2 p3 p4 data
        if i + 6 >= n:
            return _NEED_MORE
        size = 7 + int.from_bytes(data[i + 3 : i + 7], "little")
        return size if i + size <= n else _NEED_MORE
    if lead == GS and op == b"v":  # GS v 0 m xL xH yL yH data
        if i + 7 >= n:
            return _NEED_MORE
        size = 8 + (data[i + 4] + 256 * data[i + 5]) * (data[i + 6] + 256 * data[i + 7])
        return size if i + size <= n else _NEED_MORE
    if lead == ESC and op == b"*":  # ESC * m nL nH data: 1 or 3 bytes per column
        if i + 4 >= n:
            return _NEED_MORE
        columns = data[i + 3] + 256 * data[i + 4]
        size = 5 + columns * (3 if data[i + 2] in (32, 33) else 1)
        return size if i + size <= n else _NEED_MORE
    return 2  # unknown: skip the prefix, the rest reads as text or further commands


def _name(raw: bytes) -> str:
    lead = {ESC: "ESC", GS: "GS", DLE: "DLE", FS: "FS"}[raw[0]]
    if len(raw) < 2:
        return "unknown"
    if lead == "DLE":
        return {0x04: "DLE EOT", 0x05: "DLE ENQ", 0x14: "DLE DC4"}.get(raw[1], "unknown")
    op = chr(raw[1])
    if lead == "GS" and op in "(8" and len(raw) > 2:
        return f"GS {op} {chr(raw[2])}"
    return f"{lead} {op}" if op.isprintable() else "unknown"


def split_commands(data: bytes) -> tuple[list[Command], int]:
    """Whole commands in `data` and how many bytes they cover; a cut-off last command is left over."""
    out: list[Command] = []
    i, n = 0, len(data)
    while i < n:
        b = data[i]
        if b not in _TEXT_END:
            j = i
            while j < n and data[j] not in _TEXT_END:
                j += 1
            out.append(Command("text", data[i:j], data[i:j]))
            i = j
        elif b in (ESC, GS, DLE, FS):
            size = _size(data, i)
            if size == _NEED_MORE:
                break
            raw = data[i : i + size]
            name = _name(raw)
            prefix = 3 if name.startswith("GS (") or name.startswith("GS 8") else 2
            out.append(Command(name, raw, raw[prefix:]))
            i += size
        else:
            out.append(Command(_CONTROLS.get(b, "control"), data[i : i + 1], b""))
            i += 1
    return out, i


def _codec(profile: str, table: int) -> str:
    pages = CAPABILITIES["profiles"].get(profile, CAPABILITIES["profiles"]["default"]).get("codePages", {})
    name = pages.get(str(table), "CP437")
    return CAPABILITIES["encodings"].get(name, {}).get("python_encode") or "cp437"


class _Paper:
    """The text rendering state: what a printer would have in its line buffer and on the paper."""

    def __init__(self, profile: str, width: int | None) -> None:
        self.profile = profile
        self.width = width
        self.lines: list[str] = []
        self.line = ""
        self.align = 0
        self.codec = _codec(profile, 0)
        self.pending_2d = ""

    def newline(self) -> None:
        text = self.line.rstrip()
        if self.width and text and self.align:
            text = text.center(self.width).rstrip() if self.align == 1 else text.rjust(self.width)
        self.lines.append(text)
        self.line = ""

    def block(self, text: str) -> None:
        """Something on a line of its own (a code, a cut), as a person sees it between text lines."""
        if self.line:
            self.newline()
        self.lines.append(text)

    def reset(self) -> None:
        self.align = 0
        self.codec = _codec(self.profile, 0)


def _code128_text(data: bytes) -> str:
    """The human-readable line under a CODE128 symbol: the data without the code set selectors."""
    text = data.decode("ascii", "replace")
    out, i = [], 0
    while i < len(text):
        if text[i] == "{" and i + 1 < len(text):
            if text[i + 1] == "{":
                out.append("{")
            i += 2
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


def _render(paper: _Paper, cmd: Command) -> None:
    name, p = cmd.name, cmd.params
    if name == "text":
        paper.line += p.decode(paper.codec, "replace")
    elif name in ("LF", "FF"):
        paper.newline()
    elif name == "HT":
        paper.line += " " * (8 - len(paper.line) % 8)
    elif name == "ESC @":
        paper.reset()
    elif name == "ESC t":
        paper.codec = _codec(paper.profile, p[0])
    elif name == "ESC a":
        paper.align = p[0] % 48 if p[0] >= 48 else p[0]
    elif name == "ESC d":
        for _ in range(p[0]):
            paper.newline()
    elif name == "GS V":
        paper.block("[CUT]")
    elif name == "GS ( k" and len(p) >= 4:  # pL pH cn fn [m] data
        cn, fn = p[2], p[3]
        kind = {49: "QR", 48: "PDF417"}.get(cn, "2D")
        if fn == 80:  # store the data (m follows fn)
            paper.pending_2d = p[5:].decode("utf-8", "replace")
        elif fn == 81 and paper.pending_2d:  # print the stored symbol
            paper.block(f"[{kind}: {paper.pending_2d}]")
    elif name == "GS k" and p:
        m = p[0]
        data = p[1:-1] if m <= 6 else p[2:]
        text = _code128_text(data) if m == 73 else data.decode("ascii", "replace")
        paper.block(f"[BARCODE: {text}]")
    # everything else (styles, sizes, kicks, status requests, images) leaves no text on the paper


def decode(data: bytes, *, profile: str = "TM-T88V", width: int | None = None) -> str:
    """The printed text, one line per printed line; codes as "[QR: ...]" / "[BARCODE: ...]", cuts as "[CUT]".

    `width` re-creates centred and right-aligned lines (ESC a) for a visual check; without it every line is
    left-aligned so assertions do not depend on the paper width. A truncated last command is dropped.
    """
    commands, _ = split_commands(bytes(data))
    paper = _Paper(profile, width)
    for cmd in commands:
        _render(paper, cmd)
    if paper.line:
        paper.newline()
    return "\n".join(paper.lines) + ("\n" if paper.lines else "")
