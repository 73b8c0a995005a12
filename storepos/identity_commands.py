"""`storepos central store enroll|revoke|list` (central's store registry, run beside central on its
database file) and `storepos store init|rotate-key` (the store's key and enrolment token on disk).
Exit 0 when done, 1 when refused (why on stderr), 2 when it could not be tried."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from central.registers import identities, imports
from central.registers.identities import IdentityError
from protocol.identity import IdentityError as KeyFileError
from protocol.identity import key_id, public_bytes
from runtime.clock import SystemClock
from runtime.database import immediate
from storenode import identity
from storepos.commands import fail, store_config

_now = SystemClock().now_ms


def _when(ms: int | None) -> str:
    return "-" if not ms else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def central_enroll(db: Path, store: str, valid_hours: float) -> int:
    try:
        token = identities.enrol_at(db, store, valid_hours=valid_hours)
    except IdentityError as exc:
        fail(str(exc))
        return 1
    except (imports.Unusable, sqlite3.Error) as exc:
        fail(f"{db}: {exc}")
        return 2
    print(f"store {store} enrolled at central; its one-time token (valid {valid_hours:g} h, shown only now):")
    print(token)
    print(f"at the store: storepos store init --config store.toml --token {token}")
    return 0


def central_revoke(db: Path, store: str) -> int:
    try:
        conn = imports.open_catalog(db, create=False)
        try:
            with immediate(conn):
                changed = identities.revoke(conn, store, _now())
        finally:
            conn.close()
    except IdentityError as exc:
        fail(str(exc))
        return 1
    except (imports.Unusable, sqlite3.Error) as exc:
        fail(f"{db}: {exc}")
        return 2
    if changed:
        print(f"store {store} revoked: refused at its next hello, a live session ended within seconds")
    else:
        print(f"store {store} was revoked already")
    return 0


def central_list(db: Path) -> int:
    try:
        conn = imports.open_catalog(db, create=False)
        try:
            rows = identities.listing(conn)
        finally:
            conn.close()
    except (imports.Unusable, sqlite3.Error) as exc:
        fail(f"{db}: {exc}")
        return 2
    if not rows:
        print("no stores enrolled")
    for r in rows:
        token = f"  token open until {_when(r.token_expires)}" if r.token_expires else ""
        print(
            f"{r.store:<32} {r.status:<8} key {r.key_id or '-':<16} ({r.keys} in all)  "
            f"enrolled {_when(r.enrolled_at)}  revoked {_when(r.revoked_at)}{token}"
        )
    return 0


def store_init(config_path: Path, token: str) -> int:
    config = store_config(config_path)
    if config is None:
        return 2
    try:
        me, made = identity.load(config.data_path, config.store)
        if token:
            identity.save_token(config.data_path, token)
    except (KeyFileError, OSError) as exc:
        fail(str(exc))
        return 1
    where = identity.folder(config.data_path)
    print(f"store {config.store}: key {me.key_id} {'made' if made else 'kept'} in {where}")
    if token:
        print("enrolment token kept until central accepts it at the store's next connect")
    return 0


def store_rotate(config_path: Path) -> int:
    config = store_config(config_path)
    if config is None:
        return 2
    try:
        me, made = identity.prepare_rotation(config.data_path, config.store)
    except (KeyFileError, OSError) as exc:
        fail(str(exc))
        return 1
    assert me.next is not None
    new = key_id(public_bytes(me.next))
    state = "prepared" if made else "was prepared already"
    print(f"store {config.store}: new key {new} {state}; key {me.key_id} stays current until central accepts")
    print("the new key at the store's next hello (restart the store, or wait for its link to reconnect)")
    return 0
