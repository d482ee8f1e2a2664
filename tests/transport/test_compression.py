"""Wire compression (the compression spec): options, negotiation, both directions on the wire.

Peers: mockupdb taught OP_COMPRESSED on the server's side (``mock_compression``: the
compression libraries themselves, not wireclient's codec), the toolkit's proxy in front of
it, and SecantusDB, which lists no compressor (and refuses OP_COMPRESSED), so nothing may be
compressed there.
"""

from __future__ import annotations

import io
import struct
import sys
from typing import Any, Dict, Iterator, List, Optional

import bson
import pytest
from mock_compression import COMPRESSOR_IDS, OP_COMPRESSED, answer_compressed, peer_decompress
from mock_server import MockServer, Received
from servers import SecantusServer

from wireclient import Connection, protocol
from wireclient.engine.checker import Checker
from wireclient.errors import ConfigurationError, ProtocolError
from wireclient.monitoring import CommandListener, FrameListener
from wireclient.toolkit.proxy import Proxy
from wireclient.transport import network
from wireclient.transport.compressors import (
    NEVER_COMPRESSED,
    CompressionSettings,
    Compressor,
    command_name,
    settings_from_options,
)

ALL = ["zstd", "snappy", "zlib"]


def frame_of(spec: Dict[str, Any], op_query: bool = False) -> bytes:
    if op_query:
        return protocol.encode(protocol.OpQuery("admin.$cmd", spec, number_to_return=-1), 7)
    return protocol.encode(protocol.OpMsg(spec), 7)


def unwrap(frame: bytes) -> bytes:
    """A client's OP_COMPRESSED frame decompressed by the peer's libraries, header rebuilt."""
    length, request_id, response_to, op_code = struct.unpack_from("<iiii", frame)
    assert op_code == OP_COMPRESSED and length == len(frame)
    original, size, compressor_id = struct.unpack_from("<iiB", frame, 16)
    body = peer_decompress(compressor_id, frame[25:], size)
    return struct.pack("<iiii", 16 + size, request_id, response_to, original) + body


# -- which messages, which command -------------------------------------------------------


def test_command_name_of_op_msg_and_op_query_frames() -> None:
    assert command_name(frame_of({"find": "c", "$db": "test"})) == "find"
    assert command_name(frame_of({"isMaster": 1}, op_query=True)) == "isMaster"
    wrapped = {"$query": {"saslStart": 1}, "$readPreference": {"mode": "secondary"}}
    assert command_name(frame_of(wrapped, op_query=True)) == "saslStart"
    assert command_name(frame_of({})) is None


@pytest.mark.parametrize("name", sorted(NEVER_COMPRESSED | {"isMaster", "ISMASTER", "saslStart"}))
@pytest.mark.parametrize("op_query", [False, True])
def test_the_spec_s_forbidden_commands_go_uncompressed(name: str, op_query: bool) -> None:
    frame = frame_of({name: 1, "$db": "admin"}, op_query)
    assert Compressor("zlib").frame(frame) is frame


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("op_query", [False, True])
def test_other_commands_are_compressed_and_keep_their_request_id(name: str, op_query: bool) -> None:
    frame = frame_of({"insert": "c", "documents": [{"x": "y" * 500}], "$db": "test"}, op_query)
    wire = Compressor(name).frame(frame)
    assert struct.unpack_from("<i", wire, 12)[0] == OP_COMPRESSED
    assert wire[24] == COMPRESSOR_IDS[name]
    assert len(wire) < len(frame)
    assert unwrap(wire) == frame  # the same requestID, the same body


def test_frames_with_a_checksum_and_legacy_opcodes_go_uncompressed() -> None:
    with_checksum = protocol.encode(
        protocol.OpMsg({"ping": 1, "$db": "admin"}, flags=protocol.MsgFlags.checksumPresent), 1
    )
    assert Compressor("zlib").frame(with_checksum) is with_checksum
    kill = protocol.encode(protocol.OpKillCursors([5]), 1)
    assert Compressor("zlib").frame(kill) is kill


@pytest.mark.parametrize("level, flevel", [(0, 0), (1, 0), (-1, 2), (6, 2), (9, 3)])
def test_zlib_level_is_the_one_configured(level: int, flevel: int) -> None:
    frame = frame_of({"insert": "c", "documents": [{"x": "abc" * 300}], "$db": "test"})
    wire = Compressor("zlib", level).frame(frame)
    assert (
        wire[25] == 0x78 and wire[26] >> 6 == flevel
    )  # zlib's FLEVEL bits: the level the stream was made with


# -- settings and negotiation ------------------------------------------------------------


def test_settings_from_options() -> None:
    assert settings_from_options({}) is None
    assert settings_from_options({"compressors": []}) is None
    settings = settings_from_options({"compressors": ALL, "zlibCompressionLevel": 9})
    assert settings is not None
    assert settings.compressors == tuple(ALL) and settings.zlib_level == 9


@pytest.mark.parametrize(
    "server_list, chosen",
    [
        (["zlib", "snappy"], "snappy"),  # the client's order decides, not the server's
        (["zlib"], "zlib"),
        (["zstd", "zlib"], "zstd"),
        ([], None),
        (None, None),
        (["lz4"], None),
    ],
)
def test_negotiate_takes_the_client_s_first_that_the_server_lists(
    server_list: Optional[List[str]], chosen: Optional[str]
) -> None:
    reply = {} if server_list is None else {"compression": server_list}
    compressor = CompressionSettings(ALL, 4).negotiate(reply, "h:1")
    assert (compressor.name if compressor else None) == chosen
    if chosen == "zlib":
        assert compressor is not None and compressor.level == 4
    if chosen == "zstd":
        assert compressor is not None and compressor.level == -1  # zlib's level only


def test_a_malformed_compression_list_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="'compression' must be an array"):
        CompressionSettings(ALL).negotiate({"compression": "zlib"}, "h:1")


@pytest.mark.parametrize(
    "name, module, package",
    [("snappy", "snappy", "python-snappy"), ("zstd", "zstandard", "zstandard")],
)
def test_a_missing_package_is_a_configuration_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, name: str, module: str, package: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import now raises ImportError
    with pytest.raises(ConfigurationError, match=f"pip install {package}"):
        Connection(f"mongodb://h/?compressors=zlib,{name}", _connect=False)
    Connection("mongodb://h/?compressors=zlib", _connect=False)  # zlib needs nothing


def test_unknown_compressors_warn_and_are_not_offered() -> None:
    with MockServer() as server:
        with pytest.warns(UserWarning, match="unknown compressor 'lz4'"):
            conn = server.connect(compressors="lz4")
        assert "compression" not in server.hellos[0].body
        conn.close()


# -- against mockupdb that compresses ----------------------------------------------------


@pytest.fixture()
def compressing_server() -> Iterator[MockServer]:
    with MockServer(compression=["zlib", "snappy", "zstd"]) as server:
        yield server


def _find_one(server: MockServer, conn: Connection, reply_with: Optional[str] = "same") -> Received:
    future = server.run(conn.test.c.find_one, {"_id": 1})
    got = server.receives("find")
    if reply_with != "same":
        answer_compressed(got.request, reply_with)
    got.reply(cursor={"id": 0, "ns": "test.c", "firstBatch": [{"_id": 1, "x": "y" * 300}]})
    assert future.result(5) == {"_id": 1, "x": "y" * 300}
    return got


@pytest.mark.parametrize("name", ALL)
def test_both_directions_are_compressed(compressing_server: MockServer, name: str) -> None:
    conn = compressing_server.connect(compressors=[name])
    got = _find_one(compressing_server, conn)
    assert compressing_server.hellos[0].body["compression"] == [name]
    assert compressing_server.hellos[0].request.compressor_id is None  # hello: never
    assert got.request.compressor_id == COMPRESSOR_IDS[name]
    assert got.body["filter"] == {"_id": 1}
    assert conn.pool.get_socket().compressor.name == name  # type: ignore[union-attr]


def test_the_handshake_offers_the_client_s_order_and_uses_its_first_common(
    compressing_server: MockServer,
) -> None:
    conn = compressing_server.connect(
        f"mongodb://127.0.0.1:{compressing_server.address[1]}/?compressors=zstd,snappy,zlib"
    )
    assert compressing_server.hellos[0].body["compression"] == ["zstd", "snappy", "zlib"]
    got = _find_one(compressing_server, conn)
    assert got.request.compressor_id == COMPRESSOR_IDS["zstd"]


def test_nothing_in_common_means_no_compression(compressing_server: MockServer) -> None:
    compressing_server.hello["compression"] = ["snappy"]
    conn = compressing_server.connect(compressors="zlib")
    got = _find_one(compressing_server, conn)
    assert got.request.compressor_id is None


def test_a_reply_in_another_compressor_is_decoded(compressing_server: MockServer) -> None:
    conn = compressing_server.connect(compressors="zlib")
    got = _find_one(compressing_server, conn, reply_with="zstd")
    assert got.request.compressor_id == COMPRESSOR_IDS["zlib"]
    got = _find_one(compressing_server, conn, reply_with="noop")
    got = _find_one(compressing_server, conn, reply_with=None)  # and a plain one


class _CompressedHello(MockServer):
    def _answer_hello(self, request: Any) -> bool:
        if str(request.command_name).lower() in ("hello", "ismaster"):
            answer_compressed(request, "snappy")
        return super()._answer_hello(request)


def test_a_compressed_handshake_reply_is_decoded() -> None:
    with _CompressedHello(compression=["zlib"]) as server:
        conn = server.connect(compressors="zlib")
        assert conn.max_wire_version == 17
        _find_one(server, conn)


def test_authentication_commands_are_never_compressed(compressing_server: MockServer) -> None:
    uri = f"mongodb://alice:pw@127.0.0.1:{compressing_server.address[1]}/?compressors=zlib"
    future = compressing_server.run(compressing_server.connect, uri)
    got = compressing_server.receives("saslStart", db="admin")
    assert got.request.compressor_id is None
    got.error(18, "Authentication failed.")
    with pytest.raises(Exception, match="Authentication failed"):
        future.result(5)


def test_a_later_hello_on_a_compressing_socket_goes_uncompressed(
    compressing_server: MockServer,
) -> None:
    sock = network.connect(
        compressing_server.address, 5, 5, compression=CompressionSettings(["zlib"])
    )
    try:
        assert sock.compressor is not None and sock.compressor.name == "zlib"
        assert "compression" in compressing_server.hellos[0].body
        reply = sock.run_hello()
        assert reply["ok"] == 1
        later = compressing_server.hellos[1]
        assert later.request.compressor_id is None
        assert "compression" not in later.body  # handshake arguments only in the first
    finally:
        sock.close()


def test_the_monitor_offers_the_same_compressors(compressing_server: MockServer) -> None:
    checker = Checker(
        5, None, None, lambda address, reply: None, compression=CompressionSettings(ALL)
    )
    try:
        reply, _ = checker.check(compressing_server.address)
        assert reply["compression"] == ["zlib", "snappy", "zstd"]
        assert compressing_server.hellos[0].body["compression"] == ALL
    finally:
        checker.close()


class _Recorder(CommandListener, FrameListener):
    def __init__(self) -> None:
        self.commands: List[Dict[str, Any]] = []
        self.frames: List[bytes] = []

    def started(self, event: Any) -> None:
        self.commands.append(dict(event.command))

    def sent(self, event: Any) -> None:
        self.frames.append(event.data)


def test_command_events_show_the_uncompressed_command(compressing_server: MockServer) -> None:
    recorder = _Recorder()
    conn = compressing_server.connect(compressors="zstd", event_listeners=[recorder])
    _find_one(compressing_server, conn)
    assert recorder.commands[-1]["find"] == "c" and recorder.commands[-1]["filter"] == {"_id": 1}
    last = recorder.frames[-1]
    assert struct.unpack_from("<i", last, 12)[0] == OP_COMPRESSED  # frame events: the wire
    assert struct.unpack_from("<i", recorder.frames[0], 12)[0] == protocol.OP_QUERY  # hello


def test_inserts_go_compressed_with_their_document_sequence(compressing_server: MockServer) -> None:
    conn = compressing_server.connect(compressors="snappy")
    docs = [{"_id": i, "text": "lorem ipsum " * 20} for i in range(50)]
    future = compressing_server.run(conn.test.c.insert, docs)
    got = compressing_server.receives("insert")
    assert got.request.compressor_id == COMPRESSOR_IDS["snappy"]
    assert got.sequences["documents"] == docs
    assert len(got.request.wire_frame) * 3 < len(got.request.frame)
    got.reply(n=50)
    assert future.result(5) == list(range(50))


# -- through the proxy -------------------------------------------------------------------


def test_the_proxy_forwards_and_decodes_compressed_frames(compressing_server: MockServer) -> None:
    out = io.StringIO()
    with Proxy(("127.0.0.1", 0), compressing_server.address, out=out) as proxy:
        conn = Connection(
            f"mongodb://127.0.0.1:{proxy.port}/?compressors=zlib",
            auto_start_request=False,
            socketTimeoutMS=5000,
        )
        got = _find_one(compressing_server, conn)
        assert got.request.compressor_id == COMPRESSOR_IDS["zlib"]
        conn.close()
    text = out.getvalue()
    assert "client -> server  OP_COMPRESSED" in text
    assert "server -> client  OP_COMPRESSED" in text
    assert "compressorId: zlib(2)" in text
    assert "decompressed:" in text and '"find": "c"' in text
    assert '"firstBatch": [{"_id": 1' in text  # the reply, decompressed


# -- SecantusDB: lists no compressor -------------------------------------------------------


def test_secantus_lists_no_compressor_so_nothing_is_compressed(server: SecantusServer) -> None:
    recorder = _Recorder()
    conn = Connection(
        server.uri + "?compressors=zstd,snappy,zlib&zlibCompressionLevel=9",
        auto_start_request=False,
        event_listeners=[recorder],
    )
    try:
        conn.compression_test.c.drop()
        conn.compression_test.c.insert([{"_id": i, "s": "x" * 100} for i in range(20)])
        assert conn.compression_test.c.count() == 20
        sock = conn.pool.get_socket()
        assert sock.compressor is None
        conn.pool.return_socket(sock)
    finally:
        conn.close()
    opcodes = {struct.unpack_from("<i", data, 12)[0] for data in recorder.frames}
    assert OP_COMPRESSED not in opcodes and protocol.OP_MSG in opcodes
    hello = bson.decode(
        recorder.frames[0][struct.calcsize("<iiiii") + len(b"admin.$cmd\x00") + 8 :]
    )
    assert hello["compression"] == ALL


# -- the command-line tool -----------------------------------------------------------------


def test_the_cli_compresses_with_compressors_in_its_uri(compressing_server: MockServer) -> None:
    from cli_helpers import finish, json_documents, popen_cli

    target = f"mongodb://127.0.0.1:{compressing_server.address[1]}/?compressors=zstd"
    proc = popen_cli("cmd", target, '{"ping": 1}', "--trace")
    got = compressing_server.receives("ping", db="admin", timeout=20)
    assert got.request.compressor_id == COMPRESSOR_IDS["zstd"]
    got.reply()
    result = finish(proc)
    assert result.returncode == 0, result.stderr
    assert json_documents(result.stdout)[0]["ok"] == 1
    assert "client -> server  OP_COMPRESSED" in result.stderr
    assert "compressorId: zstd(3)" in result.stderr


class _CorruptingClient:
    """Sends each reply as an OP_COMPRESSED whose zlib stream is garbage."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock

    def sendall(self, data: bytes) -> None:
        _, request_id, response_to, op_code = struct.unpack_from("<iiii", data)
        body = b"\x78\x9cnot a zlib stream at all"
        head = struct.pack("<iiB", op_code, len(data) - 16, COMPRESSOR_IDS["zlib"])
        frame = struct.pack("<iiii", 25 + len(body), request_id, response_to, OP_COMPRESSED)
        self._sock.sendall(frame + head + body)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def test_a_corrupt_compressed_reply_is_a_protocol_error_and_loses_its_socket(
    compressing_server: MockServer,
) -> None:
    conn = compressing_server.connect(compressors="zlib")
    future = compressing_server.run(conn.test.c.find_one)
    got = compressing_server.receives("find")
    got.request._client = _CorruptingClient(got.request._client._sock)
    got.reply(cursor={"id": 0, "ns": "test.c", "firstBatch": []})
    with pytest.raises(ProtocolError, match="zlib data is corrupt"):
        future.result(5)
    assert conn.pool.open_count == 0  # the socket was closed and dropped
