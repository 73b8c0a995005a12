"""`storepos store till enroll | revoke | list` (at the store) and `storepos central store cert` (at
central): which tills may attach to which lanes, and the certificate they check the store by.

The flow, once per till: `storepos store till enroll --config store.toml --lane 1 --name front-1`
prints the credential once (only its hash is kept); the till keeps it in a file of its own (0600) and
runs `storepos till --store wss://HOST:8701 --lane 1 --credential till.credential --trust tills.pem`,
trusting the store's tills.pem (or the chain's ca.pem when central issued the store's certificate).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from protocol import tls
from runtime.clock import SystemClock
from runtime.database import immediate, migrate, open_connection
from storenode import gateway_tls, till_credentials
from storenode.schema import MIGRATIONS
from storenode.till_credentials import CredentialError
from storepos.commands import fail, store_config


def _open(config_path: Path) -> tuple[sqlite3.Connection, str] | None:
    config = store_config(config_path)
    if config is None:
        return None
    config.data_path.mkdir(parents=True, exist_ok=True)
    conn = open_connection(config.db_path)
    migrate(conn, MIGRATIONS)
    return conn, config.store


def enroll(config_path: Path, lanes: list[int], name: str) -> int:
    opened = _open(config_path)
    if opened is None:
        return 2
    conn, store = opened
    try:
        with immediate(conn):
            credential = till_credentials.enrol(conn, lanes, name, SystemClock().now_ms())
    except CredentialError as exc:
        fail(str(exc))
        return 2
    finally:
        conn.close()
    which = ", ".join(str(lane) for lane in sorted(set(lanes)))
    print(f"till {name or '(unnamed)'} enrolled at store {store} for lane(s) {which}; its credential (shown only now):")
    print(credential)
    print("keep it in a file only the till's user reads (chmod 600) and pass it: storepos till --credential FILE")
    return 0


def revoke(config_path: Path, ident: str) -> int:
    opened = _open(config_path)
    if opened is None:
        return 2
    conn, store = opened
    try:
        with immediate(conn):
            till_credentials.revoke(conn, ident.partition(".")[0], SystemClock().now_ms())
    except CredentialError as exc:
        fail(str(exc))
        return 1
    finally:
        conn.close()
    print(f"till credential {ident.partition('.')[0]} revoked at store {store}: refused from its next hello")
    return 0


def listing(config_path: Path) -> int:
    opened = _open(config_path)
    if opened is None:
        return 2
    conn, _ = opened
    try:
        found = till_credentials.listing(conn)
    finally:
        conn.close()
    for c in found:
        state = "revoked" if c.revoked else "valid"
        print(f"{c.id}  lanes {','.join(str(n) for n in c.lanes):<8} {state:<8} {c.name}")
    if not found:
        print("no tills enrolled (storepos store till enroll --config store.toml --lane N)")
    return 0


def store_certificate(config_path: Path) -> int:
    """`storepos store init`'s part: the gateway's self-signed certificate when it has none."""
    config = store_config(config_path)
    if config is None:
        return 2
    if config.tills.insecure:
        print("tills connect over plain ws:// ([tills] insecure = true): no till certificate")
        return 0
    try:
        made = gateway_tls.ensure(config)
    except (OSError, tls.TlsError) as exc:
        fail(f"cannot make the till certificate: {exc}")
        return 1
    state = "made (self-signed; tills trust this file)" if made else "kept"
    print(f"till certificate {gateway_tls.cert_path(config)} {state}")
    return 0


def central_cert(db: Path, store: str, hosts: list[str]) -> int:
    """A certificate for `store`'s till gateway from the chain CA beside central's database."""
    folder = db.resolve().parent
    if not (folder / tls.CA_KEY).exists():
        fail(f"no chain CA in {folder} (storepos central init makes it)")
        return 2
    stem = f"store-{store}"
    try:
        made = tls.issue_server(folder, hosts, stem=stem)
    except (OSError, ValueError) as exc:
        fail(f"cannot issue the certificate: {exc}")
        return 1
    state = "issued" if made else "exists already (delete both files to issue anew)"
    print(f"store {store}: till certificate {folder / stem}.pem and key {folder / stem}.key {state}")
    print(f"copy them to the store's <data_dir>/tls/ as {gateway_tls.STEM}.pem and {gateway_tls.STEM}.key (key 0600);")
    print(f"tills then trust {folder / tls.CA_CERT}")
    return 0
