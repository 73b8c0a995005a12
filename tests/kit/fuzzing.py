"""Hypothesis strategies for every frame a till may send, built field by field from the frames' own
declarations (protocol.frames), so a field added to a frame is fuzzed without a change here.

`within=True` keeps every number and text inside the bounds the store decodes (what can reach a lane
over the wire); `within=False` also draws what the decoder must refuse (64-bit overflows, megabytes
of text). Text is drawn from everything unicode has that a till could send: controls, bidi marks,
superscript digits, combining marks, empty strings and very long ones.

Operator numbers "1" and "2" (the demo catalogue's cashier and manager) are drawn only with their
right PINs: a fuzzed wrong PIN for them would lock them out, and the sale each example ends with
logs in as "1" (and a cancel is approved by "2").

The central link's frames (`STEPS`) are built the same way from LinkMessage's declarations, with raw
MessagePack, noise and forged batches (the fuzzing store's id, another key) mixed in.
"""

from __future__ import annotations

import typing
from typing import Any

import msgspec
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from protocol.frames import (
    CardTender,
    CashTender,
    Command,
    Event,
    EventBatch,
    GiftCardTender,
    LinkMessage,
    Login,
    RefundOf,
    ReturnItem,
    Scan,
    TillToStore,
    Total,
)
from tests.kit.journal import StoreKey

CASHIER, CASHIER_PIN = "1", "1234"
MANAGER, MANAGER_PIN = "2", "4321"
KNOWN = (CASHIER, MANAGER)

MILK, BUTTER, COFFEE = "7310000000010", "7310000000027", "7310000000034"
CODES = (
    MILK,
    BUTTER,
    COFFEE,
    "2300005001234",  # a price-embedded label
    "2300005\u00b21234\u00b2",  # superscript digits: isdigit() says yes, int() says no
    "\u0663" * 13,  # Arabic-Indic digits
    "0" * 13,
    "S001-1-1",  # a receipt id (RefundOf)
    "S001-1-" + "9" * 30,
    "S001-0--1",
    "4761739001010119",
    "GC-1",
)
NASTY = (
    "",
    " ",
    "\x00",
    "\x1b[2J\x1b[H",
    "\x1bp\x00\x19\xfa",  # ESC/POS drawer kick
    "\u202e\u2066bidi\u2069",
    "\ufeff",
    "e\u0301" * 20,
    "=cmd|' /C calc'!A0",
    "\U0001f600" * 10,
    "\\' OR 1=1; --",
    "%s%n{0}",
    "a " * 200,
)

WORDS = {  # the values a field's own rules accept, so fuzzing gets past them too
    "currency": ("SEK", "EUR", "USD", "sek", "XXX"),
    "reason": ("receipt", "transfer", "adjust", "count", "sale"),
    "customer": ("C1", "C2"),
    "till": ("T1", "T2"),
    "account": ("supplies", "other", "SUPPLIES"),
    "tender": ("cash", "card", "giftcard", "voucher"),
}

# Text a till could type or a program could send: any code point but surrogates (not encodable).
ANY_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=80)
INT64_EDGES = (2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, -(2**63), -(2**63) - 1, 10**15, -(10**15))


def _meta(hint: Any) -> tuple[type, msgspec.Meta | None]:
    if typing.get_origin(hint) is typing.Annotated:
        base, *extras = typing.get_args(hint)
        metas = [m for m in extras if isinstance(m, msgspec.Meta)]
        return base, metas[0] if metas else None
    return hint, None


def _number(meta: msgspec.Meta | None, within: bool) -> st.SearchStrategy[int]:
    lo = meta.ge if meta is not None and meta.ge is not None else -(2**63)
    hi = meta.le if meta is not None and meta.le is not None else 2**63 - 1
    edges = [v for v in (0, 1, -1, 2, 100, 99_999, lo, hi, lo + 1, hi - 1) if lo <= v <= hi]
    inside = st.one_of(st.sampled_from(edges), st.integers(max(lo, -1000), min(hi, 100_000)), st.integers(lo, hi))
    if within:
        return inside
    return st.one_of(inside, st.sampled_from([*INT64_EDGES, hi + 1, lo - 1]), st.integers())


def _text(name: str, meta: msgspec.Meta | None, within: bool) -> st.SearchStrategy[str]:
    limit = meta.max_length if meta is not None and meta.max_length is not None else 4096
    special = list(CODES) if name in ("code", "receipt", "card") else list(WORDS.get(name, ()))
    pool = st.one_of(
        st.sampled_from([*special, *NASTY]) if special else st.sampled_from(NASTY),
        ANY_TEXT,
        st.text("0123456789", max_size=20),
        st.text(st.characters(blacklist_categories=("Cs",)), min_size=limit - 2, max_size=limit),
    )
    inside = pool.filter(lambda s: len(s) <= limit)
    if name in ("operator", "approver"):  # never a known operator with a fuzzed PIN (see the docstring)
        inside = inside.filter(lambda s: s.strip() not in KNOWN)
    if within:
        return inside
    beyond = st.sampled_from(["x" * (limit + 1), "7" * 100_000, "\u202e" * 5000, "a " * 50_000])
    return st.one_of(inside, beyond)


def _field(name: str, hint: Any, within: bool) -> st.SearchStrategy[Any]:
    base, meta = _meta(hint)
    if base is bool:
        return st.booleans()
    if base is int and name == "lane":  # mostly the till's own lane (or none), so the command gets in
        return st.sampled_from([st.just(0), st.just(1), st.just(2), _number(meta, within)]).flatmap(lambda s: s)
    if base is int:
        return _number(meta, within)
    if base is str:
        if name in ("approver", "approver_pin"):  # mostly none: each one asked for costs a PIN hash
            return st.one_of(st.just(""), st.just(""), _text(name, meta, within))
        return _text(name, meta, within)
    if typing.get_origin(base) is list:  # a list of structs (a cash command's amounts): each one fuzzed
        (inner,) = typing.get_args(base)
        most = meta.max_length if meta is not None and meta.max_length is not None else 8
        return st.lists(frames(inner, within=within), max_size=most if within else most + 2)
    raise TypeError(f"no fuzzing strategy for {name}: {hint!r}; add one in tests/kit/fuzzing.py")


def frames(cls: type[msgspec.Struct], *, within: bool) -> st.SearchStrategy[Any]:
    """Instances of frame `cls` with every field drawn (defaulted fields too: a till may send them)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {f.name: _field(f.name, hints[f.name], within) for f in msgspec.structs.fields(cls)}
    return st.builds(cls, **fields)


def command_types() -> list[type[Command]]:
    return [c for c in typing.get_args(TillToStore) if issubclass(c, Command)]


def frame_types() -> list[type[msgspec.Struct]]:
    return list(typing.get_args(TillToStore))


def commands(*, within: bool) -> st.SearchStrategy[Command]:
    """Any command a till may send, with fuzzed fields, among the steps of a plausible sale (a right
    login, a known item, a total, cash), so the fuzzed ones meet a lane in every state a sale passes."""
    fuzzed = st.one_of([frames(c, within=within) for c in command_types()])
    steps = st.sampled_from(
        [
            Login(operator=CASHIER, pin=CASHIER_PIN),
            Scan(code=MILK),
            Scan(code=COFFEE, qty=3),
            Scan(code="2300005001234"),
            Total(),
            CashTender(amount=100, part=True),
            CardTender(amount=50),
            GiftCardTender(card="GC-1", amount=100),
            RefundOf(receipt="S001-1-1"),
            ReturnItem(code=MILK),
        ]
    ).map(lambda c: msgspec.structs.replace(c))
    return st.sampled_from([fuzzed, fuzzed, steps]).flatmap(lambda drawn: drawn)  # one_of would flatten


# -- the central link -------------------------------------------------------------------------------

FUZZER = "S777"  # the store whose proven session sends the fuzzed link frames

INTS = st.one_of(st.integers(-5, 100), st.sampled_from(INT64_EDGES), st.integers(-(2**63), 2**64 - 1))
TEXT = st.one_of(ANY_TEXT, st.sampled_from(["", FUZZER, "OTHER", "journal", "stock", "giftcard", "S001"]))


def _values(hint: Any) -> st.SearchStrategy[Any]:
    """Values of a link frame's field type, any that MessagePack carries (nested structs, tuples, lists)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is int:
        return INTS
    if hint is str:
        return TEXT
    if hint is bytes:
        return st.binary(max_size=80)
    if hint is bool:
        return st.booleans()
    if hint is type(None):
        return st.none()
    if origin is list:
        return st.lists(_values(args[0]), max_size=4)
    if origin is dict:
        return st.dictionaries(_values(args[0]), _values(args[1]), max_size=3)
    if origin is tuple:
        return st.tuples(*(_values(a) for a in args))
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return st.one_of([_values(a) for a in args])
    if isinstance(hint, type) and issubclass(hint, msgspec.Struct):
        return link_frames(hint)
    raise TypeError(f"no fuzzing strategy for {hint!r}")


def link_frames(cls: type[msgspec.Struct]) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls)
    return st.builds(cls, **{f.name: _values(hints[f.name]) for f in msgspec.structs.fields(cls)})


def _encoded(frame: Any) -> bytes | None:
    """MessagePack of a frame or any value; None for an integer beyond its 64 bits (nothing is sent)."""
    try:
        return msgspec.msgpack.encode(frame)
    except OverflowError:
        return None


RAW = st.one_of(
    st.binary(max_size=200),
    st.lists(st.one_of(INTS, TEXT, st.binary(max_size=20)), max_size=8).map(_encoded),
    st.sampled_from([b"\x91" * 100_000 + b"\xc0", b"\xdd\xff\xff\xff\xff", b"\xc1"]),  # deep, huge, invalid
)
FORGER = StoreKey(FUZZER)  # the fuzzing store's id, but a key central never registered for it
FORGED = st.integers(1, 5).map(lambda n: EventBatch(store=FUZZER, stream="journal", events=[FORGER.event(n, n)]))
BATCHES = st.builds(
    EventBatch,
    store=st.sampled_from([FUZZER, "OTHER", ""]),
    stream=st.sampled_from(["journal", "stock", "giftcard", "x"]),
    events=_values(list[Event]),
)
ANY_FRAME = st.one_of([link_frames(c) for c in typing.get_args(LinkMessage)])
STEPS = st.lists(
    st.sampled_from([ANY_FRAME, ANY_FRAME, BATCHES, FORGED]).flatmap(lambda drawn: drawn.map(_encoded)) | RAW,
    max_size=8,
)

LINK_SETTINGS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # one central carries state across examples: no shrinking
    suppress_health_check=list(HealthCheck),
)
