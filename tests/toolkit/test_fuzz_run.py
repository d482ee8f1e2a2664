"""The fuzzer's runner and `wireclient fuzz`: cases against a SecantusDB of the test's own,
what each outcome means, a server that dies (a small one of our own that falls over on an
unknown opCode), the saved frame replayed by `wireclient send`, and the bounds."""

from __future__ import annotations

import itertools
import json
import os
import socket
import struct
import threading
from typing import Any, Iterator, List

import pytest
from cli_helpers import run_cli
from servers import SecantusServer

from wireclient import protocol
from wireclient.errors import ProtocolError
from wireclient.toolkit import fuzz, fuzz_run, probe


class FragileServer:
    """Answers hello and ping, and dies (stops listening, drops every connection) at the
    first frame whose opCode it does not know: a server with a crash bug to find."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.dead = threading.Event()
        self.request_ids = itertools.count(1)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            while not self.dead.is_set():
                try:
                    conn, _ = self.listener.accept()
                except OSError:
                    return
                with conn:
                    self._handle(conn)
        finally:
            self.listener.close()

    def _handle(self, conn: socket.socket) -> None:
        data = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
            while len(data) >= 16:
                length, request_id, _, op_code = struct.unpack_from("<iiii", data)
                if op_code not in protocol.OPCODE_NAMES:
                    self.dead.set()  # the crash
                    return
                if len(data) < length:
                    break
                frame, data = data[:length], data[length:]
                try:
                    _, message = protocol.decode(frame)
                except ProtocolError:
                    return
                doc = {"ok": 1.0, "isWritablePrimary": True, "maxWireVersion": 17}
                reply: protocol.Message
                if isinstance(message, protocol.OpQuery):
                    reply = protocol.OpReply([doc])
                elif isinstance(message, protocol.OpMsg):
                    reply = protocol.OpMsg(doc)
                else:
                    return
                conn.sendall(protocol.encode(reply, next(self.request_ids), request_id))

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self.dead.set()
        self.listener.close()
        self.thread.join(5)


@pytest.fixture()
def fragile() -> Iterator[FragileServer]:
    server = FragileServer()
    yield server
    server.close()


def unknown_opcode_case(number: int = 1) -> fuzz.Case:
    ping = fuzz.builtin_seeds()[0]
    frame = ping.frame[:12] + struct.pack("<i", 1337) + ping.frame[16:]
    return fuzz.Case(number, ping.name, fuzz.Mutation("opcode", "unknown", "opCode 1337", frame))


def test_cases_against_secantusdb(fresh_server: SecantusServer, tmp_path: Any) -> None:
    report_path = str(tmp_path / "report.json")
    result = run_cli(
        "fuzz", fresh_server.address, "--cases", "21", "--seed", "4",
        "--timeout", "0.5", "--json", report_path, "--save-dir", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    with open(report_path) as f:
        report = json.load(f)
    assert report["survived"] is True and report["cases_run"] == 21
    expected = list(fuzz.generate_all(4, 21, fuzz.builtin_seeds()))
    # the bytes sent are the engine's for that seed, and the report gives them all
    assert [c["frame_hex"] for c in report["cases"]] == [c.mutation.frame.hex() for c in expected]
    assert [c["class"] for c in report["cases"]] == [c.mutation.cls for c in expected]
    for case in report["cases"]:
        assert case["outcome"] in ("reply", "close", "silence"), case
        text = f"case {case['index']} {case['class']}/{case['mutation']} "
        assert text in result.stdout
        assert f"  -> {case['outcome']}: " in result.stdout
    outcomes = {(c["mutation"], c["outcome"]) for c in report["cases"]}
    summary = result.stdout.splitlines()[-10:]
    assert summary[0].startswith("fuzz: 21 of 21 cases, seed 4, against ")
    assert "the server answered a ping after every case" in summary[0]
    assert summary[-1].split()[0] == "total"
    assert sum(int(n) for n in summary[-1].split()[1:]) == 21
    assert outcomes  # and the server still answers now
    assert fuzz_run.server_answers(probe.parse_target(fresh_server.address, 5.0)) is None
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".bin")]


def test_outcomes_of_known_frames(fresh_server: SecantusServer) -> None:
    """moreToCome is answered by silence, an unknown opCode by a close, a broken body by an
    error reply (SecantusDB's ways, which the docs describe)."""
    seeds = fuzz.builtin_seeds()
    ping = seeds[0]
    rng = fuzz.case_random(0, 0)
    cases = [
        fuzz.Case(1, "ping", fuzz.flags_more_to_come(rng, ping, 1)),
        unknown_opcode_case(2),
        fuzz.Case(3, "ping", fuzz.bson_length(rng, ping, 3)),
    ]
    target = probe.parse_target(fresh_server.address, 5.0)
    report = fuzz_run.run(target, cases, run_seed=0, planned=3, timeout=0.5)
    assert [r.outcome for r in report.results] == ["silence", "close", "reply"]
    assert report.results[2].detail.startswith("ok 0, code ")
    assert report.survived and report.stopped is None


def test_a_dead_server_is_reported_saved_and_replayed(
    fragile: FragileServer, tmp_path: Any
) -> None:
    target = probe.parse_target(fragile.address, 2.0)
    report = fuzz_run.run(
        target,
        [unknown_opcode_case(1), unknown_opcode_case(2)],
        run_seed=9,
        planned=2,
        timeout=0.5,
        save_dir=str(tmp_path),
    )
    assert not report.survived
    [result] = report.results  # the run stops at the death
    assert result.outcome == "dead" and "no ping answered" in result.detail
    assert report.stopped == "the server died at case 1"
    assert result.saved == os.path.join(str(tmp_path), "fuzz-seed9-case1.bin")
    with open(result.saved, "rb") as f:
        assert f.read() == result.case.mutation.frame
    assert any("saved as" in line for line in fuzz_run.case_lines(result))

    # the saved frame kills a new server of the same kind through `wireclient send`
    again = FragileServer()
    try:
        assert fuzz_run.server_answers(probe.parse_target(again.address, 2.0)) is None
        replay = run_cli("send", again.address, result.saved, "--timeout", "2")
        assert "closed" in replay.stdout, replay.stdout + replay.stderr
        assert again.dead.is_set()
        assert fuzz_run.server_answers(probe.parse_target(again.address, 2.0)) is not None
    finally:
        again.close()


def test_cli_exit_status_1_when_the_server_dies(fragile: FragileServer, tmp_path: Any) -> None:
    result = run_cli(
        "fuzz", fragile.address, "--classes", "opcode", "--cases", "50", "--seed", "1",
        "--timeout", "0.5", "--save-dir", str(tmp_path), "--quiet",
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    saved = [name for name in os.listdir(tmp_path) if name.endswith(".bin")]
    assert len(saved) == 1
    assert f"saved as {os.path.join(str(tmp_path), saved[0])}" in result.stdout
    assert "-> dead: " in result.stdout  # --quiet still prints the dead case
    assert "the server DIED" in result.stdout and "stopped early: the server died" in result.stdout


def test_the_time_limit_bounds_a_run(fresh_server: SecantusServer) -> None:
    ticks = itertools.count()
    target = probe.parse_target(fresh_server.address, 5.0)
    cases = fuzz.generate_all(1, 100, fuzz.builtin_seeds(), ("bson",))
    report = fuzz_run.run(
        target, cases, run_seed=1, planned=100, timeout=0.5, time_limit=3,
        clock=lambda: float(next(ticks)),
    )  # fmt: skip
    assert len(report.results) == 2  # clock 0: started; 1 and 2: cases; 3: stop
    assert report.stopped == "the time limit of 3 s was reached"
    assert "stopped early: the time limit" in "\n".join(report.summary_lines())


def test_corpus_from_a_capture(fresh_server: SecantusServer, tmp_path: Any) -> None:
    from wireclient.toolkit.capture import CLIENT_BYTES, CaptureWriter

    path = tmp_path / "corpus.wcap"
    with open(path, "wb") as f:
        writer = CaptureWriter(f)
        frame = protocol.encode(protocol.OpMsg({"count": "things", "$db": "corpus"}), 3)
        writer.record(1, CLIENT_BYTES, frame)
        writer.close()
    result = run_cli(
        "fuzz", fresh_server.address, "--corpus", str(path), "--cases", "7",
        "--timeout", "0.5", "--save-dir", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("(seed capture conn 1 #1 count)") == 7


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--cases", "0"], "--cases must be"),
        (["--timeout", "0"], "--timeout must be"),
        (["--timeout", "61"], "--timeout must be"),
        (["--time-limit", "0"], "--time-limit must be"),
        (["--classes", "length,bogus"], "unknown mutation class bogus"),
        (["--corpus", "/no/such/file"], "cannot read"),
        (["--json", "/no/dir/report.json"], "cannot write"),
    ],
)
def test_cli_usage_errors(args: List[str], needle: str) -> None:
    result = run_cli("fuzz", "127.0.0.1:1", *args)
    assert result.returncode == 2
    assert needle in result.stderr
    assert result.stdout == ""


def test_corpus_that_is_not_a_capture(tmp_path: Any) -> None:
    path = tmp_path / "frames.bin"
    path.write_bytes(protocol.encode(protocol.OpMsg({"ping": 1}), 1))
    result = run_cli("fuzz", "127.0.0.1:1", "--corpus", str(path))
    assert result.returncode == 2 and "is not a capture" in result.stderr
