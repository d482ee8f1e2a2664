"""examples/tiny_server.py, the server of docs/protocol-testing.md, really serves clients:
wireclient's Connection, pymongo, and the wireclient command line."""

from __future__ import annotations

import importlib.util
import os
import select
import subprocess
import sys
from typing import Any, Iterator

import pymongo
import pytest
from cli_helpers import ENV, json_documents, run_cli, sent_frames

from wireclient import Connection, protocol
from wireclient.errors import OperationFailure
from wireclient.transport.blocking import run

PATH = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "examples",
    "tiny_server.py",
)


def load() -> Any:
    spec = importlib.util.spec_from_file_location("tiny_server", PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def tiny() -> Iterator[str]:
    """The tiny server in this process (the mock's threads); yields its host:port."""
    module = load()
    with module.serve() as server:
        yield server.address_string


def test_connection_talks_to_it(tiny: str) -> None:
    conn = Connection(f"mongodb://{tiny}", auto_start_request=False)
    assert conn.admin.command("ping") == {"ok": 1.0}
    assert conn.server_info()["versionArray"] == [0, 0, 1, 0]
    sock = run(conn.pool.checkout())
    host, port = sock.sock.getsockname()
    assert run(sock.command("admin", {"whatsmyuri": 1}))["you"] == f"{host}:{port}"
    assert sock.max_wire_version == 17
    conn.pool.return_socket(sock)
    with pytest.raises(OperationFailure) as info:
        conn.test.command("count", "things")
    assert info.value.code == 59
    # a fire-and-forget write gets no reply (moreToCome), and the socket stays in step
    conn.test.things.insert({"x": 1}, safe=False)
    assert conn.admin.command("ping") == {"ok": 1.0}
    assert conn.pool.open_count == 1
    conn.close()


def test_pymongo_talks_to_it(tiny: str) -> None:
    client = pymongo.MongoClient(
        f"mongodb://{tiny}/?directConnection=true", serverSelectionTimeoutMS=5000
    )
    try:
        assert client.admin.command("ping")["ok"] == 1.0
        assert client.server_info()["version"] == "0.0.1"
    finally:
        client.close()


def test_the_mock_answers_hello_and_the_example_the_rest(tiny: str) -> None:
    reply = run_cli("cmd", tiny, '{"hello": 1}')
    assert json_documents(reply.stdout)[0]["maxWireVersion"] == 17
    reply = run_cli("cmd", tiny, '{"whatsmyuri": 1}')
    assert json_documents(reply.stdout)[0]["you"].startswith("127.0.0.1:")


def test_it_hangs_up_on_bad_frames_and_legacy_opcodes(tiny: str) -> None:
    ping = protocol.encode(protocol.OpMsg({"ping": 1, "$db": "admin"}), request_id=3)
    insert = protocol.encode(protocol.OpInsert("db.c", [{"x": 1}]), request_id=4)
    for data in (ping[:12] + b"\x39\x05\x00\x00" + ping[16:], insert):
        result = run_cli("send", tiny, "-", "--timeout", "5", input=data)
        assert result.stdout.strip().splitlines()[-1].startswith("closed: "), result.stdout
    result = run_cli("send", tiny, "-", input=ping)
    assert result.returncode == 0 and "responseTo=3" in result.stdout


def test_the_script_with_the_command_line() -> None:
    proc = subprocess.Popen([sys.executable, PATH, "0"], stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        assert ready, "the tiny server printed nothing in 20 s"
        line = proc.stdout.readline()  # the script prints it once it listens
        assert line.startswith("tiny server listening on port ")
        port = line.split()[-1]
        result = run_cli("ping", f"127.0.0.1:{port}", "--trace")
        assert result.returncode == 0, result.stderr
        assert json_documents(result.stdout) == [{"ok": 1.0}]
        kinds = [h.split()[3] for h in sent_frames(result.stderr)]
        assert kinds == ["OP_QUERY", "OP_REPLY", "OP_MSG", "OP_MSG"]
        result = run_cli("cmd", f"127.0.0.1:{port}", '{"frobnicate": 1}')
        assert result.returncode == 1
        assert json_documents(result.stdout)[0]["errmsg"] == "no such command: 'frobnicate'"
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_the_toolkit_demo_runs(server: Any) -> None:
    """examples/toolkit_demo.py, the second half of `make demo`, on the session server."""
    demo = os.path.join(os.path.dirname(PATH), "toolkit_demo.py")
    out = subprocess.run(
        [sys.executable, demo],
        env={**ENV, "WIRECLIENT_URI": server.uri},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    heads = sent_frames(out.stdout)
    assert [h.split()[3] for h in heads] == ["OP_QUERY", "OP_REPLY", "OP_MSG", "OP_MSG"]
    assert "frame 1 @0  OP_MSG  messageLength=113 requestID=42" in out.stdout
    assert "section kind 1 'documents' (2 documents):" in out.stdout


@pytest.mark.parametrize("trace", [False, True])
def test_the_command_line_over_a_unix_socket(tmp_path: Any, trace: bool) -> None:
    module = load()
    path = str(tmp_path / "tiny.sock")
    server = module.serve(host=path)
    try:
        uri = server.uri
        result = run_cli("ping", uri, *(["--trace"] if trace else []))
        assert result.returncode == 0, result.stderr
        assert json_documents(result.stdout) == [{"ok": 1.0}]
        assert ("client -> server  OP_QUERY" in result.stderr) is trace
    finally:
        server.close()
