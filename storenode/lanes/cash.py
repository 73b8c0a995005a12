"""Cash management at the lane (issue 14): no-sale drawer openings, petty-cash payouts, the float in and
out, cash drops to the safe, deposits, and the cash count at the end of a shift.

Each is one journal event (storenode.lanes.events, kind "event" in the lane's own chain), written in ONE
durable transaction with everything it changes here (the lane's last count, the day's no-sale tally, the
till's key for the action), so a `kill -9` at any instant leaves either all of it or none of it. The
drawer opens and the slip prints only after that commit: a crash in between leaves the event journaled
and the drawer shut, never money moved that the journal does not know of. A till that lost the answer
sends the command again with the same `key`: the lane answers with the event already journaled (and
kicks the drawer and prints again, under the same job ids) instead of journaling a second one.

Decisions are plain functions of the lane's state, the command and store.toml (`plan`); what needs the
database (held exchange rates, what the journal says the drawer holds) is read inside the transaction
that journals the event (`carry_out`), so nothing can change between reading and writing.

What a count expects (`expected`), per tender and currency: the cash counted at the lane's previous count
(what stayed in the drawer), then, from every journal record after that count (a sale's tenders, its
change paid in the store's currency, a refund's cash paid back as change, and every cash event's amounts:
floats, deposits, drops, payouts), the sum. Only the records since the last count are read (one index
range of the journal, `cash_counts` holds where it is), never the whole journal: the work grows with one
shift's sales, not with the store's history (a lane's first count reads its journal from the start,
once). Card, gift card and invoice totals are the period's own (a
count closes their period too). Training records (sales or events made in training mode) move no real
money and are left out; a count made in training mode is journaled but does not become the lane's count.

Cash in a foreign currency (`[payments] foreign_cash`) is kept in its own currency and valued at the
rate the store holds (storenode.rates: the one central last published, so this works offline); with no
rate held, a foreign amount is refused (`no_rate`): the journal never holds a value the store did not know.
"""

from __future__ import annotations

import re
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from protocol.codec import decode_record
from protocol.frames import (
    CashAmount,
    CashCount,
    CashDeposit,
    CashDrop,
    CountLine,
    FloatMove,
    NoSale,
    Payout,
    RecordApproval,
    RecordCount,
    RecordEvent,
    RecordTender,
    SaleRecord,
)
from protocol.money import foreign_value, format_money
from protocol.text import plain
from runtime.clock import store_zone
from runtime.mailbox import Rejected
from storenode import rates
from storenode.config import StoreConfig
from storenode.journal.chain import Signer
from storenode.lanes import approval, basket, events
from storenode.lanes.basket import OPEN, PAYING, TENDER, LaneState

CashCommand = NoSale | Payout | FloatMove | CashDrop | CashDeposit | CashCount
TENDERS = ("cash", "card", "giftcard", "invoice")
MAX_TEXT = 64  # a reason, after `plain`
_ACCOUNT = re.compile(r"[\w .\-/]{1,32}")


@dataclass(frozen=True)
class Plan:
    """What a cash command will journal, decided before the database is touched."""

    code: str  # the RecordEvent code
    key: str = ""  # the till's id for the action ("" : none given)
    reason: str = ""
    account: str = ""
    moves: tuple[tuple[str, int], ...] = ()  # (currency, signed amount): into (+) or out of (-) the drawer
    counted: tuple[tuple[str, str, int], ...] = ()  # a count: (tender, currency, counted)
    needed: approval.Needed | None = None
    kick: bool = True  # the drawer opens once the event is journaled
    slip: bool = True  # a slip is printed (a voucher, a count slip)


@dataclass
class Done:
    """A cash event journaled (or found journaled already under the command's key)."""

    record: SaleRecord
    again: bool = False  # the key was seen before: this is the event journaled then
    uncounted: list[CountLine] = field(default_factory=list)  # a count's tenders with an expected total only
    nosales: int = 0  # a no-sale: the operator's no-sales today on this lane, this one included


# -- decisions ------------------------------------------------------------------------------------------


def require_idle(state: LaneState) -> None:
    """Cash moves only between sales: a drawer opened mid-sale is where a sale's cash goes astray."""
    basket.require_operator(state)
    if state.status in (OPEN, TENDER, PAYING):
        raise Rejected("sale_open", f"finish or cancel sale {state.sale_id} first: cash is handled between sales")


def plan(state: LaneState, command: CashCommand, config: StoreConfig) -> Plan:
    """The event `command` asks for, or a refusal that changes nothing."""
    require_idle(state)
    key = command.key.strip()
    match command:
        case NoSale():
            if command.operator.strip() != state.operator:
                raise Rejected(
                    "not_you", f"a no-sale is the logged-in operator's ({state.operator}): give your number and PIN"
                )
            return Plan("nosale", key, reason=_reason(command.reason), slip=False)
        case Payout():
            return _payout(command, config, key)
        case FloatMove():
            code = "float_out" if command.out else "float_in"
            return Plan(code, key, moves=_moves(command.amounts, config, -1 if command.out else 1))
        case CashDrop():
            return Plan("drop", key, moves=_moves(command.amounts, config, -1))
        case CashDeposit():
            return Plan("deposit", key, moves=_moves(command.amounts, config, 1))
        case CashCount():
            return Plan("count", key, counted=_counted(command, config), kick=False)
    raise Rejected("unsupported", f"{type(command).__name__} is not a cash command")  # pragma: no cover


def _reason(text: str) -> str:
    reason = " ".join(plain(text).split())
    if not reason:
        raise Rejected("bad_reason", "give a reason (a reason code or a few words)")
    if len(reason) > MAX_TEXT:
        raise Rejected("bad_reason", f"a reason is at most {MAX_TEXT} characters")
    return reason


def _payout(command: Payout, config: StoreConfig, key: str) -> Plan:
    sales, home = config.sales, config.currency
    amount = _amount(command.amount, home, sales.cash_most)
    account = " ".join(plain(command.account).split())
    known = sales.payout_accounts
    if known and account.lower() not in [a.lower() for a in known]:
        raise Rejected("bad_account", f"account {account or '(none)'!r} is not one of {', '.join(known)}")
    if not known and not _ACCOUNT.fullmatch(account):
        raise Rejected("bad_account", "an account is 1 to 32 letters, digits, spaces or - _ . /")
    if known:
        account = next(a for a in known if a.lower() == account.lower())
    needed = None
    if amount > sales.payout_approval:
        money = format_money(amount, home)
        limit = format_money(sales.payout_approval, home)
        needed = approval.Needed(
            "payout", f"a payout of {home} {money}", f"it is above {home} {limit}", f"{account} {money}"
        )
    return Plan("payout", key, reason=_reason(command.reason), account=account, moves=((home, -amount),), needed=needed)


def _amount(amount: int, currency: str, most: int) -> int:
    if amount <= 0:
        raise Rejected("bad_amount", f"an amount must be more than 0, not {format_money(amount, currency)}")
    if amount > most:
        raise Rejected(
            "bad_amount",
            f"{currency} {format_money(amount, currency)} is more than one cash movement may be "
            f"({format_money(most, currency)}); check the amount",
        )
    return amount


def _currency(text: str, config: StoreConfig) -> str:
    currency = text.strip().upper() or config.currency
    if currency != config.currency and currency not in config.payments.foreign_cash:
        raise Rejected("bad_currency", f"this store does not keep cash in {plain(currency)[:8]!r}")
    return currency


def _moves(amounts: list[CashAmount], config: StoreConfig, sign: int) -> tuple[tuple[str, int], ...]:
    if not amounts:
        raise Rejected("bad_amount", "give an amount of at least one currency")
    seen: dict[str, int] = {}
    for line in amounts:
        currency = _currency(line.currency, config)
        if currency in seen:
            raise Rejected("bad_amount", f"{currency} is given twice: one amount per currency")
        seen[currency] = sign * _amount(line.amount, currency, config.sales.cash_most)
    return tuple(seen.items())


def _counted(command: CashCount, config: StoreConfig) -> tuple[tuple[str, str, int], ...]:
    seen: dict[tuple[str, str], int] = {}
    for line in command.counts:
        tender = line.tender.strip().lower() or "cash"
        if tender not in TENDERS:
            raise Rejected("bad_tender", f"a count is of {', '.join(TENDERS)}, not {plain(tender)[:16]!r}")
        currency = _currency(line.currency, config) if tender == "cash" else config.currency
        if line.currency.strip() and line.currency.strip().upper() != currency:
            raise Rejected("bad_currency", f"{tender} is counted in {config.currency}")
        if not 0 <= line.counted <= config.sales.cash_most:
            most = format_money(config.sales.cash_most, currency)
            raise Rejected("bad_amount", f"a counted amount is 0 to {most}, not {format_money(line.counted, currency)}")
        if (tender, currency) in seen:
            raise Rejected("bad_amount", f"{tender} {currency} is counted twice: one amount each")
        seen[(tender, currency)] = line.counted
    if not any(tender == "cash" for tender, _ in seen):
        raise Rejected("bad_amount", "a cash count needs the cash counted (0 for an empty drawer)")
    return tuple((t, c, n) for (t, c), n in seen.items())


# -- carried out, in one transaction --------------------------------------------------------------------


def carry_out(
    c: sqlite3.Connection,
    plan: Plan,
    given: RecordApproval | None,
    *,
    store: str,
    lane: int,
    operator: str,
    currency: str,
    at: int,
    day: str,
    signer: Signer,
    training: bool,
) -> Done:
    """Journal the event and keep what goes with it, in the caller's transaction (durable, by the lane)."""
    if plan.key:
        row = c.execute("SELECT receipt_no FROM cash_keys WHERE lane = ? AND key = ?", (lane, plan.key)).fetchone()
        if row is not None:
            return _again(c, lane, row[0], plan)
    amounts = [_tender(c, cur, amount, currency) for cur, amount in plan.moves]
    counts: list[RecordCount] = []
    uncounted: list[CountLine] = []
    detail = ""
    if plan.code == "count":
        counts, uncounted = _count_lines(expected(c, lane, currency), plan.counted)
        if uncounted:
            detail = "not counted: " + "; ".join(
                f"{u.tender} {format_money(u.expected, u.currency)}" for u in uncounted
            )
    nosales = 0
    if plan.code == "nosale":
        nosales = _tally(c, day, lane, operator)
        detail = f"no-sale {nosales} today of operator {operator} on lane {lane}"
    event = RecordEvent(
        code=plan.code,
        ref=plan.key,  # the till's id for the action: the journal alone ties a retry to its event
        reason=plan.reason,
        account=plan.account,
        amounts=amounts,
        counts=counts,
        approver=given.approver if given is not None else "",
        detail=detail,
    )
    record = events.journal_event(
        c, event, store=store, lane=lane, operator=operator, currency=currency, at=at, signer=signer, training=training
    )
    if plan.key:
        c.execute("INSERT INTO cash_keys (lane, key, receipt_no) VALUES (?,?,?)", (lane, plan.key, record.receipt_no))
    if plan.code == "count" and not training:
        c.execute(
            "INSERT INTO cash_counts (lane, receipt_no) VALUES (?, ?) "
            "ON CONFLICT (lane) DO UPDATE SET receipt_no = excluded.receipt_no",
            (lane, record.receipt_no),
        )
    return Done(record, uncounted=uncounted, nosales=nosales)


def _again(c: sqlite3.Connection, lane: int, receipt_no: int, plan: Plan) -> Done:
    body = c.execute("SELECT body FROM journal WHERE lane = ? AND receipt_no = ?", (lane, receipt_no)).fetchone()[0]
    record = decode_record(body)
    code = record.event.code if record.event is not None else record.kind
    if code != plan.code:
        raise Rejected("key_used", f"key {plan.key!r} is already the key of a {code} (event {receipt_no})")
    return Done(record, again=True)


def _tender(c: sqlite3.Connection, currency: str, amount: int, home: str) -> RecordTender:
    if currency == home:
        return RecordTender(kind="cash", currency=home, amount=amount)
    held = rates.get(c, home, currency)
    if held is None:
        raise Rejected("no_rate", f"no exchange rate for {currency} is held yet; central publishes them")
    value = foreign_value(abs(amount), held.rate, home, step=1)
    return RecordTender(
        kind="cash", currency=currency, amount=amount, value=value if amount > 0 else -value, rate=held.rate
    )


def _tally(c: sqlite3.Connection, day: str, lane: int, operator: str) -> int:
    c.execute(
        "INSERT INTO cash_nosales (day, lane, operator, n) VALUES (?,?,?,1) "
        "ON CONFLICT (day, lane, operator) DO UPDATE SET n = n + 1",
        (day, lane, operator),
    )
    row = c.execute(
        "SELECT n FROM cash_nosales WHERE day = ? AND lane = ? AND operator = ?", (day, lane, operator)
    ).fetchone()
    return int(row[0])


def nosales(c: sqlite3.Connection, day: str) -> dict[tuple[int, str], int]:
    """The day's no-sale drawer openings by lane and operator."""
    rows = c.execute("SELECT lane, operator, n FROM cash_nosales WHERE day = ?", (day,))
    return {(lane, operator): n for lane, operator, n in rows}


def expected(c: sqlite3.Connection, lane: int, home: str) -> dict[tuple[str, str], int]:
    """What the lane's journal says it holds now, per (tender, currency), since its last count (module doc)."""
    held: dict[tuple[str, str], int] = defaultdict(int)
    row = c.execute("SELECT receipt_no FROM cash_counts WHERE lane = ?", (lane,)).fetchone()
    since = 0
    if row is not None:
        since = row[0]
        last = c.execute("SELECT body FROM journal WHERE lane = ? AND receipt_no = ?", (lane, since)).fetchone()
        event = decode_record(last[0]).event if last is not None else None
        for count in event.counts if event is not None else []:
            if count.tender == "cash":  # what stayed in the drawer
                held[("cash", count.currency)] += count.counted
    rows = c.execute(
        "SELECT body FROM journal WHERE lane = ? AND receipt_no > ? AND kind IN ('sale', ?) ORDER BY receipt_no",
        (lane, since, events.EVENT_KIND),
    )
    for (body,) in rows:
        record = decode_record(body)
        if record.training:
            continue
        if record.kind == "sale":
            for tender in record.tenders:
                held[(tender.kind, tender.currency)] += tender.amount
            if record.change:
                held[("cash", record.currency)] -= record.change
        elif record.event is not None:
            for moved in record.event.amounts:
                held[(moved.kind, moved.currency)] += moved.amount
    return dict(held)


def _count_lines(
    held: dict[tuple[str, str], int], counted: tuple[tuple[str, str, int], ...]
) -> tuple[list[RecordCount], list[CountLine]]:
    """The count's lines: every tender counted, and all cash the journal expects (a currency expected but
    not counted was counted as 0); other tenders not counted are reported with their expected total."""
    by = {(t, c): n for t, c, n in counted}
    keys = sorted(set(by) | {k for k, v in held.items() if k[0] == "cash" and v}, key=_order)
    counts = [
        RecordCount(tender=t, currency=c, expected=held.get((t, c), 0), counted=by.get((t, c), 0)) for t, c in keys
    ]
    uncounted = [
        CountLine(tender=t, currency=c, expected=v, uncounted=True)
        for (t, c), v in sorted(held.items(), key=lambda kv: _order(kv[0]))
        if t != "cash" and (t, c) not in by and v
    ]
    return counts, uncounted


def _order(key: tuple[str, str]) -> tuple[int, str]:
    tender, currency = key
    return (TENDERS.index(tender) if tender in TENDERS else len(TENDERS), currency)


def count_lines(record: SaleRecord, uncounted: list[CountLine]) -> list[CountLine]:
    """A count as the till shows it: the counted lines, then the tenders with an expected total only."""
    event = record.event
    counted = [
        CountLine(tender=x.tender, currency=x.currency, expected=x.expected, counted=x.counted)
        for x in (event.counts if event is not None else [])
    ]
    return counted + uncounted


def day_of(at: int, zone: str) -> str:
    """The store's calendar day of `at` (epoch ms), in its own time zone: a no-sale tally is per day."""
    return datetime.fromtimestamp(at / 1000, store_zone(zone)).date().isoformat()


def message(done: Done, home: str) -> str:
    """The line the till shows beside the lane once the event is journaled."""
    record = done.record
    event = record.event
    assert event is not None
    prefix = "already recorded: " if done.again else ""
    moved = ", ".join(f"{t.currency} {format_money(t.amount, t.currency)}" for t in event.amounts)
    match event.code:
        case "nosale":
            return f"{prefix}drawer opened, no sale ({event.detail or event.reason})"
        case "payout":
            return f"{prefix}paid out {moved} to {event.account}: give the voucher to be signed"
        case "count":
            diffs = [x.counted - x.expected for x in event.counts if x.tender == "cash" and x.currency == home]
            diff = format_money(sum(diffs), home)
            return f"{prefix}cash counted: difference {home} {diff}"
    words = {"float_in": "float in", "float_out": "float out", "drop": "dropped to the safe", "deposit": "deposited"}
    return f"{prefix}{words.get(event.code, event.code)}: {moved}"
