"""``python -m wireclient``: ping and cmd (with --trace, --op-query, --flags, --sequence),
help, and every exit status, run as a real subprocess against SecantusDB and mockupdb.

send and decode: test_cli_send_decode.py; the proxy: test_proxy.py.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
from typing import Any, Iterator, Tuple

import pytest
from cli_helpers import (  # noqa: F401  (mock_fixture: the "mock" fixture)
    ENV,
    finish,
    json_documents,
    mock_fixture,
    one_line_error,
    popen_cli,
    run_cli,
    sent_frames,
)
from mockupdb import MockupDB
from servers import SecantusServer, secantus_with_auth

from wireclient import Connection

SUBCOMMANDS = ["ping", "cmd", "send", "decode", "proxy", "replay", "affinity"]


def test_the_subprocess_runs_this_tree() -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import wireclient.toolkit.cli; print(wireclient.toolkit.cli.__file__)",
        ],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=tempfile.gettempdir(),
        timeout=60,
    )
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.stdout.strip() == os.path.join(here, "wireclient", "toolkit", "cli.py")


def test_the_console_script_is_declared(capsys: pytest.CaptureFixture[str]) -> None:
    import configparser

    from wireclient import __version__
    from wireclient.toolkit import cli

    config = configparser.ConfigParser()
    config.read(
        os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "setup.cfg")
    )
    scripts = config["options.entry_points"]["console_scripts"].strip().splitlines()
    assert [s.strip() for s in scripts] == ["wireclient = wireclient.toolkit.cli:main"]
    assert cli.main(["--version"]) == 0  # what the script calls, and exits with
    assert capsys.readouterr().out == f"wireclient {__version__}\n"


# -- help and usage ------------------------------------------------------------------------


@pytest.mark.parametrize("subcommand", SUBCOMMANDS)
def test_every_subcommand_has_help(subcommand: str) -> None:
    result = run_cli(subcommand, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: wireclient {subcommand}")
    assert "--help" in result.stdout


def test_top_level_help_lists_subcommands_and_exit_statuses() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for name in SUBCOMMANDS:
        assert name in result.stdout
    assert "exit status" in result.stdout
    assert run_cli("--version").stdout.startswith("wireclient ")


@pytest.mark.parametrize(
    "args",
    [
        [],  # no subcommand
        ["frobnicate"],
        ["ping"],  # no URI
        ["cmd", "mongodb://127.0.0.1:1"],  # no command
        ["ping", "mongodb://127.0.0.1:1", "--timeout", "soon"],
        ["send", "127.0.0.1:1"],  # no FILE
        ["proxy", "--listen", "127.0.0.1:0"],  # no --upstream
    ],
)
def test_argument_errors_exit_2(args: list[str]) -> None:
    result = run_cli(*args)
    assert result.returncode == 2, result
    assert "usage:" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args, needle",
    [
        (["cmd", "127.0.0.1:1", '{"count": '], "not Extended JSON"),
        (["cmd", "127.0.0.1:1", "[1, 2]"], "must be a JSON object"),
        (["cmd", "127.0.0.1:1", "{}"], "empty"),
        (["cmd", "127.0.0.1:1", '{"x": {"$oid": "nothex"}}'], "not Extended JSON"),
        (["ping", "http://127.0.0.1:1"], "mongodb://"),
        (["ping", "mongodb://127.0.0.1:1/?noSuchOption=1"], "noSuchOption"),
        (["ping", "mongodb://127.0.0.1:99999"], "port"),
        (["ping", "mongodb://a:1,b:2"], "one server"),
        (["ping", "mongodb+srv://example.com"], "mongodb+srv"),
        (["ping", "mongodb://user@127.0.0.1:1"], "password"),
        (["ping", "127.0.0.1:1", "--timeout", "0"], "--timeout"),
        (["cmd", "127.0.0.1:1", '{"ping": 1}', "--flags", "bogus"], "bogus"),
        (["cmd", "127.0.0.1:1", '{"a": 1}', "--op-query", "--flags", "moreToCome"], "moreToCome"),
        (["cmd", "127.0.0.1:1", '{"ping": 1}', "--flags", "0x1ffffffff"], "flags"),
        (["cmd", "127.0.0.1:1", '{"ping": 1}', "--sequence", "documents"], "NAME=FILE"),
        (["cmd", "127.0.0.1:1", '{"ping": 1}', "--sequence", "d=/no/such/file"], "cannot read"),
    ],
)
def test_usage_errors_exit_2_with_one_line_before_any_connection(
    args: list[str], needle: str
) -> None:
    # port 1 is never listened on: a usage error must be found before connecting
    result = run_cli(*args)
    assert result.returncode == 2, result
    one_line_error(result, needle)
    assert result.stdout == ""


# -- ping and cmd against SecantusDB -------------------------------------------------------


def test_ping(server: SecantusServer) -> None:
    result = run_cli("ping", server.uri)
    assert result.returncode == 0, result.stderr
    [reply] = json_documents(result.stdout)
    assert reply["ok"] == 1.0
    assert result.stderr == ""
    assert "\n  " in result.stdout  # indented


def test_ping_takes_host_port(server: SecantusServer) -> None:
    result = run_cli("ping", server.address)
    assert result.returncode == 0, result.stderr
    assert json_documents(result.stdout)[0]["ok"] == 1.0


def test_trace_shows_every_frame_of_the_connection(server: SecantusServer) -> None:
    result = run_cli("ping", server.uri, "--trace")
    assert result.returncode == 0, result.stderr
    heads = sent_frames(result.stderr)
    assert [h.split()[3] for h in heads] == ["OP_QUERY", "OP_REPLY", "OP_MSG", "OP_MSG"]
    assert [h.split()[0] for h in heads] == ["client", "server", "client", "server"]
    hello, hello_reply_, ping, pong = heads
    assert "opCode=2004" in hello and "responseTo=0" in hello
    request_id = hello.split("requestID=")[1].split()[0]
    assert f"responseTo={request_id}" in hello_reply_
    assert "fullCollectionName: admin.$cmd" in result.stderr
    assert '"helloOk": true' in result.stderr
    assert '"maxWireVersion": ' in result.stderr  # the server's hello reply, as JSON
    assert 'section kind 0 body: {"ping": 1, "$db": "admin"}' in result.stderr
    assert "flagBits: 0x00000000 (none)" in result.stderr
    assert "00000000  " not in result.stderr  # no hex dump unless asked
    # stdout holds the reply alone
    assert json_documents(result.stdout)[0]["ok"] == 1.0


def test_trace_hex_dumps_each_frame(server: SecantusServer) -> None:
    result = run_cli("ping", server.uri, "--trace", "--hex")
    assert result.returncode == 0, result.stderr
    ping = result.stderr.split('section kind 0 body: {"ping": 1, "$db": "admin"}\n')[1]
    first = ping.splitlines()[0]
    # messageLength 51 = 0x33, then the requestID; opCode 2013 = dd 07
    assert first.startswith("    00000000  33 00 00 00 ")
    assert "dd 07 00 00" in first


def test_cmd_with_document_sequences_and_checksum(server: SecantusServer, tmp_path: Any) -> None:
    lines = tmp_path / "docs.jsonl"
    lines.write_text('{"_id": 1, "when": {"$date": "2020-01-02T03:04:05Z"}}\n\n{"_id": 2}\n')
    array = tmp_path / "more.json"
    array.write_text('[{"_id": 3}, {"_id": {"$numberLong": "4"}}]')
    db = "cli_seq"
    Connection(server.uri).drop_database(db)
    result = run_cli(
        "cmd", server.uri, '{"insert": "c"}', "--db", db,
        "--sequence", f"documents={lines}", "--flags", "checksumPresent", "--trace",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json_documents(result.stdout)[0]["n"] == 2
    assert "section kind 1 'documents' (2 documents):" in result.stderr
    assert '{"_id": 1, "when": {"$date": "2020-01-02T03:04:05Z"}}' in result.stderr
    assert "flagBits: 0x00000001 checksumPresent" in result.stderr
    assert "checksum: 0x" in result.stderr
    result = run_cli(
        "cmd", server.uri, '{"insert": "c"}', "--db", db, "--sequence", f"documents={array}"
    )
    assert json_documents(result.stdout)[0]["n"] == 2
    result = run_cli("cmd", f"{server.uri}{db}", '{"count": "c"}')  # the URI's database
    assert json_documents(result.stdout)[0]["n"] == 4


def test_cmd_sequence_from_stdin(server: SecantusServer) -> None:
    db = "cli_stdin"
    Connection(server.uri).drop_database(db)
    result = run_cli(
        "cmd", server.uri, '{"insert": "c"}', "--db", db, "--sequence", "documents=-",
        input=b'{"_id": 1}\n{"_id": 2}\n{"_id": 3}\n',
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json_documents(result.stdout)[0]["n"] == 3


def test_server_error_reply_exits_1_and_prints_it(server: SecantusServer) -> None:
    result = run_cli("cmd", server.uri, '{"noSuchCommand": 1}')
    assert result.returncode == 1
    [reply] = json_documents(result.stdout)
    assert reply["ok"] == 0 and reply["code"] == 59
    assert result.stderr == ""


def test_op_query_sends_the_command_on_db_dollar_cmd(server: SecantusServer) -> None:
    conn = Connection(server.uri)
    conn.cli_opq.c.insert([{"_id": 1}, {"_id": 2}])
    result = run_cli(
        "cmd", server.uri, '{"count": "c"}', "--db", "cli_opq", "--op-query", "--trace"
    )
    assert result.returncode == 0, result.stderr
    assert json_documents(result.stdout)[0]["n"] == 2
    heads = sent_frames(result.stderr)
    assert [h.split()[3] for h in heads[2:]] == ["OP_QUERY", "OP_REPLY"]
    assert "fullCollectionName: cli_opq.$cmd" in result.stderr
    assert 'query: {"count": "c"}' in result.stderr  # no $db in an OP_QUERY command
    result = run_cli("cmd", server.uri, '{"nope": 1}', "--op-query")
    assert result.returncode == 1
    assert json_documents(result.stdout)[0]["code"] == 59


def test_more_to_come_reads_no_reply(server: SecantusServer) -> None:
    db = "cli_mtc"
    Connection(server.uri).drop_database(db)
    result = run_cli(
        "cmd", server.uri, '{"insert": "c", "documents": [{"_id": 1}], "writeConcern": {"w": 0}}',
        "--db", db, "--flags", "moreToCome", "--trace",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "moreToCome" in result.stderr
    heads = sent_frames(result.stderr)
    assert heads[-1].startswith("client -> server  OP_MSG")  # nothing read after it
    assert "flagBits: 0x00000002 moreToCome" in result.stderr
    # the write really went
    assert Connection(server.uri)[db].c.find_one() == {"_id": 1}


def test_exhaust_allowed_flag_is_sent(server: SecantusServer) -> None:
    result = run_cli("cmd", server.uri, '{"ping": 1}', "--flags", "exhaustAllowed", "--trace")
    assert result.returncode == 0, result.stderr
    assert "flagBits: 0x00010000 exhaustAllowed" in result.stderr


def test_unknown_required_flag_bit_as_a_number(server: SecantusServer) -> None:
    result = run_cli("cmd", server.uri, '{"ping": 1}', "--flags", "0x4", "--trace")
    # the trace names the bit and says the frame breaks the protocol (bit 2 is required)
    sent = result.stderr.split("client -> server  OP_MSG")[1]
    assert "does not decode: OP_MSG flagBits 0x00000004 set unknown required bits" in sent
    assert "    00000010  04 00 00 00 " in sent  # the flagBits, in the hex dump
    # the reply after it is still framed and decoded
    assert "server -> client  OP_MSG" in result.stderr
    # SecantusDB 0.7.0b3 ignores the unknown required bit and answers (the OP_MSG spec
    # says a peer must refuse it); should it start refusing, this exit status turns 1.
    assert result.returncode == 0, result.stdout


# -- network failures: exit 1, one line ----------------------------------------------------


def test_connection_refused_exits_1() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused
        result = run_cli("ping", f"127.0.0.1:{port}")
    assert result.returncode == 1
    one_line_error(result, "AutoReconnect")


def test_silent_server_times_out_with_exit_1() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # accepts the connection (backlog), never answers
        port = listener.getsockname()[1]
        result = run_cli("ping", f"127.0.0.1:{port}", "--timeout", "0.5")
    assert result.returncode == 1
    one_line_error(result, "NetworkTimeout", "timed out")


def test_server_hanging_up_on_the_command(mock: MockupDB) -> None:
    proc = popen_cli("cmd", f"127.0.0.1:{mock.port}", '{"ping": 1}', "--trace")
    mock.receives("ping", timeout=20).hangup()
    result = finish(proc)
    assert result.returncode == 1
    assert "AutoReconnect" in result.stderr.splitlines()[-1]
    assert "Traceback" not in result.stderr


# -- legacy OP_QUERY on a collection, which SecantusDB answers as a command -----------------


def test_op_query_on_a_collection_namespace(mock: MockupDB) -> None:
    query = '{"x": {"$gt": 1}}'
    proc = popen_cli("cmd", f"127.0.0.1:{mock.port}", query, "--namespace", "db.things")
    request = mock.receives(timeout=20)
    assert request.namespace == "db.things"
    assert dict(request.doc) == {"x": {"$gt": 1}}
    request.replies({"_id": 1, "x": 2}, {"_id": 2, "x": 3})
    result = finish(proc)
    assert result.returncode == 0, result.stderr
    assert json_documents(result.stdout) == [[{"_id": 1, "x": 2}, {"_id": 2, "x": 3}]]


def test_query_failure_reply_exits_1(mock: MockupDB) -> None:
    import mockupdb

    proc = popen_cli("cmd", f"127.0.0.1:{mock.port}", '{"$bad": 1}', "--namespace", "db.things")
    request = mock.receives(timeout=20)
    request.replies(mockupdb.OpReply({"$err": "bad query", "code": 2}, flags=2))
    result = finish(proc)
    assert result.returncode == 1
    assert json_documents(result.stdout) == [[{"$err": "bad query", "code": 2}]]


# -- authentication ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def auth_server() -> Iterator[SecantusServer]:
    def setup(conn: Connection) -> None:
        conn.admin.command("createUser", "cli", pwd="cli-pw", roles=["root"])

    with secantus_with_auth(setup, prefix="wireclient-cli-auth-") as server:
        yield server


@pytest.mark.parametrize("trace", [False, True])
def test_credentials_from_the_uri(auth_server: SecantusServer, trace: bool) -> None:
    uri = f"mongodb://cli:cli-pw@{auth_server.address}/"
    args = ["cmd", uri, '{"connectionStatus": 1}'] + (["--trace"] if trace else [])
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    status = json_documents(result.stdout)[0]
    assert status["authInfo"]["authenticatedUsers"] == [{"user": "cli", "db": "admin"}]
    if trace:  # the SCRAM conversation ran on the traced socket
        assert '"saslStart": 1' in result.stderr
        assert '"saslContinue": 1' in result.stderr
        assert "cli-pw" not in result.stderr  # SCRAM never sends the password


def test_wrong_password_and_no_credentials(auth_server: SecantusServer) -> None:
    result = run_cli("ping", f"mongodb://cli:wrong@{auth_server.address}/")
    assert result.returncode == 1
    one_line_error(result, "AuthenticationError")
    result = run_cli("cmd", auth_server.uri, '{"listDatabases": 1}')
    assert result.returncode == 1  # ok: 0, Unauthorized
    assert json_documents(result.stdout)[0]["ok"] == 0


def test_json_output_is_relaxed_extended_json(server: SecantusServer) -> None:
    conn = Connection(server.uri)
    conn.cli_json.c.drop()
    conn.cli_json.c.insert({"_id": 1, "n": 2**40, "f": 1.5})
    result = run_cli("cmd", server.uri, '{"find": "c"}', "--db", "cli_json")
    reply = json.loads(result.stdout)
    assert reply["cursor"]["firstBatch"] == [{"_id": 1, "n": 2**40, "f": 1.5}]


# -- TLS: the trace shows the frames inside it ---------------------------------------------


@pytest.fixture(scope="module")
def tls_server() -> Iterator[Tuple[SecantusServer, Any]]:
    from certs import make_certs, openssl_available

    if not openssl_available():
        pytest.skip("needs the openssl command to make test certificates")
    with tempfile.TemporaryDirectory(prefix="wireclient-cli-certs-") as directory:
        certs = make_certs(directory)
        args = ["--tls-cert-file", certs.server_cert, "--tls-key-file", certs.server_key]
        server = SecantusServer(extra_args=args + ["--tls-ca-file", certs.ca]).start()
        try:
            yield server, certs
        finally:
            server.stop()


@pytest.mark.parametrize("trace", [False, True])
def test_tls_from_the_uri(tls_server: Tuple[SecantusServer, Any], trace: bool) -> None:
    server, certs = tls_server
    uri = f"mongodb://{server.address}/?tls=true&tlsCAFile={certs.ca}"
    result = run_cli("ping", uri, *(["--trace"] if trace else []))
    assert result.returncode == 0, result.stderr
    assert json_documents(result.stdout)[0]["ok"] == 1.0
    if trace:  # decoded frames: the tracer sits above TLS
        kinds = [h.split()[3] for h in sent_frames(result.stderr)]
        assert kinds == ["OP_QUERY", "OP_REPLY", "OP_MSG", "OP_MSG"]
    result = run_cli("ping", f"mongodb://{server.address}/?tls=true&tlsCAFile={certs.other_ca}")
    assert result.returncode == 1
    one_line_error(result, "AutoReconnect", "CERTIFICATE_VERIFY_FAILED")
    result = run_cli("ping", uri.replace(certs.ca, "/no/such/ca.pem"))
    assert result.returncode == 2
    one_line_error(result, "tlsCAFile")


def test_affinity_subcommand_runs_the_lab(server: Any) -> None:
    result = run_cli(
        "affinity",
        server.uri,
        "--threads",
        "2",
        "--greenlets",
        "none",
        "--socket-greenlets",
        "none",
        "--modes",
        "on",
        "--units",
        "3",
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    assert "affinity" in result.stdout.lower() or "socket" in result.stdout.lower()
    assert run_cli("affinity", "--no-such-option").returncode == 2
