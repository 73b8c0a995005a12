"""The till gateway's certificate: tills reach the store over wss, never plain ws unless asked for by name.

    <data_dir>/tls/tills.pem, tills.key (0600)

A store with central gets a certificate from the chain's CA: `storepos central store cert S001 --host
till-server.local` at central writes store-S001.pem/.key there, and the operator copies them to the
store's tls/ folder as tills.pem/tills.key; tills then trust the chain's ca.pem. A store without one
makes a self-signed certificate (`storepos store init`, or its first start) which tills pin: they trust
tills.pem itself. `[tills] insecure = true` serves plain ws:// instead, with a warning at every start.
"""

from __future__ import annotations

import logging
import socket
import ssl
from pathlib import Path

from protocol import tls
from storenode.config import StoreConfig

log = logging.getLogger(__name__)

FOLDER = "tls"
STEM = "tills"


def folder(config: StoreConfig) -> Path:
    return config.data_path / FOLDER


def cert_path(config: StoreConfig) -> Path:
    return folder(config) / f"{STEM}.pem"


def hosts(config: StoreConfig) -> list[str]:
    """The names a self-signed certificate is valid for: the gateway's address (unless it is every
    address), this machine's name, and loopback."""
    named = [] if config.gateway.host in ("", "0.0.0.0", "::") else [config.gateway.host]
    return list(dict.fromkeys([*named, socket.gethostname(), "localhost", "127.0.0.1"]))


def ensure(config: StoreConfig) -> bool:
    """A self-signed certificate for the gateway when it has none; True if made now (logged)."""
    made = tls.self_signed(folder(config), hosts(config), stem=STEM)
    if made:
        log.warning(
            "store %s: made a self-signed till certificate %s; tills trust (pin) that file",
            config.store,
            cert_path(config),
        )
    return made


def context(config: StoreConfig) -> ssl.SSLContext | None:
    """What the gateway serves with: None for plain ws ([tills] insecure), said loudly every start."""
    if config.tills.insecure:
        log.warning(
            "store %s: tills connect over plain ws:// ([tills] insecure = true): anyone on the store's "
            "network reads their credentials and sales",
            config.store,
        )
        return None
    ensure(config)
    return tls.server_context(cert_path(config), folder(config) / f"{STEM}.key")
