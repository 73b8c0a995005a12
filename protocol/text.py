"""Text on its way to paper, a screen or a file: what may pass of what master data or a peer says.

An item name is typed at central by people and imported from suppliers' files, and it travels to
every store's printers, customer displays and till screens. A control character in it is an
instruction to the device, not a letter: ESC/POS bytes in a name opened the cash drawer on a
sale that took no cash, and ANSI escapes in a name repainted the terminal till. So text from
master data is made plain at import and again just before a device or terminal gets it (either
may be bypassed: an old catalogue, a new path), by this one rule.
"""

from __future__ import annotations

import unicodedata

# Controls, format characters (bidi overrides, zero-width), private use, surrogates, unassigned,
# and line/paragraph separators: nothing a receipt line or a name needs, everything a device may obey.
_DROP = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"})
_AS_SPACE = frozenset("\t\n\r\v\f\x85\u2028\u2029")


def plain(text: str) -> str:
    """`text` as one line without control or format characters: whitespace controls become spaces,
    the rest are dropped, other spaces become plain spaces."""
    if text.isprintable():  # the common case costs one C-level scan
        return text
    out: list[str] = []
    for ch in text:
        category = unicodedata.category(ch)
        if ch in _AS_SPACE or category == "Zs":
            out.append(" ")
        elif category not in _DROP:
            out.append(ch)
    return "".join(out)


def plain_lines(text: str) -> str:
    """`plain` for each line of a multi-line text (receipt headers, quick-key lists): lines stay lines."""
    return "\n".join(plain(line) for line in text.splitlines())


FORMULA_LEAD = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula (OWASP's CSV injection advice: a leading
    apostrophe); `from_spreadsheet_safe` undoes it on import, so an export imports back unchanged."""
    return "'" + cell if cell.startswith(FORMULA_LEAD) else cell


def from_spreadsheet_safe(cell: str) -> str:
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(FORMULA_LEAD) else cell
