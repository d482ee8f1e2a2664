"""What a trial of the toolkit as a new user found (issue 22, point 4), one test per finding,
each run as the user ran it: the real ``wireclient`` command in a subprocess, against
SecantusDB."""

from __future__ import annotations

import base64
import io
import os
import socket
import subprocess
from typing import Any, Iterator, List

import pytest
from bson.int64 import Int64
from cli_helpers import (
    ENV,
    ROOT,
    command,
    json_documents,
    one_line_error,
    run_cli,
)
from servers import SecantusServer, free_port, secantus_with_auth

from wireclient import Connection
from wireclient import protocol as p
from wireclient.toolkit import capture, cli, trace
from wireclient.toolkit.proxy import Proxy

PING = p.encode(p.OpMsg({"ping": 1, "$db": "admin"}), request_id=7)
PONG = p.encode(p.OpMsg({"ok": 1.0}), request_id=70, response_to=7)


def write_capture(path: Any, records: List[capture.Record]) -> str:
    buffer = io.BytesIO()
    buffer.write(capture.MAGIC)
    for record in records:
        buffer.write(
            capture.pack_record(record.connection, record.kind, record.payload, record.timestamp)
        )
    path.write_bytes(buffer.getvalue())
    return str(path)


def client_record(connection: int, payload: bytes, at: float = 1.0) -> capture.Record:
    return capture.Record(connection, capture.CLIENT_BYTES, at, payload)


def server_record(connection: int, payload: bytes, at: float = 1.0) -> capture.Record:
    return capture.Record(connection, capture.SERVER_BYTES, at, payload)


# -- send takes a capture ------------------------------------------------------------------


def test_send_sends_a_captures_requests_not_its_header(
    server: SecantusServer, tmp_path: Any
) -> None:
    path = write_capture(
        tmp_path / "one.wcap",
        [client_record(1, PING[:10]), client_record(1, PING[10:]), server_record(1, PONG)],
    )
    result = run_cli("send", server.uri, path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "responseTo=7" in result.stdout
    assert result.stdout.strip().endswith("replied: 1 reply")


def test_send_asks_which_connection_and_leaves_authentication_out(
    server: SecantusServer, tmp_path: Any
) -> None:
    sasl = p.encode(p.OpMsg({"saslContinue": 1, "payload": b"c=biws,p=proof", "$db": "a"}), 5)
    path = write_capture(
        tmp_path / "two.wcap",
        [client_record(1, PING), client_record(2, sasl), client_record(2, PING)],
    )
    result = run_cli("send", server.uri, path)
    assert result.returncode == cli.USAGE
    one_line_error(result, "--connection", "1, 2")
    result = run_cli("send", server.uri, path, "--connection", "2")
    assert result.returncode == 0, result.stderr
    assert "left out 1 captured authentication frame" in result.stderr
    assert result.stdout.strip().endswith("replied: 1 reply")


def test_read_capture_takes_a_path(tmp_path: Any) -> None:
    path = write_capture(tmp_path / "c.wcap", [client_record(3, PING)])
    records, error = capture.read_capture(path)
    assert error is None
    assert records == [client_record(3, PING)]
    assert capture.read_capture(tmp_path / "c.wcap") == (records, None)  # a PathLike too


# -- decode --hex reads what people paste --------------------------------------------------


def xxd_text(data: bytes, group: int = 2) -> str:
    """``data`` as ``xxd`` writes it (``-g group``), written here so no xxd is needed."""
    lines = []
    for offset in range(0, len(data), 16):
        chunk = data[offset : offset + 16]
        hexes = " ".join(chunk[i : i + group].hex() for i in range(0, len(chunk), group))
        width = 32 + 16 // group - 1
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{offset:08x}: {hexes:<{width}}  {text}")
    return "\n".join(lines) + "\n"


def decoded_ping(text: str) -> None:
    result = run_cli("decode", "--hex", "-", input=text.encode())
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("frame 1 @0  OP_MSG  messageLength=51 requestID=7")
    assert '{"ping": 1, "$db": "admin"}' in result.stdout


@pytest.mark.parametrize("group", [1, 2, 4])
def test_decode_hex_reads_xxd_output(group: int) -> None:
    decoded_ping(xxd_text(PING, group))


def test_decode_hex_reads_the_real_xxd_when_installed(tmp_path: Any) -> None:
    path = tmp_path / "ping.bin"
    path.write_bytes(PING)
    try:
        text = subprocess.run(["xxd", str(path)], capture_output=True, check=True).stdout
    except FileNotFoundError:
        pytest.skip("no xxd here; xxd_text stands in for it above")
    decoded_ping(text.decode())


@pytest.mark.parametrize(
    "text",
    [
        " ".join(f"0x{b:02x}" for b in PING),
        ",".join(f"0x{b:02X}" for b in PING),
        "".join(f"\\x{b:02x}" for b in PING),
    ],
    ids=["0x-spaces", "0x-commas", "backslash-x"],
)
def test_decode_hex_reads_0x_bytes(text: str) -> None:
    decoded_ping(text)


def test_decode_hex_reads_its_own_dump(tmp_path: Any) -> None:
    path = tmp_path / "two.bin"
    path.write_bytes(PING + PONG)
    dumped = run_cli("decode", str(path), "--dump")
    assert dumped.returncode == 0
    again = run_cli("decode", "--hex", "-", input=dumped.stdout.encode())
    assert again.returncode == 0, again.stderr
    frames = [line for line in again.stdout.splitlines() if line.startswith("frame ")]
    assert frames == [line for line in dumped.stdout.splitlines() if line.startswith("frame ")]
    assert trace.parse_hex_text(dumped.stdout) == PING + PONG


def test_hex_text_errors_say_where() -> None:
    with pytest.raises(ValueError, match="line 2: 'zz'"):
        trace.parse_hex_text("33 00\nzz\n")


# -- --hex has one meaning -----------------------------------------------------------------


def test_dump_is_the_one_name_and_hex_an_old_alias(server: SecantusServer) -> None:
    dumped = run_cli("ping", server.uri, "--trace", "--dump")
    assert dumped.returncode == 0
    assert "00000000  " in dumped.stderr and "warning" not in dumped.stderr
    aliased = run_cli("ping", server.uri, "--trace", "--hex")
    assert aliased.returncode == 0
    assert "warning: --hex is the old name of --dump" in aliased.stderr
    assert "00000000  " in aliased.stderr
    for sub in ("send", "decode"):
        help_text = run_cli(sub, "--help").stdout
        assert "--hex" in help_text and "hex text" in help_text
    assert "--dump" in run_cli("proxy", "--help").stdout


# -- a closed pipe -------------------------------------------------------------------------


def test_decode_into_a_pipe_closed_early_stops_quietly(tmp_path: Any) -> None:
    path = tmp_path / "many.bin"
    path.write_bytes(PING * 5000)  # far more than a pipe holds
    proc = subprocess.Popen(
        command("decode", str(path)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
        cwd=ROOT,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # what `| head -1` does
    stderr = proc.stderr.read()
    assert proc.wait(timeout=60) == cli.BROKEN_PIPE
    assert first.startswith(b"frame 1 @0")
    assert stderr == b""


# -- BSON types ----------------------------------------------------------------------------


@pytest.fixture()
def typed_document(server: SecantusServer) -> Iterator[str]:
    conn = Connection(server.uri, auto_start_request=False)
    conn.trial_types.c.drop()
    conn.trial_types.c.insert({"_id": 1, "i64": Int64(5), "f": 2.0})
    yield server.uri
    conn.drop_database("trial_types")
    conn.close()


def test_cmd_json_canonical_keeps_bson_types(typed_document: str) -> None:
    find = '{"find": "c", "filter": {}}'
    relaxed = run_cli("cmd", typed_document, find, "--db", "trial_types")
    assert relaxed.returncode == 0, relaxed.stderr
    doc = json_documents(relaxed.stdout)[0]["cursor"]["firstBatch"][0]
    assert doc["i64"] == 5 and doc["f"] == 2.0
    canonical = run_cli("cmd", typed_document, find, "--db", "trial_types", "--json", "canonical")
    assert canonical.returncode == 0, canonical.stderr
    doc = json_documents(canonical.stdout)[0]["cursor"]["firstBatch"][0]
    assert doc["i64"] == {"$numberLong": "5"}
    assert doc["f"] == {"$numberDouble": "2.0"}
    traced = run_cli("ping", typed_document, "--trace", "--json", "canonical")
    assert '"ok": {"$numberDouble": "1.0"}' in traced.stderr


def test_decode_jsonl_prints_one_object_per_frame(tmp_path: Any) -> None:
    frame = p.encode(p.OpMsg({"insert": "c", "$db": "d", "n": Int64(5)}), request_id=9)
    path = tmp_path / "frames.bin"
    path.write_bytes(PING + frame + PING[:20])
    result = run_cli("decode", str(path), "--jsonl", "--json", "canonical")
    assert result.returncode == 1  # the last frame is cut short
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    objects = [json_documents(line)[0] for line in lines]
    assert objects[0]["opName"] == "OP_MSG"
    assert objects[0]["requestID"] == {"$numberInt": "7"}
    assert objects[1]["body"]["n"] == {"$numberLong": "5"}
    assert objects[1]["offset"] == {"$numberInt": str(len(PING))}
    assert "incomplete frame" in objects[2]["error"]
    assert objects[2]["hex"] == PING[:20].hex()


def test_decode_jsonl_of_a_capture_names_connection_and_sender(tmp_path: Any) -> None:
    path = write_capture(tmp_path / "c.wcap", [client_record(4, PING), server_record(4, PONG)])
    result = run_cli("decode", path, "--jsonl")
    assert result.returncode == 0, result.stderr
    objects = [json_documents(line)[0] for line in result.stdout.splitlines()]
    assert [(o["connection"], o["sender"]) for o in objects] == [(4, "client"), (4, "server")]
    assert objects[1]["body"] == {"ok": 1.0}


# -- a raw exhaust getMore -----------------------------------------------------------------


def test_raw_exhaust_getmore_shows_every_reply_and_warns(server: SecantusServer) -> None:
    conn = Connection(server.uri, auto_start_request=False)
    conn.trial_exhaust.c.drop()
    conn.trial_exhaust.c.insert([{"_id": i} for i in range(4)])
    first = conn.trial_exhaust.command({"find": "c", "batchSize": 1})
    cursor_id = first["cursor"]["id"]
    conn.close()
    get_more = f'{{"getMore": {{"$numberLong": "{cursor_id}"}}, "collection": "c", "batchSize": 1}}'
    result = run_cli(
        "cmd", server.uri, get_more, "--db", "trial_exhaust", "--flags", "exhaustAllowed"
    )
    assert result.returncode == 0, result.stderr
    batches = [r["cursor"]["nextBatch"] for r in json_documents(result.stdout)]
    assert [d["_id"] for batch in batches for d in batch] == [1, 2, 3]
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1, result.stderr
    assert "exhaust reply 2 answers requestID" in warnings[0]


# -- SCRAM secrets in traces ---------------------------------------------------------------


@pytest.fixture(scope="module")
def auth_server() -> Iterator[SecantusServer]:
    def setup(conn: Connection) -> None:
        conn.admin.command("createUser", "trial", pwd="trial-pw", roles=["root"])

    with secantus_with_auth(setup, prefix="wireclient-trial-auth-") as server:
        yield server


# "c=biws,r=" opens SCRAM's client-final message, the one with the proof; base64 of it:
CLIENT_FINAL = base64.b64encode(b"c=biws,r=").decode()[:10]


def test_trace_redacts_scram_proofs_unless_asked(auth_server: SecantusServer) -> None:
    uri = f"mongodb://trial:trial-pw@{auth_server.address}/"
    result = run_cli("ping", uri, "--trace", "--dump")
    assert result.returncode == 0, result.stderr
    assert '"saslContinue": 1' in result.stderr
    assert CLIENT_FINAL not in result.stderr
    assert "<redacted: " in result.stderr
    assert "hex dump withheld" in result.stderr
    assert b"c=biws".hex(" ") not in result.stderr  # nor in a hex dump
    shown = run_cli("ping", uri, "--trace", "--show-secrets")
    assert shown.returncode == 0, shown.stderr
    assert CLIENT_FINAL in shown.stderr
    assert "<redacted" not in shown.stderr


def test_redact_leaves_other_documents_alone() -> None:
    ping = {"ping": 1}
    assert trace.redact(ping) is ping
    hello = {"hello": 1, "speculativeAuthenticate": {"saslStart": 1, "payload": b"n,,n=u,r=x"}}
    hidden = trace.redact(hello)
    assert hidden["speculativeAuthenticate"]["payload"].startswith("<redacted: 10 bytes")
    assert hello["speculativeAuthenticate"]["payload"] == b"n,,n=u,r=x"  # not changed in place
    reply = {"conversationId": 1, "done": False, "payload": b"r=x,s=salt,i=4096", "ok": 1.0}
    assert trace.redact(reply)["payload"].startswith("<redacted")


# -- the proxy and its upstream, the proxy and its port --------------------------------------


def test_proxy_says_the_upstream_refused_not_tls() -> None:
    dead = free_port()  # nothing listens there
    with Proxy(("127.0.0.1", 0), ("127.0.0.1", dead)) as proxy:
        result = run_cli("ping", f"127.0.0.1:{proxy.port}")
    assert result.returncode == 1
    one_line_error(result, "refused", f"127.0.0.1:{dead}")
    assert "TLS" not in result.stderr


def test_proxy_on_a_busy_port_exits_2_with_one_line(server: SecantusServer) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = run_cli("proxy", "--listen", f"127.0.0.1:{port}", "--upstream", server.address)
    assert result.returncode == cli.USAGE
    one_line_error(result, "cannot listen on", f"127.0.0.1:{port}")


# -- documented, public --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["trace.describe", "trace.hexdump", "cli.main"])
def test_public_helpers_are_documented(name: str) -> None:
    with open(os.path.join(ROOT, "docs", "api.md"), encoding="utf-8") as f:
        api = f.read()
    assert f"`wireclient.toolkit.{name}(" in api
