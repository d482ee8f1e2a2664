"""wireclient.toolkit.replay and ``wireclient replay``: the plan made of a capture (what is
replayed, what is not, which captured replies answer which request), the rewriting of
requests for another server, and whole replays of pymongo's traffic, captured through the
proxy, against fresh SecantusDB servers: equal, then with one planted difference, from a
wireclient capture and from a pcap file of the same traffic."""

from __future__ import annotations

import json
import random
import time
from typing import Any, Dict, Iterator, List

import pymongo
import pytest
from bson.binary import Binary
from bson.int64 import Int64
from cli_helpers import one_line_error, run_cli
from pcap_writer import packets, write_pcap
from servers import SecantusServer, free_port, secantus_with_auth

from wireclient import Connection
from wireclient import protocol as p
from wireclient.toolkit import capture, probe, replay
from wireclient.toolkit.compare import IgnoreList
from wireclient.toolkit.proxy import Proxy

CLIENT, SERVER = capture.CLIENT_BYTES, capture.SERVER_BYTES


def frame(message: Any, request_id: int, response_to: int = 0) -> bytes:
    return p.encode(message, request_id, response_to=response_to)


def record(conn: int, kind: int, data: bytes, at: float = 100.0) -> capture.Record:
    return capture.Record(conn, kind, at, data)


# -- the plan ------------------------------------------------------------------------------


def test_the_plan_leaves_out_handshakes_authentication_and_broken_frames() -> None:
    records = [
        record(1, CLIENT, frame(p.OpQuery("admin.$cmd", {"hello": 1}), 1)),
        record(1, SERVER, frame(p.OpReply([{"ok": 1.0}]), 2, 1)),
        record(1, CLIENT, frame(p.OpMsg({"saslStart": 1, "payload": b"x", "$db": "admin"}), 3)),
        record(1, CLIENT, frame(p.OpMsg({"isMaster": 1, "$db": "admin"}), 4)),
        record(1, CLIENT, frame(p.OpMsg({"ping": 1, "$db": "admin"}), 5)),
        record(1, SERVER, frame(p.OpMsg({"ok": 1.0}), 6, 5)),
        record(1, CLIENT, frame(p.OpMsg({"insert": "c", "$db": "d"}, flags=2), 7)),  # moreToCome
        record(1, CLIENT, b"\x10\x00\x00\x00" + b"garbage-garb"),  # a header, opCode "garb"
        record(2, CLIENT, frame(p.OpMsg({"hello": 1, "$db": "admin"}), 8)),  # a monitor
    ]
    plan = replay.plan(records)
    assert plan.skipped == {"handshake": 3, "authentication": 1, "undecodable": 1}
    (conn,) = plan.connections  # connection 2 had nothing left to replay
    assert [(e.frame, e.command, e.expects_reply) for e in conn.exchanges] == [
        (4, "ping", True),  # the connection's 4th request
        (5, "insert", False),
    ]
    assert conn.exchanges[0].replies == [p.OpMsg({"ok": 1.0})]


@pytest.mark.parametrize("chained", [True, False], ids=["chained", "secantus-style"])
def test_an_exhaust_streams_replies_all_belong_to_its_request(chained: bool) -> None:
    more = p.MsgFlags.moreToCome
    replies = [
        frame(p.OpMsg({"n": 1}, flags=more), 20, 10),
        frame(p.OpMsg({"n": 2}, flags=more), 21, 20 if chained else 10),
        frame(p.OpMsg({"n": 3}), 22, 21 if chained else 10),
    ]
    request = frame(
        p.OpMsg({"getMore": Int64(5), "collection": "c", "$db": "d"}, flags=1 << 16), 10
    )
    records = [record(1, CLIENT, request)] + [record(1, SERVER, r) for r in replies]
    (conn,) = replay.plan(records).connections
    assert [r.body["n"] for r in conn.exchanges[0].replies] == [1, 2, 3]


def test_rewrite_maps_cursor_ids_and_sessions_and_drops_cluster_time() -> None:
    sessions = replay.SessionMap()
    rewriter = replay.Rewriter(lambda captured: captured + 1000, sessions)
    lsid = {"id": Binary(b"\x01" * 16, 4)}
    get_more = p.OpMsg(
        {"getMore": Int64(5), "collection": "c", "lsid": lsid, "$clusterTime": {}, "$db": "d"}
    )
    body = replay.rewrite(get_more, rewriter).body
    assert body["getMore"] == Int64(1005) and "$clusterTime" not in body
    assert body["lsid"]["id"] != lsid["id"] and body["lsid"]["id"].subtype == 4
    kill = p.OpMsg({"killCursors": "c", "cursors": [Int64(5), Int64(6)], "lsid": lsid, "$db": "d"})
    killed = replay.rewrite(kill, rewriter).body
    assert killed["cursors"] == [1005, 1006]
    assert killed["lsid"] == body["lsid"]  # one captured session, one fresh one
    assert replay.rewrite(p.OpGetMore("d.c", 7), rewriter).cursor_id == 1007
    assert replay.rewrite(p.OpKillCursors([7]), rewriter).cursor_ids == (1007,)
    ended = replay.rewrite(p.OpMsg({"endSessions": [lsid], "$db": "admin"}), rewriter).body
    assert ended["endSessions"] == [body["lsid"]]


def test_percentiles_are_nearest_rank() -> None:
    values = list(range(1, 101))
    assert replay.percentile(values, 0.5) == 50
    assert replay.percentile(values, 0.99) == 99
    assert replay.percentile([7.0], 0.99) == 7.0


# -- speed ---------------------------------------------------------------------------------


def test_speed_keeps_the_captured_timing_scaled(server: SecantusServer) -> None:
    ping = p.OpMsg({"ping": 1, "$db": "admin"})
    records = [
        record(1, CLIENT, frame(ping, 1), at=100.0),
        record(1, SERVER, frame(p.OpMsg({"ok": 1.0}), 2, 1), at=100.0),
        record(1, CLIENT, frame(ping, 3), at=100.6),
        record(1, SERVER, frame(p.OpMsg({"ok": 1.0}), 4, 3), at=100.6),
    ]
    side = replay.Side(server.address, probe.parse_target(server.uri))
    runner = replay.Replay(replay.plan(records), [side], IgnoreList(), speed=2.0)
    started = time.monotonic()
    results = runner.run()
    assert time.monotonic() - started >= 0.3  # 0.6 s captured, twice as fast
    assert results.counts == {"equal": 2} and results.status() == 0


# -- whole replays of pymongo's traffic ------------------------------------------------------


def pymongo_workload(uri: str) -> None:
    """What the capture holds: two clients, a batch read by getMores, writes, an aggregate."""
    with (
        pymongo.MongoClient(uri, directConnection=True) as client,
        pymongo.MongoClient(uri, directConnection=True) as other,
    ):
        db = client.replay_demo
        db.things.drop()
        db.things.insert_many([{"_id": i, "name": f"thing {i}", "n": i * i} for i in range(10)])
        assert len(list(db.things.find({"n": {"$gte": 9}}, batch_size=2))) == 7
        db.things.update_one({"_id": 3}, {"$set": {"name": "three"}})
        assert other.replay_demo.settings.find_one({"_id": "mode"}) is None
        assert db.things.count_documents({}) == 10
        db.things.delete_many({"n": {"$lt": 2}})
        list(db.things.aggregate([{"$group": {"_id": None, "total": {"$sum": "$n"}}}]))


@pytest.fixture(scope="module")
def pymongo_capture(
    tmp_path_factory: pytest.TempPathFactory, server: SecantusServer
) -> Iterator[str]:
    path = str(tmp_path_factory.mktemp("replay") / "pymongo.wcap")
    Connection(server.uri).drop_database("replay_demo")
    with Proxy(("127.0.0.1", 0), (server.host, server.port), capture=path) as proxy:
        pymongo_workload(f"mongodb://127.0.0.1:{proxy.port}/")
    yield path


@pytest.fixture()
def two_servers() -> Iterator[List[SecantusServer]]:
    with SecantusServer() as left, SecantusServer() as right:
        yield [left, right]


def summary(stdout: str) -> str:
    return stdout.splitlines()[1].strip()


def report(path: Any) -> Dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        data: Dict[str, Any] = json.load(f)
    return data


def test_replay_against_the_capture_is_equal(pymongo_capture: str) -> None:
    with SecantusServer() as fresh:
        result = run_cli("replay", pymongo_capture, fresh.uri)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "compared with the capture" in result.stdout
    assert (
        summary(result.stdout).startswith("equal ") and ", different 0, errors 0" in result.stdout
    )
    assert "hello (each connection does its own handshake)" in result.stdout
    assert "getMore" in result.stdout  # a latency row: cursor ids were mapped
    assert "ok other than 1" not in result.stdout


def test_two_servers_equal_then_one_planted_difference(
    pymongo_capture: str, two_servers: List[SecantusServer], tmp_path: Any
) -> None:
    left, right = two_servers
    equal = run_cli("replay", pymongo_capture, left.uri, "--against", right.uri)
    assert equal.returncode == 0, equal.stdout + equal.stderr
    assert "compared with each other" in equal.stdout and ", different 0, errors 0" in equal.stdout
    assert "ok other than 1" not in equal.stdout  # both servers served every getMore

    Connection(right.uri).replay_demo.settings.insert({"_id": "mode", "value": "planted"})
    out = tmp_path / "diff.json"
    planted = run_cli(
        "replay", pymongo_capture, left.uri, "--against", right.uri, "--json", str(out)
    )
    assert planted.returncode == 1, planted.stdout + planted.stderr
    assert ", different 1, errors 0" in planted.stdout
    # the second replay wrote again (fresh session ids: no retryable-write memory answered it)
    assert Connection(left.uri).replay_demo.things.count() == 8
    line = [x for x in planted.stdout.splitlines() if "cursor.firstBatch.0" in x]
    assert len(line) == 1 and '(missing) | {"_id": "mode", "value": "planted"}' in line[0]
    (difference,) = report(out)["differences"]
    assert difference["command"] == "find"
    assert difference["path"] == "cursor.firstBatch.0"
    assert difference["missing"] == "left"
    assert difference["right"] == {"_id": "mode", "value": "planted"}
    assert isinstance(difference["connection"], int) and isinstance(difference["frame"], int)

    ignored = run_cli(
        "replay", pymongo_capture, left.uri, "--against", right.uri, "--ignore", "firstBatch"
    )
    assert ignored.returncode == 0, ignored.stdout

    # The same traffic as a pcap file, its segments reordered and retransmitted
    records, _ = capture.read_capture(pymongo_capture)
    frames = packets(records, segment_size=200, shuffle=random.Random(3), retransmit_every=4)
    pcap_path = write_pcap(str(tmp_path / "pymongo.pcap"), frames)
    out_pcap = tmp_path / "diff-pcap.json"
    from_pcap = run_cli(
        "replay", pcap_path, left.uri, "--against", right.uri, "--json", str(out_pcap)
    )
    assert from_pcap.returncode == 1, from_pcap.stdout + from_pcap.stderr
    assert report(out_pcap)["differences"] == report(out)["differences"]
    assert report(out_pcap)["summary"]["replayed"] == report(out)["summary"]["replayed"]


def test_a_replay_that_cannot_run_exits_2(pymongo_capture: str, tmp_path: Any) -> None:
    result = run_cli("replay", pymongo_capture, f"127.0.0.1:{free_port()}", "--timeout", "2")
    assert result.returncode == 2
    one_line_error(result, "cannot replay", "refused")
    junk = tmp_path / "junk"
    junk.write_bytes(b"not a capture at all")
    result = run_cli("replay", str(junk), "127.0.0.1:1")
    assert result.returncode == 2
    one_line_error(result, "neither a wireclient capture")
    result = run_cli("replay", pymongo_capture, "127.0.0.1:1", "--speed", "0")
    assert result.returncode == 2
    one_line_error(result, "--speed")


def test_authentication_is_done_afresh_never_replayed(tmp_path: Any) -> None:
    def setup(conn: Connection) -> None:
        conn.admin.command("createUser", "replayer", pwd="replay-pw", roles=["root"])

    path = str(tmp_path / "auth.wcap")
    with secantus_with_auth(setup, prefix="wireclient-replay-auth-") as server:
        with Proxy(("127.0.0.1", 0), (server.host, server.port), capture=path) as proxy:
            uri = f"mongodb://replayer:replay-pw@127.0.0.1:{proxy.port}/?directConnection=true"
            with pymongo.MongoClient(uri) as client:
                client.replay_auth.c.insert_one({"_id": 1})
                assert client.replay_auth.c.find_one() == {"_id": 1}
        without = run_cli("replay", path, server.uri)
        assert without.returncode == 1  # no credentials: every command refused
        assert "Unauthorized" in without.stdout or "ok other than 1" in without.stdout
        with_credentials = f"mongodb://replayer:replay-pw@{server.address}/"
        Connection(with_credentials).drop_database("replay_auth")  # as it was when captured
        result = run_cli("replay", path, with_credentials)
        assert "replay-pw" not in result.stdout + result.stderr
    assert result.returncode == 0, result.stdout + result.stderr
    assert "authentication steps (captured SCRAM proofs are never replayed" in result.stdout
    assert "ok other than 1" not in result.stdout, result.stdout
