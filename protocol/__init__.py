"""Wire frames and codecs: the only contract between storepos processes."""

from protocol import websocket as _websocket  # noqa: F401  (guards trio-websocket; see the module)
