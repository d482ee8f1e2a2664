"""CRC-32C (Castagnoli), as used by the OP_MSG ``checksumPresent`` trailer.

Two implementations with one signature, ``f(data, value=0) -> int`` (``value`` is a
previous result, so a checksum can be computed over several pieces):

* ``crc32c_py``: pure Python, table driven, slicing-by-8 (one loop step per 8 bytes).
  Always available; a few MB/s, plenty for the occasional checksummed message.
* the ``crc32c`` package (hardware accelerated), when it is importable.

``crc32c()`` uses the package when it can and the pure-Python code otherwise. The
choice is made on first use, not at import: importing the ``crc32c`` package pulls in
``importlib.metadata`` (and with it ``socket``), which a sans-IO codec should not do
just by being imported.
"""

from __future__ import annotations

import functools
import struct
from typing import Callable, List, Tuple, Union

__all__ = ["crc32c", "crc32c_py", "backend"]

Buffer = Union[bytes, bytearray, memoryview]

_POLY = 0x82F63B78  # the Castagnoli polynomial 0x1EDC6F41, bit-reflected
_iter_pairs = struct.Struct("<II").iter_unpack


@functools.cache
def _tables() -> Tuple[List[int], ...]:
    """The eight 256-entry slicing tables, built once on first use."""
    t0: List[int] = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ _POLY if c & 1 else c >> 1
        t0.append(c)
    tables = [t0]
    for _ in range(7):
        prev = tables[-1]
        tables.append([(prev[n] >> 8) ^ t0[prev[n] & 0xFF] for n in range(256)])
    return tuple(tables)


def crc32c_py(data: Buffer, value: int = 0) -> int:
    """CRC-32C of ``data`` in pure Python, continuing from ``value``."""
    t0, t1, t2, t3, t4, t5, t6, t7 = _tables()
    mv = memoryview(data).cast("B")
    crc = ~value & 0xFFFFFFFF
    n8 = len(mv) & ~7
    for lo, hi in _iter_pairs(mv[:n8]):
        crc ^= lo
        crc = (
            t7[crc & 0xFF]
            ^ t6[(crc >> 8) & 0xFF]
            ^ t5[(crc >> 16) & 0xFF]
            ^ t4[crc >> 24]
            ^ t3[hi & 0xFF]
            ^ t2[(hi >> 8) & 0xFF]
            ^ t1[(hi >> 16) & 0xFF]
            ^ t0[hi >> 24]
        )
    for byte in mv[n8:]:
        crc = (crc >> 8) ^ t0[(crc ^ byte) & 0xFF]
    return ~crc & 0xFFFFFFFF


@functools.cache
def backend() -> Tuple[str, Callable[[Buffer, int], int]]:
    """``("crc32c", fn)`` when the crc32c package is importable, else ``("python", crc32c_py)``."""
    try:
        import crc32c as _pkg
    except ImportError:
        return "python", crc32c_py
    fn: Callable[[Buffer, int], int] = _pkg.crc32c
    return "crc32c", fn


def crc32c(data: Buffer, value: int = 0) -> int:
    """CRC-32C of ``data``, continuing from ``value``, with the fastest implementation."""
    return backend()[1](data, value)
