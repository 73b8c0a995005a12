"""The test session's TLS chain: one CA, central's and the chaos proxy's certificates, made once.

conftest's session fixture calls `use` with a folder under pytest's tmp; everything else asks
`chain()`. Stores built by the kit trust its CA; centrals built by the kit serve its certificate.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from devtools import certificates
from protocol import tls

_chain: list[Path] = []


def use(folder: Path) -> None:
    certificates.make_chain(folder)
    _chain[:] = [folder]


def chain() -> Path:
    if not _chain:
        raise RuntimeError("the test chain is made by conftest's session fixture (tests.kit.certificates.use)")
    return _chain[0]


def ca() -> Path:
    """What the kit's stores trust (central.ca)."""
    return chain() / tls.CA_CERT


def central_context() -> ssl.SSLContext:
    return certificates.central_context(chain())


def trust() -> ssl.SSLContext:
    """What a test dials a kit central with, as a store would."""
    return tls.client_context(ca())
