"""The `storepos` command: one entry point for the demo, the nodes, the till and the operator tools."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

import trio

from runtime.supervision import Escalation

CENTRAL_PER_ADDRESS = 64  # central.app.PER_ADDRESS, named here so parsing the command line stays light

# The master registers operators import and export, in the order they depend on each other
# (central.registers.imports.KINDS; named here so parsing the command line stays light).
REGISTERS = (
    "vat-rates",
    "groups",
    "stores",
    "items",
    "barcodes",
    "prices",
    "tills",
    "till-config",
    "discount-reasons",
    "operators",
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="storepos", description="Retail point of sale for store chains.")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = p.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="start central, a store with two lanes and a scripted till")
    demo.add_argument("--dir", type=Path, help="where the demo keeps its files (default: a new temporary folder)")
    demo.add_argument("--no-interactive", action="store_true", help="after the script, wait for Ctrl-C only")

    central = sub.add_parser("central", help="the central node").add_subparsers(dest="action", required=True)
    init = central.add_parser("init", help="make central's chain CA, TLS certificate and database (once)")
    init.add_argument("--db", type=Path, default=Path("central.db"), help="the database; its folder gets the rest")
    init.add_argument(
        "--host",
        action="append",
        default=[],
        help="a name or address stores dial central by (repeatable; default: localhost, 127.0.0.1, this hostname)",
    )
    run = central.add_parser("run", help="run the central node")
    run.add_argument("--db", type=Path, default=Path("central.db"))
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8700)
    run.add_argument("--insecure", action="store_true", help="serve plain ws:// without TLS (never in production)")
    run.add_argument("--ready-file", type=Path, help="write {url} here once listening (for scripts)")
    run.add_argument(
        "--per-address",
        type=int,
        default=CENTRAL_PER_ADDRESS,
        help=f"connections one address may hold open at once (default {CENTRAL_PER_ADDRESS}; 0: no limit)",
    )
    # Rows per catalogue chunk sent to stores; small values make transfers long enough for crash tests.
    run.add_argument("--chunk-rows", type=int, help=argparse.SUPPRESS)
    listing = central.add_parser("sales", help="list the sales that arrived, per store")
    listing.add_argument("--db", type=Path, default=Path("central.db"))
    listing.add_argument("--store", help="list this store's receipts one by one")

    alarm = central.add_parser("alarms", help="what stores sent that central refused as untrusted (oldest first)")
    alarm.add_argument("--db", type=Path, default=Path("central.db"))
    alarm.add_argument("--store", help="only this store's alarms")
    audit = central.add_parser(
        "verify-journal", help="check every stored sale's receipt numbers, hash chain and own signature"
    )
    audit.add_argument("--db", type=Path, default=Path("central.db"))
    audit.add_argument("--store", help="only this store's journal")

    rec = central.add_parser("reconcile", help="compare central's copy of a store's journal with the store's own")
    rec.add_argument("--store", required=True)
    rec.add_argument("--url", default="wss://127.0.0.1:8700", help="the running central node")
    rec.add_argument(
        "--central-dir", type=Path, default=Path("."), help="central's folder: its operator.token (and ca.pem for wss)"
    )
    for verb, what in (("import", "apply a CSV or JSON file to"), ("export", "write a CSV or JSON file of")):
        transfer = central.add_parser(verb, help=f"{what} a master register (format from the extension)")
        transfer.add_argument("register", choices=REGISTERS)
        transfer.add_argument("file", type=Path)
        transfer.add_argument("--db", type=Path, default=Path("central.db"))
        transfer.add_argument("--currency", default="SEK", help="the chain currency of the prices (default SEK)")

    delete = central.add_parser("delete", help="delete the prices a CSV or JSON file names (all or none)")
    delete.add_argument("register", choices=["prices"])
    delete.add_argument("file", type=Path)
    delete.add_argument("--db", type=Path, default=Path("central.db"))
    delete.add_argument("--currency", default="SEK", help="the chain currency of the prices (default SEK)")

    _payment_parsers(central)
    _identity_parsers(central)

    store = sub.add_parser("store", help="a store node").add_subparsers(dest="action", required=True)
    srun = store.add_parser("run", help="run a store node")
    srun.add_argument("--config", type=Path, required=True)
    srun.add_argument("--ready-file", type=Path, help="write {url} here once listening (for scripts)")
    status = store.add_parser("status", help="show a store node's actors, link and journal")
    status.add_argument("--config", type=Path, required=True)
    status.add_argument("--url", help="the node's till gateway (default: from the config)")
    status.add_argument(
        "--credential", type=Path, help="a till credential file, 0600 (default: $STOREPOS_TILL_CREDENTIAL)"
    )
    status.add_argument("--trust", type=Path, help="the certificate to check the store by (default: its tls/tills.pem)")
    store.add_parser(
        "pin-hash",
        help="read a PIN from the terminal (or standard input) and print its hash for a catalogue file's operator",
    )
    parked = store.add_parser(
        "parked", help="the sales parked at the store and not resumed (left at day close: resume and finish them)"
    )
    parked.add_argument("--config", type=Path, required=True)
    verify = store.add_parser("verify-journal", help="check every lane's receipt numbers and hash chain")
    verify.add_argument("--config", type=Path, required=True)
    init = store.add_parser("init", help="make the store's key (and keep central's enrolment token)")
    init.add_argument("--config", type=Path, required=True)
    init.add_argument("--token", default="", help="the one-time token `storepos central store enroll` printed")
    tills = store.add_parser("till", help="the tills this store accepts: enroll, revoke, list")
    tverbs = tills.add_subparsers(dest="verb", required=True)
    tenroll = tverbs.add_parser("enroll", help="issue a till credential for lanes (shown once)")
    tenroll.add_argument("--config", type=Path, required=True)
    tenroll.add_argument("--lane", type=int, action="append", required=True, help="a lane (repeat; 0: asking only)")
    tenroll.add_argument("--name", default="", help="what the till is, for `list`")
    trevoke = tverbs.add_parser("revoke", help="refuse a till credential from its next hello")
    trevoke.add_argument("credential", help="its id (tc-...), as `list` shows it")
    trevoke.add_argument("--config", type=Path, required=True)
    tlist = tverbs.add_parser("list", help="every till credential with its lanes")
    tlist.add_argument("--config", type=Path, required=True)
    rotate = store.add_parser("rotate-key", help="prepare a new store key, taken by central at the next hello")
    rotate.add_argument("--config", type=Path, required=True)

    till = sub.add_parser("till", help="a terminal till: barcodes and commands on standard input")
    till.add_argument("--store", required=True, help="the store node, e.g. ws://127.0.0.1:8701")
    till.add_argument("--lane", type=int, required=True)
    till.add_argument("--till", default="", help="this till's id (default: till-<lane>)")
    till.add_argument("--script", type=Path, help="run these lines first, then read standard input")
    till.add_argument("--json", action="store_true", help="speak JSON instead of MessagePack")
    till.add_argument("--credential", type=Path, help="its credential file, 0600 (default: $STOREPOS_TILL_CREDENTIAL)")
    till.add_argument("--trust", type=Path, help="the store's tills.pem, or the chain's ca.pem (wss)")
    return p


def _payment_parsers(central: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    gift = central.add_parser(
        "giftcard", help="gift cards and vouchers: issue, balance, reload, overdrafts, stores' credit limits, flagged"
    )
    gift.add_argument("verb", choices=["issue", "balance", "reload", "overdrafts", "limits", "flagged"])
    gift.add_argument("card", nargs="?", default="")
    gift.add_argument("amount", nargs="?", help="issue/reload: the amount, e.g. 500.00")
    gift.add_argument("--kind", choices=["giftcard", "voucher"], default="giftcard")
    gift.add_argument("--currency", default="SEK")
    gift.add_argument("--db", type=Path, default=Path("central.db"))
    gift.add_argument("--store", default="", help="limits: this store's own (default: the chain's, for every store)")
    gift.add_argument("--per-move", help="limits: the most one credit from a store may give, e.g. 1000.00")
    gift.add_argument("--per-day", help="limits: the most a store may credit in a day (UTC), e.g. 5000.00")
    rate = central.add_parser("rate", help="exchange rates for foreign cash: set or list")
    rate.add_argument("verb", choices=["set", "list"])
    rate.add_argument("currency", nargs="?")
    rate.add_argument("value", nargs="?", help="units of --base per one unit of the currency, e.g. 11.45")
    rate.add_argument("--base", default="SEK", help="the stores' currency (default SEK)")
    rate.add_argument("--db", type=Path, default=Path("central.db"))
    cust = central.add_parser("customer", help="customers registered for invoices: add or list")
    cust.add_argument("verb", choices=["add", "list"])
    cust.add_argument("number", nargs="?")
    cust.add_argument("name", nargs="?")
    cust.add_argument("--db", type=Path, default=Path("central.db"))


def _identity_parsers(central: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    stores = central.add_parser("store", help="the stores central accepts: enroll, revoke, list")
    verbs = stores.add_subparsers(dest="verb", required=True)
    enroll = verbs.add_parser("enroll", help="register a store and print its one-time enrolment token")
    enroll.add_argument("store")
    enroll.add_argument("--valid-hours", type=float, default=72.0, help="how long the token is usable (default 72)")
    enroll.add_argument("--db", type=Path, default=Path("central.db"))
    revoke = verbs.add_parser("revoke", help="refuse a store from now on (its past records still verify)")
    revoke.add_argument("store")
    revoke.add_argument("--db", type=Path, default=Path("central.db"))
    listing = verbs.add_parser("list", help="every store with its status, current key and times")
    listing.add_argument("--db", type=Path, default=Path("central.db"))
    cert = verbs.add_parser("cert", help="issue a store's till gateway certificate from the chain CA")
    cert.add_argument("store")
    cert.add_argument("--host", action="append", required=True, help="a name or address tills use (repeat)")
    cert.add_argument("--db", type=Path, default=Path("central.db"))


def _payments(args: argparse.Namespace) -> int:
    from storepos import payment_commands as pay

    needs = {
        ("giftcard", "issue"): ("card", "amount"),
        ("giftcard", "reload"): ("card", "amount"),
        ("giftcard", "balance"): ("card",),
        ("rate", "set"): ("currency", "value"),
        ("customer", "add"): ("number", "name"),
    }
    if not all(getattr(args, name) for name in needs.get((args.action, args.verb), ())):
        print(f"storepos: central {args.action} {args.verb} needs more arguments (see --help)", file=sys.stderr)
        return 2
    match args.action, args.verb:
        case "giftcard", "overdrafts":
            return pay.overdrafts(args.db)
        case "giftcard", "limits":
            return pay.limits(args.db, args.store, args.per_move, args.per_day, args.currency)
        case "giftcard", "flagged":
            return pay.flagged(args.db)
        case "giftcard", verb:
            return pay.giftcard(args.db, verb, args.card, args.amount, args.kind, args.currency)
        case "rate", verb:
            return pay.rate(args.db, verb, args.currency, args.value, args.base)
        case "customer", verb:
            return pay.customer(args.db, verb, args.number, args.name)
    raise AssertionError(args)


def _serve(run: Callable[[], Awaitable[None]]) -> int:
    """Run a node until SIGTERM or Ctrl-C; both are a clean stop, not an error."""

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run)
            with trio.open_signal_receiver(signal.SIGTERM) as signals:
                async for _ in signals:
                    nursery.cancel_scope.cancel()
                    return

    stopped: list[BaseException] = []
    exits: list[SystemExit] = []
    try:
        trio.run(main)
    except* KeyboardInterrupt:
        pass
    except* SystemExit as group:  # the node refused to start and said why (a bad catalogue, CPU)
        exits.extend(e for e in group.exceptions if isinstance(e, SystemExit))
    except* Escalation as group:  # the node gave up after its supervisors' restarts: say why, plainly
        stopped.extend(group.exceptions)
    if exits:
        code = exits[0].code
        return code if isinstance(code, int) else 1
    for exc in stopped:
        print(f"storepos: node stopped: {_root_cause(exc)}", file=sys.stderr)
    return 1 if stopped else 0


def _root_cause(exc: BaseException) -> str:
    while True:
        if isinstance(exc, Escalation) and exc.cause is not None:
            exc = exc.cause
        elif isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
            exc = exc.exceptions[0]
        else:
            return f"{type(exc).__name__}: {exc}"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    from storepos import commands

    match args.command, getattr(args, "action", None):
        case "demo", _:
            from storepos.demo import run_demo

            return run_demo(args.dir, interactive=not args.no_interactive)
        case "central", "init":
            return commands.central_init(args.db, args.host)
        case "central", "run":
            context = commands.central_tls(args.db, insecure=args.insecure)
            return _serve(
                lambda: commands.central_run(
                    args.db,
                    args.host,
                    args.port,
                    args.ready_file,
                    args.chunk_rows,
                    context=context,
                    per_address=args.per_address,
                )
            )
        case "central", "reconcile":
            return trio.run(commands.central_reconcile, args.url, args.store, args.central_dir)
        case "central", "sales":
            return commands.central_sales(args.db, args.store)
        case "central", "alarms":
            return commands.central_alarms(args.db, args.store)
        case "central", "verify-journal":
            return commands.central_verify_journal(args.db, args.store)
        case "central", "import":
            return commands.central_import(args.db, args.register, args.file, args.currency)
        case "central", "delete":
            return commands.central_delete(args.db, args.register, args.file, args.currency)
        case "central", "export":
            return commands.central_export(args.db, args.register, args.file, args.currency)
        case "central", ("giftcard" | "rate" | "customer"):
            return _payments(args)
        case "central", "store":
            from storepos import identity_commands as ids

            if args.verb == "enroll":
                return ids.central_enroll(args.db, args.store, args.valid_hours)
            if args.verb == "revoke":
                return ids.central_revoke(args.db, args.store)
            if args.verb == "cert":
                from storepos import till_commands

                return till_commands.central_cert(args.db, args.store, args.host)
            return ids.central_list(args.db)
        case "store", "init":
            from storepos import identity_commands as ids
            from storepos import till_commands

            return ids.store_init(args.config, args.token) or till_commands.store_certificate(args.config)
        case "store", "till":
            from storepos import till_commands

            if args.verb == "enroll":
                return till_commands.enroll(args.config, args.lane, args.name)
            if args.verb == "revoke":
                return till_commands.revoke(args.config, args.credential)
            return till_commands.listing(args.config)
        case "store", "rotate-key":
            from storepos import identity_commands as ids

            return ids.store_rotate(args.config)
        case "store", "run":
            config = commands.store_config(args.config)
            if config is None:
                return 2
            return _serve(lambda: commands.store_run(config, args.ready_file))
        case "store", "status":
            return trio.run(commands.store_status, args.config, args.url, args.credential, args.trust)
        case "store", "parked":
            return commands.store_parked(args.config)
        case "store", "pin-hash":
            return commands.pin_hash()
        case "store", "verify-journal":
            return commands.verify_journal(args.config)
        case "till", _:
            from till.client import read_credential, trust
            from till.terminal import run_till

            try:
                credential = read_credential(args.credential) if args.credential else None
                context = trust(args.trust)
            except (ValueError, OSError) as exc:
                print(f"storepos till: {exc}", file=sys.stderr)
                return 2
            till_id = args.till or f"till-{args.lane}"
            return trio.run(
                partial(run_till, credential=credential, ssl_context=context),
                args.store,
                args.lane,
                till_id,
                args.script,
                args.json,
            )
    raise AssertionError(args)
