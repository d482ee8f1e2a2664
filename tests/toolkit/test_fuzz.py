"""The fuzzer's mutation engine: the same seed gives the same bytes, and every mutation
breaks the part of the frame it says it breaks (read back with the codec and by hand)."""

from __future__ import annotations

import io
import re
import struct
import zlib
from collections import Counter
from typing import Callable, Dict, List, Tuple

import bson
import pytest

from wireclient import protocol
from wireclient.toolkit import capture, fuzz
from wireclient.toolkit.fuzz import Case, Mutation, Seed

SEEDS = fuzz.builtin_seeds()
MANY = 1400  # 200 cases of each class


def header(frame: bytes) -> protocol.Header:
    return protocol.Header(*struct.unpack_from("<iiii", frame))


@pytest.fixture(scope="module")
def cases() -> List[Case]:
    return list(fuzz.generate_all(11, MANY, SEEDS))


def test_builtin_seeds_are_valid_frames() -> None:
    for seed in SEEDS:
        assert fuzz.check_decodes(seed.frame) is None, seed.name
        if seed.is_msg:
            _, message = protocol.decode(seed.frame)
            assert isinstance(message, protocol.OpMsg)
            assert message.body == bson.decode(seed.body or b"")


def test_the_same_seed_gives_the_same_bytes(cases: List[Case]) -> None:
    again = list(fuzz.generate_all(11, MANY, SEEDS))
    assert [c.mutation.frame for c in again] == [c.mutation.frame for c in cases]
    assert again == cases


def test_a_case_depends_only_on_its_seed_and_number(cases: List[Case]) -> None:
    for number in (1, 2, 77, 500, MANY):
        assert fuzz.generate(11, number, SEEDS) == cases[number - 1]


def test_another_seed_gives_other_bytes(cases: List[Case]) -> None:
    other = list(fuzz.generate_all(12, 100, SEEDS))
    differ = sum(a.mutation.frame != b.mutation.frame for a, b in zip(other, cases))
    assert differ > 50


def test_classes_take_turns(cases: List[Case]) -> None:
    for start in range(0, 70, 7):
        assert {c.mutation.cls for c in cases[start : start + 7]} == set(fuzz.CLASS_NAMES)
    only = list(fuzz.generate_all(11, 20, SEEDS, fuzz.parse_classes("bson,flags")))
    assert {c.mutation.cls for c in only} == {"bson", "flags"}


def test_parse_classes_refuses_unknown_names() -> None:
    assert fuzz.parse_classes(None) == fuzz.CLASS_NAMES
    assert fuzz.parse_classes("compressed, length") == ("length", "compressed")
    with pytest.raises(ValueError, match="unknown mutation class nope"):
        fuzz.parse_classes("length,nope")


def test_every_mutation_of_every_class_is_made(cases: List[Case]) -> None:
    made = Counter((c.mutation.cls, c.mutation.name) for c in cases)
    for cls, (_, mutators) in fuzz.CLASSES.items():
        names = {name for (c, name) in made if c == cls}
        # opcode's one mutator names its result "known" or "unknown"
        assert len(names) >= (2 if cls == "opcode" else len(mutators)), (cls, names)


def test_frames_are_bounded_and_carry_the_case_number(cases: List[Case]) -> None:
    for case in cases:
        frame = case.mutation.frame
        assert len(frame) <= 200_000, case
        assert header(frame).request_id == case.number


def test_seed_requestid_is_the_only_difference_of_an_opcode_mutation(cases: List[Case]) -> None:
    seeds = {s.name: s for s in SEEDS}
    for case in cases:
        if case.mutation.cls != "opcode":
            continue
        frame, seed = case.mutation.frame, seeds[case.seed_name]
        assert header(frame).op_code != header(seed.frame).op_code
        assert frame[:4] == seed.frame[:4] and frame[16:] == seed.frame[16:]
        assert str(header(frame).op_code) in case.mutation.description


# -- each mutation breaks what it says ------------------------------------------------------


def _claim(description: str, word: str) -> int:
    """The number after ``word`` in a description."""
    return int(description.split(word, 1)[1].split()[0].rstrip(",;()"))


def check_length(m: Mutation, seed: Seed) -> None:
    claim = header(m.frame).message_length
    assert claim == _claim(m.description, "messageLength")
    assert m.frame[8:] == seed.frame[8:]  # only messageLength (and the requestID) changed
    assert claim != len(m.frame)
    assert {
        "short": 16 <= claim < len(m.frame),
        "long": claim > len(m.frame),
        "negative": claim < 0,
        "huge": claim > 48_000_000,
        "below-header": 0 <= claim < 16,
    }[m.name]
    assert fuzz.check_decodes(m.frame) is not None


def check_flags(m: Mutation, seed: Seed) -> None:
    (flags,) = struct.unpack_from("<I", m.frame, 16)
    assert f"0x{flags:08x}" in m.description
    error = fuzz.check_decodes(m.frame)
    if m.name == "unknown-required":
        assert flags & 0xFFFC and "unknown required bits" in str(error)
    elif m.name in ("moreToCome", "exhaustAllowed", "unknown-optional"):
        assert error is None
        _, message = protocol.decode(m.frame)
        assert isinstance(message, protocol.OpMsg) and message.flags == flags
        assert message.body == bson.decode(seed.body or b"")
        bit = {"moreToCome": 1 << 1, "exhaustAllowed": 1 << 16}.get(m.name, flags & 0xFFFE0000)
        assert flags & bit and bin(flags).count("1") == 1
    elif m.name == "checksumPresent-without-checksum":
        assert flags == 1 and error is not None and len(m.frame) == len(seed.frame)
    else:  # all-bits: the checksum is right, the required bits are refused
        assert flags == 0xFFFFFFFF and "unknown required bits" in str(error)


SECTION_ERRORS = {
    "unknown-kind": "unknown OP_MSG section kind",
    "no-body": "no kind-0",
    "two-bodies": "a second kind-0",
    "none": "OP_MSG",
    "kind1-size": "",
    "kind1-trailing-bytes": "",
}


def check_sections(m: Mutation, seed: Seed) -> None:
    error = fuzz.check_decodes(m.frame)
    if m.name == "kind1-identifier":
        if "twice" in m.description:  # a well-formed frame the spec does not allow
            _, message = protocol.decode(m.frame)
            assert isinstance(message, protocol.OpMsg)
            assert len(message.sequences) == 2
            assert message.sequences[0].identifier == message.sequences[1].identifier
        elif "empty identifier" in m.description:
            _, message = protocol.decode(m.frame)
            assert isinstance(message, protocol.OpMsg) and message.sequences[0].identifier == ""
        elif "bytes" in m.description:  # a long identifier
            _, message = protocol.decode(m.frame)
            assert isinstance(message, protocol.OpMsg)
            assert len(message.sequences[0].identifier) == _claim(m.description, "identifier of")
        else:
            assert error is not None
        return
    assert error is not None and SECTION_ERRORS[m.name] in error
    if m.name == "kind1-size":
        true = _claim(m.description, "true size")
        stated = _claim(m.description, "size")
        assert stated != true
        body_len = len(seed.body or b"")
        assert struct.unpack_from("<i", m.frame, 20 + 1 + body_len + 1)[0] == stated


def check_checksum(m: Mutation, seed: Seed) -> None:
    (flags,) = struct.unpack_from("<I", m.frame, 16)
    assert flags & 1
    error = fuzz.check_decodes(m.frame)
    assert error is not None
    if m.name != "truncated":
        assert "checksum mismatch" in error
        good = protocol.encode(
            protocol.OpMsg(seed.body or b"", _sequences(seed), seed.flags | 1),
            header(m.frame).request_id,
        )
        assert len(m.frame) == len(good)
    else:
        assert header(m.frame).message_length == len(m.frame)


def _sequences(seed: Seed) -> List[protocol.DocumentSequence]:
    return [protocol.DocumentSequence(i, list(docs)) for i, docs in seed.sequences]


def check_bson(m: Mutation, seed: Seed) -> None:
    body = m.frame[21 : 21 + max(struct.unpack_from("<i", m.frame, 21)[0], 0)]
    error = fuzz.check_decodes(m.frame)
    if m.name == "depth":
        depth = _claim(m.description, "documents")
        element = m.frame.index(b"\x03deep\x00")
        inner = m.frame[element + 6 :]
        levels = 1  # the body itself
        while inner[4:7] == b"\x03a\x00" or inner[:5] == b"\x05\x00\x00\x00\x00":
            levels += 1
            if inner[:5] == b"\x05\x00\x00\x00\x00":
                break
            inner = inner[7:]
        assert levels == depth
    elif m.name == "duplicate-key":
        assert error is None
        keys = [m.frame[21 + t + 1 : 21 + v - 1] for t, v, _ in fuzz.elements(body)]
        assert keys[0] == keys[-1] and len(keys) == len(fuzz.elements(seed.body or b"")) + 1
    elif m.name == "type":
        new = int(m.description.rsplit("0x", 1)[1], 16)
        key = m.description.split("'")[1].encode()
        assert bytes([new]) + key + b"\x00" in m.frame[21:]
    else:
        # the codec refuses the body, at an offset inside it
        assert error is not None and "OP_MSG body" in error, error
        offset = re.search(r"at offset (\d+)", error)
        assert offset is not None and int(offset.group(1)) >= 21, error


def check_compressed(m: Mutation, seed: Seed) -> None:
    h = header(m.frame)
    assert h.op_code == protocol.OP_COMPRESSED and h.message_length == len(m.frame)
    original, size, cid = struct.unpack_from("<iiB", m.frame, 16)
    payload = m.frame[25:]
    if m.name == "size-lie":
        true = _claim(m.description, "true")
        assert size == _claim(m.description, "uncompressedSize") and size != true
    elif m.name == "unknown-compressor":
        assert cid >= 4 and zlib.decompress(payload) == seed.frame[16:]
    elif m.name == "wrong-compressor":
        assert cid in (0, 1, 3) and zlib.decompress(payload) == seed.frame[16:]
    elif m.name == "corrupt-data":
        with pytest.raises(zlib.error):
            zlib.decompress(payload)
    elif m.name == "original-opcode":
        assert original == _claim(m.description, "originalOpcode")
        assert original != header(seed.frame).op_code
    else:  # bomb: small on the wire, bounded when inflated
        assert cid == 2 and len(payload) < 100_000
        inflated = zlib.decompressobj().decompress(payload, fuzz.MAX_BOMB + 1)
        assert len(inflated) <= fuzz.MAX_BOMB and inflated.count(0) == len(inflated)
        assert str(len(inflated)) in m.description and str(size) in m.description


CHECKS: Dict[str, Callable[[Mutation, Seed], None]] = {
    "length": check_length,
    "flags": check_flags,
    "sections": check_sections,
    "checksum": check_checksum,
    "bson": check_bson,
    "compressed": check_compressed,
}


@pytest.mark.parametrize("cls", sorted(CHECKS))
def test_each_mutation_breaks_what_it_says(cls: str, cases: List[Case]) -> None:
    seeds = {s.name: s for s in SEEDS}
    checked: Counter[Tuple[str, str]] = Counter()
    for case in cases:
        m = case.mutation
        if m.cls == cls:
            CHECKS[cls](m, seeds[case.seed_name])
            checked[(m.cls, m.name)] += 1
    assert sum(checked.values()) == MANY // len(fuzz.CLASS_NAMES)


def test_nested_builds_exactly_that_depth() -> None:
    assert bson.decode(fuzz.nested(3)) == {"a": {"a": {}}}
    assert len(fuzz.nested(fuzz.MAX_DEPTH)) < 100_000


def test_seeds_from_a_capture(tmp_path: object) -> None:
    buf = io.BytesIO()
    writer = capture.CaptureWriter(buf)
    find = protocol.encode(
        protocol.OpMsg({"find": "x", "$db": "d"}, flags=protocol.MsgFlags.checksumPresent), 5
    )
    query = protocol.encode(protocol.OpQuery("admin.$cmd", {"hello": 1}, number_to_return=-1), 6)
    writer.record(1, capture.CLIENT_BYTES, query + find[:10])
    writer.record(1, capture.CLIENT_BYTES, find[10:])
    writer.record(1, capture.SERVER_BYTES, protocol.encode(protocol.OpMsg({"ok": 1}), 9, 5))
    writer.record(2, capture.CLIENT_BYTES, b"\x05\x00\x00\x00junk")  # does not decode
    data = buf.getvalue()
    seeds = fuzz.seeds_from_capture(data)
    assert [s.is_msg for s in seeds] == [False, True]
    assert "find" in seeds[1].name and seeds[1].flags == 0  # the checksum goes
    assert protocol.decode(seeds[1].frame)[1] == protocol.OpMsg({"find": "x", "$db": "d"})
    run = list(fuzz.generate_all(3, 28, seeds))
    assert {c.seed_name for c in run} == {s.name for s in seeds}
    assert run == list(fuzz.generate_all(3, 28, seeds))


def test_no_seeds_is_an_error() -> None:
    with pytest.raises(ValueError):
        fuzz.generate(1, 1, [])
