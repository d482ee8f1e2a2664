"""The fuzzer's mutation engine: valid frames in, deliberately broken frames out. No I/O.

Theory of operation
-------------------
A ``Seed`` is one valid request: a name and, for OP_MSG, its parts (flag bits, the kind-0
body as BSON bytes, the kind-1 document sequences), so that a mutation can break one part
and rebuild the rest of the frame around it with the codec's own layout; other opcodes
(an OP_QUERY ``hello``, or anything read from a capture) keep only their frame and take
the mutations that need no OP_MSG structure. ``builtin_seeds()`` are a handful of ordinary
commands framed by ``protocol.encode``; ``seeds_from_capture()`` takes every client frame
of a ``wireclient proxy --capture`` file that decodes.

Each mutation class (``CLASSES``: message lengths, opcodes, flag bits, sections, checksums,
BSON, OP_COMPRESSED) is a list of small named functions. Each takes a random generator, a
seed and the requestID to write, and returns a ``Mutation``: the class, the mutation's
name, a sentence saying exactly what was changed, and the bytes to send.

``generate(seed, index, seeds)`` makes case ``index`` of a run: the class is chosen round
robin (so any 7 consecutive cases cover every class), the seed and the mutation by a
``random.Random`` seeded with the text ``"wireclient-fuzz:<seed>:<index>"``. A case depends
on nothing but its run seed, its index and the seeds, so the same seed always produces the
same bytes, and any one case can be made again on its own.

Frames stay bounded. A "huge" messageLength is a claim in the header, not bytes sent; the
deepest document is 10,000 levels (about 90 KB); a decompression bomb claims at most
64 MiB and sends the zlib stream of that many zero bytes (about 64 KB), made once per size
and cached.
"""

from __future__ import annotations

import functools
import random
import struct
from typing import Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import bson

from wireclient import protocol
from wireclient.errors import ProtocolError

_INT32 = struct.Struct("<i")
_UINT32 = struct.Struct("<I")
_HEADER = struct.Struct("<iiii")

MAX_BOMB = 64 * 1024 * 1024  # the largest uncompressedSize a bomb claims (and inflates to)
MAX_DEPTH = 10_000  # the deepest nesting a BSON mutation builds


class Seed(NamedTuple):
    """A valid request to mutate. ``body`` is set for OP_MSG seeds only."""

    name: str
    frame: bytes  # the valid frame, requestID 0
    body: Optional[bytes] = None  # OP_MSG: the kind-0 body (BSON)
    sequences: Tuple[Tuple[str, Tuple[bytes, ...]], ...] = ()  # OP_MSG kind-1 sections
    flags: int = 0  # OP_MSG flagBits (checksumPresent never set in a seed)

    @property
    def is_msg(self) -> bool:
        return self.body is not None


class Mutation(NamedTuple):
    cls: str  # the mutation class, one of CLASSES
    name: str  # the mutation within its class
    description: str  # what was changed, in words and numbers
    frame: bytes  # the bytes to send


class Case(NamedTuple):
    number: int  # 1-based, as the report numbers it
    seed_name: str
    mutation: Mutation


# --------------------------------------------------------------------------- seeds


def msg_seed(
    name: str,
    body: Dict[str, object],
    sequences: Sequence[Tuple[str, Sequence[Dict[str, object]]]] = (),
) -> Seed:
    """An OP_MSG seed from a body and document sequences (mappings)."""
    body_bytes = bson.encode(body)
    seqs = tuple((ident, tuple(bson.encode(doc) for doc in docs)) for ident, docs in sequences)
    return Seed(name, msg_frame(0, 0, body_bytes, seqs), body_bytes, seqs, 0)


def builtin_seeds() -> List[Seed]:
    """Ordinary valid commands: the default seeds."""
    hello_query = protocol.encode(
        protocol.OpQuery("admin.$cmd", {"hello": 1, "helloOk": True}, number_to_return=-1), 0
    )
    return [
        msg_seed("ping", {"ping": 1, "$db": "admin"}),
        msg_seed("hello", {"hello": 1, "$db": "admin"}),
        msg_seed("find", {"find": "fuzz", "filter": {"x": {"$gt": 1}}, "limit": 5, "$db": "fuzz"}),
        msg_seed(
            "insert",
            {"insert": "fuzz", "ordered": True, "$db": "fuzz"},
            [("documents", [{"_id": 1, "s": "one", "a": [1, 2.5]}, {"_id": 2, "d": {"k": "v"}}])],
        ),
        msg_seed(
            "aggregate",
            {
                "aggregate": "fuzz",
                "pipeline": [{"$match": {"x": 1}}, {"$project": {"x": 1}}],
                "cursor": {},
                "$db": "fuzz",
            },
        ),
        msg_seed("listDatabases", {"listDatabases": 1, "nameOnly": True, "$db": "admin"}),
        Seed("hello (OP_QUERY)", hello_query),
    ]


def seeds_from_capture(data: bytes) -> List[Seed]:
    """Every frame a client sent in a capture that decodes, as a seed (OP_MSG with a
    checksum loses it: the checksum mutations put one back)."""
    from wireclient.toolkit import capture, trace

    records, _error = capture.read_capture(data)
    streams: Dict[int, trace.FrameStream] = {}
    seeds: List[Seed] = []
    for record in records:
        if record.kind != capture.CLIENT_BYTES:
            continue
        stream = streams.setdefault(record.connection, trace.FrameStream())
        for frame in stream.feed(record.payload):
            message = frame.message
            if frame.error is not None or message is None:
                continue
            name = f"capture conn {record.connection} #{len(seeds) + 1}"
            if isinstance(message, protocol.OpMsg):
                body = bson.encode(message.body)
                seqs = tuple(
                    (seq.identifier, tuple(bson.encode(doc) for doc in seq.documents))
                    for seq in message.sequences
                )
                flags = message.flags & ~int(protocol.MsgFlags.checksumPresent)
                command = next(iter(message.body), "?")
                seeds.append(
                    Seed(f"{name} {command}", msg_frame(0, flags, body, seqs), body, seqs, flags)
                )
            else:
                seeds.append(
                    Seed(f"{name} {protocol.OPCODE_NAMES.get(message.op_code)}", frame.raw)
                )
    return seeds


# --------------------------------------------------------------------------- frame parts


def sections(body: bytes, sequences: Sequence[Tuple[str, Sequence[bytes]]] = ()) -> bytes:
    """An OP_MSG's sections: the kind-0 body, then each kind-1 sequence."""
    return b"\x00" + body + kind1_sections(sequences)


def kind1_sections(sequences: Sequence[Tuple[str, Sequence[bytes]]]) -> bytes:
    """Kind-1 sections only."""
    return b"".join(kind1(ident.encode("utf-8"), b"".join(docs)) for ident, docs in sequences)


def kind1(identifier: bytes, payload: bytes, size: Optional[int] = None) -> bytes:
    """A kind-1 section; ``size`` overrides the true size field."""
    true_size = 4 + len(identifier) + 1 + len(payload)
    return (
        b"\x01" + _INT32.pack(true_size if size is None else size) + identifier + b"\x00" + payload
    )


def build_msg(request_id: int, flags: int, section_bytes: bytes) -> bytes:
    """An OP_MSG frame of these flag bits and section bytes, as they are (no checksum is
    appended, whatever the flags say): for sections that break the rules."""
    length = 20 + len(section_bytes)
    return (
        _HEADER.pack(length, request_id, 0, protocol.OP_MSG) + _UINT32.pack(flags) + section_bytes
    )


def msg_frame(
    request_id: int, flags: int, body: bytes, sequences: Sequence[Tuple[str, Sequence[bytes]]]
) -> bytes:
    """A well-formed OP_MSG framed by the codec (with its CRC-32C when ``flags`` has
    checksumPresent)."""
    seqs = [protocol.DocumentSequence(ident, docs) for ident, docs in sequences]
    return protocol.encode(protocol.OpMsg(body, seqs, flags), request_id)


def with_request_id(frame: bytes, request_id: int) -> bytes:
    return frame[:4] + _INT32.pack(request_id) + frame[8:]


def _set_int32(data: bytes, offset: int, value: int) -> bytes:
    return data[:offset] + _INT32.pack(value) + data[offset + 4 :]


def _choice(rng: random.Random, values: Sequence[int]) -> int:
    return values[rng.randrange(len(values))]


def _seq_or_default(seed: Seed) -> Tuple[Tuple[str, Tuple[bytes, ...]], ...]:
    """The seed's sequences, or one small ``documents`` sequence when it has none."""
    if seed.sequences:
        return seed.sequences
    return (("documents", (bson.encode({"_id": 1}), bson.encode({"_id": 2}))),)


def _msg_seed(seed: Seed) -> bytes:
    assert seed.body is not None, "an OP_MSG mutation needs an OP_MSG seed"
    return seed.body


Mutator = Callable[[random.Random, Seed, int], Mutation]


# --------------------------------------------------------------------------- lengths


def _length(name: str, claim: int, frame: bytes, request_id: int, what: str) -> Mutation:
    data = _set_int32(with_request_id(frame, request_id), 0, claim)
    return Mutation(
        "length", name, f"messageLength {claim} ({what}; {len(frame)} bytes sent)", data
    )


def length_short(rng: random.Random, seed: Seed, rid: int) -> Mutation:
    claim = rng.randint(16, len(seed.frame) - 1)
    return _length(
        "short", claim, seed.frame, rid, f"{len(seed.frame) - claim} less than the frame"
    )


def length_long(rng: random.Random, seed: Seed, rid: int) -> Mutation:
    extra = _choice(rng, (1, 4, 64, 1024))
    claim = len(seed.frame) + extra
    return _length("long", claim, seed.frame, rid, f"{extra} more than the frame")


def length_negative(rng: random.Random, seed: Seed, rid: int) -> Mutation:
    claim = _choice(rng, (-1, -16, -(2**31), rng.randint(-(2**31), -2)))
    return _length("negative", claim, seed.frame, rid, "negative")


def length_huge(rng: random.Random, seed: Seed, rid: int) -> Mutation:
    claim = _choice(rng, (48_000_001, 64 * 1024 * 1024, 1_000_000_000, 2**31 - 1))
    return _length("huge", claim, seed.frame, rid, "past any server's limit")


def length_below_header(rng: random.Random, seed: Seed, rid: int) -> Mutation:
    claim = rng.randint(0, 15)
    return _length("below-header", claim, seed.frame, rid, "less than the 16-byte header")


# --------------------------------------------------------------------------- opcodes

_OTHER_OPCODES = (0, 1, 2001, 2002, 2004, 2005, 2006, 2007, 2010, 2011, 2012, 1337, -1, 2**31 - 1)


def opcode_other(rng: random.Random, seed: Seed, rid: int) -> Mutation:
    header = protocol.Header(*_HEADER.unpack_from(seed.frame))
    choices = [op for op in _OTHER_OPCODES if op != header.op_code]
    op = _choice(rng, choices)
    if rng.random() < 0.25:
        op = rng.randint(-(2**31), 2**31 - 1)
    name = protocol.OPCODE_NAMES.get(op, "unknown")
    data = _set_int32(with_request_id(seed.frame, rid), 12, op)
    return Mutation(
        "opcode",
        "known" if op in protocol.OPCODE_NAMES else "unknown",
        f"opCode {header.op_code} -> {op} ({name}), body unchanged",
        data,
    )


# --------------------------------------------------------------------------- flag bits


def _flags(name: str, seed: Seed, rid: int, flags: int, what: str) -> Mutation:
    body = _msg_seed(seed)
    if flags & protocol.MsgFlags.checksumPresent:  # the codec appends the checksum
        data = msg_frame(rid, flags, body, seed.sequences)
    else:
        data = build_msg(rid, flags, sections(body, seed.sequences))
    return Mutation("flags", name, f"flagBits 0x{flags:08x}: {what}", data)


def flags_unknown_required(rng: random.Random, seed: Seed, rid: int) -> Mutation:
    bit = 1 << rng.randint(2, 15)
    return _flags(
        "unknown-required", seed, rid, seed.flags | bit, f"unknown required bit 0x{bit:04x}"
    )


def flags_unknown_optional(rng: random.Random, seed: Seed, rid: int) -> Mutation:
    bit = 1 << rng.randint(17, 31)
    return _flags(
        "unknown-optional", seed, rid, seed.flags | bit, f"unknown optional bit 0x{bit:08x}"
    )


def flags_more_to_come(rng: random.Random, seed: Seed, rid: int) -> Mutation:
    return _flags("moreToCome", seed, rid, seed.flags | 2, "moreToCome: the server must not reply")


def flags_exhaust_allowed(rng: random.Random, seed: Seed, rid: int) -> Mutation:
    return _flags("exhaustAllowed", seed, rid, seed.flags | 1 << 16, "exhaustAllowed on a command")


def flags_checksum_missing(rng: random.Random, seed: Seed, rid: int) -> Mutation:
    flags = seed.flags | 1
    data = build_msg(rid, flags, sections(_msg_seed(seed), seed.sequences))
    what = "checksumPresent set, no checksum appended (the last 4 section bytes read as one)"
    return Mutation(
        "flags", "checksumPresent-without-checksum", f"flagBits 0x{flags:08x}: {what}", data
    )


def flags_all(rng: random.Random, seed: Seed, rid: int) -> Mutation:
    return _flags("all-bits", seed, rid, 0xFFFFFFFF, "every bit set (checksum appended)")


# --------------------------------------------------------------------------- sections


def _sections(name: str, seed: Seed, rid: int, section_bytes: bytes, what: str) -> Mutation:
    return Mutation("sections", name, what, build_msg(rid, seed.flags, section_bytes))


def section_unknown_kind(rng: random.Random, seed: Seed, rid: int) -> Mutation:
    kind = rng.randint(2, 255)
    body = _msg_seed(seed)
    if rng.random() < 0.5:
        data = bytes([kind]) + body + sections(body, seed.sequences)[1 + len(body) :]
        return _sections("unknown-kind", seed, rid, data, f"the body's section kind 0 -> {kind}")
    extra = bytes([kind]) + bson.encode({"x": 1})
    return _sections(
        "unknown-kind", seed, rid, sections(body, seed.sequences) + extra,
        f"a section of kind {kind} appended after the others",
    )  # fmt: skip


def section_no_body(rng: random.Random, seed: Seed, rid: int) -> Mutation:
    seqs = _seq_or_default(seed)
    data = kind1_sections(seqs)
    return _sections("no-body", seed, rid, data, "no kind-0 section, only kind-1 sequences")


def section_two_bodies(rng: random.Random, seed: Seed, rid: int) -> Mutation:
    body = _msg_seed(seed)
    data = sections(body, seed.sequences) + b"\x00" + bson.encode({"ping": 1, "$db": "admin"})
    return _sections("two-bodies", seed, rid, data, "a second kind-0 section after the others")


def section_no_sections(rng: random.Random, seed: Seed, rid: int) -> Mutation:
    return _sections("none", seed, rid, b"", "flagBits and no section at all")


def section_kind1_size(rng: random.Random, seed: Seed, rid: int) -> Mutation:
    body = _msg_seed(seed)
    seqs = _seq_or_default(seed)
    ident, docs = seqs[0]
    payload = b"".join(docs)
    true = 4 + len(ident.encode()) + 1 + len(payload)
    size = _choice(rng, (0, 4, true - 1, true + 1, true + 1000, -1, -(2**31), 2**31 - 1))
    first = kind1(ident.encode(), payload, size)
    rest = kind1_sections(seqs[1:])
    data = b"\x00" + body + first + rest
    return _sections(
        "kind1-size", seed, rid, data, f"kind-1 {ident!r} size {size} (true size {true})"
    )


def section_kind1_identifier(rng: random.Random, seed: Seed, rid: int) -> Mutation:
    body = _msg_seed(seed)
    seqs = _seq_or_default(seed)
    ident, docs = seqs[0]
    payload = b"".join(docs)
    choice = rng.randrange(5)
    if choice == 0:  # no terminator anywhere in the section
        raw = ident.encode() + b"x" * 3
        section = b"\x01" + _INT32.pack(4 + len(raw)) + raw
        what = "identifier without its NUL terminator, no documents"
    elif choice == 1:
        section = kind1(b"", payload)
        what = "empty identifier"
    elif choice == 2:
        section = kind1(b"\xff\xfe\xc3(", payload)
        what = "identifier of invalid UTF-8 (ff fe c3 28)"
    elif choice == 3:
        length = _choice(rng, (1000, 70_000))
        section = kind1(b"d" * length, payload)
        what = f"identifier of {length} bytes"
    else:
        section = kind1(ident.encode(), payload) + kind1(ident.encode(), payload)
        what = f"the sequence {ident!r} twice"
    data = b"\x00" + body + section + kind1_sections(seqs[1:])
    return _sections("kind1-identifier", seed, rid, data, f"kind-1 section: {what}")


def section_kind1_garbage(rng: random.Random, seed: Seed, rid: int) -> Mutation:
    body = _msg_seed(seed)
    seqs = _seq_or_default(seed)
    ident, docs = seqs[0]
    junk = bytes(rng.randrange(256) for _ in range(rng.randint(1, 7)))
    data = b"\x00" + body + kind1(ident.encode(), b"".join(docs) + junk)
    return _sections(
        "kind1-trailing-bytes", seed, rid, data,
        f"kind-1 {ident!r} ends with {len(junk)} bytes that are no document ({junk.hex()})",
    )  # fmt: skip


# --------------------------------------------------------------------------- checksums


def _with_checksum(seed: Seed, rid: int) -> bytes:
    flags = seed.flags | int(protocol.MsgFlags.checksumPresent)
    return msg_frame(rid, flags, _msg_seed(seed), seed.sequences)


def checksum_wrong(rng: random.Random, seed: Seed, rid: int) -> Mutation:
    frame = _with_checksum(seed, rid)
    (good,) = _UINT32.unpack_from(frame, len(frame) - 4)
    bad = good ^ (1 << rng.randrange(32))
    data = frame[:-4] + _UINT32.pack(bad)
    return Mutation("checksum", "wrong", f"CRC-32C 0x{bad:08x} instead of 0x{good:08x}", data)


def checksum_stale(rng: random.Random, seed: Seed, rid: int) -> Mutation:
    frame = _with_checksum(seed, rid)
    offset = rng.randint(21, len(frame) - 5)  # a section byte, after the first kind byte
    data = frame[:offset] + bytes([frame[offset] ^ 0x01]) + frame[offset + 1 :]
    return Mutation(
        "checksum", "stale", f"byte {offset} changed after the CRC-32C was computed", data
    )


def checksum_zero(rng: random.Random, seed: Seed, rid: int) -> Mutation:
    frame = _with_checksum(seed, rid)
    return Mutation("checksum", "zero", "CRC-32C 0x00000000", frame[:-4] + b"\x00" * 4)


def checksum_truncated(rng: random.Random, seed: Seed, rid: int) -> Mutation:
    frame = _with_checksum(seed, rid)
    cut = rng.randint(1, 3)
    data = _set_int32(frame[:-cut], 0, len(frame) - cut)
    return Mutation("checksum", "truncated", f"only {4 - cut} of the 4 checksum bytes", data)


# --------------------------------------------------------------------------- BSON

_FIXED_SIZES = {1: 8, 7: 12, 8: 1, 9: 8, 10: 0, 16: 4, 17: 8, 18: 8, 19: 16, 0x7F: 0, 0xFF: 0}


def elements(doc: bytes) -> List[Tuple[int, int, int]]:
    """The top-level elements of a BSON document: ``(type offset, value offset, end)`` each;
    stops at a type it cannot size. Used to aim a mutation at one element."""
    found: List[Tuple[int, int, int]] = []
    pos = 4
    end = len(doc) - 1
    while pos < end:
        kind = doc[pos]
        key_end = doc.index(b"\x00", pos + 1)
        value = key_end + 1
        if kind in _FIXED_SIZES:
            size = _FIXED_SIZES[kind]
        elif kind in (2, 13, 14):
            size = 4 + _INT32.unpack_from(doc, value)[0]
        elif kind in (3, 4):
            size = _INT32.unpack_from(doc, value)[0]
        elif kind == 5:
            size = 5 + _INT32.unpack_from(doc, value)[0]
        else:
            break
        found.append((pos, value, value + size))
        pos = value + size
    return found


def _bson(name: str, seed: Seed, rid: int, body: bytes, what: str) -> Mutation:
    data = build_msg(rid, seed.flags, sections(body, seed.sequences))
    return Mutation("bson", name, f"the body document: {what}", data)


def bson_length(rng: random.Random, seed: Seed, rid: int) -> Mutation:
    body = _msg_seed(seed)
    claim = _choice(rng, (0, 4, len(body) - 1, len(body) + 1, len(body) + 4096, -1, 2**31 - 1))
    return _bson(
        "length", seed, rid, _set_int32(body, 0, claim), f"length {claim} (true {len(body)})"
    )


def bson_type(rng: random.Random, seed: Seed, rid: int) -> Mutation:
    body = _msg_seed(seed)
    found = elements(body)
    type_at, _, _ = found[rng.randrange(len(found))]
    kind = _choice(rng, (0x00, 0x06, 0x0C, 0x0E, 0x14, 0x20, 0x42, 0x80, 0xFE))
    key = body[type_at + 1 : body.index(b"\x00", type_at + 1)].decode("utf-8", "replace")
    data = body[:type_at] + bytes([kind]) + body[type_at + 1 :]
    return _bson(
        "type", seed, rid, data, f"element {key!r} type 0x{body[type_at]:02x} -> 0x{kind:02x}"
    )


def bson_terminator(rng: random.Random, seed: Seed, rid: int) -> Mutation:
    body = _msg_seed(seed)
    if rng.random() < 0.5:
        value = rng.randint(1, 255)
        data = body[:-1] + bytes([value])
        return _bson("terminator", seed, rid, data, f"last byte 0x00 -> 0x{value:02x}")
    data = _set_int32(body[:-1], 0, len(body) - 1)
    return _bson("terminator", seed, rid, data, "terminating NUL removed (length adjusted)")


def bson_string(rng: random.Random, seed: Seed, rid: int) -> Mutation:
    body = _msg_seed(seed)
    strings = [e for e in elements(body) if body[e[0]] == 2]
    if not strings:  # every seed has $db, but a capture's body might not
        return bson_length(rng, seed, rid)
    type_at, value, end = strings[rng.randrange(len(strings))]
    key = body[type_at + 1 : value - 1].decode("utf-8", "replace")
    if rng.random() < 0.6:
        true = end - value - 4
        claim = _choice(rng, (0, -1, true - 1, true + 1, 2**31 - 1))
        data = _set_int32(body, value, claim)
        return _bson("string", seed, rid, data, f"string {key!r} length {claim} (true {true})")
    bad = b"\xc3\x28\xff"
    text_len = end - value - 5
    filler = (bad * (text_len // 3 + 1))[:text_len]
    data = body[: value + 4] + filler + body[end - 1 :]
    return _bson(
        "string", seed, rid, data, f"string {key!r} of invalid UTF-8 ({filler[:6].hex()}...)"
    )


def nested(depth: int) -> bytes:
    """``{"a": {"a": ... {} }}``, ``depth`` documents deep, built without recursion."""
    doc = b"\x05\x00\x00\x00\x00"
    for _ in range(depth - 1):
        doc = _INT32.pack(len(doc) + 8) + b"\x03a\x00" + doc + b"\x00"
    return doc


def bson_depth(rng: random.Random, seed: Seed, rid: int) -> Mutation:
    body = _msg_seed(seed)
    depth = _choice(rng, (100, 101, 150, 181, 200, 1000, MAX_DEPTH))
    inner = nested(depth - 1)
    element = b"\x03deep\x00" + inner
    data = _INT32.pack(len(body) + len(element)) + body[4:-1] + element + b"\x00"
    return _bson("depth", seed, rid, data, f"a field 'deep' nesting documents {depth} deep in all")


def bson_duplicate_key(rng: random.Random, seed: Seed, rid: int) -> Mutation:
    body = _msg_seed(seed)
    first, _, end = elements(body)[0]
    element = body[first:end]
    data = _INT32.pack(len(body) + len(element)) + body[4:-1] + element + b"\x00"
    key = body[first + 1 : body.index(b"\x00", first + 1)].decode("utf-8", "replace")
    return _bson("duplicate-key", seed, rid, data, f"the first element {key!r} repeated at the end")


# --------------------------------------------------------------------------- OP_COMPRESSED

_COMPRESSED_HEAD = struct.Struct("<iiB")


@functools.lru_cache(maxsize=4)
def zlib_zeros(size: int) -> bytes:
    """zlib of ``size`` zero bytes, made in 1 MiB pieces (never ``size`` bytes at once)."""
    import zlib

    compressor = zlib.compressobj(9)
    piece = bytes(min(size, 1 << 20))
    out = []
    left = size
    while left:
        n = min(left, len(piece))
        out.append(compressor.compress(piece[:n]))
        left -= n
    out.append(compressor.flush())
    return b"".join(out)


def compressed_frame(
    rid: int, original_opcode: int, uncompressed_size: int, compressor_id: int, payload: bytes
) -> bytes:
    body = _COMPRESSED_HEAD.pack(original_opcode, uncompressed_size, compressor_id) + payload
    return _HEADER.pack(16 + len(body), rid, 0, protocol.OP_COMPRESSED) + body


def _original(seed: Seed) -> Tuple[int, bytes]:
    """The seed's opCode and its frame without the header."""
    return _INT32.unpack_from(seed.frame, 12)[0], seed.frame[16:]


def _compressed(name: str, what: str, data: bytes) -> Mutation:
    return Mutation("compressed", name, what, data)


def compressed_size_lie(rng: random.Random, seed: Seed, rid: int) -> Mutation:
    import zlib

    op, body = _original(seed)
    claim = _choice(rng, (0, 1, len(body) - 1, len(body) + 1, 2 * len(body), -1, MAX_BOMB))
    cid, payload = (2, zlib.compress(body)) if rng.random() < 0.5 else (0, body)
    what = (
        f"uncompressedSize {claim} (true {len(body)}), compressor {protocol.CompressorId(cid).name}"
    )
    return _compressed("size-lie", what, compressed_frame(rid, op, claim, cid, payload))


def compressed_unknown_compressor(rng: random.Random, seed: Seed, rid: int) -> Mutation:
    import zlib

    op, body = _original(seed)
    cid = rng.randint(4, 255)
    what = f"compressorId {cid}, zlib data"
    return _compressed(
        "unknown-compressor", what, compressed_frame(rid, op, len(body), cid, zlib.compress(body))
    )


def compressed_wrong_compressor(rng: random.Random, seed: Seed, rid: int) -> Mutation:
    import zlib

    op, body = _original(seed)
    cid = _choice(rng, (0, 1, 3))
    name = protocol.CompressorId(cid).name
    frame = compressed_frame(rid, op, len(body), cid, zlib.compress(body))
    return _compressed("wrong-compressor", f"zlib data labelled {name} ({cid})", frame)


def compressed_corrupt(rng: random.Random, seed: Seed, rid: int) -> Mutation:
    import zlib

    op, body = _original(seed)
    packed = zlib.compress(body)
    if rng.random() < 0.5:
        cut = rng.randint(1, len(packed) - 1)
        what = f"zlib data cut to {cut} of {len(packed)} bytes"
        packed = packed[:cut]
    else:
        at = rng.randrange(len(packed))
        what = f"zlib data byte {at} flipped"
        packed = packed[:at] + bytes([packed[at] ^ 0xFF]) + packed[at + 1 :]
    return _compressed("corrupt-data", what, compressed_frame(rid, op, len(body), 2, packed))


def compressed_original_opcode(rng: random.Random, seed: Seed, rid: int) -> Mutation:
    import zlib

    op, body = _original(seed)
    original = _choice(rng, (protocol.OP_COMPRESSED, 1, 2002, 1337, -1))
    frame = compressed_frame(rid, original, len(body), 2, zlib.compress(body))
    return _compressed(
        "original-opcode", f"originalOpcode {original} (the body is opCode {op}'s)", frame
    )


def compressed_bomb(rng: random.Random, seed: Seed, rid: int) -> Mutation:
    op, _ = _original(seed)
    size = _choice(rng, (1 << 20, 16 << 20, MAX_BOMB))
    packed = zlib_zeros(size)
    if rng.random() < 0.5:
        claim = size
        what = f"a zlib bomb: {len(packed)} bytes inflating to {size} zero bytes, size told"
    else:
        claim = _choice(rng, (64, 4096))
        what = (
            f"a zlib bomb: {len(packed)} bytes inflating to {size} zero bytes, "
            f"uncompressedSize {claim}"
        )
    return _compressed("bomb", what, compressed_frame(rid, op, claim, 2, packed))


# --------------------------------------------------------------------------- the classes

CLASSES: Dict[str, Tuple[bool, Tuple[Mutator, ...]]] = {
    # class: (needs an OP_MSG seed, its mutations)
    "length": (
        False,
        (length_short, length_long, length_negative, length_huge, length_below_header),
    ),
    "opcode": (False, (opcode_other,)),
    "flags": (
        True,
        (
            flags_unknown_required,
            flags_unknown_optional,
            flags_more_to_come,
            flags_exhaust_allowed,
            flags_checksum_missing,
            flags_all,
        ),
    ),
    "sections": (
        True,
        (
            section_unknown_kind,
            section_no_body,
            section_two_bodies,
            section_no_sections,
            section_kind1_size,
            section_kind1_identifier,
            section_kind1_garbage,
        ),
    ),
    "checksum": (True, (checksum_wrong, checksum_stale, checksum_zero, checksum_truncated)),
    "bson": (
        True,
        (bson_length, bson_type, bson_terminator, bson_string, bson_depth, bson_duplicate_key),
    ),
    "compressed": (
        False,
        (
            compressed_size_lie,
            compressed_unknown_compressor,
            compressed_wrong_compressor,
            compressed_corrupt,
            compressed_original_opcode,
            compressed_bomb,
        ),
    ),
}
CLASS_NAMES: Tuple[str, ...] = tuple(CLASSES)


def case_random(run_seed: int, index: int) -> random.Random:
    """The generator of one case: a function of the run's seed and the case's index only."""
    return random.Random(f"wireclient-fuzz:{run_seed}:{index}")


def generate(
    run_seed: int, index: int, seeds: Sequence[Seed], classes: Sequence[str] = CLASS_NAMES
) -> Case:
    """Case ``index`` (1-based) of a run: see the module docstring."""
    if not seeds:
        raise ValueError("no seeds to mutate")
    rng = case_random(run_seed, index)
    cls = classes[(index - 1) % len(classes)]
    needs_msg, mutators = CLASSES[cls]
    usable = [s for s in seeds if s.is_msg] if needs_msg else list(seeds)
    if not usable:  # a corpus without OP_MSG: the built-in seeds serve these classes
        usable = [s for s in builtin_seeds() if s.is_msg]
    seed = usable[rng.randrange(len(usable))]
    mutate = mutators[rng.randrange(len(mutators))]
    request_id = index  # a requestID per case, so a reply can be matched in a capture
    return Case(index, seed.name, mutate(rng, seed, request_id))


def generate_all(
    run_seed: int, count: int, seeds: Sequence[Seed], classes: Sequence[str] = CLASS_NAMES
) -> Iterator[Case]:
    for index in range(1, count + 1):
        yield generate(run_seed, index, seeds, classes)


def parse_classes(text: Optional[str]) -> Tuple[str, ...]:
    """``"flags,bson"`` -> those classes, in the engine's order; ValueError on a bad name."""
    if not text:
        return CLASS_NAMES
    wanted = {part.strip() for part in text.split(",") if part.strip()}
    unknown = wanted - set(CLASS_NAMES)
    if unknown:
        raise ValueError(
            f"unknown mutation class {', '.join(sorted(unknown))} (known: {', '.join(CLASS_NAMES)})"
        )
    return tuple(name for name in CLASS_NAMES if name in wanted)


def check_decodes(frame: bytes) -> Optional[str]:
    """Why the codec refuses ``frame`` (None when it decodes): what the tests use to see
    that each mutation broke what it says."""
    try:
        protocol.decode(frame)
    except ProtocolError as exc:
        return str(exc)
    return None


__all__ = [
    "CLASSES",
    "CLASS_NAMES",
    "MAX_BOMB",
    "MAX_DEPTH",
    "Case",
    "Mutation",
    "Seed",
    "build_msg",
    "builtin_seeds",
    "case_random",
    "check_decodes",
    "compressed_frame",
    "elements",
    "generate",
    "generate_all",
    "kind1",
    "kind1_sections",
    "msg_frame",
    "msg_seed",
    "nested",
    "parse_classes",
    "sections",
    "seeds_from_capture",
    "with_request_id",
]
