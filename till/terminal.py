"""A terminal till: one line in, one command out, so a keyboard-wedge scanner just works.

Lines (from --script first, then standard input):
  <barcode>              scan one          3*<barcode> / scan <barcode> 3   scan a quantity
  login <number> <pin>   logout            start          void <line>      total
  login <number> <pin> take   a supervisor takes over the sale another operator left open on the lane
  cash [amount] [CUR] [part]  (no amount: what is due in cash; CUR: foreign cash; part: a split)  cancel
  card [amount]          pay (or refund) by card at the lane's terminal      resolve   settle a card payment in doubt
  giftcard <card> [amount]   redeem (or credit) a gift card or voucher     balance <card>
  invoice <customer>     put what is due on a registered customer's invoice
  return <barcode> [qty] a returned item     stock <barcode>  stock here and in other stores
  refund <receipt id>    a refund of that receipt: the returns that follow go back to what it was paid with
  setaside <supervisor> <pin> <reason...>   give up on a card payment the terminal cannot settle
  endofday               the card terminal's end of day: its totals
  salesperson [number]   the sale's salesperson, where the store asks for one (no number: none)
  park                   park the open sale     parked   the store's parked sales   resume <id>  resume one here
  training on|off        training mode (on: a supervisor approves); nothing sold in training is real
  discount [line <n>] <10% | 5.00> <reason>   a manual discount of a line or the sale, with a reason code
  price <line> <price> <reason>   set a line's unit price by hand (a supervisor approves)
  ... approve <number> <pin>   a supervisor approves the command (void after total, cancel, endofday,
                         big returns and stock moves, price labels out of range: the store says when)
  find <text>            items by name, every word a prefix (find ban)   price <barcode>  a price check, no sale
  keys                   the till's quick keys     key <n>  press quick key n (scans its item)
  receive|transfer|adjust <barcode> <qty> [note]   count <barcode> <counted>
  receipt <receipt id>   show a receipt        copy <receipt id>   print a copy (COPY / KOPIA, counted)
  receipts [--from DATE] [--to DATE] [--amount 49.00] [--card 0119] [--limit N]   look receipts up, newest first
  (scanning a receipt's code opens its refund, as `refund <receipt id>` does)
  nosale <operator> <pin> <reason...>     open the drawer without a sale (your own number and PIN again)
  payout <amount> <account> <reason...>   petty cash out of the drawer, against a printed voucher
  float in|out <money...>   drop <money...>   deposit <money...>   (money: 500 / 500 1000 EUR: per currency)
  cashcount <money...> [card|giftcard|invoice <amount>]   the count at shift end: expected vs counted
  status                 help              quit           # comments and blank lines are ignored

When the store drops the connection the till reattaches to its lane and shows the basket again, and
the operator logs in again (a login belongs to one connection). A lane has one till: when another holds
it, `takeover <operator> <pin>` logs that operator in here and moves the lane to this till.
"""

from __future__ import annotations

import ssl
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import trio
from trio_websocket import ConnectionClosed, HandshakeError

from protocol.codec import SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK
from protocol.frames import (
    CancelSale,
    CardTender,
    CashAmount,
    CashCount,
    CashDeposit,
    CashDone,
    CashDrop,
    CashTender,
    Command,
    CopyReceipt,
    Counted,
    EndOfDay,
    Error,
    FloatMove,
    GiftCardInfo,
    GiftCardQuery,
    GiftCardTender,
    GiveDiscount,
    InvoiceTender,
    ItemInfo,
    ItemSearch,
    Login,
    Logout,
    NoSale,
    OverridePrice,
    Park,
    ParkedList,
    ParkedQuery,
    Payout,
    PriceCheck,
    QuickKey,
    Receipt,
    ReceiptList,
    ReceiptQuery,
    RefundOf,
    ResolvePayment,
    Resume,
    ReturnItem,
    SaleState,
    Scan,
    SearchResult,
    SetAside,
    SetSalesperson,
    StartSale,
    Status,
    StatusRequest,
    StockCount,
    StockInfo,
    StockMove,
    StockQuery,
    TerminalReport,
    TillFrame,
    Total,
    Training,
    VoidLine,
)
from protocol.money import MoneyError, format_money, format_rate, parse_money
from protocol.text import plain_lines
from till.client import TillClient, TillDisconnected, connect

ANSWER_TIMEOUT = 20.0
PAYMENT_TIMEOUT = 300.0  # a customer at the card terminal
Hook = Callable[[str, TillClient], Awaitable[bool]]
FIRST_CONNECT_TRIES = 5  # a till that never reached its store says so; one that did keeps reattaching
HELP = __doc__.split("\n\n")[1] if __doc__ else ""


class InputError(ValueError):
    pass


def parse(line: str, currency: str, cash_due: int, quick_keys: Sequence[QuickKey] = ()) -> Command | str | None:
    """A command for the store, a local word ("help", "quit", "keys"), or None for nothing to do.
    `quick_keys` are the ones the store's welcome gave, in key order (key 1 is the first). A line
    ending `approve <number> <pin>` carries a supervisor's approval (the store asked: approval_needed)."""
    words = line.split()
    if len(words) >= 4 and words[-3].lower() == "approve":
        command = _parse(" ".join(words[:-3]), currency, cash_due, quick_keys)
        if not hasattr(command, "approver"):
            raise InputError(f"{words[0]!r} takes no approval")
        command.approver, command.approver_pin = words[-2], words[-1]  # type: ignore[union-attr]
        return command
    return _parse(line, currency, cash_due, quick_keys)


def _parse(line: str, currency: str, cash_due: int, quick_keys: Sequence[QuickKey]) -> Command | str | None:
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    word, *rest = line.split()
    word = word.lower()
    try:
        match word, rest:
            case (("help" | "quit" | "exit" | "keys"), []):
                return word
            case "key", [number]:
                n = int(number)
                if not 1 <= n <= len(quick_keys):
                    raise ValueError(
                        f"this till has quick keys 1 to {len(quick_keys)}" if quick_keys else "no quick keys"
                    )
                return Scan(code=quick_keys[n - 1].code)
            case "login", [number, pin]:
                return Login(operator=number, pin=pin)
            case "login", [number, pin, "take"]:  # a supervisor takes over a sale another operator left open
                return Login(operator=number, pin=pin, take_sale=True)
            case "logout", []:
                return Logout()
            case "start", []:
                return StartSale()
            case "void", [no]:
                return VoidLine(line=int(no))
            case "total", []:
                return Total()
            case "cash", []:
                return CashTender(amount=max(cash_due, 0))  # a refund is tendered as 0
            case "cash", [amount]:
                return CashTender(amount=parse_money(amount, currency))
            case "cash", [amount, *more] if len(more) <= 2:
                part = "part" in more
                foreign = [m.upper() for m in more if m != "part"]
                if len(foreign) > 1 or more.count("part") > 1:
                    raise ValueError("cash [amount] [currency] [part]")
                cur = foreign[0] if foreign else ""
                return CashTender(amount=parse_money(amount, cur or currency), currency=cur, part=part)
            case "card", []:
                return CardTender()
            case "card", [amount]:
                return CardTender(amount=parse_money(amount, currency))
            case "giftcard", [card]:
                return GiftCardTender(card=card)
            case "giftcard", [card, amount]:
                return GiftCardTender(card=card, amount=parse_money(amount, currency))
            case "balance", [card]:
                return GiftCardQuery(card=card)
            case "invoice", [customer]:
                return InvoiceTender(customer=customer)
            case "resolve", []:
                return ResolvePayment()
            case "cancel", []:
                return CancelSale()
            case "status", []:
                return StatusRequest()
            case "return", [code]:
                return ReturnItem(code=code)
            case "return", [code, qty]:
                return ReturnItem(code=code, qty=int(qty))
            case "stock", [code]:
                return StockQuery(code=code)
            case "find", [_, *_]:
                return ItemSearch(text=" ".join(rest))
            case "find", []:
                raise ValueError("find what? e.g. find ban")
            case "price", [code]:
                return PriceCheck(code=code)
            case (("receive" | "transfer" | "adjust"), [code, qty, *note]):
                reason = "receipt" if word == "receive" else word
                return StockMove(code=code, qty=int(qty), reason=reason, note=" ".join(note))
            case "count", [code, counted]:
                return StockCount(code=code, counted=int(counted))
            case "refund", [receipt]:
                return RefundOf(receipt=receipt)
            case "setaside", [supervisor, pin, *reason] if reason:
                return SetAside(operator=supervisor, pin=pin, reason=" ".join(reason))
            case "endofday", []:
                return EndOfDay()
            # -- issue 14, manual discounts: `discount [line N] 10% REASON`, `discount [line N] 5.00 REASON`,
            # `price N 12.50 REASON`; beyond the cashier's limit add `approve <supervisor> <pin>`
            case "discount", ["line", no, how, reason]:
                return _discount(int(no), how, reason, currency)
            case "discount", [how, reason]:
                return _discount(0, how, reason, currency)
            case "price", [no, amount, reason]:
                return OverridePrice(line=int(no), price=parse_money(amount, currency), reason=reason)
            # issue 14, receipts
            case "receipt", [receipt]:
                return ReceiptQuery(receipt=receipt)
            case "receipts", _:
                return _receipts(rest, currency)
            case "copy", [receipt]:
                return CopyReceipt(receipt=receipt)
            # cash management (issue 14, cash)
            case "nosale", [operator, pin, *reason] if reason:
                return NoSale(operator=operator, pin=pin, reason=" ".join(reason))
            case "payout", [amount, account, *reason] if reason:
                return Payout(amount=parse_money(amount, currency), account=account, reason=" ".join(reason))
            case "float", [("in" | "out") as way, *money] if money:
                return FloatMove(amounts=_cash_amounts(money, currency), out=way == "out")
            case "drop", [_, *_]:
                return CashDrop(amounts=_cash_amounts(rest, currency))
            case "deposit", [_, *_]:
                return CashDeposit(amounts=_cash_amounts(rest, currency))
            case "cashcount", [_, *_]:
                return CashCount(counts=_counted(rest, currency))
            case (("nosale" | "payout" | "float" | "drop" | "deposit" | "cashcount"), _):
                raise ValueError("see help for how it is written")
            # issue 14, salesperson
            case "salesperson", [number]:
                return SetSalesperson(salesperson=number)
            case "salesperson", []:
                return SetSalesperson(salesperson="")
            # end of issue 14, salesperson
            # issue 14, park and resume, training mode
            case "park", []:
                return Park()
            case "parked", []:
                return ParkedQuery()
            case "resume", [typed]:
                return Resume(id=typed)
            case "training", [("on" | "off") as mode]:
                return Training(on=mode == "on")
            case "scan", [code]:
                return Scan(code=code)
            case "scan", [code, qty]:
                return Scan(code=code, qty=int(qty))
            case _, [] if "*" in word and word.partition("*")[2]:
                qty, _, code = word.partition("*")
                return Scan(code=code, qty=int(qty))
            case _, [] if word.isdigit():
                return Scan(code=word)
    except (ValueError, MoneyError) as exc:
        raise InputError(f"cannot read {line!r}: {exc}") from None
    raise InputError(f"unknown command {line!r}; type help")


def _discount(no: int, how: str, reason: str, currency: str) -> GiveDiscount:
    """`10%` or `12.5%` (a percent, kept in hundredths), else an amount of money."""
    if how.endswith("%"):
        return GiveDiscount(line=no, percent=parse_money(how[:-1], "%"), reason=reason)
    return GiveDiscount(line=no, amount=parse_money(how, currency), reason=reason)


def _receipts(words: list[str], currency: str) -> ReceiptQuery:
    """`receipts --from 2026-12-01 --to 2026-12-05 --amount 49.00 --card 0119 --limit 20`, any of them."""
    if len(words) % 2:
        raise ValueError("receipts [--from DATE] [--to DATE] [--amount AMOUNT] [--card LAST4] [--limit N]")
    query = ReceiptQuery()
    for option, value in zip(words[::2], words[1::2], strict=True):
        match option:
            case "--from":
                query.since = value
            case "--to":
                query.until = value
            case "--amount":
                query.amount = parse_money(value, currency)
            case "--card":
                query.card = value
            case "--limit":
                query.limit = int(value)
            case _:
                raise ValueError(f"unknown option {option}; --from --to --amount --card --limit")
    return query


def show_receipts(frame: ReceiptList, timezone: str = "") -> str:
    """A receipt asked for by id (or copied) as printed; a list as one line each, newest first."""
    if frame.text:
        return frame.text.rstrip("\n")
    if not frame.receipts:
        return "no receipts found"
    out = []
    for r in frame.receipts:
        what = f"refund of {r.refund_of}" if r.refund_of else ("cancelled" if r.kind == "cancel" else "")
        cards = f" card *{', *'.join(r.cards)}" if r.cards else ""
        copies = f" {r.copies} cop{'y' if r.copies == 1 else 'ies'}" if r.copies else ""
        total = f"{r.currency} {format_money(r.total, r.currency)}"
        out.append(f"  {r.receipt:<16} {show_instant(r.closed_at, timezone):<22} {total:>14}{cards}{copies} {what}")
    if frame.more:
        out.append("  ... more: narrow the search (--from/--to, --amount, --card)")
    return "\n".join(line.rstrip() for line in out)


def _cash_amounts(words: Sequence[str], currency: str) -> list[CashAmount]:
    """`500 1000 EUR`: amounts, each in the store's currency unless a currency code follows it."""
    out: list[CashAmount] = []
    for i, word in enumerate(words):
        following = words[i + 1] if i + 1 < len(words) else ""
        if word.isalpha():
            if i == 0 or words[i - 1].isalpha():
                raise ValueError(f"{word} must follow the amount it is the currency of")
            continue
        cur = following.upper() if following.isalpha() else ""
        out.append(CashAmount(amount=parse_money(word, cur or currency), currency=cur))
    return out


def _counted(words: Sequence[str], currency: str) -> list[Counted]:
    """`1500.50 200 EUR card 1234.00`: cash per currency, then other tenders each before their amount."""
    out: list[Counted] = []
    cash: list[str] = []
    it = iter(words)
    for word in it:
        if word.lower() in ("card", "giftcard", "invoice"):
            out.append(Counted(tender=word.lower(), counted=parse_money(next(it, ""), currency)))
        else:
            cash.append(word)
    counted = [Counted(counted=a.amount, currency=a.currency) for a in _cash_amounts(cash, currency)]
    return counted + out


def show_state(state: SaleState) -> str:
    cur = state.currency
    link = f" | {state.link}" if state.link else ""
    if state.link == "offline" and state.backlog:
        link += f", {state.backlog} to send"
    seller = f" | salesperson {state.salesperson}" if state.salesperson else ""
    head = f"[lane {state.lane} | {state.status} | operator {state.operator or '-'}{seller}{link}]"
    back = state.total < 0  # a refund (or returns worth more than the goods bought): money goes back
    if state.tenders and back:
        taken = ", ".join(
            f"{t.kind} {format_money(-t.amount, t.currency)}{_cur(t.currency, cur)}" for t in state.tenders
        )
        head += f" paid back {format_money(-state.paid, cur)} ({taken}), to refund {format_money(-state.due, cur)}"
    elif state.tenders:
        taken = ", ".join(
            f"{t.kind} {format_money(t.amount, t.currency)}{_cur(t.currency, cur)}" for t in state.tenders
        )
        head += f" paid {format_money(state.paid, cur)} ({taken}), due {format_money(state.due, cur)}"
    if state.training:
        head = f"** TRAINING / ÖVNING ** {head}"
    out = [f"{head} {state.message}".rstrip()]
    for line in state.lines:
        if line.weight_g:
            qty = f"{line.qty * line.weight_g / 1000:.3f} kg x {format_money(line.unit_price, cur)}"
        else:
            qty = f"{line.qty} x {format_money(line.unit_price, cur)}" if line.qty != 1 else ""
        mark = " VOID" if line.voided else ""
        out.append(f"  {line.no:>3} {line.name[:26]:<26} {qty:>16} {format_money(line.amount, cur):>10}{mark}")
    for given in state.discounts:  # issue 14: each discount on its own line, what it takes off now
        what = f"line {given.line}" if given.line else "sale"
        how = format_rate(given.value) if given.kind == "percent" else format_money(given.value, cur)
        label = f"{'price' if given.kind == 'price' else 'discount'} {what} {how} {given.reason[:16]}"
        out.append(f"      {label:<43} {format_money(-given.amount, cur):>10}")
    if state.lines:
        vat = ", ".join(f"{format_rate(v.rate)} {format_money(v.vat, cur)}" for v in state.vat)
        if back:
            total = f"TO REFUND {cur} {format_money(-state.total, cur)}   in cash {format_money(-state.cash_due, cur)}"
        else:
            total = f"TOTAL {cur} {format_money(state.total, cur)}   cash {format_money(state.cash_due, cur)}"
        out.append(f"      {total}   (VAT {vat})")
    if state.popup:  # the cashier must act on it (check the customer's age) before going on
        out.append(f"!! {state.popup}")
    return "\n".join(out)


def _cur(currency: str, home: str) -> str:
    return "" if currency == home else f" {currency}"


def _price(amount: int, currency: str, unit: str) -> str:
    if amount < 0:
        return "no price"
    return f"{format_money(amount, currency)}{'/kg' if unit == 'kg' else ''}"


def show_cash(done: CashDone) -> str:
    """A cash event as journaled: its slip (as printed), a count's lines with their differences, and the
    lane's word on it."""
    out = [done.text.rstrip()] if done.text else []
    for line in done.counts:
        money = f"{line.currency} {format_money(line.expected, line.currency)}"
        if line.uncounted:
            out.append(f"  {line.tender:<9} expected {money} (not counted)")
        else:
            diff = format_money(line.counted - line.expected, line.currency)
            counted = format_money(line.counted, line.currency)
            out.append(f"  {line.tender:<9} expected {money}, counted {counted}, difference {diff}")
    out.append(f"-- {done.code} recorded as event {done.receipt_no} on lane {done.lane}: {done.message}")
    return "\n".join(out)


def show_instant(ms: int, timezone: str = "") -> str:
    """A time as the store's clock reads it when the till knows the store's zone, else in UTC."""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    try:
        local = moment.astimezone(ZoneInfo(timezone)) if timezone else None
    except (ZoneInfoNotFoundError, ValueError):  # a zone this machine does not know: UTC is still right
        local = None
    if local is None:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def show_item(info: ItemInfo, timezone: str = "") -> str:
    price = _price(info.price, info.currency, info.unit)
    if info.price >= 0:
        price = f"{info.currency} {price} (VAT {format_rate(info.vat_rate)})"
    out = [f"{info.name} ({info.item}, {info.code}): {price}"]
    if info.campaign_ends:
        out.append(f"  campaign price until {show_instant(info.campaign_ends, timezone)}")
    if info.popup:
        out.append(f"  !! {info.popup}")
    out.extend(f"  {label}: {text}" for label, text in (("info", info.info), ("warranty", info.warranty)) if text)
    return "\n".join(out)


def show_found(result: SearchResult, currency: str) -> str:
    if not result.items:
        return f"nothing found for {result.text!r}"
    out = [f"found {len(result.items)} for {result.text!r}:"]
    for f in result.items:
        out.append(f"  {f.name[:30]:<30} {f.code:<14} {_price(f.price, currency, f.unit):>12}")
    return "\n".join(out)


def show_parked(listing: ParkedList, timezone: str = "") -> str:
    if not listing.sales:
        return "no sales are parked in this store"
    shown = f"the oldest {len(listing.sales)} of more" if listing.more else f"{len(listing.sales)}"
    out = [f"{shown} parked (resume <id> on any lane of the store):"]
    for p in listing.sales:
        amount = f"{p.currency} {format_money(p.total, p.currency)}"
        when = show_instant(p.at, timezone)
        out.append(f"  {p.id:<8} lane {p.lane:<3} operator {p.operator:<6} {when}  {p.lines:>3} lines {amount:>14}")
    return "\n".join(out)


def show(frame: TillFrame, *, currency: str = "SEK", timezone: str = "") -> str:
    """`currency` and `timezone` are the store's, for answers that do not carry them."""
    match frame:
        case SaleState():
            return show_state(frame)
        case Receipt() if frame.cash_due < 0:  # money went back: never "change" on a refund
            back = format_money(-frame.cash_due, frame.currency)
            return frame.text + f"-- receipt {frame.receipt_no} done, paid back {frame.currency} {back}"
        case Receipt():
            return (
                frame.text + f"-- receipt {frame.receipt_no} done, change {format_money(frame.change, frame.currency)}"
            )
        case Error():
            return f"! {frame.code}: {frame.message}"
        case StockInfo():
            where = frame.note or ", ".join(f"{s.location} {s.qty}" for s in frame.elsewhere) or "none elsewhere"
            return f"stock of {frame.name} ({frame.item}): here {frame.here}; {where}"
        case ItemInfo():
            return show_item(frame, timezone)
        case SearchResult():
            return show_found(frame, currency)
        case GiftCardInfo():
            return f"{frame.kind} {frame.card}: balance {frame.currency} {format_money(frame.balance, frame.currency)}"
        case TerminalReport():
            head = f"end of day at {frame.terminal}: {'done' if frame.ok else 'FAILED ' + frame.message}"
            head += f", {frame.count} payments, {frame.currency} {format_money(frame.total, frame.currency)}"
            groups = [f"  {t.card}: {t.count}, {format_money(t.amount, frame.currency)}" for t in frame.totals]
            return "\n".join([head, *groups, frame.text]).rstrip()
        case ReceiptList():
            return show_receipts(frame, timezone)
        case CashDone():
            return show_cash(frame)
        case ParkedList():
            return show_parked(frame, timezone)
        case Status():
            actors = ", ".join(f"{a.name} {a.state}" for a in frame.actors)
            return f"store {frame.store}: link {frame.link}, outbox {frame.outbox}; {actors}"
    return repr(frame)


async def lines_from(script: Path | None, read_stdin: bool) -> AsyncIterator[str]:
    if script is not None:
        for line in (await trio.Path(script).read_text()).splitlines():
            yield line
    if read_stdin:
        while True:
            line = await trio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
            if not line:
                return
            yield line


async def run_till(
    url: str,
    lane: int,
    till: str,
    script: Path | None = None,
    use_json: bool = False,
    *,
    read_stdin: bool = True,
    out: Callable[[str], None] = print,
    hook: Hook | None = None,
    credential: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> int:
    """Drive a lane until quit or end of input; returns 1 when the store was never reachable.
    `hook` sees each line first and may take it (the demo uses it to drive simulated devices).
    Everything shown passes `plain_lines`: item names and store messages never reach the terminal
    as escape sequences."""

    def say(text: str) -> None:
        out(plain_lines(text))

    subprotocol = SUBPROTOCOL_JSON if use_json else SUBPROTOCOL_MSGPACK
    source = lines_from(script, read_stdin)
    attached_once = False
    tries, delay = 0, 0.2
    takeover: Login | None = None
    while True:
        try:
            async with connect(
                url,
                lane,
                till,
                subprotocol=subprotocol,
                takeover=takeover,
                credential=credential,
                ssl_context=ssl_context,
            ) as client:
                attached_once, tries, delay, takeover = True, 0, 0.2, None
                assert client.state is not None
                say(f"attached to lane {lane} at {url} as {till}")
                say(show_state(client.state))
                finished = await _session(client, source, say, hook)
                if finished:
                    return 0
        except (OSError, HandshakeError, ConnectionClosed, TillDisconnected, trio.TooSlowError) as exc:
            tries += 1
            if not attached_once and tries >= FIRST_CONNECT_TRIES:
                say(f"! cannot reach the store at {url}: {exc}")
                return 1
            # The outcome of a command in flight is unknown; the basket shown on reattach tells.
            say(f"! connection to the store lost ({type(exc).__name__}); reattaching")
        except ConnectionRefusedError as exc:
            say(f"! the store refused this till: {exc}")
            if not (str(exc).startswith("lane_in_use") or takeover is not None):
                return 1
            # another till holds the lane: an operator may log in here to take it over
            say("  to take the lane over here: takeover <operator> <pin> [take] (anything else ends)")
            words = (await anext(source, "")).split()
            if len(words) not in (3, 4) or words[0] != "takeover" or words[3:] not in ([], ["take"]):
                return 1
            takeover = Login(operator=words[1], pin=words[2], take_sale=words[3:] == ["take"])
            continue
        await trio.sleep(delay)
        delay = min(delay * 2, 5.0)


async def _session(
    client: TillClient, source: AsyncIterator[str], out: Callable[[str], None], hook: Hook | None
) -> bool:
    """Feed lines to the lane; True at the end of input or on quit."""
    async for line in source:
        if hook is not None and await hook(line, client):
            continue
        state = client.state
        keys = client.welcome.quick_keys if client.welcome else []
        try:
            parsed = parse(line, state.currency if state else "SEK", state.cash_due if state else 0, keys)
        except InputError as exc:
            out(f"! {exc}")
            continue
        if parsed is None:
            continue
        if parsed == "help":
            out(HELP)
            continue
        if parsed == "keys":
            out("\n".join(f"  {n}: {k.label} ({k.code})" for n, k in enumerate(keys, 1)) or "no quick keys")
            continue
        if parsed in ("quit", "exit"):
            return True
        assert isinstance(parsed, Command)
        out(f"> {line.strip()}")
        with trio.fail_after(PAYMENT_TIMEOUT if isinstance(parsed, EndOfDay) else ANSWER_TIMEOUT):
            answer = await client.request(parsed)  # an end of day answers when the acquirer has its batch
        zone = client.welcome.timezone if client.welcome else ""
        out(show(answer, currency=state.currency if state else "SEK", timezone=zone))
        if isinstance(answer, SaleState) and answer.status == "paying":
            out(show(await _payment_outcome(client)))
    return True


async def _payment_outcome(client: TillClient) -> TillFrame:
    """A card payment runs at the terminal (card, PIN) and ends later: its receipt, or the lane as it stands."""
    seen = len(client.receipts)
    with trio.fail_after(PAYMENT_TIMEOUT):  # a closing sale's receipt comes before its cleared lane
        while client.state is not None and client.state.status == "paying" and len(client.receipts) == seen:
            await client.pushed.wait()
    if len(client.receipts) > seen:
        return client.receipts[-1]
    assert client.state is not None
    return client.state
