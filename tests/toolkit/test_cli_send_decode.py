"""``wireclient send`` (raw bytes, malformed ones included) and ``wireclient decode``
(frames, hex, captures), run as a real subprocess against SecantusDB, mockupdb, and a
raw socket server that answers garbage."""

from __future__ import annotations

import socket
import threading
import time
import zlib
from typing import Any, Iterator, List

import pytest
from cli_helpers import finish, mock_fixture, one_line_error, popen_cli, run_cli, sent_frames  # noqa: F401
from mockupdb import MockupDB
from servers import SecantusServer

from wireclient import protocol as p
from wireclient.toolkit import capture

PING = p.encode(p.OpMsg({"ping": 1, "$db": "admin"}), request_id=7)
BUILDINFO = p.encode(p.OpMsg({"buildinfo": 1, "$db": "admin"}), request_id=8)
BAD_OPCODE = PING[:12] + (1337).to_bytes(4, "little") + PING[16:]


def write(tmp_path: Any, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


# -- send to SecantusDB --------------------------------------------------------------------


def test_send_a_frame_from_hex_text(server: SecantusServer, tmp_path: Any) -> None:
    hex_text = "0x" + PING[:20].hex(" ") + "\n  " + PING[20:].hex() + "\n"
    path = write(tmp_path, "ping.hex", hex_text.encode())
    result = run_cli("send", server.uri, path, "--hex")
    assert result.returncode == 0, result.stderr
    head = result.stdout.splitlines()[0]
    assert head.startswith("server -> client  OP_MSG")
    assert "responseTo=7" in head
    assert '"ok": 1.0' in result.stdout
    assert last_line(result.stdout) == "replied: 1 reply"


def test_send_from_stdin_after_the_traced_handshake(server: SecantusServer) -> None:
    result = run_cli("send", server.uri, "-", "--trace", input=PING + BUILDINFO)
    assert result.returncode == 0, result.stderr
    assert last_line(result.stdout) == "replied: 2 replies"
    assert "responseTo=7" in result.stdout and "responseTo=8" in result.stdout
    heads = sent_frames(result.stderr)
    assert [h.split()[3] for h in heads[:2]] == ["OP_QUERY", "OP_REPLY"]  # the handshake
    assert "requestID=7" in heads[2] and "requestID=8" in heads[3]


def test_send_without_handshake(server: SecantusServer, tmp_path: Any) -> None:
    result = run_cli("send", server.uri, write(tmp_path, "f", PING), "--no-handshake", "--trace")
    assert result.returncode == 0, result.stderr
    heads = sent_frames(result.stderr)
    assert len(heads) == 2 and "requestID=7" in heads[0]  # no hello before it


@pytest.mark.parametrize(
    "name, data",
    [
        ("unknown opCode", BAD_OPCODE),
        ("legacy OP_INSERT", p.encode(p.OpInsert("db.c", [{"x": 1}]), request_id=9)),
        ("legacy OP_KILL_CURSORS", p.encode(p.OpKillCursors([1]), request_id=9)),
        ("OP_COMPRESSED", p.encode(p.compress(p.OpMsg({"ping": 1, "$db": "admin"})), 9)),
        ("messageLength 8", (8).to_bytes(4, "little") + PING[4:]),
    ],
)
def test_frames_secantus_refuses_by_hanging_up(
    server: SecantusServer, tmp_path: Any, name: str, data: bytes
) -> None:
    result = run_cli("send", server.uri, write(tmp_path, "f", data), "--timeout", "10")
    # a hang-up, or a reset when it left bytes of ours unread; "closed", not "silent": we did
    # not wait for the timeout (no clock: a busy machine starts the CLI slowly)
    assert last_line(result.stdout).startswith("closed: "), name
    assert result.returncode == 1


def test_bad_bson_gets_an_error_reply_exit_1(server: SecantusServer, tmp_path: Any) -> None:
    bad = PING[:-1] + b"\xff"  # the body's terminating NUL
    result = run_cli("send", server.uri, write(tmp_path, "f", bad))
    assert result.returncode == 1
    assert '"ok": 0.0' in result.stdout
    assert last_line(result.stdout) == "replied: 1 reply"


def test_half_a_frame_gets_silence_exit_0(server: SecantusServer, tmp_path: Any) -> None:
    started = time.monotonic()
    result = run_cli("send", server.uri, write(tmp_path, "f", PING[:30]), "--timeout", "0.5")
    assert result.returncode == 0, result.stderr
    assert last_line(result.stdout) == "silent: no reply within 0.5 s"
    assert time.monotonic() - started >= 0.5  # not before --timeout


def test_replies_waits_for_more(server: SecantusServer, tmp_path: Any) -> None:
    path = write(tmp_path, "f", PING)
    result = run_cli("send", server.uri, path, "--replies", "2", "--timeout", "0.5")
    assert result.returncode == 0
    assert result.stdout.count("server -> client  OP_MSG") == 1
    assert last_line(result.stdout) == "silent: no reply within 0.5 s"


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--hex"], "not hex"),
        ([], "empty"),
    ],
)
def test_send_usage_errors(tmp_path: Any, args: List[str], needle: str) -> None:
    data = b"zz not hex" if args else b""
    result = run_cli("send", "127.0.0.1:1", write(tmp_path, "f", data), *args)
    assert result.returncode == 2
    one_line_error(result, needle)
    result = run_cli("send", "127.0.0.1:1", str(tmp_path / "missing"))
    assert result.returncode == 2
    one_line_error(result, "cannot read")


def test_send_network_failure_exit_1(tmp_path: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        result = run_cli("send", f"127.0.0.1:{s.getsockname()[1]}", write(tmp_path, "f", PING))
    assert result.returncode == 1
    one_line_error(result, "AutoReconnect")


# -- send to mockupdb: legacy opcodes it accepts -------------------------------------------


def test_legacy_insert_gets_no_reply(mock: MockupDB, tmp_path: Any) -> None:
    data = p.encode(p.OpInsert("db.things", [{"_id": 1}, {"_id": 2}]), request_id=5)
    proc = popen_cli("send", f"127.0.0.1:{mock.port}", write(tmp_path, "f", data), "--timeout", "1")
    request = mock.receives(timeout=20)
    assert request.namespace == "db.things"
    assert [dict(d) for d in request.docs] == [{"_id": 1}, {"_id": 2}]
    result = finish(proc)
    assert result.returncode == 0, result.stderr
    assert last_line(result.stdout) == "silent: no reply within 1 s"


def test_legacy_get_more_and_its_op_reply(mock: MockupDB, tmp_path: Any) -> None:
    import mockupdb

    data = p.encode(p.OpGetMore("db.things", cursor_id=1234, number_to_return=2), request_id=6)
    proc = popen_cli("send", f"127.0.0.1:{mock.port}", write(tmp_path, "f", data))
    request = mock.receives(timeout=20)
    assert request.cursor_id == 1234
    request.replies(mockupdb.OpReply([{"_id": 3}], cursor_id=1234, starting_from=2))
    result = finish(proc)
    assert result.returncode == 0, result.stderr
    assert "server -> client  OP_REPLY" in result.stdout
    assert "cursorID: 1234" in result.stdout
    assert "startingFrom: 2" in result.stdout
    assert '{"_id": 3}' in result.stdout


@pytest.fixture()
def garbage_server() -> Iterator[int]:
    """Answers whatever it receives with a frame whose messageLength is 4, then hangs up."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(20)

    def serve() -> None:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        with client:
            client.settimeout(20)
            client.recv(65536)
            client.sendall(b"\x04\x00\x00\x00" + b"\x01" * 20)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    listener.close()
    thread.join(25)


def test_undecodable_reply_is_shown_in_hex_exit_1(garbage_server: int, tmp_path: Any) -> None:
    path = write(tmp_path, "f", PING)
    result = run_cli("send", f"127.0.0.1:{garbage_server}", path, "--no-handshake")
    assert result.returncode == 1
    assert "does not decode: messageLength 4" in result.stdout
    assert "    00000000  04 00 00 00 01 01 01 01" in result.stdout
    assert last_line(result.stdout).startswith("undecodable: messageLength 4")


# -- decode --------------------------------------------------------------------------------

EVERY_OPCODE = [
    p.OpMsg(
        {"insert": "c", "$db": "db"},
        [p.DocumentSequence("documents", [{"_id": 1}, {"_id": 2}])],
        flags=p.MsgFlags.checksumPresent | p.MsgFlags.exhaustAllowed,
    ),
    p.OpQuery(
        "db.c",
        {"x": 1},
        flags=p.QueryFlags.SlaveOk,
        number_to_skip=3,
        number_to_return=5,
        return_fields_selector={"x": 1},
    ),  # fmt: skip
    p.OpReply([{"a": 1}], response_flags=p.ReplyFlags.AwaitCapable, cursor_id=77),
    p.OpGetMore("db.c", cursor_id=77, number_to_return=10),
    p.OpKillCursors([77, 78]),
    p.OpInsert("db.c", [{"_id": 1}], flags=p.InsertFlags.ContinueOnError),
    p.OpUpdate("db.c", {"_id": 1}, {"$set": {"x": 2}}, flags=p.UpdateFlags.Upsert),
    p.OpDelete("db.c", {"_id": 1}, flags=p.DeleteFlags.SingleRemove),
    p.compress(p.OpMsg({"ping": 1, "$db": "admin"}), "zlib"),
]
EXPECTED = [
    "flagBits: 0x00010001 checksumPresent|exhaustAllowed",
    "section kind 1 'documents' (2 documents):",
    "checksum: 0x",
    "flags: 0x00000004 SlaveOk",
    "numberToSkip: 3",
    'returnFieldsSelector: {"x": 1}',
    "responseFlags: 0x00000008 AwaitCapable",
    "cursorID: 77",
    "cursorIDs (2): [77, 78]",
    "flags: 0x00000001 ContinueOnError",
    'update: {"$set": {"x": 2}}',
    "flags: 0x00000001 SingleRemove",
    "originalOpcode: OP_MSG(2013)",
    "compressorId: zlib(2)",
    'section kind 0 body: {"ping": 1, "$db": "admin"}',  # decompressed
]


def test_decode_every_opcode(tmp_path: Any) -> None:
    data = b"".join(p.encode(m, request_id=i + 1) for i, m in enumerate(EVERY_OPCODE))
    result = run_cli("decode", write(tmp_path, "frames.bin", data))
    assert result.returncode == 0, result.stderr
    names = [line.split()[3] for line in result.stdout.splitlines() if line.startswith("frame ")]
    assert names == [p.OPCODE_NAMES[m.op_code] for m in EVERY_OPCODE]
    for needle in EXPECTED:
        assert needle in result.stdout, needle
    assert "frame 2 @" in result.stdout


def test_decode_hex_from_stdin_with_dump() -> None:
    text = "\n".join(PING.hex()[i : i + 32] for i in range(0, len(PING) * 2, 32)) + "\n"
    result = run_cli("decode", "--hex", "-", "--dump", input=text.encode())
    assert result.returncode == 0, result.stderr
    assert 'section kind 0 body: {"ping": 1, "$db": "admin"}' in result.stdout
    assert "    00000000  33 00 00 00 07 00 00 00  00 00 00 00 dd 07 00 00" in result.stdout


def test_decode_goes_on_after_a_bad_body_but_not_after_a_bad_header(tmp_path: Any) -> None:
    bad_body = PING[:-1] + b"\xff"
    result = run_cli("decode", write(tmp_path, "f", bad_body + BUILDINFO))
    assert result.returncode == 1
    assert "does not decode" in result.stdout
    assert '{"buildinfo": 1, "$db": "admin"}' in result.stdout  # the frame after it
    one_line_error(result, "frame 1 does not decode")
    result = run_cli("decode", write(tmp_path, "g", (5).to_bytes(4, "little") + PING[4:] + PING))
    assert result.returncode == 1
    assert "messageLength 5" in result.stdout
    assert '"ping"' not in result.stdout.split("\n", 2)[1]


def test_decode_truncated_and_empty_and_missing(tmp_path: Any) -> None:
    result = run_cli("decode", write(tmp_path, "f", PING + BUILDINFO[:20]))
    assert result.returncode == 1
    assert "incomplete frame: 20 of 56 bytes" in result.stdout
    assert '{"ping": 1, "$db": "admin"}' in result.stdout
    result = run_cli("decode", write(tmp_path, "e", b""))
    assert result.returncode == 1
    one_line_error(result, "no frames")
    result = run_cli("decode", str(tmp_path / "missing"))
    assert result.returncode == 2
    one_line_error(result, "cannot read")


def _capture_bytes(truncate: int = 0) -> bytes:
    reply = p.encode(p.OpMsg({"ok": 1.0}), request_id=100, response_to=7)
    records = [
        capture.pack_record(1, capture.EVENT, b"opened from 127.0.0.1:5000", 1000.0),
        capture.pack_record(1, capture.CLIENT_BYTES, PING[:10], 1000.001),  # a frame in 2
        capture.pack_record(2, capture.EVENT, b"opened from 127.0.0.1:5001", 1000.002),
        capture.pack_record(1, capture.CLIENT_BYTES, PING[10:], 1000.003),
        capture.pack_record(1, capture.SERVER_BYTES, reply, 1000.25),
        capture.pack_record(1, capture.EVENT, b"closed: the client closed", 1000.5),
    ]
    data = capture.MAGIC + b"".join(records)
    return data[: len(data) - truncate] if truncate else data


def test_decode_a_capture(tmp_path: Any) -> None:
    result = run_cli("decode", write(tmp_path, "c.wcap", _capture_bytes()))
    assert result.returncode == 0, result.stderr
    heads = [line for line in result.stdout.splitlines() if not line.startswith(" ")]
    assert heads[0] == "+0.000s conn 1 opened from 127.0.0.1:5000"
    assert heads[1] == "+0.002s conn 2 opened from 127.0.0.1:5001"
    assert heads[2].startswith("+0.003s conn 1 client -> server  OP_MSG  messageLength=51")
    assert heads[3].startswith("+0.250s conn 1 server -> client  OP_MSG")
    assert heads[4] == "+0.500s conn 1 closed: the client closed"
    assert 'section kind 0 body: {"ok": 1.0}' in result.stdout


def test_decode_a_truncated_capture(tmp_path: Any) -> None:
    result = run_cli("decode", write(tmp_path, "c.wcap", _capture_bytes(truncate=5)))
    assert result.returncode == 1
    assert "server -> client  OP_MSG" in result.stdout  # the records before the cut
    one_line_error(result, "capture: truncated record")


def test_decode_hex_of_a_zlib_bomb_is_refused(tmp_path: Any) -> None:
    bomb = zlib.compress(b"\x00" * 1_000_000)
    frame = p.encode(p.OpCompressed(p.OP_MSG, 100, p.CompressorId.zlib, bomb), request_id=1)
    result = run_cli("decode", write(tmp_path, "f", frame.hex().encode()), "--hex")
    assert result.returncode == 0  # the frame itself is well formed ...
    assert "cannot decompress" in result.stdout  # ... its payload is not inflated past 100
