"""Tills the tests and benchmarks start, enrolled at the stores they start, and those stores' gateways
serving the test chain's certificate: as an operator would set a store up, done before it starts.

A session holds one till credential (`KIT`), enrolled for every lane of every store it starts, and
passes it to its tills through $STOREPOS_TILL_CREDENTIAL; the stores serve a certificate from the
session's chain, which the tills trust through $STOREPOS_TILL_TRUST. Tests of enrolment itself make
their own credentials with `storepos store till enroll`'s function.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from devtools import certificates
from protocol import tls
from runtime.database import migrate, open_connection
from storenode import gateway_tls, till_credentials
from storenode.config import StoreConfig
from storenode.schema import MIGRATIONS
from till.client import CREDENTIAL_ENV, TRUST_ENV

KIT_ID = "tc-kit"


def kit_credential() -> str:
    """The session's till credential (made once, kept in the environment for the tills it starts)."""
    if not os.environ.get(CREDENTIAL_ENV):
        os.environ[CREDENTIAL_ENV] = f"{KIT_ID}.{secrets.token_urlsafe(24)}"
    return os.environ[CREDENTIAL_ENV]


def trust_chain(chain: Path) -> None:
    """Tills of this session trust the chain's CA (the stores serve certificates from it)."""
    os.environ[TRUST_ENV] = str(chain / tls.CA_CERT)


def session_chain() -> Path | None:
    """The chain `trust_chain` named, for a store started as a process (its certificate comes from it)."""
    trusted = os.environ.get(TRUST_ENV)
    if not trusted or not (Path(trusted).parent / tls.CENTRAL_CERT).exists():
        return None
    return Path(trusted).parent


def process_chain(folder: Path) -> Path:
    """The chain a script's stores serve certificates from: the session's, else one made in `folder`
    (and trusted by the tills this process starts from now on)."""
    chain = session_chain()
    if chain is None:
        chain = folder / "tills-chain"
        certificates.make_chain(chain)
        trust_chain(chain)
    return chain


def prepare(config: StoreConfig, chain: Path | None) -> None:
    """`config`'s store with the kit credential enrolled for all its lanes, and (given the session's
    `chain`) the chain's 127.0.0.1 certificate as its gateway's, unless it has one already."""
    ident, _, secret = kit_credential().partition(".")
    config.data_path.mkdir(parents=True, exist_ok=True)
    conn = open_connection(config.db_path)
    try:
        migrate(conn, MIGRATIONS)
        if conn.execute("SELECT 1 FROM till_credentials WHERE id = ?", (ident,)).fetchone() is None:
            till_credentials.enrol(conn, [0, *config.lanes], "kit", 0, ident=ident, secret=secret)
    finally:
        conn.close()
    folder = gateway_tls.folder(config)
    if chain is not None and not gateway_tls.cert_path(config).exists():
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy2(chain / tls.CENTRAL_CERT, folder / f"{gateway_tls.STEM}.pem")
        shutil.copy2(chain / tls.CENTRAL_KEY, folder / f"{gateway_tls.STEM}.key")
