"""ObjectIds for the documents an insert gives an ``_id``, made many at a time.

Theory of operation
-------------------
An ObjectId is 12 bytes: 4 of seconds since the epoch, 5 drawn at random once per process,
and a 3-byte counter that starts at random. ``bson.ObjectId()`` builds one per call (a lock,
a clock read, a pid check and three packs: about 1.3 µs, more than encoding a small
document), and an insert of many documents needs one per document. ``object_ids(n)`` hands
out ``n`` at once: one lock to reserve ``n`` counter values, one clock read, and per id only
the counter's bytes and an ``ObjectId`` made from its 12 bytes.

The random part and the counter are this module's own, not bson's: like a second driver in
the same process, its ids cannot collide with bson's (the random parts differ) nor with each
other (the counter wraps only after 2**24 ids in one second, bson's own limit). A forked
child draws a new random part (``forking``), so parent and child never share one.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from typing import Iterator, List

from bson import ObjectId

from wireclient.pooling import forking

_COUNTER_MASK = 0xFFFFFF
_pack_uint32 = struct.Struct(">I").pack


class _IdSource:
    """This process's random part and counter (one instance, below)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.random = os.urandom(5)
        self.counter = int.from_bytes(os.urandom(3), "big")
        forking.reset_in_child(self)

    def _after_fork(self) -> None:
        self.random = os.urandom(5)
        self.lock = threading.Lock()  # a lock held by another thread at fork time stays held

    def take(self, n: int) -> List[ObjectId]:
        with self.lock:
            first = self.counter
            self.counter = (first + n) & _COUNTER_MASK
        prefix = _pack_uint32(int(time.time()) & 0xFFFFFFFF) + self.random
        # the low three bytes of each big-endian uint32 counter value: the counter mod
        # 2**24 (first + n stays far below 2**32: first < 2**24, n a number of documents)
        return [ObjectId(prefix + _pack_uint32(value)[1:]) for value in range(first, first + n)]


_source = _IdSource()


def object_ids(n: int) -> List[ObjectId]:
    """``n`` new, distinct ObjectIds (increasing, as ``ObjectId()`` called ``n`` times)."""
    return _source.take(n)


def id_stream(expected: int = 16) -> Iterator[ObjectId]:
    """An endless supply of new ObjectIds for documents met one at a time: fetched when
    first asked for, in blocks of ``expected`` (how many will probably be needed) and then
    doubling, at most 4096, so few go unused."""
    size = min(max(expected, 1), 4096)
    while True:
        yield from object_ids(size)
        size = min(size * 2, 4096)


__all__ = ["id_stream", "object_ids"]
