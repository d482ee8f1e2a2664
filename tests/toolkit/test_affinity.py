"""The socket-affinity lab (wireclient.toolkit.affinity): each figure against an independent
observation, on small configurations, against a SecantusDB of this module's own (so no
other test's connections enter the server's counters).

- sockets created: the server's ``totalCreated`` delta against the pool's events;
- the socket of each operation: the tool's observation against ``whatsmyuri`` (``verify``)
  and, outside requests, against the pool's checkout events recorded by the test itself;
- stale reads: a deterministic stale read (a write blocked by a failpoint on one socket, the
  read forced onto another), and the same steps inside a request, which must not be stale;
- the command: options, table, JSON, exit statuses, and the gevent and asyncio Tasks worker
  modes, each in a ``python -m wireclient.toolkit.affinity`` subprocess;
- asyncio Tasks (``--callers tasks``): requests per Task keep every read fresh, the
  observation matches the pool's checkouts per Task, and pymongo's ``AsyncMongoClient`` is
  the reference when it is importable;
- charts: against a stand-in matplotlib, and against the real one when it is installed
  (texts that must not collide, modes with equal values that must all show).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import types
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple

import pytest
from servers import SecantusServer, free_port
from waiting import PATIENCE, wait_until

from wireclient import Connection, monitoring
from wireclient.toolkit import affinity, affinity_clients, affinity_report
from wireclient.toolkit.affinity_clients import (
    WIRECLIENT_OBSERVED_BY,
    SocketCounter,
    as_caller,
    make_client,
    release_caller,
)
from wireclient.toolkit.affinity_workload import CallerState, Config, Workload, figures, measure
from wireclient.transport.blocking import run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMALL = Workload(k=3, units=5, timeout=30.0, op_timeout_ms=10000, verify=True)


@pytest.fixture(scope="module")
def lab() -> Iterator[SecantusServer]:
    srv = SecantusServer().start()
    try:
        yield srv
    finally:
        srv.stop()


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in [env.get("PYTHONPATH")] if p])
    return subprocess.run(
        [sys.executable, "-m", "wireclient.toolkit.affinity", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )


class Checkouts(monitoring.PoolListener):
    """The test's own observation: which socket each caller thread (or asyncio Task: its
    name) checked out, in order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_thread: Dict[str, List[str]] = {}

    def connection_checked_out(self, event: monitoring.PoolEvent) -> None:
        try:
            task = asyncio.current_task()
        except RuntimeError:  # no running loop: a thread's checkout
            task = None
        name = threading.current_thread().name if task is None else task.get_name()
        host, port = event.local_address[:2]
        with self.lock:
            self.by_thread.setdefault(name, []).append(f"{host}:{port}")


def affinity_of(sequences: List[List[str]]) -> Tuple[int, int]:
    pairs = sum(len(s) - 1 for s in sequences if s)
    same = sum(a == b for s in sequences for a, b in zip(s, s[1:]))
    return same, pairs


# -- figures against the server and the pool -----------------------------------------------


def test_requests_pin_each_thread_to_one_socket(lab: SecantusServer) -> None:
    r = measure(lab.uri, Config("threads", 3, "on"), SMALL)
    assert r["ok"], r
    assert r["observed_by"]
    assert r["ops"] == 3 * 5 * (3 + 2) and r["reads"] == 15 and r["units"] == 15
    # every whatsmyuri reply named the socket the tool observed for it
    assert r["verified"] == 15 and r["verify_mismatches"] == 0
    assert r["affinity"] == 1.0 and r["sockets_per_caller_max"] == 1 and r["shared_sockets"] == 0
    assert r["stale_reads"] == 0 and r["reads_off_write_socket"] == 0
    # the server and the pool counted the same sockets; in requests each was a caller's own
    assert r["sockets_created_server"] == r["sockets_created_events"] == r["sockets_used"]
    assert 1 <= r["sockets_used"] <= 3
    assert r["peak_open_server"] <= r["peak_open_events"] <= 3
    assert r["writes_missing"] == 0 and r["unit_latency_ms"]["p50"] > 0
    assert r["cpu_us_per_op"] > 0 and r["ops_per_s"] > 0


def test_sockets_are_observed_by_command_events_as_the_docs_say(lab: SecantusServer) -> None:
    """wireclient emits command events (wireclient.monitoring): the lab observes sockets
    with them, and docs/affinity.md says so rather than that they are not emitted."""
    r = measure(lab.uri, Config("threads", 1, "off"), SMALL._replace(units=2))
    assert r["ok"], r
    assert r["observed_by"] == WIRECLIENT_OBSERVED_BY == "command events (local_address)"
    with open(os.path.join(ROOT, "docs", "affinity.md"), encoding="utf-8") as f:
        doc = " ".join(f.read().split())
    assert f"`observed_by` is `{WIRECLIENT_OBSERVED_BY}`" in doc
    for stale in ("not emit command events yet", "never publishes them", "Executor._exchange"):
        assert stale not in doc


def test_without_requests_affinity_matches_the_pools_checkouts(lab: SecantusServer) -> None:
    """Four threads, two sockets, no requests: every operation checks a socket out (in the
    caller's thread), so the pool's checkout events are a second, independent record of
    the socket of each operation."""
    checkouts = Checkouts()
    workload = SMALL._replace(k=2, units=10, max_pool_size=2)
    r = measure(lab.uri, Config("threads", 4, "off"), workload, extra_listeners=[checkouts])
    assert r["ok"], r
    callers = [seq for name, seq in checkouts.by_thread.items() if name.startswith("affinity-")]
    assert len(callers) == 4 and sum(map(len, callers)) == r["ops"] == 4 * 10 * 4
    same, pairs = affinity_of(callers)
    assert r["affinity_pairs"] == pairs and r["affinity"] == same / pairs
    assert r["sockets_used"] == len({key for seq in callers for key in seq}) <= 2
    assert r["sockets_created_server"] == r["sockets_created_events"] <= 2
    assert r["peak_open_events"] <= 2
    assert r["verify_mismatches"] == 0
    # a read can be stale only if it did not run on the socket of its unit's writes
    assert r["stale_reads"] <= r["reads_off_write_socket"]


def test_pymongo_reference(lab: SecantusServer) -> None:
    r = measure(lab.uri, Config("threads", 2, "pymongo"), SMALL)
    assert r["ok"], r
    assert r["client"].startswith("pymongo ") and "server_connection_id" in r["observed_by"]
    assert r["verified"] == 10 and r["verify_mismatches"] == 0  # connection ids <-> addresses
    # the server also counts pymongo's monitor sockets (a monitor and an RTT monitor)
    assert 0 <= r["sockets_created_server"] - r["sockets_created_events"] <= 2
    assert r["stale_reads"] <= r["reads_off_write_socket"]


def test_the_installed_command_runs_the_pymongo_reference(
    lab: SecantusServer, tmp_path: Any
) -> None:
    """An installed wireclient (the package alone, no source tree beside it) run as the
    ``wireclient`` console script: the default modes include pymongo."""
    site = tmp_path / "site"
    shutil.copytree(
        os.path.join(ROOT, "wireclient"),
        site / "wireclient",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    out = tmp_path / "run.json"
    env = dict(os.environ, PYTHONPATH=str(site))
    script = "import sys; from wireclient.toolkit.cli import main; sys.exit(main())"
    p = subprocess.run(
        [sys.executable, "-c", script, "affinity", lab.uri, "--threads", "2"]
        + ["--greenlets", "none", "--socket-greenlets", "none", "-k", "1", "--units", "2"]
        + ["--json", str(out), "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=str(tmp_path),
    )
    assert p.returncode == 0, p.stderr
    doc = json.loads(out.read_text())
    assert [r["mode"] for r in doc["results"]] == ["on", "off", "explicit", "pymongo"]
    assert doc["command"][:2] == ["wireclient", "affinity"] and doc["notes"] == []
    assert doc["results"][-1]["client"].startswith("pymongo ") and doc["results"][-1]["ok"]
    assert [ln.split()[1] for ln in p.stdout.splitlines() if ln.startswith("       2")] == [
        "on",
        "off",
        "explicit",
        "pymongo",
    ]


def test_without_pymongo_the_output_says_so(
    lab: SecantusServer, monkeypatch: Any, capsys: Any
) -> None:
    monkeypatch.setitem(sys.modules, "pymongo", None)  # as if it were not importable
    args = [lab.uri, "--threads", "1", "--greenlets", "none", "--socket-greenlets", "none"]
    args += ["-k", "1", "--units", "1", "--in-process", "--quiet"]
    assert affinity.main(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("no pymongo reference rows: pymongo is not importable")
    assert [ln.split()[1] for ln in out if ln.startswith("       1")] == ["on", "off", "explicit"]
    assert affinity.main([*args, "--modes", "pymongo"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("affinity: --modes pymongo: pymongo is not importable")
    assert len(err.splitlines()) == 1


# -- asyncio Tasks -------------------------------------------------------------------------


def _pymongo_async_or_skip() -> None:
    pymongo = pytest.importorskip("pymongo")
    if not hasattr(pymongo, "AsyncMongoClient"):
        pytest.skip(f"pymongo {pymongo.version} has no AsyncMongoClient")


@pytest.mark.parametrize("mode", ["on", "explicit"])
def test_tasks_in_requests_read_their_writes(lab: SecantusServer, mode: str) -> None:
    """Twelve Tasks on one loop sharing four sockets, each unit's writes and read in a
    request (mode on: the Task's whole life; explicit: each unit): no read is stale, and
    no read ran off the socket of its unit's writes."""
    workload = SMALL._replace(max_pool_size=4)
    r = measure(lab.uri, Config("tasks", 12, mode), workload)
    assert r["ok"], r
    assert r["client"].startswith("wireclient ")
    assert r["client"].endswith("AsyncConnection" if mode == "on" else "AsyncMongoClient")
    assert r["observed_by"] == WIRECLIENT_OBSERVED_BY
    assert r["ops"] == 12 * 5 * (3 + 2) and r["reads"] == 60
    assert r["stale_reads"] == 0 and r["reads_off_write_socket"] == 0
    assert r["verified"] == 60 and r["verify_mismatches"] == 0
    assert r["sockets_created_server"] == r["sockets_created_events"] == r["sockets_used"] <= 4
    assert r["peak_open_events"] <= 4
    if mode == "on":  # a Task keeps its socket from its first operation to its end
        assert r["affinity"] == 1.0 and r["sockets_per_caller_max"] == 1


def test_tasks_without_requests_match_the_pools_checkouts(lab: SecantusServer) -> None:
    """Six Tasks, two sockets, no requests: every operation checks a socket out in its
    Task, so the pool's checkout events (by Task name) are a second record of the socket of
    each operation; a stale read needs a read off its writes' socket."""
    checkouts = Checkouts()
    workload = SMALL._replace(k=2, units=10, max_pool_size=2)
    r = measure(lab.uri, Config("tasks", 6, "off"), workload, extra_listeners=[checkouts])
    assert r["ok"], r
    callers = [seq for name, seq in checkouts.by_thread.items() if name.startswith("affinity-")]
    assert len(callers) == 6 and sum(map(len, callers)) == r["ops"] == 6 * 10 * 4
    same, pairs = affinity_of(callers)
    assert r["affinity_pairs"] == pairs and r["affinity"] == same / pairs
    assert r["sockets_used"] == len({key for seq in callers for key in seq}) <= 2
    assert r["sockets_created_server"] == r["sockets_created_events"] <= 2
    assert r["verify_mismatches"] == 0
    assert r["stale_reads"] <= r["reads_off_write_socket"]


def test_tasks_pymongo_async_reference(lab: SecantusServer) -> None:
    _pymongo_async_or_skip()
    r = measure(lab.uri, Config("tasks", 3, "pymongo"), SMALL)
    assert r["ok"], r
    assert r["client"].startswith("pymongo ") and r["client"].endswith(" AsyncMongoClient")
    assert "server_connection_id" in r["observed_by"]
    assert r["verified"] == 15 and r["verify_mismatches"] == 0  # connection ids <-> addresses
    # the server also counts pymongo's monitor sockets (a monitor and an RTT monitor)
    assert 0 <= r["sockets_created_server"] - r["sockets_created_events"] <= 2
    assert r["stale_reads"] <= r["reads_off_write_socket"]


def test_command_with_callers_tasks(lab: SecantusServer, tmp_path: Any) -> None:
    """``--callers tasks`` runs asyncio Tasks only, in every mode (pymongo's
    ``AsyncMongoClient`` when importable), with the threads' columns in the table and the
    JSON, and a chart column of its own."""
    out = tmp_path / "t.json"
    args = ["--callers", "tasks", "--tasks", "1,3", "-k", "2", "--units", "3", "--verify"]
    args += ["--json", str(out), "--quiet"]
    plot = affinity._installed("matplotlib")
    if plot:
        args += ["--plot", str(tmp_path / "t.png")]
    p = cli(lab.uri, *args)
    assert p.returncode == 0, p.stderr
    modes = ["on", "off", "explicit"]
    if affinity_clients.pymongo_missing(async_client=True) is None:
        modes.append("pymongo")
    doc = json.loads(out.read_text())
    results = doc["results"]
    assert [(r["kind"], r["callers"], r["mode"]) for r in results] == [
        ("tasks", n, m) for n in (1, 3) for m in modes
    ]
    for r in results:
        assert r["ok"] and r["verify_mismatches"] == 0, r
        for field in ("sockets_used", "stale_reads", "reads", "affinity", "ops_per_s"):
            assert r[field] is not None, field
    lines = p.stdout.splitlines()
    assert lines[0] == affinity_report.KIND_LABEL["tasks"]
    assert lines[1].split()[:3] == ["callers", "mode", "ops"]
    assert [ln.split()[1] for ln in lines if ln.startswith("       3")] == modes
    if plot:
        assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--callers", "tasks,fibers"], "--callers: fibers"),
        (["--callers", "tasks", "--threads", "4"], "--threads: threads is not in --callers"),
        (["--tasks", "0,10"], "--tasks"),
    ],
)
def test_callers_usage_errors(args: List[str], message: str) -> None:
    p = cli("mongodb://127.0.0.1:1/", *args)
    assert p.returncode == 2 and message in p.stderr and p.stdout == ""


def test_tasks_run_only_when_asked_for(monkeypatch: Any) -> None:
    """The default run is today's (threads and greenlets); ``--tasks`` adds Tasks, and
    ``--callers all`` every kind."""
    monkeypatch.setitem(sys.modules, "pymongo", None)  # no reference: no import needed

    def kinds(*options: str) -> Set[str]:
        ns = affinity._parse(["mongodb://127.0.0.1:1/", *options], "t")
        configs = affinity.configs_for(
            ns.threads, ns.greenlets, ns.socket_greenlets, ns.modes, ns.tasks
        )
        return {c.kind for c in configs}

    gevent = {"gevent", "gevent-socket"} if affinity._installed("gevent") else set()
    assert kinds() == {"threads"} | gevent
    assert kinds("--tasks", "10") == {"threads", "tasks"} | gevent
    assert kinds("--callers", "tasks") == {"tasks"}
    assert kinds("--callers", "all") == {"threads", "tasks"} | gevent


def test_without_pymongo_the_tasks_run_says_so(monkeypatch: Any) -> None:
    monkeypatch.setitem(sys.modules, "pymongo", None)  # as if it were not importable
    ns = affinity._parse(["mongodb://127.0.0.1:1/", "--callers", "tasks"], "t")
    configs = affinity.configs_for([], [], [], ns.modes, ns.tasks, ns.tasks_modes)
    assert {c.mode for c in configs} == {"on", "off", "explicit"}
    assert ns.notes == [
        "no pymongo reference rows for asyncio Tasks: pymongo is not importable "
        "(import of pymongo halted; None in sys.modules)"
    ]
    with pytest.raises(affinity.UsageError, match="--modes pymongo: pymongo is not"):
        affinity._parse(["mongodb://127.0.0.1:1/", "--callers", "tasks", "--modes", "pymongo"], "t")


# -- a deterministic stale read ------------------------------------------------------------


def _stale_scenario(lab: SecantusServer, explicit: bool) -> Tuple[Dict[str, Any], str, str]:
    """One caller: a write (k=1) that the server holds 500 ms; then the test holds the
    write's socket if it is idle, and the caller reads, then asks whatsmyuri."""
    dbname = f"affinity_stale_{int(explicit)}"
    admin = Connection(lab.uri, auto_start_request=False)
    admin.drop_database(dbname)
    admin[dbname].counters.insert({"_id": 0, "n": 0})
    counter = SocketCounter()
    config = Config("threads", 1, "explicit" if explicit else "off")
    client: Any = make_client(lab.uri, dbname, config, SMALL, counter)
    state = CallerState(0)
    token = as_caller(state)
    admin.admin.command(
        {
            "configureFailPoint": "failCommand",
            "mode": {"times": 1},
            "data": {"failCommands": ["update"], "blockConnection": True, "blockTimeMS": 500},
        }
    )
    try:
        request = client.request() if explicit else None
        if request is not None:
            request.__enter__()
        state.write_phase(client, 1)  # sent; the server sits on it for 500 ms
        held = run(client.conn.pool.checkout())  # the write's socket, unless a request holds it
        held_key = "{}:{}".format(*held.local_address[:2])
        state.read_phase(client, verify=True)
        you = client.whatsmyuri(0)
        client.conn.pool.return_socket(held)
        if request is not None:
            request.__exit__(None, None, None)
    finally:
        release_caller(token)
        admin.admin.command({"configureFailPoint": "failCommand", "mode": "off"})
    deadline = time.monotonic() + PATIENCE
    while admin[dbname].counters.find_one({"_id": 0}) != {"_id": 0, "n": 1}:
        assert time.monotonic() < deadline, "the blocked write never landed"
        time.sleep(0.05)
    client.close()
    admin.drop_database(dbname)
    admin.close()
    return figures([state]), held_key, you


def test_a_read_on_another_socket_misses_the_write(lab: SecantusServer) -> None:
    f, held_key, _ = _stale_scenario(lab, explicit=False)
    assert f["stale_reads"] == 1 and f["reads"] == 1
    assert f["reads_off_write_socket"] == 1
    assert f["verify_mismatches"] == 0  # whatsmyuri confirmed the read's socket
    # w on the held socket, r and v on another: one pair of two on the same socket
    assert f["affinity_pairs"] == 2 and f["affinity"] == 0.5
    assert f["sockets_used"] == 2


def test_the_same_steps_in_a_request_read_the_write(lab: SecantusServer) -> None:
    f, held_key, you = _stale_scenario(lab, explicit=True)
    assert f["stale_reads"] == 0 and f["reads_off_write_socket"] == 0
    assert f["affinity"] == 1.0 and f["sockets_used"] == 1
    assert held_key != you  # the test held a second socket; the request kept its own


def test_figures_arithmetic() -> None:
    a, b = CallerState(0), CallerState(1)
    a.log = [("w", "x"), ("w", "x"), ("r", "y"), ("v", "y")]
    a.verify_pairs = [("y", "y")]
    a.latencies = [0.001, 0.003]
    b.log = [("w", "y"), ("r", None)]
    b.verify_pairs = [("z", "y")]  # whatsmyuri says y, the observation said z
    f = figures([a, b])
    assert f["affinity_pairs"] == 3 and f["affinity"] == 2 / 3
    assert f["unobserved_ops"] == 1 and f["sockets_used"] == 2 and f["shared_sockets"] == 1
    assert f["verify_mismatches"] == 1
    assert f["unit_latency_ms"] == {"p50": 1.0, "p99": 3.0}
    counter = SocketCounter()
    for event in "++-+-+":  # created, created, closed, ...: at most two open at once
        counter.on_created() if event == "+" else counter.on_closed()
    assert (counter.created, counter.closed, counter.peak) == (4, 2, 2)
    assert Workload(k=5, units=50, max_ops=3000).units_for(16) == 31
    assert Workload(k=5, units=50, max_ops=3000).units_for(1000) == 1


# -- the command ---------------------------------------------------------------------------


def test_command_table_json_and_progress(lab: SecantusServer, tmp_path: Any) -> None:
    out = tmp_path / "a.json"
    args = ["--threads", "2", "--greenlets", "none", "--socket-greenlets", "none"]
    p = cli(lab.uri, *args, "--modes", "on,off", "-k", "2", "--units", "3", "--json", str(out))
    assert p.returncode == 0, p.stderr
    progress = [ln for ln in p.stderr.splitlines() if ln.startswith("affinity [")]
    assert len(progress) == 2 and "threads x2 on" in progress[0]
    assert p.stdout.splitlines()[0] == "threads"
    rows = [ln.split() for ln in p.stdout.splitlines() if ln.strip().startswith("2 ")]
    assert [row[1] for row in rows] == ["on", "off"]
    doc = json.loads(out.read_text())
    given = [lab.uri, *args, "--modes", "on,off", "-k", "2", "--units", "3", "--json", str(out)]
    assert doc["command"][3:] == given
    assert [(r["mode"], r["ops"], r["ok"]) for r in doc["results"]] == [
        ("on", 18, True),
        ("off", 18, True),
    ]
    assert doc["workload"]["k"] == 2 and doc["host"]["cpus"] == os.cpu_count()


def test_gevent_worker_modes(lab: SecantusServer, tmp_path: Any) -> None:
    out = tmp_path / "g.json"
    p = cli(
        lab.uri,
        *("--threads", "none", "--greenlets", "3", "--socket-greenlets", "3"),
        *("--modes", "on,off,explicit", "-k", "2", "--units", "3", "--verify"),
        *("--json", str(out), "--quiet"),
    )
    assert p.returncode == 0, p.stderr
    assert "affinity [" not in p.stderr  # --quiet
    results = json.loads(out.read_text())["results"]
    assert [(r["kind"], r["mode"]) for r in results] == [
        (kind, mode) for kind in ("gevent", "gevent-socket") for mode in ("on", "off", "explicit")
    ]
    for r in results:
        assert r["ok"] and r["patch_warnings"] == [] and r["verify_mismatches"] == 0, r
        assert r["sockets_created_server"] == r["sockets_created_events"]
        if r["mode"] == "on":
            # a greenlet blocks on its first read holding its request socket: three sockets
            assert r["sockets_used"] == 3 and r["affinity"] == 1.0 and r["stale_reads"] == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--modes", "on,sideways"], "--modes"),
        (["-k", "0"], "-k must be"),
        (["--threads", "two"], "--threads"),
        (["--threads", "99999"], "--threads"),
        (["--timeout", "0"], "--timeout"),
    ],
)
def test_usage_errors_exit_2(args: List[str], message: str) -> None:
    p = cli("mongodb://127.0.0.1:1/", *args)
    assert p.returncode == 2 and message in p.stderr and p.stdout == ""


def test_only_loopback_servers() -> None:
    p = cli("mongodb://192.0.2.1:27017/")
    assert p.returncode == 2 and "not a loopback address" in p.stderr
    assert affinity.main(["mongodb://h1:1,h2:2/"]) == 2
    assert affinity.main(["--no-such-option"]) == 2


def test_main_as_a_subcommand_and_passwords(capsys: Any) -> None:
    assert affinity.main(["--help"], prog="wireclient affinity") == 0
    assert capsys.readouterr().out.startswith("usage: wireclient affinity ")
    uri = "mongodb://user:secret@127.0.0.1:1/?authSource=admin"
    doc = affinity_report.document(["wireclient", "affinity", uri], uri, SMALL, [])
    assert "secret" not in json.dumps(doc)
    assert doc["uri"] == "mongodb://user:***@127.0.0.1:1/?authSource=admin"


def test_plot_without_matplotlib_is_a_usage_error(monkeypatch: Any, capsys: Any) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    assert affinity.main(["mongodb://127.0.0.1:1/", "--plot", "x.png"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--plot needs matplotlib" in err
    with pytest.raises(affinity_report.PlotUnavailable, match="matplotlib"):
        affinity_report.plot([{"kind": "threads"}], "x.png")


def test_plot_without_matplotlib_in_a_subprocess(tmp_path: Any) -> None:
    """The command in a process of its own where matplotlib cannot be imported (its import
    is blocked first, whether or not it is installed): one line, status 2."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in [env.get("PYTHONPATH")] if p])
    program = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "from wireclient.toolkit.affinity import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    p = subprocess.run(
        [
            sys.executable,
            "-c",
            program,
            "mongodb://127.0.0.1:1/",
            "--plot",
            str(tmp_path / "x.png"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "matplotlib" in p.stderr


def test_an_unreachable_server_exits_1() -> None:
    p = cli(f"mongodb://127.0.0.1:{free_port()}/", "--threads", "1", "--op-timeout-ms", "2000")
    assert p.returncode == 1 and "cannot use the server" in p.stderr


def test_a_configuration_out_of_time_exits_1(lab: SecantusServer) -> None:
    p = cli(
        lab.uri,
        *("--threads", "1", "--greenlets", "none", "--socket-greenlets", "none"),
        *("--modes", "off", "--units", "100000", "--max-ops", "1000000", "--timeout", "1"),
    )
    assert p.returncode == 1
    assert "NOT OK: timed out" in p.stdout and "1 of 1 configurations failed" in p.stderr


@pytest.mark.parametrize(
    "callers, where",
    [
        (["--threads", "4", "--greenlets", "none"], "threads x4 off"),
        (["--threads", "4", "--greenlets", "none", "--in-process"], "threads x4 off"),
        (["--threads", "none", "--greenlets", "20"], "gevent x20 off"),
        (["--callers", "tasks", "--tasks", "20"], "tasks x20 off"),
    ],
    ids=["worker", "in-process", "gevent-worker", "tasks-worker"],
)
def test_ctrl_c_drops_the_lab_database_and_exits_130(
    lab: SecantusServer, callers: List[str], where: str
) -> None:
    """``wireclient affinity`` interrupted (SIGINT, as Ctrl-C sends) once its callers are at
    work, which the test sees on the server: the first update of the lab's database."""
    watcher = Connection(lab.uri, auto_start_request=False)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in [env.get("PYTHONPATH")] if p])
    proc = subprocess.Popen(
        [sys.executable, "-m", "wireclient", "affinity", lab.uri, *callers]
        + ["--socket-greenlets", "none", "--modes", "off", "--units", "100000"]
        + ["--max-ops", "1000000", "--timeout", "600", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
        # Python ignores SIGINT when started with it ignored (as a background job is)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    prefix = f"affinity_{proc.pid}_"

    def at_work() -> Optional[str]:
        for name in watcher.database_names():
            if name.startswith(prefix) and watcher[name].counters.find_one({"n": {"$gt": 0}}):
                return name
        return None

    try:
        assert wait_until(lambda: proc.poll() is not None or at_work(), interval=0.05)
        dbname = at_work()
        assert dbname is not None, f"no update in a database {prefix}*; exit {proc.poll()}"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=PATIENCE + 30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert err.splitlines() == [
        f"affinity: interrupted during {where}; its database {dbname} was dropped"
    ]
    assert out == ""
    assert [name for name in watcher.database_names() if name.startswith(prefix)] == []
    watcher.close()


def test_run_in_process_with_progress(lab: SecantusServer) -> None:
    seen: List[Tuple[int, int, str]] = []
    results = affinity.run(
        lab.uri,
        [Config("threads", 1, "explicit")],
        SMALL._replace(verify=False),
        progress=lambda i, n, r: seen.append((i, n, r["mode"])),
        isolate=False,
    )
    assert seen == [(1, 1, "explicit")] and results[0]["ok"]
    assert results[0]["ops"] == 5 * 4 and results[0]["affinity"] == 1.0


# -- charts, against a stand-in for matplotlib and against the real one --------------------


class _Axes:
    def __init__(self, calls: List[Tuple[str, Any]]) -> None:
        self.calls = calls

    def plot(self, *a: Any, **kw: Any) -> List[object]:
        self.calls.append(("plot", (a, kw)))
        return [object()]

    def __getattr__(self, name: str) -> Any:
        return lambda *a, **kw: self.calls.append((name, (a, kw)))


def chart_result(callers: int, mode: str, aff: float, kind: str = "threads") -> Dict[str, Any]:
    return {
        "kind": kind,
        "callers": callers,
        "mode": mode,
        "ok": True,
        "affinity": aff,
        "stale_share": 0.0,
        "sockets_created_server": callers,
        "ops_per_s": 100.0,
        "cpu_us_per_op": 50.0,
        "unit_latency_ms": {"p50": 1.0, "p99": 2.0},
        "max_pool_size": 100,
        "k": 5,
    }


def test_plot_draws_one_chart_per_figure_and_kind(monkeypatch: Any, tmp_path: Any) -> None:
    calls: List[Tuple[str, Any]] = []
    grid: List[List[_Axes]] = []

    def subplots(rows: int, cols: int, **kw: Any) -> Any:
        grid.extend([_Axes([]) for _ in range(cols)] for _ in range(rows))
        figure = types.SimpleNamespace(
            suptitle=lambda text, **kw: calls.append(("suptitle", text)),
            supxlabel=lambda text, **kw: calls.append(("supxlabel", text)),
            legend=lambda handles, labels, **kw: calls.append(("legend", labels)),
            savefig=lambda path, dpi: calls.append(("savefig", path)),
        )
        return figure, grid

    mpl = types.ModuleType("matplotlib")
    mpl.use = lambda backend: calls.append(("use", backend))  # type: ignore[attr-defined]
    pyplot = types.ModuleType("matplotlib.pyplot")
    pyplot.subplots = subplots  # type: ignore[attr-defined]
    pyplot.close = lambda fig: calls.append(("close", None))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "matplotlib", mpl)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", pyplot)

    results = [chart_result(16, "off", 0.5), chart_result(1, "off", 1.0)]
    results.append(chart_result(1, "on", 1.0))
    results.append({"kind": "threads", "callers": 4, "mode": "on", "ok": False, "failure": "x"})
    path = str(tmp_path / "charts.png")
    affinity_report.plot(results, path, SMALL)
    assert ("use", "Agg") in calls and ("savefig", path) in calls and calls[-1][0] == "close"
    assert len(grid) == len(affinity_report.CHARTS) and all(len(row) == 1 for row in grid)
    row = [t for t, _ in affinity_report.CHARTS].index("affinity (%)")
    lines = [args for name, (args, kw) in grid[row][0].calls if name == "plot"]
    # sorted by callers, failed results left out, one line per mode, each mode moved a
    # little to its own side of the caller count
    shift = {"on": affinity_report.DODGE**-0.5, "off": affinity_report.DODGE**0.5}
    assert [ys for _, ys in lines] == [[100.0], [100.0, 50.0]]
    assert lines[0][0] == pytest.approx([1 * shift["on"]])
    assert lines[1][0] == pytest.approx([1 * shift["off"], 16 * shift["off"]])
    assert ("set_xscale", (("log",), {})) in grid[row][0].calls
    assert ("legend", ["auto_start_request on", "auto_start_request off"]) in calls


def _drawn_texts(fig: Any) -> List[Tuple[str, Any]]:
    """Every text the figure draws (tick labels within the axes' limits, titles, axis
    labels, the figure's title and caption) and the legend as one box: (what, window
    extent) after a draw."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes: List[Tuple[str, Any]] = []
    for ax in fig.axes:
        (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
        for minor in (False, True):
            for t in ax.get_xticklabels(minor=minor):
                if t.get_visible() and t.get_text() and x0 <= t.get_position()[0] <= x1:
                    boxes.append((f"x tick {t.get_text()!r}", t.get_window_extent(renderer)))
            for t in ax.get_yticklabels(minor=minor):
                if t.get_visible() and t.get_text() and y0 <= t.get_position()[1] <= y1:
                    boxes.append((f"y tick {t.get_text()!r}", t.get_window_extent(renderer)))
        for what, t in (("title", ax.title), ("x label", ax.xaxis.label)):
            boxes.append((f"{what} {t.get_text()!r}", t.get_window_extent(renderer)))
    seen = {id(t) for legend in fig.legends for t in legend.get_texts()}
    for t in fig.texts + [fig._suptitle, fig._supxlabel]:  # the title may be in both
        if t is not None and t.get_text() and id(t) not in seen:
            seen.add(id(t))
            boxes.append((f"figure text {t.get_text()[:30]!r}", t.get_window_extent(renderer)))
    boxes.extend(("legend", legend.get_window_extent(renderer)) for legend in fig.legends)
    return boxes


def test_charts_texts_do_not_collide_and_name_the_pool_and_workload() -> None:
    """Callers 4, 16, 64 (a log axis spanning little more than a decade, whose minor ticks
    would be labelled over the counts), threads and greenlets side by side."""
    pytest.importorskip("matplotlib")
    results = [
        chart_result(n, mode, 1.0, kind)
        for kind in ("threads", "gevent")
        for n in (4, 16, 64)
        for mode in affinity.MODES
    ]
    workload = Workload(k=5, units=50, max_ops=3000, max_pool_size=8, think_ms=300)
    fig = affinity_report.figure(results, workload)
    try:
        boxes = _drawn_texts(fig)
        overlapping = [
            (a, b)
            for i, (a, box_a) in enumerate(boxes)
            for b, box_b in boxes[i + 1 :]
            if box_a.overlaps(box_b)
        ]
        assert overlapping == []
        outside = [what for what, box in boxes if not fig.bbox.contains(box.x0, box.y0)]
        outside += [what for what, box in boxes if not fig.bbox.contains(box.x1, box.y1)]
        assert outside == []
        x_ticks = [w for w, _ in boxes if w.startswith("x tick")]
        assert len(x_ticks) == 3 * len(fig.axes)  # 4, 16 and 64 only
        title = " ".join(fig._suptitle.get_text().split())
        assert "pool of 8 sockets (max_pool_size)" in title
        assert "k=5 unacknowledged $inc updates + 1 read" in title
        assert "50 units per caller" in title and "think time 300 ms" in title
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_charts_show_every_mode_where_values_are_equal() -> None:
    """Every mode at 100% affinity: the four lines are drawn on one another, so each has its
    own marker and line style, the wider ones first, and its own points beside the count."""
    pytest.importorskip("matplotlib")
    results = [chart_result(n, mode, 1.0) for n in (4, 16, 64) for mode in affinity.MODES]
    fig = affinity_report.figure(results, SMALL)
    try:
        for ax in fig.axes:
            lines = ax.get_lines()
            assert [ln.get_label() for ln in lines] == [
                affinity_report.MODE_LABEL[m] for m in affinity.MODES
            ]
            looks = {(ln.get_marker(), ln.get_linestyle()) for ln in lines}
            assert len(looks) == len(lines)
            widths = [ln.get_linewidth() for ln in lines]
            sizes = [ln.get_markersize() for ln in lines]
            assert widths == sorted(widths, reverse=True) and len(set(widths)) == len(widths)
            assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == len(sizes)
            assert all(ln.get_markerfacecolor() == "none" for ln in lines)  # hollow: see-through
            xs = [tuple(ln.get_xdata()) for ln in lines]
            assert len(set(xs)) == len(xs)  # each mode beside the count, not on the others
            for x in xs:
                assert list(x) == pytest.approx([4, 16, 64], rel=0.1)
        assert "every mode shows" in " ".join(fig._supxlabel.get_text().split())
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_a_chart_of_one_caller_count_keeps_the_modes_near_it() -> None:
    pytest.importorskip("matplotlib")
    results = [chart_result(100, mode, 0.5, "gevent") for mode in affinity.MODES]
    fig = affinity_report.figure(results, SMALL)
    try:
        for ax in fig.axes:
            x0, x1 = ax.get_xlim()
            xs = [x for ln in ax.get_lines() for x in ln.get_xdata()]
            assert len(xs) == 4 and x0 + (x1 - x0) / 4 < min(xs) < max(xs) < x1 - (x1 - x0) / 4
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_the_docs_show_the_labs_charts() -> None:
    """docs/affinity.md embeds the lab's charts (docs/images/affinity-*.png, drawn by
    --plot), each followed by a sentence on what it shows, and names none that is missing."""
    docs = os.path.join(ROOT, "docs")
    with open(os.path.join(docs, "affinity.md"), encoding="utf-8") as f:
        text = f.read()
    embedded = re.findall(r"^!\[[^\]]+\]\((images/affinity-[\w-]+\.png)\)\n\n(.+)$", text, re.M)
    assert len(embedded) >= 3
    for path, sentence in embedded:
        with open(os.path.join(docs, path), "rb") as image:
            assert image.read(8) == b"\x89PNG\r\n\x1a\n", path
        assert len(sentence.split()) >= 8, (path, sentence)
    on_disk = sorted(
        f"images/{name}"
        for name in os.listdir(os.path.join(docs, "images"))
        if name.startswith("affinity-")
    )
    assert sorted(path for path, _ in embedded) == on_disk


def test_plot_writes_a_chart_with_matplotlib(lab: SecantusServer, tmp_path: Any) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / "charts.png"
    p = cli(
        lab.uri,
        *("--threads", "1,4", "--greenlets", "none", "--socket-greenlets", "none"),
        *("--modes", "on,off", "-k", "1", "--units", "2", "--quiet", "--plot", str(path)),
    )
    assert p.returncode == 0, p.stderr
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_tool_imports_no_optional_package() -> None:
    code = (
        "import json, sys\n"
        "import wireclient.toolkit.affinity, wireclient.toolkit.affinity_report\n"
        "print(json.dumps([m for m in ('pymongo', 'gevent', 'greenlet', 'matplotlib')\n"
        "                  if m in sys.modules]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []


def test_think_time_keeps_request_sockets_bound(lab: SecantusServer) -> None:
    """With time away from the database after each unit, threads in requests still hold
    one socket each the whole time: four threads, four sockets, all open at once."""
    workload = SMALL._replace(k=1, units=5, think_ms=30, verify=False)
    r = measure(lab.uri, Config("threads", 4, "on"), workload)
    assert r["ok"], r
    assert r["sockets_created_server"] == r["sockets_created_events"] == 4
    assert r["peak_open_events"] == 4 and r["affinity"] == 1.0
    assert r["wall_s"] >= 5 * 0.030
