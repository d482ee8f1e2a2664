"""Wire compression (the compression spec): options, negotiation, both directions on the wire.

Peers, and why each:

* none: the unit tests of ``Compressor`` (which frames go compressed, at what zlib level)
  check the bytes it makes with ``peer_frames`` (the compression libraries, ``struct``):
  the codec-independence tests.
* ``wireclient.mock.MockServer`` with compression, for what the client decides against a
  server that compresses: which commands go compressed (never hello or authentication),
  what the handshake and the monitor offer, the compressor chosen, command events, the
  proxy and the command-line tool, a corrupt reply, a checksummed reply. The mock is built
  on wireclient's codec, so no test here trusts it with bytes: each reads the client's
  frame as it arrived (``request.frame``) with ``peer_frames`` and answers with a frame
  ``peer_frames`` built and compressed (``request.reply_frame``).
* mockupdb (``mock_server``), where no compression is negotiated: an unknown compressor is
  not offered (mockupdb cannot read OP_COMPRESSED, and needs not here).
* SecantusDB, which lists no compressor (and refuses OP_COMPRESSED), so nothing may be
  compressed there.

The tests of a connection run on both clients (the ``flavour`` fixture, ``flavoured.py``):
the client's call runs beside the test (``flavour.go``: a thread, or a Task) while the test
waits for its frame off the loop (``server.receives_async``) and answers it.
"""

from __future__ import annotations

import io
import struct
import sys
from typing import Any, Awaitable, Callable, Dict, Iterator, List, Optional

import bson
import pytest
from flavoured import FLAVOURS, Flavour, got
from mock_server import MockServer as MockupDBServer
from peer_frames import (
    CHECKSUM_PRESENT,
    COMPRESSOR_IDS,
    OP_COMPRESSED,
    OP_MSG,
    OP_QUERY,
    OP_REPLY,
    checksum_verified,
    compress_frame,
    msg_flags,
    op_msg_frame,
    op_reply_frame,
    opcode_of,
    sent_doc,
    unwrap,
    wire_compressor,
)
from servers import SecantusServer

from wireclient import AsyncConnection, Connection, protocol
from wireclient.engine.checker import Checker
from wireclient.errors import ConfigurationError, ProtocolError
from wireclient.mock import Matcher, MockServer, Request, reply_frame
from wireclient.monitoring import CommandListener, FrameListener
from wireclient.toolkit.proxy import Proxy
from wireclient.transport import network
from wireclient.transport.blocking import run
from wireclient.transport.compressors import (
    NEVER_COMPRESSED,
    CompressionSettings,
    Compressor,
    command_name,
    settings_from_options,
)

ALL = ["zstd", "snappy", "zlib"]
TIMEOUT = 5


@pytest.fixture(params=FLAVOURS)
def flavour(request: Any) -> Flavour:
    """The blocking client, then the asyncio one (``flavoured.py``)."""
    return Flavour(request.param)


Connect = Callable[..., Awaitable[Any]]


def run_with(flavour: Flavour, body: Callable[[Connect], Awaitable[None]]) -> None:
    """``await body(connect)`` on the flavour's loop: ``await connect(server_or_uri,
    **options)`` opens a connection of the flavour, closed after the body."""

    async def main() -> None:
        made: List[Any] = []

        async def connect(target: Any, **options: Any) -> Any:
            uri = target if isinstance(target, str) else target.uri
            options.setdefault("auto_start_request", False)
            options.setdefault("socketTimeoutMS", TIMEOUT * 1000)
            options.setdefault("connectTimeoutMS", TIMEOUT * 1000)
            conn = await flavour.open(Connection, AsyncConnection, uri, **options)
            made.append(conn)
            return conn

        try:
            await body(connect)
        finally:
            for conn in made:
                await got(conn.close())

    flavour.run(main)


def frame_of(spec: Dict[str, Any], op_query: bool = False) -> bytes:
    if op_query:
        return protocol.encode(protocol.OpQuery("admin.$cmd", spec, number_to_return=-1), 7)
    return protocol.encode(protocol.OpMsg(spec), 7)


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


def test_unknown_compressors_warn_and_are_not_offered(flavour: Flavour) -> None:
    async def body(connect: Connect) -> None:
        with MockupDBServer() as server:
            with pytest.warns(UserWarning, match="unknown compressor 'lz4'"):
                await connect(server.uri, compressors="lz4")
            assert "compression" not in server.hellos[0].body

    run_with(flavour, body)


# -- against the mock, which compresses (frames checked and built by peer_frames) -----------


@pytest.fixture()
def compressing_server() -> Iterator[MockServer]:
    with MockServer(max_wire_version=17, compression=["zlib", "snappy", "zstd"]) as server:
        yield server


def hellos(server: MockServer) -> List[Request]:
    return [r for r in server.requests if (r.command_name or "").lower() in ("hello", "ismaster")]


def answer(request: Request, doc: Dict[str, Any], compressor: Optional[str] = "same") -> None:
    """Answer ``request`` with ``doc`` in an OP_MSG built by peer_frames, compressed as the
    request was (``"same"``), with another compressor, or not at all (None)."""
    frame = op_msg_frame(doc, 900 + request.request_id, request.request_id)
    name = wire_compressor(request.frame) if compressor == "same" else compressor
    request.reply_frame(frame if name is None else compress_frame(frame, COMPRESSOR_IDS[name]))


FOUND = {"cursor": {"id": 0, "ns": "test.c", "firstBatch": [{"_id": 1, "x": "y" * 300}]}, "ok": 1}


async def _find_one(
    flavour: Flavour, server: MockServer, conn: Any, reply_with: Optional[str] = "same"
) -> Request:
    future = flavour.go(conn.test.c.find_one, {"_id": 1})
    request = await server.receives_async("find")
    assert sent_doc(request.frame)["filter"] == {"_id": 1}
    answer(request, FOUND, reply_with)
    assert await future == {"_id": 1, "x": "y" * 300}
    return request


@pytest.mark.parametrize("name", ALL)
def test_both_directions_are_compressed(
    compressing_server: MockServer, flavour: Flavour, name: str
) -> None:
    async def body(connect: Connect) -> None:
        conn = await connect(compressing_server, compressors=[name])
        request = await _find_one(flavour, compressing_server, conn)
        first = hellos(compressing_server)[0]
        assert sent_doc(first.frame)["compression"] == [name]
        assert wire_compressor(first.frame) is None  # hello: never
        assert wire_compressor(request.frame) == name
        sock = await flavour.steps(conn.pool.checkout())
        assert sock.compressor.name == name
        conn.pool.return_socket(sock)

    run_with(flavour, body)


def test_the_handshake_offers_the_client_s_order_and_uses_its_first_common(
    compressing_server: MockServer, flavour: Flavour
) -> None:
    async def body(connect: Connect) -> None:
        conn = await connect(f"{compressing_server.uri}/?compressors=zstd,snappy,zlib")
        assert sent_doc(hellos(compressing_server)[0].frame)["compression"] == [
            "zstd",
            "snappy",
            "zlib",
        ]
        request = await _find_one(flavour, compressing_server, conn)
        assert wire_compressor(request.frame) == "zstd"

    run_with(flavour, body)


def test_nothing_in_common_means_no_compression(flavour: Flavour) -> None:
    async def body(connect: Connect) -> None:
        with MockServer(max_wire_version=17, compression=["snappy"]) as server:
            conn = await connect(server, compressors="zlib")
            request = await _find_one(flavour, server, conn)
            assert wire_compressor(request.frame) is None
            await got(conn.close())

    run_with(flavour, body)


def test_a_reply_in_another_compressor_is_decoded(
    compressing_server: MockServer, flavour: Flavour
) -> None:
    async def body(connect: Connect) -> None:
        conn = await connect(compressing_server, compressors="zlib")
        request = await _find_one(flavour, compressing_server, conn, reply_with="zstd")
        assert wire_compressor(request.frame) == "zlib"
        await _find_one(flavour, compressing_server, conn, reply_with="noop")
        await _find_one(flavour, compressing_server, conn, reply_with=None)  # and a plain one

    run_with(flavour, body)


HELLO = {
    "ok": 1,
    "isWritablePrimary": True,
    "ismaster": True,
    "helloOk": True,
    "maxWireVersion": 17,
    "minWireVersion": 0,
    "maxBsonObjectSize": 16 * 1024 * 1024,
    "maxMessageSizeBytes": 48_000_000,
    "maxWriteBatchSize": 100_000,
    "connectionId": 1,
    "compression": ["zlib"],
}


def _snappy_hello(request: Request) -> Any:
    """Every hello answered in OP_COMPRESSED/snappy, built by peer_frames."""
    if (request.command_name or "").lower() not in ("hello", "ismaster"):
        return None
    rid = 900 + request.request_id
    if opcode_of(unwrap(request.frame)) == OP_QUERY:
        plain = op_reply_frame([HELLO], rid, request.request_id)
    else:
        plain = op_msg_frame(HELLO, rid, request.request_id)
    return reply_frame(compress_frame(plain, COMPRESSOR_IDS["snappy"]))


def test_a_compressed_handshake_reply_is_decoded(flavour: Flavour) -> None:
    async def body(connect: Connect) -> None:
        with MockServer(max_wire_version=17, compression=["zlib"]) as server:
            server.autoresponds(Matcher(predicate=lambda r: True), _snappy_hello)
            conn = await connect(server, compressors="zlib")
            assert conn.max_wire_version == 17
            await _find_one(flavour, server, conn)
            await got(conn.close())

    run_with(flavour, body)


def test_authentication_commands_are_never_compressed(
    compressing_server: MockServer, flavour: Flavour
) -> None:
    async def body(connect: Connect) -> None:
        uri = f"mongodb://alice:pw@{compressing_server.address_string}/?compressors=zlib"
        future = flavour.go(connect, uri)
        request = await compressing_server.receives_async(Matcher("saslStart", database="admin"))
        assert wire_compressor(request.frame) is None
        assert sent_doc(request.frame)["saslStart"] == 1
        request.fail(18, "Authentication failed.")
        with pytest.raises(Exception, match="Authentication failed"):
            await future

    run_with(flavour, body)


def test_a_later_hello_on_a_compressing_socket_goes_uncompressed(
    compressing_server: MockServer,
) -> None:
    sock = run(
        network.connect(compressing_server.address, 5, 5, compression=CompressionSettings(["zlib"]))
    )
    try:
        assert sock.compressor is not None and sock.compressor.name == "zlib"
        assert "compression" in sent_doc(hellos(compressing_server)[0].frame)
        reply = run(sock.run_hello())
        assert reply["ok"] == 1
        later = hellos(compressing_server)[1]
        assert wire_compressor(later.frame) is None
        assert "compression" not in sent_doc(later.frame)  # handshake arguments: first only
    finally:
        sock.close()


def test_the_monitor_offers_the_same_compressors(compressing_server: MockServer) -> None:
    checker = Checker(
        5, None, None, lambda address, reply: None, compression=CompressionSettings(ALL)
    )
    try:
        reply, _ = run(checker.check(compressing_server.address))
        assert reply["compression"] == ALL  # the server's answer: all, in the client's order
        assert sent_doc(hellos(compressing_server)[0].frame)["compression"] == ALL
    finally:
        checker.close()


class _Recorder(CommandListener, FrameListener):
    def __init__(self) -> None:
        self.commands: List[Dict[str, Any]] = []
        self.frames: List[bytes] = []
        self.received_frames: List[bytes] = []

    def started(self, event: Any) -> None:
        self.commands.append(dict(event.command))

    def sent(self, event: Any) -> None:
        self.frames.append(event.data)

    def received(self, event: Any) -> None:
        self.received_frames.append(event.data)


def test_command_events_show_the_uncompressed_command(
    compressing_server: MockServer, flavour: Flavour
) -> None:
    recorder = _Recorder()

    async def body(connect: Connect) -> None:
        conn = await connect(compressing_server, compressors="zstd", event_listeners=[recorder])
        await _find_one(flavour, compressing_server, conn)

    run_with(flavour, body)
    find = [c for c in recorder.commands if "find" in c][-1]
    assert find["find"] == "c" and find["filter"] == {"_id": 1}
    compressed = [f for f in recorder.frames if opcode_of(f) == OP_COMPRESSED]
    assert len(compressed) == 1  # frame events: the wire (the find; the hello is not)
    assert opcode_of(recorder.frames[0]) == OP_QUERY  # hello


def test_inserts_go_compressed_with_their_document_sequence(
    compressing_server: MockServer, flavour: Flavour
) -> None:
    from mock_server import parse_op_msg

    async def body(connect: Connect) -> None:
        conn = await connect(compressing_server, compressors="snappy")
        docs = [{"_id": i, "text": "lorem ipsum " * 20} for i in range(50)]
        future = flavour.go(conn.test.c.insert, docs)
        request = await compressing_server.receives_async("insert")
        assert wire_compressor(request.frame) == "snappy"
        plain = unwrap(request.frame)
        assert parse_op_msg(plain)[2]["documents"] == docs
        assert len(request.frame) * 3 < len(plain)
        answer(request, {"n": 50, "ok": 1})
        assert await future == list(range(50))

    run_with(flavour, body)


def test_a_checksummed_reply_on_a_compressing_socket_is_read_and_nothing_sent_has_one(
    flavour: Flavour,
) -> None:
    """A checksummed OP_MSG is never compressed (its CRC covers a header OP_COMPRESSED
    replaces), so a server that checksums answers a compressed request plainly; the client
    verifies the CRC and keeps compressing. wireclient never checksums what it sends."""
    recorder = _Recorder()

    async def body(connect: Connect) -> None:
        with MockServer(max_wire_version=17, compression=["zlib"], checksums=True) as server:
            conn = await connect(server, compressors="zlib", event_listeners=[recorder])
            for _ in range(2):
                future = flavour.go(conn.test.c.find_one, {"_id": 1})
                request = await server.receives_async("find")
                assert wire_compressor(request.frame) == "zlib"
                assert not msg_flags(request.frame) & CHECKSUM_PRESENT
                request.reply(FOUND)  # the mock's own reply: plain, with a CRC-32C
                assert await future == {"_id": 1, "x": "y" * 300}
            await got(conn.close())

    run_with(flavour, body)
    replies = [
        f for f in recorder.received_frames if opcode_of(f) != OP_REPLY
    ]  # not the first hello
    assert len(replies) >= 2
    for frame in replies:
        assert wire_compressor(frame) is None and checksum_verified(frame)
    sent = [unwrap(f) for f in recorder.frames if opcode_of(unwrap(f)) == OP_MSG]
    assert sent and all(not msg_flags(f) & CHECKSUM_PRESENT for f in sent)


def test_a_bad_checksum_in_a_reply_loses_the_socket(
    compressing_server: MockServer, flavour: Flavour
) -> None:
    async def body(connect: Connect) -> None:
        conn = await connect(compressing_server, compressors="zlib")
        future = flavour.go(conn.test.c.find_one)
        request = await compressing_server.receives_async("find")
        request.reply_frame(op_msg_frame(FOUND, 901, request.request_id, bad_checksum=True))
        with pytest.raises(ProtocolError, match="checksum mismatch"):
            await future
        assert conn.pool.open_count == 0
        again = await _find_one(flavour, compressing_server, conn)  # a new socket
        assert wire_compressor(again.frame) == "zlib"  # compressed again

    run_with(flavour, body)


# -- through the proxy -------------------------------------------------------------------


def test_the_proxy_forwards_and_decodes_compressed_frames(
    compressing_server: MockServer, flavour: Flavour
) -> None:
    out = io.StringIO()

    async def body(connect: Connect) -> None:
        with Proxy(("127.0.0.1", 0), compressing_server.address, out=out) as proxy:
            conn = await connect(f"mongodb://127.0.0.1:{proxy.port}/?compressors=zlib")
            request = await _find_one(flavour, compressing_server, conn)
            assert wire_compressor(request.frame) == "zlib"
            await got(conn.close())

    run_with(flavour, body)
    text = out.getvalue()
    assert "client -> server  OP_COMPRESSED" in text
    assert "server -> client  OP_COMPRESSED" in text
    assert "compressorId: zlib(2)" in text
    assert "decompressed:" in text and '"find": "c"' in text
    assert '"firstBatch": [{"_id": 1' in text  # the reply, decompressed


# -- SecantusDB: lists no compressor -------------------------------------------------------


def test_secantus_lists_no_compressor_so_nothing_is_compressed(
    server: SecantusServer, flavour: Flavour
) -> None:
    recorder = _Recorder()
    coll_name = f"c_{flavour}"

    async def body(connect: Connect) -> None:
        conn = await connect(
            server.uri + "?compressors=zstd,snappy,zlib&zlibCompressionLevel=9",
            event_listeners=[recorder],
        )
        coll = conn.compression_test[coll_name]
        await got(coll.drop())
        await got(coll.insert([{"_id": i, "s": "x" * 100} for i in range(20)]))
        assert await got(coll.count()) == 20
        sock = await flavour.steps(conn.pool.checkout())
        assert sock.compressor is None
        conn.pool.return_socket(sock)

    run_with(flavour, body)
    opcodes = {struct.unpack_from("<i", data, 12)[0] for data in recorder.frames}
    assert OP_COMPRESSED not in opcodes and protocol.OP_MSG in opcodes
    hello = bson.decode(
        recorder.frames[0][struct.calcsize("<iiiii") + len(b"admin.$cmd\x00") + 8 :]
    )
    assert hello["compression"] == ALL


# -- the command-line tool -----------------------------------------------------------------


def test_the_cli_compresses_with_compressors_in_its_uri(compressing_server: MockServer) -> None:
    from cli_helpers import finish, json_documents, popen_cli

    proc = popen_cli("cmd", f"{compressing_server.uri}/?compressors=zstd", '{"ping": 1}', "--trace")
    got = compressing_server.receives(Matcher("ping", database="admin"), timeout=20)
    assert wire_compressor(got.frame) == "zstd"
    answer(got, {"ok": 1})
    result = finish(proc)
    assert result.returncode == 0, result.stderr
    assert json_documents(result.stdout)[0]["ok"] == 1
    assert "client -> server  OP_COMPRESSED" in result.stderr
    assert "compressorId: zstd(3)" in result.stderr


def test_a_corrupt_compressed_reply_is_a_protocol_error_and_loses_its_socket(
    compressing_server: MockServer, flavour: Flavour
) -> None:
    async def body(connect: Connect) -> None:
        conn = await connect(compressing_server, compressors="zlib")
        future = flavour.go(conn.test.c.find_one)
        request = await compressing_server.receives_async("find")
        plain = op_msg_frame(FOUND, 901, request.request_id)
        garbage = b"\x78\x9cnot a zlib stream at all"  # a zlib header, then garbage
        head = struct.pack("<iiB", 2013, len(plain) - 16, COMPRESSOR_IDS["zlib"])
        header = struct.pack("<iiii", 25 + len(garbage), 901, request.request_id, OP_COMPRESSED)
        request.reply_frame(header + head + garbage)
        with pytest.raises(ProtocolError, match="zlib data is corrupt"):
            await future
        assert conn.pool.open_count == 0  # the socket was closed and dropped

    run_with(flavour, body)
