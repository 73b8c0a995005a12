"""Encoders and decoders, built once per channel side (msgspec's fast path needs that).

Tills choose the encoding by websocket subprotocol: MessagePack for Python tills, JSON for
browsers. Store <-> central is always MessagePack. Journal records use a deterministic encoder,
because their bytes are hashed into the chain and must not depend on dict insertion order.
"""

from __future__ import annotations

from typing import Any

import msgspec

from protocol.frames import LinkMessage, SaleRecord, StoreToTill, TillFrame, TillToStore

SUBPROTOCOL_MSGPACK = "storepos.msgpack"
SUBPROTOCOL_JSON = "storepos.json"
TILL_SUBPROTOCOLS = (SUBPROTOCOL_MSGPACK, SUBPROTOCOL_JSON)
LINK_SUBPROTOCOL = "storepos.link"
ADMIN_SUBPROTOCOL = "storepos.admin"  # operator tools talking to central: LinkRequest / LinkReply


class FrameError(ValueError):
    """Bytes that are not a valid frame for this channel; the text says what is wrong."""


class TillCodec:
    """One side of a till connection: `side="store"` decodes till commands, `side="till"` the reverse."""

    def __init__(self, subprotocol: str, side: str) -> None:
        if subprotocol not in TILL_SUBPROTOCOLS:
            raise ValueError(f"unknown till subprotocol {subprotocol!r}")
        if side not in ("store", "till"):
            raise ValueError(f"side must be 'store' or 'till', not {side!r}")
        self.subprotocol = subprotocol
        incoming: Any = TillToStore if side == "store" else StoreToTill
        self.binary = subprotocol == SUBPROTOCOL_MSGPACK
        if self.binary:
            self._encoder: Any = msgspec.msgpack.Encoder()
            self._decoder: Any = msgspec.msgpack.Decoder(incoming)
        else:
            self._encoder = msgspec.json.Encoder()
            self._decoder = msgspec.json.Decoder(incoming)

    def encode(self, frame: TillFrame) -> bytes | str:
        data: bytes = self._encoder.encode(frame)
        return data if self.binary else data.decode()

    def decode(self, data: bytes | str) -> Any:
        if self.binary and isinstance(data, str):
            raise FrameError("expected a binary MessagePack message, got text")
        try:
            return self._decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
            raise FrameError(str(exc)) from exc


class LinkCodec:
    def __init__(self) -> None:
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(LinkMessage)

    def encode(self, frame: Any) -> bytes:
        return self._encoder.encode(frame)

    def decode(self, data: bytes | str) -> Any:
        if isinstance(data, str):
            raise FrameError("expected a binary MessagePack message, got text")
        try:
            return self._decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
            raise FrameError(str(exc)) from exc


_record_encoder = msgspec.msgpack.Encoder(order="deterministic")
_record_decoder = msgspec.msgpack.Decoder(SaleRecord)


def encode_record(record: SaleRecord) -> bytes:
    """The canonical bytes of a journal record: what is hashed, stored and sent to central."""
    return _record_encoder.encode(record)


def decode_record(data: bytes) -> SaleRecord:
    try:
        return _record_decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
        raise FrameError(f"bad journal record: {exc}") from exc
