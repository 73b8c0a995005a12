"""A lane's basket kept safe against `kill -9` without a trip to the database thread: an append-only file.

Why a file: a scan's state change must survive the store process dying the instant after the till hears
of it. The database can promise that (its WAL commit is in the OS page cache before the job returns), but
only from its own worker thread, and the thread hop alone costs about half of a bare websocket echo. An
`os.write` from the event-loop thread puts the bytes in the same page cache in a few microseconds: once it
returns, the kernel owns them, and they outlive the process whatever kills it. Neither survives a power
cut: the database commits these saves with WAL and synchronous=NORMAL (runtime/database.py), which does
not fsync either; the completed sale, which must survive one, still commits durably through the database.
A write of a few hundred bytes into the page cache does not wait for the disk, so the event loop can
make it; a lane whose file cannot be written saves through the database instead.

The format: records appended one after another, each

    length  u32 little-endian   the payload's size
    crc     u32 little-endian   zlib.crc32 of the payload
    payload                     MessagePack [base, LaneState]

A record holds the whole LaneState, so the newest complete record is all a restart needs. A process killed
inside a write leaves at most a torn tail: reading stops at the first record that is short or whose
checksum does not match, and the last good one before it counts.

Which is newer, the file or the database: `base` is the lane row's save counter (`seq` in the lanes table,
bumped by every database save of the lane, whoever makes it: saved.save_state) as it was when the record
was appended. A record built on the database's latest save is newer than that save; once the database
saves the lane again, its counter passes every record in the file, so a crash between that commit and
the file being emptied still loads the database's state: a sale the database closed never comes back as
an open basket. The file is emptied lazily, before the first append that sees a newer counter, and at
load, so the file only ever holds what came after the database's last save of the lane.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import msgspec

from storenode.lanes.basket import LaneState

MAX_BYTES = 1 << 20  # past this the lane saves through the database instead, which empties the file
_HEADER = struct.Struct("<II")


class Kept(msgspec.Struct, array_like=True):
    """One record: the lane's state, and the database save counter it was built on."""

    base: int
    state: LaneState


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Kept)


def encode(base: int, state: LaneState) -> bytes:
    payload = _encoder.encode(Kept(base, state))
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def last(data: bytes) -> Kept | None:
    """The newest complete record of a file's bytes; a torn or damaged tail, and what follows it, is ignored."""
    found: Kept | None = None
    at = 0
    while at + _HEADER.size <= len(data):
        size, crc = _HEADER.unpack_from(data, at)
        start, end = at + _HEADER.size, at + _HEADER.size + size
        if end > len(data):
            break
        payload = data[start:end]
        if zlib.crc32(payload) != crc:
            break
        try:
            found = _decoder.decode(payload)
        except msgspec.DecodeError:  # a checksum that matched garbage: treat as damage, like a bad crc
            break
        at = end
    return found


def path_for(db_path: Path, lane: int) -> Path:
    """Beside the database, named like its -wal and -shm companions: they live and move together."""
    return Path(f"{db_path}.lane-{lane}")


class StateFile:
    """The open file of one lane, owned by that lane's actor (appends come from the event-loop thread only)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self._size = os.fstat(self._fd).st_size
        self._base = -1  # the counter the records in the file were built on; -1: not known yet

    def read_last(self) -> Kept | None:
        """The newest complete record (for the lane's load, before any append). Appends never take the file
        past MAX_BYTES, so nothing beyond is ours: it is not read (a record cut there counts as torn)."""
        if self._size == 0:
            return None
        return last(os.pread(self._fd, min(self._size, MAX_BYTES), 0))

    def append(self, base: int, state: LaneState) -> bool:
        """Make `state` survive kill -9; False if the file is too large (the caller saves through the database).

        Raises OSError if the write failed; the file is then emptied (or left to the database's counter to
        outrank), so a torn record never hides a later good one."""
        if base != self._base and self._size:
            self.reset()  # the database saved the lane since: everything in the file is outranked already
        record = encode(base, state)
        if self._size + len(record) > MAX_BYTES:
            return False
        try:
            written = os.write(self._fd, record)
            if written != len(record):
                raise OSError(f"short write to {self.path}: {written} of {len(record)} bytes")
        except OSError:
            self.reset()
            raise
        self._size += len(record)
        self._base = base
        return True

    def reset(self) -> None:
        """Empty the file: only once the database holds a newer save of the lane (its counter outranks the file)."""
        os.ftruncate(self._fd, 0)
        self._size = 0
        self._base = -1

    def close(self) -> None:
        os.close(self._fd)
