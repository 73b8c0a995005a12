"""Speaking to a kit store's gateway below the till client: dialled as its tills dial it (wss, trusting
the test chain) and greeted with the session's till credential (devtools.enrolment)."""

from __future__ import annotations

import os
from contextlib import AbstractAsyncContextManager
from typing import Any
from urllib.parse import urlsplit

from trio_websocket import WebSocketConnection

from protocol.frames import Hello
from protocol.websocket import dial
from till.client import CREDENTIAL_ENV, trust


def dial_till(url: str, **options: Any) -> AbstractAsyncContextManager[WebSocketConnection]:
    if urlsplit(url).scheme == "wss":
        options.setdefault("ssl_context", trust(None))
    return dial(url, **options)


def kit_hello(**fields: Any) -> Hello:
    """A hello carrying the session's credential (enrolled for every lane of every kit store)."""
    fields.setdefault("credential", os.environ[CREDENTIAL_ENV])
    return Hello(**fields)
