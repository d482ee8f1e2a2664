"""The capture format the proxy writes and ``wireclient decode`` reads back.

A capture is a file that starts with the 8 bytes ``WIRECAP1`` and then holds records, each a
17-byte little-endian header followed by its payload::

    uint32  connection   the proxy's connection number (1, 2, ...)
    uint8   kind         0: bytes the client sent, 1: bytes the server sent,
                         2: an event (UTF-8 text: opened, closed, a fault applied)
    float64 timestamp    seconds since the Unix epoch
    uint32  length       of the payload that follows

A bytes record holds the bytes exactly as the proxy received them from that peer: a whole
frame, several, or part of one. A reader therefore runs one frame stream per connection
and direction (see ``trace.FrameStream``). No frame starts with ``WIRECAP1``: read as a
messageLength, ``WIRE`` is over 1 GB, far above any server's limit, so a file of plain
concatenated frames is told apart from a capture by its first bytes.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from typing import BinaryIO, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

from wireclient.toolkit.trace import Frame, FrameStream

MAGIC = b"WIRECAP1"
CLIENT_BYTES = 0
SERVER_BYTES = 1
EVENT = 2
KINDS = (CLIENT_BYTES, SERVER_BYTES, EVENT)

_RECORD = struct.Struct("<IBdI")
RECORD_HEADER_SIZE = _RECORD.size  # 17


class Record(NamedTuple):
    connection: int
    kind: int
    timestamp: float
    payload: bytes


def is_capture(data: bytes) -> bool:
    return data[: len(MAGIC)] == MAGIC


def pack_record(connection: int, kind: int, payload: bytes, timestamp: float) -> bytes:
    return _RECORD.pack(connection, kind, timestamp, len(payload)) + payload


def read_capture(
    source: Union[bytes, bytearray, memoryview, str, os.PathLike[str]],
) -> Tuple[List[Record], Optional[str]]:
    """The records of a capture, and what was wrong with the rest of it (None: nothing).

    ``source`` is the capture's bytes or the path of its file (``OSError`` if it cannot be
    read). A proxy killed mid-write leaves a truncated last record: the records before it
    are returned, and the error says where the capture stops making sense.
    """
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            data = f.read()
    else:
        data = bytes(source)
    if not is_capture(data):
        return [], "not a capture (it does not start with WIRECAP1)"
    records: List[Record] = []
    pos = len(MAGIC)
    end = len(data)
    while pos < end:
        if end - pos < RECORD_HEADER_SIZE:
            return records, f"truncated record header at offset {pos}"
        connection, kind, timestamp, length = _RECORD.unpack_from(data, pos)
        if kind not in KINDS:
            return records, f"unknown record kind {kind} at offset {pos}"
        start = pos + RECORD_HEADER_SIZE
        if end - start < length:
            return records, f"truncated record at offset {pos}: {end - start} of {length} bytes"
        records.append(Record(connection, kind, timestamp, bytes(data[start : start + length])))
        pos = start + length
    return records, None


class TimedFrame(NamedTuple):
    """A frame of a captured connection, with the time its last bytes arrived."""

    timestamp: float
    frame: Frame


class Conversation(NamedTuple):
    """One captured client connection: its requests and its replies, each in order."""

    connection: int
    requests: List[TimedFrame]
    replies: List[TimedFrame]


def conversations(records: Sequence[Record]) -> List[Conversation]:
    """Each connection's bytes cut into frames, per direction, in connection order. A
    partial frame at the end of a direction is kept (with its error), so nothing captured
    is silently dropped."""
    streams: Dict[Tuple[int, int], FrameStream] = {}
    frames: Dict[int, Tuple[List[TimedFrame], List[TimedFrame]]] = {}
    last: Dict[int, float] = {}
    for record in records:
        if record.kind == EVENT:
            continue
        stream = streams.setdefault((record.connection, record.kind), FrameStream())
        both = frames.setdefault(record.connection, ([], []))
        both[record.kind].extend(
            TimedFrame(record.timestamp, f) for f in stream.feed(record.payload)
        )
        last[record.connection] = record.timestamp
    for (connection, kind), stream in streams.items():
        frames[connection][kind].extend(TimedFrame(last[connection], f) for f in stream.flush())
    return [Conversation(c, *frames[c]) for c in sorted(frames)]


class CaptureWriter:
    """Appends records to a binary file, one whole record per write, flushed at once (so
    a capture cut short by a crash is still readable up to its last record)."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._lock = threading.Lock()
        self.closed = False
        with self._lock:
            file.write(MAGIC)
            file.flush()

    def record(
        self, connection: int, kind: int, payload: bytes, timestamp: Optional[float] = None
    ) -> None:
        when = time.time() if timestamp is None else timestamp
        data = pack_record(connection, kind, payload, when)
        with self._lock:
            if self.closed:
                return
            self._file.write(data)
            self._file.flush()

    def event(self, connection: int, text: str) -> None:
        self.record(connection, EVENT, text.encode("utf-8"))

    def close(self) -> None:
        with self._lock:
            if not self.closed:
                self.closed = True
                self._file.close()


__all__ = [
    "CLIENT_BYTES",
    "EVENT",
    "MAGIC",
    "SERVER_BYTES",
    "CaptureWriter",
    "Conversation",
    "Record",
    "TimedFrame",
    "conversations",
    "is_capture",
    "pack_record",
    "read_capture",
]
