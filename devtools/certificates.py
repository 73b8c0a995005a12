"""TLS material for the nodes tests and benchmarks start: a chain CA and certificates for 127.0.0.1.

Central runs with the certificate in its database's folder (`storepos central init` puts it there);
a test session makes one chain and copies it into each central's folder, since making keys in every
test adds up and `central init` itself is exercised where that is the point (e2e, the demo). The
chaos proxy serves a certificate of its own from the same chain, so a store trusts it as it trusts
central and the chaos suite runs over TLS end to end.
"""

from __future__ import annotations

import shutil
import ssl
from pathlib import Path

from protocol import tls

HOSTS = ["127.0.0.1", "localhost"]
PROXY = "proxy"  # the chaos proxy's certificate: proxy.pem, proxy.key in the chain's folder


def make_chain(folder: Path) -> Path:
    """A chain CA with central's and the proxy's certificates for 127.0.0.1 in `folder` (each made
    only when missing); returns the CA certificate stores trust."""
    tls.make_ca(folder)
    tls.issue_server(folder, HOSTS)
    tls.issue_server(folder, ["127.0.0.1"], stem=PROXY)
    return folder / tls.CA_CERT


def provision(folder: Path, chain: Path | None = None) -> Path:
    """Central's `folder` (where its --db is) with the TLS material `central run` serves with: copied
    from `chain` (made by make_chain) or made here. Returns the CA certificate stores trust."""
    folder.mkdir(parents=True, exist_ok=True)
    if chain is None:
        return make_chain(folder)
    for name in (tls.CA_CERT, tls.CA_KEY, tls.CENTRAL_CERT, tls.CENTRAL_KEY, f"{PROXY}.pem", f"{PROXY}.key"):
        if (chain / name).exists():
            shutil.copy2(chain / name, folder / name)  # keeps the keys' 0600
    return folder / tls.CA_CERT


def central_context(chain: Path) -> ssl.SSLContext:
    """What a central in-process serves with."""
    return tls.server_context(chain / tls.CENTRAL_CERT, chain / tls.CENTRAL_KEY)


def proxy_contexts(chain: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """The chaos proxy's: serving its own certificate, and dialling central trusting the chain."""
    tls.issue_server(chain, ["127.0.0.1"], stem=PROXY)
    return tls.server_context(chain / f"{PROXY}.pem", chain / f"{PROXY}.key"), tls.client_context(chain / tls.CA_CERT)
