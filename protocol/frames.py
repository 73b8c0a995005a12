"""Wire frames: the only contract between storepos processes.

Evolution rules (golden-bytes tests enforce them): append fields with defaults only; never reorder,
rename or retype a field; never reuse a tag. Wire frames never forbid unknown fields, so an older
peer can read a newer peer's frames.

Till <-> store frames are string-tagged maps (readable as JSON in a browser, MessagePack for Python
tills). Store <-> central frames are compact arrays with integer tags from the registry below.
Money is always integer minor units; VAT rates are basis points (2500 = 25 %).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar, get_args

import msgspec

# A version changes only when a change cannot follow the evolution rules above (older peers could not
# read the newer frames); peers of different versions refuse each other with a clear error instead of
# misreading each other (protocol.versions).
PROTOCOL_VERSION = 1  # till <-> store
# store <-> central; 2: questions are typed frames (tags 11-26), no longer LinkRequest; 3: a store proves
# its identity in the hello exchange (LinkHello's key fields, LinkChallenge, LinkProof)
LINK_VERSION = 3


# ---------------------------------------------------------------------------------------------
# Till <-> store
# ---------------------------------------------------------------------------------------------


# What a till may send is bounded at decoding: a frame outside these bounds is undecodable (the
# till gets bad_frame) before any lane sees it, so no number beyond SQLite's 64 bits and no text of
# megabytes reaches a lane or the journal. The lanes still apply their own, tighter business rules.
MAX_AMOUNT = 10**12  # minor units, either sign: ten thousand million in a two-decimal currency
Amount = Annotated[int, msgspec.Meta(ge=-MAX_AMOUNT, le=MAX_AMOUNT)]
Quantity = Annotated[int, msgspec.Meta(ge=-10_000_000, le=10_000_000)]
Number = Annotated[int, msgspec.Meta(ge=0, le=2**53)]  # refs, lanes, line numbers: exact in JSON too
Name = Annotated[str, msgspec.Meta(max_length=64)]  # ids, operator numbers, PINs, reasons, cards
Code = Annotated[str, msgspec.Meta(max_length=256)]  # a barcode or receipt id (the lane allows less)
Words = Annotated[str, msgspec.Meta(max_length=1024)]  # a search or a note (the lane allows less)


class TillFrame(msgspec.Struct, tag_field="t", kw_only=True, omit_defaults=True):
    pass


class Command(TillFrame, kw_only=True, omit_defaults=True):
    """A till's request. `ref` is echoed on the answer so a till can wait for it; `lane`, when set,
    must be the lane this till is attached to (a guard against a till acting on the wrong lane)."""

    ref: Number = 0
    lane: Number = 0


class Hello(TillFrame, tag="hello"):
    """A till attaching to its lane (lane 0: a client that only asks, such as `storepos store status`).
    A lane has one till; another takes it over only with `takeover` and an operator's number and PIN,
    logged in at the new till as the attach happens (the first till is told and detached). A till
    proves its enrolment with `credential`; without a valid one for the lane it gets one refusal."""

    till: Name
    lane: Number
    version: Number = PROTOCOL_VERSION
    takeover: bool = False
    operator: Name = ""
    pin: Name = ""
    credential: Name = ""  # the till's credential (`storepos store till enroll`): `<id>.<secret>`
    take_sale: bool = False  # with takeover: a supervisor also takes over the sale another operator left open


class Login(Command, tag="login"):
    operator: Name
    pin: Name
    # A supervisor (or manager) takes over the sale another operator left open on the lane: said on the
    # login itself, since nobody else can log in while it is open. Journaled with the sale (an approval).
    take_sale: bool = False


class Logout(Command, tag="logout"):
    pass


class StartSale(Command, tag="start"):
    pass


class Scan(Command, tag="scan"):
    code: Code
    qty: Quantity = 1
    approver: Name = ""  # a supervisor's operator number, when this needs approval (Error approval_needed)
    approver_pin: Name = ""


class VoidLine(Command, tag="void"):
    line: Number
    approver: Name = ""  # a supervisor's operator number, when this needs approval (Error approval_needed)
    approver_pin: Name = ""


class Total(Command, tag="total"):
    pass


class CashTender(Command, tag="cash"):
    """Cash handed over. `currency` (another than the store's) is foreign cash valued at central's
    published rate; `part` accepts less than is due as part of a split payment."""

    amount: Amount
    currency: Name = ""
    part: bool = False


class CancelSale(Command, tag="cancel"):
    approver: Name = ""  # a supervisor's operator number, when this needs approval (Error approval_needed)
    approver_pin: Name = ""


class StatusRequest(Command, tag="status?"):
    pass


class ReturnItem(Command, tag="return"):
    """A customer brings an item back: a negative line in the current sale. In a refund of a receipt
    (`RefundOf`) the line comes from that receipt, at the price paid then; without one it is priced as
    today and goes back only in cash or to a gift card."""

    code: Code
    qty: Quantity = 1
    approver: Name = ""  # a supervisor's operator number, when this needs approval (Error approval_needed)
    approver_pin: Name = ""


class StockMove(Command, tag="move"):
    """Goods received, transferred out (negative) or adjusted at this store."""

    code: Code
    qty: Quantity
    reason: Name  # receipt | transfer | adjust
    note: Words = ""  # delivery note, transfer id: travels to central as the movement's ref
    approver: Name = ""  # a supervisor's operator number, when this needs approval (Error approval_needed)
    approver_pin: Name = ""


class StockCount(Command, tag="count"):
    code: Code
    counted: Quantity
    approver: Name = ""  # a supervisor's operator number, when this needs approval (Error approval_needed)
    approver_pin: Name = ""


class StockQuery(Command, tag="stock?"):
    """Stock of an item here and, when central is reachable, in the chain's other stores."""

    code: Code


class ItemSearch(Command, tag="search"):
    """Find items by name: every word a prefix ("ban fre" finds "Bananas Fresh"), best matches first."""

    text: Words
    limit: Number = 20


class PriceCheck(Command, tag="price?"):
    """What an item costs here now, without selling it (the customer asks at the till)."""

    code: Code


class RefundOf(Command, tag="refundof"):
    """Open a refund of a receipt (the id printed under its code, "S001-1-42"): the returns that follow
    are checked against it and paid back to the tenders it was paid with, never more than each took."""

    receipt: Code


class SetAside(Command, tag="setaside"):
    """A supervisor gives up on a card payment the terminal cannot settle (broken, replaced): the attempt
    is journaled as set aside with its outcome unknown, for a person to check on the terminal's own
    journal, and the sale stays open for another tender. Never recorded as paid."""

    operator: Name
    pin: Name
    reason: Words


class EndOfDay(Command, tag="endofday"):
    """The lane's card terminal closes its day (ZVT 06 50): it submits its batch and reports the totals."""

    approver: Name = ""  # a supervisor's operator number, when this needs approval (Error approval_needed)
    approver_pin: Name = ""


# -- Issue 14, salesperson (sellfix) ---------------------------------------------------------------------


class SetSalesperson(Command, tag="salesperson"):
    """The sale's salesperson: an operator number of this store's register, entered before (or during) each
    sale where store.toml's [sales] salesperson is optional or required; on a lane with no sale it opens one,
    so the number is saved with the sale it is for. Empty: the sale has none (where that is optional)."""

    salesperson: Name


# -- end of issue 14, salesperson ------------------------------------------------------------------------


class Line(msgspec.Struct, kw_only=True, omit_defaults=True):
    no: int
    item: str
    code: str
    name: str
    qty: int
    unit_price: int
    amount: int
    vat_rate: int
    voided: bool = False
    weight_g: int = 0  # a weighed line: unit_price is per kg, amount is for this weight


class TenderLine(msgspec.Struct, kw_only=True, omit_defaults=True):
    kind: str  # cash | card | giftcard | invoice
    amount: int  # in `currency`; negative for money paid back
    currency: str
    value: int  # in the store's currency
    reference: str = ""  # masked card number, gift card, customer


class VatAmount(msgspec.Struct, kw_only=True):
    rate: int
    gross: int
    vat: int


class SaleState(TillFrame, tag="state"):
    """The whole lane as the till should show it; pushed after every change, so a till never has
    to reconstruct anything and can reattach at any time."""

    lane: int
    status: str  # closed (nobody logged in) | ready (no sale) | open | tender
    currency: str
    operator: str = ""
    sale_id: str = ""
    lines: list[Line] = []
    total: int = 0
    vat: list[VatAmount] = []
    cash_due: int = 0  # total after cash rounding
    ref: int = 0
    message: str = ""  # what the till should show beside the basket, e.g. the last item scanned
    link: str = ""  # online | offline: whether central is reachable (selling goes on either way)
    backlog: int = 0  # events this store has not yet delivered to central
    devices: dict[str, str] = {}  # this lane's peripherals and their state (printer: paper-out, ...)
    popup: str = ""  # the scanned item's pop-up text ("check the customer's age"): show it until dismissed
    paid: int = 0  # tenders taken so far (split payments), in the store's currency; negative: refunded
    due: int = 0  # what is still to pay (negative: to refund), before cash rounding
    tenders: list[TenderLine] = []
    payment: str = ""  # a card payment in progress or in doubt, in words
    refund_of: str = ""  # the receipt this sale refunds (RefundOf)
    salesperson: str = ""  # the sale's salesperson (SetSalesperson), issue 14
    training: bool = False  # the lane is in training mode: show TRAINING / ÖVNING, nothing here is real
    discounts: list[DiscountLine] = []  # issue 14: manual discounts and price overrides; `total` is after them


class QuickKey(msgspec.Struct, kw_only=True):
    label: str
    code: str  # what the key scans


class Welcome(TillFrame, tag="welcome"):
    store: str
    lane: int
    till: str
    state: SaleState
    version: int = PROTOCOL_VERSION
    quick_keys: list[QuickKey] = []  # the till configuration's keys, in order
    timezone: str = ""  # the store's IANA zone, so a till shows times (a campaign's end) as the store's clock reads


class Receipt(TillFrame, tag="receipt"):
    lane: int
    receipt_no: int
    sale_id: str
    total: int
    cash_due: int
    tendered: int
    change: int
    currency: str
    text: str
    ref: int = 0


class Error(TillFrame, tag="error"):
    code: str
    message: str
    ref: int = 0


class ActorStatus(msgspec.Struct, kw_only=True, omit_defaults=True):
    name: str
    state: str
    restarts: int = 0
    last_error: str = ""
    detail: str = ""


class Status(TillFrame, tag="status"):
    store: str
    link: str  # online | offline
    outbox: int  # events not yet acknowledged by central
    actors: list[ActorStatus] = []
    journal: dict[str, int] = {}  # lane -> last receipt number
    ref: int = 0
    replica: int = 0  # the catalogue version this store sells from
    central_catalog: int = 0  # the newest catalogue version central has announced
    behind_since: int = 0  # epoch ms since the replica has lagged central's announced version; 0: up to date
    parked: int = 0  # sales parked at this store and not resumed (issue 14): left at day close, reported


class StockAt(msgspec.Struct, kw_only=True):
    location: str
    qty: int


class StockInfo(TillFrame, tag="stock"):
    item: str
    name: str
    here: int
    elsewhere: list[StockAt] = []
    note: str = ""  # when set, why `elsewhere` is not known (central unreachable, not asked)
    ref: int = 0


class ItemInfo(TillFrame, tag="item"):
    """The answer to a price check: the price that applies here now, and the texts a cashier needs."""

    item: str
    name: str
    code: str
    price: int  # per piece, or per kg for unit "kg"
    currency: str
    unit: str = "piece"
    vat_rate: int = 0
    campaign_ends: int = 0  # epoch ms; when set, `price` is a campaign price until then
    popup: str = ""
    info: str = ""
    warranty: str = ""
    ref: int = 0


class Found(msgspec.Struct, kw_only=True, omit_defaults=True):
    item: str
    name: str
    code: str  # a barcode to scan it with (the lowest), so a till can add it from the list
    price: int = -1  # -1: no price here now
    unit: str = "piece"


class SearchResult(TillFrame, tag="found"):
    text: str
    items: list[Found] = []
    ref: int = 0


class CardTender(Command, tag="card"):
    """Pay (or, when the sale is due negative, refund) by card through the lane's terminal. The store
    node sends the amount to the terminal: all that is still due unless `amount` splits it."""

    amount: Amount = 0


class GiftCardTender(Command, tag="giftcard"):
    """Redeem a gift card or voucher held at central (or, on a refund, credit it back)."""

    card: Name
    amount: Amount = 0  # 0: as much as the card holds, up to what is due


class InvoiceTender(Command, tag="invoice"):
    """What is still due goes on the invoice of a customer registered at central."""

    customer: Name


class ResolvePayment(Command, tag="resolve"):
    """Ask the terminal about the card payment in doubt (its last transaction) before anything else."""


class GiftCardQuery(Command, tag="giftcard?"):
    card: Name


class TerminalTotal(msgspec.Struct, kw_only=True):
    card: str  # the card group (Visa, girocard, ...)
    count: int
    amount: int


class TerminalReport(TillFrame, tag="endofday"):
    """The answer to EndOfDay: what the terminal submitted to the acquirer, and its printed lines."""

    lane: int
    terminal: str
    ok: bool
    currency: str
    total: int
    count: int
    totals: list[TerminalTotal] = []
    terminal_id: str = ""
    trace: str = ""
    message: str = ""
    text: str = ""
    ref: int = 0


class GiftCardInfo(TillFrame, tag="giftcard"):
    card: str
    kind: str  # giftcard | voucher
    balance: int
    currency: str
    ref: int = 0


# -- Issue 14, park and resume, training mode (storenode.lanes.parking, storenode.lanes.training) --------


class Park(Command, tag="park"):
    """Park the open sale (no money taken, no payment pending): it is kept at the store, journaled, and
    the lane is free for the next customer. Any lane of the store resumes it by its short id."""


class Resume(Command, tag="resume"):
    """Resume a parked sale on this lane (which must have no open sale) by its short id ("P12"); an id
    with another store's prefix ("S002-P12") is refused: a parked sale stays in its store."""

    id: Name


class ParkedQuery(Command, tag="parked?"):
    """The sales parked at this store (any lane), oldest first."""


class ParkedSale(msgspec.Struct, kw_only=True):
    id: str  # the short id a cashier types to resume it ("P12")
    lane: int  # where it was parked
    operator: str
    at: int  # epoch ms it was parked
    lines: int  # live lines
    total: int
    currency: str


class ParkedList(TillFrame, tag="parked"):
    sales: list[ParkedSale] = []  # the oldest parked sales, at most storenode.lanes.parking.LISTED
    ref: int = 0
    more: bool = False  # more are parked than listed (resume the oldest first)


class Training(Command, tag="training"):
    """Switch the lane's training mode on (a supervisor's approval: the command carries it, or the
    operator is one) or off (no approval). Refused while a sale is open."""

    on: bool
    approver: Name = ""  # a supervisor's operator number, when this needs approval (Error approval_needed)
    approver_pin: Name = ""


# -- Issue 14, receipts: looking receipts up, copies (a return by scanning a receipt is a Scan) ----------


class ReceiptQuery(Command, tag="receipt?"):
    """Find this store's receipts: by id (`receipt`, "S001-1-42"), or by any of a period of business days
    (`since`/`until`, "2026-12-01", both inclusive, in the store's time zone), an exact total and the
    last four digits of a card that paid it; all given must hold. Newest first, at most `limit`."""

    receipt: Code = ""
    since: Annotated[str, msgspec.Meta(max_length=10)] = ""
    until: Annotated[str, msgspec.Meta(max_length=10)] = ""
    amount: Amount = 0  # the receipt's exact total, minor units (a refund's is negative); 0: any total
    card: Annotated[str, msgspec.Meta(max_length=4)] = ""  # the last four digits of the card
    limit: Annotated[int, msgspec.Meta(ge=1, le=100)] = 20


class CopyReceipt(Command, tag="copy"):
    """Print a copy of a receipt of this store, marked COPY / KOPIA with its number; counted and limited
    by store.toml's `[sales] copies` per receipt."""

    receipt: Code


class ReceiptFound(msgspec.Struct, kw_only=True, omit_defaults=True):
    receipt: str  # its id, store-lane-number
    closed_at: int  # epoch ms
    total: int
    currency: str
    kind: str = "sale"  # sale | cancel
    refund_of: str = ""  # a refund: the receipt it paid back
    cards: list[str] = []  # the last four digits of the cards that paid it
    copies: int = 0  # copies printed of it so far


class ReceiptList(TillFrame, tag="receipts"):
    """The answer to ReceiptQuery and CopyReceipt: the receipts found, newest first, and `text`, the
    receipt itself as printed (the copy, for CopyReceipt) when exactly one was asked for by id."""

    receipts: list[ReceiptFound] = []
    more: bool = False  # more receipts matched than were sent: narrow the query
    text: str = ""
    ref: int = 0


# -- Cash management at the lane (issue 14, cash): storenode/lanes/cash.py -------------------------------
# Each command is one journaled event (RecordEvent codes nosale, payout, float_in, float_out, drop,
# deposit, count), answered with CashDone. The lane refuses every one while a sale is open, and a
# repeated `key` (a till's own id for the action, for a retry after a lost answer) answers with the event
# already journaled instead of journaling it twice.

CASH_LINES = 8  # currencies (or tenders, in a count) one cash command may carry


class CashAmount(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Cash of one currency (the store's, or one of `[payments] foreign_cash`), in its minor units."""

    amount: Amount
    currency: Name = ""  # "": the store's currency


class Counted(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What the cashier counted of one tender and currency at a cash count."""

    counted: Amount
    tender: Name = "cash"  # cash | card | giftcard | invoice
    currency: Name = ""  # "": the store's currency


CashAmounts = Annotated[list[CashAmount], msgspec.Meta(max_length=CASH_LINES)]


class NoSale(Command, tag="nosale"):
    """Open the drawer without a sale: the logged-in operator gives their number and PIN again and says
    why (a reason code or a few words). Counted per lane and operator and day."""

    operator: Name
    pin: Name
    reason: Name
    key: Name = ""


class Payout(Command, tag="payout"):
    """Petty cash paid out of the drawer against a voucher: in the store's currency, to an account of
    `[sales] payout_accounts`; above `[sales] payout_approval` a supervisor approves."""

    amount: Amount
    account: Name
    reason: Name
    key: Name = ""
    approver: Name = ""  # a supervisor's operator number, when this needs approval (Error approval_needed)
    approver_pin: Name = ""


class FloatMove(Command, tag="float"):
    """The drawer's float put in at the start of a shift (or taken out, `out`), per currency."""

    amounts: CashAmounts
    out: bool = False
    key: Name = ""


class CashDrop(Command, tag="drop"):
    """Cash taken out of the drawer to the safe, per currency."""

    amounts: CashAmounts
    key: Name = ""


class CashDeposit(Command, tag="deposit"):
    """Cash put into the drawer (change from the bank, a foreign float), per currency."""

    amounts: CashAmounts
    key: Name = ""


class CashCount(Command, tag="cashcount"):
    """The cash count at the end of a shift: what the cashier counted of each currency of cash (and of any
    other tender they count). The lane journals it beside what its journal says should be there."""

    counts: Annotated[list[Counted], msgspec.Meta(max_length=CASH_LINES)]
    key: Name = ""


class CountLine(msgspec.Struct, kw_only=True, omit_defaults=True):
    tender: str
    currency: str
    expected: int
    counted: int = 0
    uncounted: bool = False  # a tender the cashier did not count: its expected total only


class CashDone(TillFrame, tag="cashdone"):
    """The answer to a cash command: the event as journaled (its number in the lane's chain), the money
    it moved, a count's lines, and the slip as the till shows it (what the printer printed)."""

    lane: int
    code: str  # nosale | payout | float_in | float_out | drop | deposit | count
    receipt_no: int
    event: str  # the event's id in the journal
    currency: str  # the store's
    amounts: list[TenderLine] = []  # money into (positive) or out of (negative) the drawer
    counts: list[CountLine] = []
    message: str = ""
    text: str = ""
    ref: int = 0


# -- Issue 14, manual discounts (discounts) ---------------------------------------------------------------

Percent = Annotated[int, msgspec.Meta(ge=0, le=10_000)]  # hundredths of a percent: 1000 = 10.00 %


class GiveDiscount(Command, tag="discount"):
    """A manual discount with a reason code from central's register of discount reasons: of one line
    (`line`) or of the whole sale (line 0, spread over its lines: storenode.lanes.discounts), as a
    `percent` or an `amount` (exactly one of them). Beyond the cashier's limit (store.toml
    sales.cashier_discount_percent) a supervisor approves with `approver` and `approver_pin`."""

    reason: Name
    line: Number = 0
    percent: Percent = 0
    amount: Amount = 0
    approver: Name = ""  # a supervisor's operator number, when this needs approval (Error approval_needed)
    approver_pin: Name = ""


class OverridePrice(Command, tag="override"):
    """A manual unit price for one line (per kg for a weighed line), with a reason code; always a
    supervisor's (journaled as a discount of kind "price")."""

    line: Number
    price: Amount
    reason: Name
    approver: Name = ""
    approver_pin: Name = ""


class DiscountLine(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A discount or price override of the sale as the till shows it (SaleState.discounts)."""

    line: int  # 0: the whole sale
    kind: str  # percent | amount | price
    value: int  # hundredths of a percent, or minor units
    amount: int  # what it takes off the sale now (negative: a price raised)
    reason: str
    approver: str = ""


TillToStore = (
    Hello
    | Login
    | Logout
    | StartSale
    | Scan
    | VoidLine
    | Total
    | CashTender
    | CancelSale
    | StatusRequest
    | ReturnItem
    | StockMove
    | StockCount
    | StockQuery
    | ItemSearch
    | PriceCheck
    | CardTender
    | GiftCardTender
    | InvoiceTender
    | ResolvePayment
    | GiftCardQuery
    | RefundOf
    | SetAside
    | EndOfDay
    | ReceiptQuery
    | CopyReceipt
    | NoSale
    | Payout
    | FloatMove
    | CashDrop
    | CashDeposit
    | CashCount
    | SetSalesperson
    | Park
    | Resume
    | ParkedQuery
    | Training
    | GiveDiscount
    | OverridePrice
)
StoreToTill = (
    Welcome
    | SaleState
    | Receipt
    | Error
    | Status
    | StockInfo
    | ItemInfo
    | SearchResult
    | GiftCardInfo
    | TerminalReport
    | ReceiptList
    | CashDone
    | ParkedList
)


# ---------------------------------------------------------------------------------------------
# Store <-> central. Tag registry (never reuse a number):
#   1 LinkHello  2 LinkWelcome  3 EventBatch  4 Ack  5 LinkError  6 LinkRequest  7 LinkReply
#   8 CatalogPull  9 CatalogChunk  10 CatalogNotice  11 Ping  12 Pong  13 Refusal
#   14 RatesQuestion  15 RatesAnswer  16 CustomerQuestion  17 CustomerAnswer  18 GiftCardMoveQuestion
#   19 GiftCardAnswer  20 GiftCardQuestion  21 StockQuestion  22 StockAnswer  23 LanesQuestion
#   24 LanesAnswer  25 JournalQuestion  26 JournalAnswer  27 LinkChallenge  28 LinkProof
#   29 AdminHello  30 AdminWelcome
#   31 ReceiptQuestion  32 ReceiptAnswer  33 ReturnClaimQuestion  34 ReturnClaimAnswer  35 ReturnReleaseQuestion
# ---------------------------------------------------------------------------------------------


class LinkFrame(msgspec.Struct, array_like=True, tag_field="t"):
    pass


class Stream(StrEnum):
    """The event streams a store replays to central, each in its own order with its own cursor. A
    StrEnum, so a name is its string on the wire and in the databases (EventBatch.stream stays `str`:
    a newer store's unknown stream is refused by name at central, not as an undecodable frame)."""

    JOURNAL = "journal"  # sale records, exactly as hashed into the store's chain
    STOCK = "stock"  # stock movements
    GIFTCARD = "giftcard"  # gift card moves taken offline, and voids of moves in doubt


class LinkHello(LinkFrame, tag=1):
    """A store's hello. The key fields say who it claims to be (protocol.link proves it): `key` its raw
    Ed25519 public key; `token` the one-time enrolment token on its first connect; during a key
    rotation `key` is the new key, `previous` the old one and `rotation` the old key's ROTATION
    signature over the new key."""

    node: str
    role: str  # "store"
    version: int = LINK_VERSION
    key: bytes = b""
    token: str = ""
    rotation: bytes = b""
    previous: bytes = b""


class LinkWelcome(LinkFrame, tag=2):
    node: str
    acked: dict[str, int]  # stream -> highest contiguous seq central has applied for this store
    version: int = LINK_VERSION
    catalog: int = 0  # central's catalogue version: a store behind it pulls the difference
    catalog_epoch: str = ""  # which catalogue those versions count in (set when central's database was made)


class Event(msgspec.Struct, array_like=True):
    seq: int
    kind: str
    body: bytes  # canonical bytes of the record, exactly as hashed into the store journal
    sig: bytes = b""  # journal events: the store key's signature over the record's chain hash
    key: str = ""  # journal events: the id of the key that made `sig` (protocol.identity.key_id)


class EventBatch(LinkFrame, tag=3):
    store: str
    stream: str
    events: list[Event]


class Ack(LinkFrame, tag=4):
    """Cumulative: central holds everything up to `seq`, the highest seq of the acknowledged batch it
    holds (never one the store did not send: a store alarms on an ack beyond what it sent). `gap` says
    central stopped at a hole (events arrived out of order) and `seq` is its cursor, so the store
    should resend from seq + 1 right away."""

    store: str
    stream: str
    seq: int
    gap: bool = False


class LinkError(LinkFrame, tag=5):
    code: str
    message: str


class LinkChallenge(LinkFrame, tag=27):
    """Central's answer to a hello it may welcome: sign this fresh nonce (with central's node name,
    your store id and key) so a recorded hello and proof are worth nothing on another connection."""

    node: str
    nonce: bytes


class LinkProof(LinkFrame, tag=28):
    """The store's Ed25519 signature (Purpose.PROOF) over the challenge; then central welcomes."""

    signature: bytes


class LinkRequest(LinkFrame, tag=6):
    """An operator tool's request to central (the admin subprotocol: `reconcile`); the reply carries
    the same id. Store <-> central questions are typed frames since link version 2 (Question below)."""

    id: int
    kind: str
    body: bytes = b""


class LinkReply(LinkFrame, tag=7):
    id: int
    ok: bool
    body: bytes = b""
    error: str = ""


class AdminHello(LinkFrame, tag=29):
    """Operator tool -> central, first on the admin subprotocol: the operator token from central's folder
    (central/operators.py). Nothing else is read before it; a wrong one gets a LinkError and the door."""

    token: str


class AdminWelcome(LinkFrame, tag=30):
    """Central -> operator tool: the token was right; requests (LinkRequest) may follow."""

    node: str


# Master data, central -> store. Rows travel as plain arrays in the column order of central's
# registers (central/registers/catalog.py), straight from and into SQL rows.
VatRateRow = tuple[str, int]  # code, rate
GroupRow = tuple[str, str, str | None]  # item_group, name, parent
# item, name, receipt_text, item_group, vat_rate, unit, info, warranty, popup, active (0/1)
ItemRow = tuple[str, str, str, str | None, int, str, str, str, str, int]
BarcodeRow = tuple[str, str]  # code, item
PriceRow = tuple[str, str, int, int, int, str]  # item, store ('' = chain), starts, ends, price, currency
TillRow = tuple[str, str, str, int]  # store, till, name, lane
PriceKeyRow = tuple[str, str, int, int]  # a deleted price: item, store, starts, ends
TillConfigRow = tuple[str, str, str, str]  # store ('' = chain), receipt_header, receipt_footer, quick_keys
# number, name, role (cashier | supervisor | manager), stores ("*" or "S001,S002"), pin_hash: the slow hash
# (protocol.pins), "" when the operator does not work at the store the row is sent to
OperatorRow = tuple[str, str, str, str, str]
DiscountReasonRow = tuple[str, str, int]  # code, name, active (0/1): central's register of discount reasons


class CatalogPull(LinkFrame, tag=8):
    """The store asks for the master data changed after `base` (0: everything, a snapshot), from
    `cursor` on: central's opaque position in a transfer, echoed back from the last chunk, so a transfer
    cut by a dropped link or a restart resumes where it stopped instead of starting over."""

    base: int
    cursor: bytes = b""
    id: int = 0  # echoed on the chunk: a chunk answering any other pull (duplicated, late) is dropped


class CatalogChunk(LinkFrame, tag=9):
    """One piece of a transfer. `base` is what it builds on: a store applies nothing unless that is
    its own version (0 means: replace everything). Rows changed while a transfer runs come again in
    a later chunk, so when `done` the staged rows are exactly central's catalogue at `version`."""

    base: int
    cursor: bytes
    done: bool
    version: int  # when done: the version the store reaches; otherwise central's current version
    vat_rates: list[VatRateRow] = []
    groups: list[GroupRow] = []
    items: list[ItemRow] = []
    barcodes: list[BarcodeRow] = []
    prices: list[PriceRow] = []
    tills: list[TillRow] = []
    till_configs: list[TillConfigRow] = []
    id: int = 0  # the pull this answers
    epoch: str = ""  # the catalogue `version` counts in: a store keeps it with its copy
    deleted_prices: list[PriceKeyRow] = []  # prices central deleted: the store drops them
    operators: list[OperatorRow] = []  # the operator register (issue 13): who may log in at which store
    discount_reasons: list[DiscountReasonRow] = []  # issue 14: why a manual discount may be given


class CatalogNotice(LinkFrame, tag=10):
    """Central committed catalogue `version`: a store behind it pulls the difference at once."""

    version: int


# ---------------------------------------------------------------------------------------------
# Journal records: hashed into the store's chain and carried unchanged to central in Event.body.
# ---------------------------------------------------------------------------------------------


class RecordLine(msgspec.Struct, array_like=True):
    no: int
    item: str
    code: str
    name: str
    qty: int
    unit_price: int
    amount: int
    vat_rate: int
    voided: bool
    weight_g: int = 0  # a weighed line: qty is 1, unit_price is per kg
    origin: int = 0  # a returned line of a refund (SaleRecord.refund_of): its line number on that receipt


class RecordVat(msgspec.Struct, array_like=True):
    rate: int
    gross: int
    vat: int


class RecordTender(msgspec.Struct, array_like=True):
    kind: str  # cash | card | giftcard | invoice
    currency: str
    amount: int  # what the customer handed over (in `currency`); negative: paid back (a refund)
    value: int = 0  # in the sale's currency (foreign cash at the rate of the day); 0 in older records: amount
    reference: str = ""  # card: terminal trace; giftcard: the card; invoice: the customer
    rate: int = 0  # foreign cash: sale-currency minor units per foreign minor unit, in millionths

    @property
    def sale_value(self) -> int:
        """What the tender is worth in the sale's currency: records from before foreign cash carry no
        separate value (0), and then the amount is it."""
        return self.value or self.amount


class RecordPayment(msgspec.Struct, array_like=True):
    """One money call and its outcome (card through the terminal, gift card at central): every attempt
    is journaled with its sale, declined and reversed ones too. Never a full card number."""

    kind: str  # payment | refund | reversal | redeem | credit
    method: str  # card | giftcard
    outcome: str  # approved | declined | aborted | unknown
    amount: int
    currency: str
    reference: str  # the store's id for the attempt (the terminal's or central's idempotency key)
    terminal_txn: str = ""
    masked_pan: str = ""
    auth_code: str = ""
    card_type: str = ""
    terminal_id: str = ""
    receipt_no: int = 0  # the terminal's receipt number, which a reversal names
    prior_txn: str = ""  # the terminal's last trace before the attempt (settles an unknown outcome)
    message: str = ""
    card: str = ""  # a gift card or voucher: its number (a bearer token held at central, not a bank card)


class RecordApproval(msgspec.Struct, array_like=True):
    """A supervisor's approval of something a cashier may not do alone, journaled with the sale it was
    given in: what (`void`, `cancel`, `return`, `label`, `price`), who approved, and the detail."""

    action: str
    approver: str  # the supervisor's (or manager's) operator number
    detail: str = ""


class RecordDiscount(msgspec.Struct, array_like=True):
    """A manual discount or price override given in a sale (issue 14), journaled as its own entry so a
    receipt, an audit and a Z report show what was taken off, why and on whose word."""

    line: int  # the line it applies to; 0: the whole sale (spread over its lines, see the lane's discount rule)
    kind: str  # percent | amount | price (price: a manual price override; `value` is the new unit price)
    value: int  # percent in hundredths (1000 = 10.00 %), or minor units (amount, price)
    amount: int  # what it took off the sale, in minor units (positive: a discount; negative: an override upwards)
    reason: str  # the reason code, from central's register of discount reasons
    approver: str = ""  # the supervisor who approved it, when the cashier's limit did not reach


class RecordCount(msgspec.Struct, array_like=True):
    """One tender and currency of a cash count: what the lane's journal says should be there, and what
    the cashier counted."""

    tender: str  # cash | card | giftcard | invoice | voucher ...
    currency: str
    expected: int
    counted: int


class RecordEvent(msgspec.Struct, array_like=True):
    """What a journal record of kind "event" records: something that happened at the lane and is not a
    sale (park, resume, no-sale drawer opening, payout, float, cash drop, deposit, cash count, copy
    receipt, training on/off; the event-journal issue adds login, reports and the rest). An event takes
    the next number of the lane's chain like a sale, so every number of the chain is accounted for."""

    # park resume nosale payout float_in float_out drop deposit count copy training_on training_off
    code: str
    ref: str = ""  # what it concerns: the parked/resumed sale id, the copied receipt id
    reason: str = ""  # a reason code or the cashier's reason text
    account: str = ""  # a payout's account
    amounts: list[RecordTender] = []  # money in (positive) or out of (negative) the drawer, per tender and currency
    counts: list[RecordCount] = []  # a cash count: expected and counted per tender and currency
    approver: str = ""  # the supervisor who approved it
    detail: str = ""


class SaleRecord(msgspec.Struct, array_like=True):
    store: str
    lane: int
    receipt_no: int
    kind: str  # sale | cancel | event (see RecordEvent)
    sale_id: str  # an event's own unique id (the sale it concerns is in event.ref)
    operator: str
    opened_at: int  # business time, epoch milliseconds
    closed_at: int
    currency: str
    lines: list[RecordLine]
    total: int
    rounding: int  # cash rounding applied to the total (cash_due - total)
    vat: list[RecordVat]
    tenders: list[RecordTender]
    change: int
    payments: list[RecordPayment] = []
    refund_of: str = ""  # a refund: the receipt id (store-lane-receipt_no) of the sale it pays back
    approvals: list[RecordApproval] = []  # supervisors' approvals given in this sale (issue 13)
    # Issue 14 (the cashier's day), appended together:
    salesperson: str = ""  # the salesperson's operator number, where the till configuration asks for one
    discounts: list[RecordDiscount] = []  # manual discounts and price overrides, in the order given
    training: bool = False  # a training sale (or an event in training mode): never counted, stocked or paid
    event: RecordEvent | None = None  # kind "event": what happened (lines/total: a parked sale's content)


class StockLine(msgspec.Struct, array_like=True):
    item: str
    qty: int  # a signed delta; for a count, what was counted


class StockMovement(msgspec.Struct, array_like=True):
    """Stock moves as signed deltas with a reason, so offline stores merge without conflict. A count
    carries what was counted instead: central derives the delta from its own level, which by then
    includes every earlier movement of the store (they travel in one ordered stream)."""

    store: str
    reason: str  # sale | return | receipt | transfer | adjust | count
    ref: str  # the sale id, delivery note or transfer id behind the movement
    at: int  # business time, epoch milliseconds
    lines: list[StockLine]


class StockLevel(msgspec.Struct, array_like=True):
    location: str
    item: str
    qty: int


# ---------------------------------------------------------------------------------------------
# What questions carry, and the admin subprotocol's bodies.
# ---------------------------------------------------------------------------------------------


class JournalEntry(msgspec.Struct, array_like=True):
    receipt_no: int
    hash: bytes
    pending: bool  # still in the store's outbox: on its way to central, not lost


class ReconcileReport(msgspec.Struct, array_like=True):
    """[reconcile, admin subprotocol] what `storepos central reconcile` prints: receipt-by-receipt differences."""

    store: str
    compared: int
    in_transit: int
    differences: list[str]


class GiftCardMove(msgspec.Struct, array_like=True):
    """GiftCardMoveQuestion and the `giftcard` outbox stream: one change
    of a card's balance, idempotent by `move` (a retried request, or the same move arriving later in
    the outbox, never changes a balance twice). `void` undoes the redemption `move` names, if it happened."""

    move: str
    kind: str  # redeem | credit | void
    card: str
    amount: int
    currency: str
    store: str
    sale_id: str
    at: int
    offline: bool = False  # taken by the store while central was unreachable (allowed up to a limit)
    refund_of: str = ""  # a store's credit: the receipt id (store-lane-receipt_no) it pays back to the card


class GiftCardState(msgspec.Struct, array_like=True):
    """Central's answer: the card after the move (or as it stands, for a balance question)."""

    card: str
    kind: str  # giftcard | voucher
    balance: int
    currency: str
    ok: bool = True
    amount: int = 0  # what the move changed
    message: str = ""


class ExchangeRate(msgspec.Struct, array_like=True):
    """Central's published rate for cash in `currency` at stores selling in `base`: base minor
    units per `currency` minor unit, in millionths (see protocol.money.parse_rate)."""

    base: str
    currency: str
    rate: int
    at: int  # when central published it, epoch milliseconds


# ---------------------------------------------------------------------------------------------
# Questions over the link: each a tagged frame naming its answer's type, so an asker gets a typed
# answer (protocol.link.Session.ask) and an answerer is looked up by the question's type. `id` is
# stamped by the session (0 when built); the answer carries it back. Every question and answer is
# kw_only, which keeps `id` first on the wire and lets fields be appended (with defaults) after it.
# A question the answering side cannot answer gets a Refusal with its id instead.
# ---------------------------------------------------------------------------------------------


class Answer(LinkFrame, kw_only=True):
    id: int = 0


AnswerT = TypeVar("AnswerT", bound=Answer)


class Question(LinkFrame, Generic[AnswerT], kw_only=True):
    id: int = 0


class Refusal(LinkFrame, tag=13):
    """The answering side cannot answer question `id` (an unknown card or customer, a malformed
    question): the asker gets protocol.link.Refused with this message."""

    id: int
    message: str


class Pong(Answer, tag=12, kw_only=True):
    pass


class Ping(Question[Pong], tag=11, kw_only=True):
    """The heartbeat: answered by the peer's session itself, so a pong proves its reader is alive."""


class RatesAnswer(Answer, tag=15, kw_only=True):
    rates: list[ExchangeRate]


class RatesQuestion(Question[RatesAnswer], tag=14, kw_only=True):
    """Store -> central: the rates central publishes for foreign cash at stores selling in `base`."""

    base: str


class CustomerAnswer(Answer, tag=17, kw_only=True):
    name: str


class CustomerQuestion(Question[CustomerAnswer], tag=16, kw_only=True):
    """Store -> central: is `customer` registered for invoices? Refused when not."""

    customer: str


class GiftCardAnswer(Answer, tag=19, kw_only=True):
    card: GiftCardState


class GiftCardMoveQuestion(Question[GiftCardAnswer], tag=18, kw_only=True):
    """Store -> central: change a card's balance now (idempotent by move.move); the card after it."""

    move: GiftCardMove


class GiftCardQuestion(Question[GiftCardAnswer], tag=20, kw_only=True):
    """Store -> central: a card's balance. Refused for a card central does not hold."""

    card: str


class StockAnswer(Answer, tag=22, kw_only=True):
    levels: list[StockLevel]


class StockQuestion(Question[StockAnswer], tag=21, kw_only=True):
    """Store -> central: an item's stock at every location central knows of."""

    item: str


class LanesAnswer(Answer, tag=24, kw_only=True):
    last: dict[int, int]  # lane -> last receipt number in the store's journal


class LanesQuestion(Question[LanesAnswer], tag=23, kw_only=True):
    """Central -> store (reconciliation): the store's lanes and their last receipts."""


class JournalAnswer(Answer, tag=26, kw_only=True):
    lane: int
    entries: list[JournalEntry]


class JournalQuestion(Question[JournalAnswer], tag=25, kw_only=True):
    """Central -> store (reconciliation): a lane's chain, a page at a time (messages stay small)."""

    lane: int
    after: int
    limit: int


# -- Issue 14, receipts: another store's receipt returned here, exactly once chain-wide ---------------


class ReceiptAnswer(Answer, tag=32, kw_only=True):
    body: bytes  # the receipt's journal record, as its store journaled it (protocol.codec.encode_record)
    returned: dict[int, int] = {}  # its line number -> quantity returned (or held by a refund) at other stores


class ReceiptQuestion(Question[ReceiptAnswer], tag=31, kw_only=True):
    """Store -> central: a receipt of another store of the chain, from central's sales journal, to refund it
    here; refused when central does not hold it."""

    receipt: Code  # store-lane-number


# What one refund may hold of a receipt, bounded where it is decoded: central keeps a row per line.
ReturnLines = Annotated[
    dict[Annotated[int, msgspec.Meta(ge=1, le=10_000)], Annotated[int, msgspec.Meta(ge=1, le=10_000_000)]],
    msgspec.Meta(max_length=1000),
]


class ReturnClaimAnswer(Answer, tag=34, kw_only=True):
    pass


class ReturnClaimQuestion(Question[ReturnClaimAnswer], tag=33, kw_only=True):
    """Store -> central: hold these lines of `receipt` for the refund `claim` (its sale id), replacing what
    that refund held before; refused, naming the line, when another refund has them."""

    receipt: Code
    claim: Name
    lines: ReturnLines  # the receipt's line number -> quantity (positive) this refund returns


class ReturnReleaseQuestion(Question[ReturnClaimAnswer], tag=35, kw_only=True):
    """Store -> central: the refund `claim` was cancelled; what it held is free again."""

    claim: Name


def _answer_of(question: type[Question[Any]]) -> type[Answer]:
    """The answer type a question class names in its base (`Question[RatesAnswer]`)."""
    for base in getattr(question, "__orig_bases__", ()):
        for arg in get_args(base):
            if isinstance(arg, type) and issubclass(arg, Answer):
                return arg
    raise TypeError(f"{question.__name__} does not name its answer type: declare it as Question[SomeAnswer]")


# The registry of question kinds: each question and the type of its answer.
QUESTIONS: dict[type[Question[Any]], type[Answer]] = {
    q: _answer_of(q)
    for q in (
        Ping,
        RatesQuestion,
        CustomerQuestion,
        GiftCardMoveQuestion,
        GiftCardQuestion,
        StockQuestion,
        LanesQuestion,
        JournalQuestion,
        ReceiptQuestion,
        ReturnClaimQuestion,
        ReturnReleaseQuestion,
    )
}


LinkMessage = (
    LinkHello
    | LinkWelcome
    | EventBatch
    | Ack
    | LinkError
    | LinkRequest
    | LinkReply
    | LinkChallenge
    | LinkProof
    | AdminHello
    | AdminWelcome
    | CatalogPull
    | CatalogChunk
    | CatalogNotice
    | Refusal
    | Ping
    | Pong
    | RatesQuestion
    | RatesAnswer
    | CustomerQuestion
    | CustomerAnswer
    | GiftCardMoveQuestion
    | GiftCardQuestion
    | GiftCardAnswer
    | StockQuestion
    | StockAnswer
    | LanesQuestion
    | LanesAnswer
    | JournalQuestion
    | JournalAnswer
    | ReceiptQuestion
    | ReceiptAnswer
    | ReturnClaimQuestion
    | ReturnClaimAnswer
    | ReturnReleaseQuestion
)
