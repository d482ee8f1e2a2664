"""Socket-affinity lab: which sockets threads, greenlets and asyncio Tasks use, and what it
costs.

    wireclient affinity mongodb://127.0.0.1:27017/
        [--callers threads,gevent,gevent-socket,tasks] [--threads 1,4,16,64]
        [--greenlets 1,10,100,1000] [--socket-greenlets 10,100,1000] [--tasks 1,10,100,1000]
        [--modes on,off,explicit,pymongo] [-k 5] [--units 50] [--max-ops 3000]
        [--max-pool-size 100] [--think-ms 0] [--timeout 60] [--op-timeout-ms 20000] [--verify]
        [--json FILE] [--plot FILE.png] [--markdown] [--quiet] [--in-process]

(``python -m wireclient.toolkit.affinity`` is the same command.) Each configuration (a kind
of caller, a number of callers, a mode) runs a bounded workload
(``wireclient.toolkit.affinity_workload``: units of ``k`` unacknowledged ``$inc`` updates of
the caller's own document followed by a read of it) in a fresh worker process of its own,
``python -m wireclient.toolkit.affinity --worker JSON``, which prints its figures as one JSON
line: gevent's monkey-patching is process-wide, and a fresh process also keeps the CPU figure
(``time.process_time()`` of the worker) to one configuration.

Callers (``--callers``, default the first three): ``threads``; ``gevent`` (greenlets after
``monkey.patch_all()``, a plain ``Connection``); ``gevent-socket`` (greenlets after
``monkey.patch_socket()`` only, with ``use_greenlets=True``); ``tasks`` (asyncio Tasks on one
event loop, with ``AsyncConnection`` / ``AsyncMongoClient``: requests per Task). Each kind
runs at the counts of its own option (``--threads``, ``--greenlets``, ``--socket-greenlets``,
``--tasks``). Modes: ``on`` (``auto_start_request=True``), ``off``, ``explicit`` (off, with
``start_request()`` around each unit), ``pymongo`` (pymongo 4, no requests: the reference,
its ``AsyncMongoClient`` for Tasks; not for gevent-socket, pymongo has no
``use_greenlets``).

pymongo is imported lazily: by the command, to learn whether the pymongo mode can run (the
default modes include it; when pymongo is not importable the output says so in one line,
and ``--modes pymongo`` is a usage error), and by a worker that runs the pymongo mode
(``affinity_clients.pymongo_client``); matplotlib only for ``--plot`` (``pip install
wireclient[plot]``). Neither is imported by ``import wireclient`` nor by this module.
Only loopback servers are measured (127.0.0.0/8, ::1, localhost, a Unix socket).

Exit status: 0 every configuration measured; 1 a server or measurement failure (server
unreachable, a worker that crashed or ran out of time, operation errors, writes that never
landed, observations that did not match ``whatsmyuri``); 2 a usage error; 130 interrupted
(Ctrl-C): the configuration being measured stops, its writes land, its database is dropped
(each step bounded; a second Ctrl-C meanwhile is ignored) and one line says so.

From Python: ``run(uri, configs, workload) -> list of result dicts`` (see ``Config`` and
``Workload`` in ``wireclient.toolkit.affinity_workload``); ``main(argv) -> int`` is the command.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence

from wireclient.toolkit.affinity_workload import (
    KINDS,
    MODES,
    Config,
    StopRequest,
    Workload,
    database_name,
    sigint_ignored,
)

RESULT_PREFIX = "AFFINITY-RESULT "
DEFAULT_THREADS = "1,4,16,64"
DEFAULT_GREENLETS = "1,10,100,1000"
DEFAULT_SOCKET_GREENLETS = "10,100,1000"
DEFAULT_TASKS = "1,10,100,1000"
DEFAULT_CALLERS = ("threads", "gevent", "gevent-socket")  # tasks when named (or --tasks given)
MAX_CALLERS = 5000
MAX_LIST = 8
WORKER_GRACE = 40.0  # seconds a worker may spend beyond --timeout (start, setup, settle)
STOP_GRACE = 10.0  # seconds beyond an operation timeout a stopped worker may take to clean up
CLEANUP_TIMEOUT_MS = 5000  # each operation of the drop after Ctrl-C
CLEANUP_DEADLINE = 10.0  # seconds the drop after Ctrl-C may keep trying
_KIND_OPTION = {
    "threads": "threads",
    "gevent": "greenlets",
    "gevent-socket": "socket_greenlets",
    "tasks": "tasks",
}


class UsageError(Exception):
    """A bad command line: exit status 2."""


def _installed(name: str) -> bool:
    """Whether ``name`` can be imported, without importing it."""
    import importlib.util

    if name in sys.modules:
        return sys.modules[name] is not None  # None: imports of it are blocked
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


# -- the runner ---------------------------------------------------------------------------


def configs_for(
    threads: Sequence[int],
    greenlets: Sequence[int],
    socket_greenlets: Sequence[int],
    modes: Sequence[str],
    tasks: Sequence[int] = (),
    tasks_modes: Optional[Sequence[str]] = None,
) -> List[Config]:
    """Every configuration of a run, in the order they are measured (no pymongo for
    gevent-socket; ``tasks_modes``: the Tasks' modes when not ``modes``, as when pymongo
    has no ``AsyncMongoClient``)."""
    configs: List[Config] = []
    for kind, counts in (
        ("threads", threads),
        ("gevent", greenlets),
        ("gevent-socket", socket_greenlets),
        ("tasks", tasks),
    ):
        kind_modes = tasks_modes if kind == "tasks" and tasks_modes is not None else modes
        for n in counts:
            for mode in kind_modes:
                if not (kind == "gevent-socket" and mode == "pymongo"):
                    configs.append(Config(kind, n, mode))
    return configs


def _worker_env() -> Dict[str, str]:
    """The worker imports this same wireclient: its parent folder goes first on the path
    (unless it is a site-packages folder, which the worker finds anyway and which must not
    come before the standard library)."""
    import site

    import wireclient

    root = os.path.dirname(os.path.dirname(os.path.abspath(wireclient.__file__)))
    env = dict(os.environ)
    sites = {os.path.abspath(p) for p in site.getsitepackages() + [site.getusersitepackages()]}
    if root not in sites:
        env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


def run_worker(
    uri: str, config: Config, workload: Workload, dbname: Optional[str] = None
) -> Dict[str, Any]:
    """One configuration in a fresh ``python -m wireclient.toolkit.affinity --worker``
    process, writing to ``dbname`` (default: a name of the worker's own). On a
    ``KeyboardInterrupt`` the worker is stopped (SIGTERM: it lets its writes land and drops
    its database; killed if it takes longer than an operation timeout and a few seconds)
    and the interrupt raised again."""
    import subprocess

    spec = {"uri": uri, "config": config._asdict(), "workload": workload._asdict()}
    if dbname is not None:
        spec["dbname"] = dbname
    cmd = [sys.executable, "-m", "wireclient.toolkit.affinity", "--worker", json.dumps(spec)]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_worker_env()
    )
    failure: Optional[str] = None
    try:
        stdout, stderr = proc.communicate(timeout=workload.timeout + WORKER_GRACE)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        failure = f"worker killed after {workload.timeout + WORKER_GRACE:.0f}s"
    except KeyboardInterrupt:
        with sigint_ignored():
            _stop_worker(proc, workload)
        raise
    else:
        lines = [ln for ln in stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
        if lines:
            result: Dict[str, Any] = json.loads(lines[-1][len(RESULT_PREFIX) :])
            return result
        tail = (stderr.strip().splitlines() or ["no output"])[-1]
        failure = f"worker exited {proc.returncode} without a result: {tail}"
    return {**config._asdict(), "ok": False, "failure": failure}


def _stop_worker(proc: Any, workload: Workload) -> None:
    """Ask a worker to stop (SIGTERM) and wait for it, killing it after a bounded wait."""
    import subprocess

    if proc.poll() is None:
        proc.terminate()
    try:
        proc.communicate(timeout=workload.op_timeout_ms / 1000 + STOP_GRACE)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


class Interrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C (``KeyboardInterrupt``) while it measured ``where``, after its
    database ``dbname`` was dropped (``failure`` None) or could not be (why not)."""

    def __init__(self, where: str, dbname: str, failure: Optional[str]) -> None:
        super().__init__(where, dbname, failure)
        self.where = where
        self.dbname = dbname
        self.failure = failure

    def line(self) -> str:
        """What the command prints: one line."""
        if self.failure is None:
            return f"interrupted during {self.where}; its database {self.dbname} was dropped"
        return (
            f"interrupted during {self.where}; its database {self.dbname} could not be "
            f"dropped ({self.failure}): drop it by hand"
        )


def drop_database(uri: str, dbname: str) -> Optional[str]:
    """Drop ``dbname`` if the server has it; None once it is gone, else why not. Each
    operation is bounded by ``CLEANUP_TIMEOUT_MS``, and the whole by ``CLEANUP_DEADLINE``
    seconds: a worker that had to be killed may have left writes queued at the server that
    create the database again, so it is dropped again while it is still listed."""
    import time

    from wireclient import Connection
    from wireclient.errors import WireClientError

    deadline = time.monotonic() + CLEANUP_DEADLINE
    try:
        with Connection(
            uri,
            auto_start_request=False,
            connectTimeoutMS=CLEANUP_TIMEOUT_MS,
            socketTimeoutMS=CLEANUP_TIMEOUT_MS,
            waitQueueTimeoutMS=CLEANUP_TIMEOUT_MS,
        ) as conn:
            while dbname in conn.database_names():
                if time.monotonic() > deadline:
                    return f"still there after {CLEANUP_DEADLINE:.0f}s of dropDatabase"
                conn.drop_database(dbname)
                time.sleep(0.1)  # anything still queued for it lands meanwhile
    except WireClientError as exc:
        return _describe(exc)
    return None


def run(
    uri: str,
    configs: Sequence[Config],
    workload: Optional[Workload] = None,
    progress: Optional[Callable[[int, int, Dict[str, Any]], None]] = None,
    isolate: bool = True,
) -> List[Dict[str, Any]]:
    """Measure each configuration, one after another; one result dict each, in order.
    ``isolate=False`` measures thread configurations in this process (gevent and Tasks ones
    always get a worker process). ``progress(i, total, result)`` is called after each one. A
    ``KeyboardInterrupt`` stops the configuration being measured, drops its database and
    becomes ``Interrupted``."""
    from wireclient.toolkit.affinity_workload import measure

    workload = workload or Workload()
    results: List[Dict[str, Any]] = []
    for i, config in enumerate(configs, 1):
        dbname = database_name(config, str(i))
        try:
            if isolate or config.kind != "threads":
                result = run_worker(uri, config, workload, dbname)
            else:
                try:
                    result = measure(uri, config, workload, dbname=dbname)
                except Exception as exc:
                    result = {**config._asdict(), "ok": False, "failure": _describe(exc)}
        except KeyboardInterrupt:
            with sigint_ignored():  # the measurement stopped; now make sure of the database
                failure = drop_database(uri, dbname)
            where = f"{config.kind} x{config.callers} {config.mode}"
            raise Interrupted(where, dbname, failure) from None
        results.append(result)
        if progress is not None:
            progress(i, len(configs), result)
    return results


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


# -- the worker ---------------------------------------------------------------------------


def worker_main(spec_text: str) -> int:
    """``--worker JSON``: patch as the configuration needs, measure, print one result line."""
    import faulthandler
    import signal
    import warnings

    spec = json.loads(spec_text)
    config = Config(**spec["config"])
    workload = Workload(**spec["workload"])
    # A Ctrl-C at a terminal reaches the whole process group: the parent decides, and asks a
    # worker to stop with SIGTERM (see measure and StopRequest).
    stop = StopRequest()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, stop.handler)
    # A hang (a deadlock under gevent) dumps every stack and exits instead of waiting forever.
    faulthandler.dump_traceback_later(workload.timeout + WORKER_GRACE - 5, exit=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if config.kind == "gevent":
            from gevent import monkey

            monkey.patch_all()
        elif config.kind == "gevent-socket":
            from gevent import monkey

            monkey.patch_socket()
    from wireclient.toolkit.affinity_workload import measure

    try:
        result = measure(spec["uri"], config, workload, dbname=spec.get("dbname"), stop=stop)
    except KeyboardInterrupt:  # SIGTERM: the database is dropped, the parent checks it
        faulthandler.cancel_dump_traceback_later()
        return 130
    except Exception as exc:
        result = {**config._asdict(), "ok": False, "failure": _describe(exc)}
    result["patch_warnings"] = [str(w.message).splitlines()[0] for w in caught]
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    faulthandler.cancel_dump_traceback_later()
    return 0


# -- the command --------------------------------------------------------------------------


def _counts(text: str, option: str) -> List[int]:
    if text.strip().lower() in ("", "none", "0"):
        return []
    try:
        counts = [int(x) for x in text.split(",")]
    except ValueError:
        raise UsageError(f"{option}: a comma-separated list of numbers, not {text!r}") from None
    if len(counts) > MAX_LIST or any(not 1 <= n <= MAX_CALLERS for n in counts):
        raise UsageError(f"{option}: up to {MAX_LIST} numbers between 1 and {MAX_CALLERS}")
    return counts


def _loopback_only(uri: str) -> None:
    import ipaddress

    from wireclient.errors import ConfigurationError
    from wireclient.rules.uri import UNIX_SOCKET_PORT, parse_uri

    try:
        hosts = parse_uri(uri).hosts
    except ConfigurationError as exc:
        raise UsageError(f"bad URI: {exc}") from None
    if len(hosts) != 1:
        raise UsageError("one server only: give a URI with one host")
    host, port = hosts[0]
    if port == UNIX_SOCKET_PORT or host.lower() == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise UsageError(f"{host} is not a loopback address: the lab measures local servers only")


def build_parser(prog: str = "python -m wireclient.toolkit.affinity") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Which sockets threads, greenlets and asyncio Tasks use, and what it costs.",
    )
    p.add_argument("uri", help="a loopback server, e.g. mongodb://127.0.0.1:27017/")
    p.add_argument(
        "--callers",
        help=f"kinds of caller, of {','.join(KINDS)} or 'all' (default "
        f"{','.join(DEFAULT_CALLERS)}, and tasks when --tasks is given)",
    )
    p.add_argument("--threads", help=f"thread counts (default {DEFAULT_THREADS}; 'none')")
    p.add_argument(
        "--greenlets", help=f"greenlets after patch_all (default {DEFAULT_GREENLETS}; 'none')"
    )
    p.add_argument(
        "--socket-greenlets",
        help=f"greenlets after patch_socket, use_greenlets=True (default "
        f"{DEFAULT_SOCKET_GREENLETS}; 'none')",
    )
    p.add_argument(
        "--tasks", help=f"asyncio Task counts, on one event loop (default {DEFAULT_TASKS})"
    )
    p.add_argument("--modes", help=f"of {','.join(MODES)} (default: all installed)")
    p.add_argument("-k", type=int, default=5, help="unacknowledged updates per unit (5)")
    p.add_argument("--units", type=int, default=50, help="units per caller (50)")
    p.add_argument(
        "--max-ops", type=int, default=3000, help="fewer units per caller above this (3000)"
    )
    p.add_argument("--max-pool-size", type=int, default=100, help="max_pool_size (100)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per configuration (60)")
    p.add_argument("--op-timeout-ms", type=int, default=20000, help="socket/wait timeouts")
    p.add_argument("--think-ms", type=int, default=0, help="mean random pause before each unit (0)")
    p.add_argument("--verify", action="store_true", help="whatsmyuri after each unit's read")
    p.add_argument("--json", metavar="FILE", help="write every result as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="charts (needs matplotlib)")
    p.add_argument("--markdown", action="store_true", help="the table as Markdown")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.add_argument("--in-process", action="store_true", help="thread configs in this process")
    return p


def _parse(argv: Sequence[str], prog: str) -> argparse.Namespace:
    parser = build_parser(prog)
    args = parser.parse_args(argv)  # SystemExit(2) on a bad option, handled by main
    _loopback_only(args.uri)
    bounds = (
        ("-k", args.k, 1, 1000),
        ("--units", args.units, 1, 100_000),
        ("--max-ops", args.max_ops, 1, 1_000_000),
        ("--max-pool-size", args.max_pool_size, 1, 10_000),
        ("--op-timeout-ms", args.op_timeout_ms, 100, 600_000),
        ("--think-ms", args.think_ms, 0, 10_000),
    )
    for name, value, low, high in bounds:
        if not low <= value <= high:
            raise UsageError(f"{name} must be between {low} and {high}")
    if not 1 <= args.timeout <= 3600:
        raise UsageError("--timeout must be between 1 and 3600 seconds")
    has_gevent = _installed("gevent")
    kinds = _kinds(args, has_gevent)
    defaults = {
        "threads": DEFAULT_THREADS,
        "greenlets": DEFAULT_GREENLETS if has_gevent else "none",
        "socket_greenlets": DEFAULT_SOCKET_GREENLETS if has_gevent else "none",
        "tasks": DEFAULT_TASKS,
    }
    for kind, attr in _KIND_OPTION.items():
        given = getattr(args, attr)
        option = "--" + attr.replace("_", "-")
        counts = _counts(defaults[attr] if given is None else given, option)
        if kind not in kinds:
            if given is not None and counts:
                raise UsageError(f"{option}: {kind} is not in --callers")
            counts = []
        setattr(args, attr, counts)
        if given is not None and counts and kind.startswith("gevent") and not has_gevent:
            raise UsageError(f"{option}: gevent is not installed")
    args.notes = []
    args.tasks_modes = None
    if args.modes is None:
        args.modes = list(MODES)
        missing = _pymongo_missing(args)
        missing_async = _pymongo_missing(args, async_client=True)
        if missing is not None:  # the default run says so instead of dropping the rows
            args.modes.remove("pymongo")
            args.notes.append(f"no pymongo reference rows: {missing}")
        elif missing_async is not None:
            args.tasks_modes = [m for m in args.modes if m != "pymongo"]
            args.notes.append(f"no pymongo reference rows for asyncio Tasks: {missing_async}")
    else:
        args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
        unknown = [m for m in args.modes if m not in MODES]
        if unknown or not args.modes:
            raise UsageError(f"--modes: {','.join(unknown) or 'none'}: choose from {MODES}")
        if "pymongo" in args.modes:
            missing = _pymongo_missing(args) or _pymongo_missing(args, async_client=True)
        else:
            missing = None
        if missing is not None:
            raise UsageError(f"--modes pymongo: {missing}")
    if args.plot is not None and not _installed("matplotlib"):
        raise UsageError("--plot needs matplotlib, which is not installed (pip install matplotlib)")
    return args


def _kinds(args: argparse.Namespace, has_gevent: bool) -> List[str]:
    """The kinds of caller a run measures: ``--callers``, else the default kinds and tasks
    when ``--tasks`` is given."""
    if args.callers is None:
        return list(DEFAULT_CALLERS) + (["tasks"] if args.tasks is not None else [])
    names = [k.strip() for k in args.callers.split(",") if k.strip()]
    if names == ["all"]:
        names = list(KINDS)
    unknown = [k for k in names if k not in KINDS]
    if unknown or not names:
        choices = ",".join(KINDS)
        raise UsageError(f"--callers: {','.join(unknown) or 'none'}: choose from {choices} or all")
    if not has_gevent and any(k.startswith("gevent") for k in names):
        raise UsageError("--callers: gevent is not installed")
    return names


def _pymongo_missing(args: argparse.Namespace, async_client: bool = False) -> Optional[str]:
    """Why the pymongo mode cannot run here for the run's threads and patch_all greenlets,
    or with ``async_client`` for its asyncio Tasks (pymongo's ``AsyncMongoClient``); None
    when it can, or when no such configuration would run. Loads pymongo only when one
    would."""
    if not (args.tasks if async_client else (args.threads or args.greenlets)):
        return None
    from wireclient.toolkit.affinity_clients import pymongo_missing

    return pymongo_missing(async_client=async_client)


def main(
    argv: Optional[Sequence[str]] = None, prog: str = "python -m wireclient.toolkit.affinity"
) -> int:
    """The command; returns the exit status. ``prog`` names it in help, errors and the JSON
    file (``wireclient affinity`` when run as the CLI's subcommand)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--worker"] and len(argv) == 2:
        return worker_main(argv[1])
    try:
        return _command(argv, prog)
    except Interrupted as exc:  # Ctrl-C while measuring: the database was dropped (or not)
        print(f"affinity: {exc.line()}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:  # Ctrl-C before or after the measurements: nothing to drop
        print("affinity: interrupted", file=sys.stderr)
        return 130


def _command(argv: List[str], prog: str) -> int:
    try:
        args = _parse(argv, prog)
    except SystemExit as exc:  # argparse: --help (0) or a bad option (2)
        return int(exc.code or 0) if isinstance(exc.code, int) else 2
    except UsageError as exc:
        print(f"affinity: {exc}", file=sys.stderr)
        return 2
    from wireclient.toolkit import affinity_report as report

    workload = Workload(
        k=args.k,
        units=args.units,
        max_ops=args.max_ops,
        max_pool_size=args.max_pool_size,
        timeout=args.timeout,
        op_timeout_ms=args.op_timeout_ms,
        verify=args.verify,
        think_ms=args.think_ms,
    )
    configs = configs_for(
        args.threads,
        args.greenlets,
        args.socket_greenlets,
        args.modes,
        args.tasks,
        args.tasks_modes,
    )
    if not configs:
        print("affinity: no configuration to run", file=sys.stderr)
        return 2
    failure = _server_failure(args.uri, workload)
    if failure is not None:
        print(f"affinity: cannot use the server: {failure}", file=sys.stderr)
        return 1

    def progress(i: int, total: int, result: Dict[str, Any]) -> None:
        if not args.quiet:
            print(report.progress_line(i, total, result), file=sys.stderr, flush=True)

    results = run(args.uri, configs, workload, progress, isolate=not args.in_process)
    for note in args.notes:
        print(note)
    print(report.table(results, markdown=args.markdown))
    document = report.document(prog.split() + argv, args.uri, workload, results, args.notes)
    if args.json:
        report.write_json(args.json, document)
    if args.plot:
        try:
            report.plot(results, args.plot, workload)
        except report.PlotUnavailable as exc:
            print(f"affinity: {exc}", file=sys.stderr)
            return 2
    failed = [r for r in results if not r.get("ok")]
    if failed:
        print(f"affinity: {len(failed)} of {len(results)} configurations failed", file=sys.stderr)
        return 1
    return 0


def _server_failure(uri: str, workload: Workload) -> Optional[str]:
    """None when the server answers ``whatsmyuri`` and ``serverStatus``, else why not."""
    from wireclient import Connection
    from wireclient.errors import WireClientError

    timeout = min(workload.op_timeout_ms, 5000)
    try:
        with Connection(
            uri,
            auto_start_request=False,
            connectTimeoutMS=timeout,
            socketTimeoutMS=workload.op_timeout_ms,
        ) as conn:
            conn.admin.command("whatsmyuri")
            conn.admin.command("serverStatus")["connections"]["totalCreated"]
    except (WireClientError, KeyError, TypeError) as exc:
        return _describe(exc)
    return None


if __name__ == "__main__":
    raise SystemExit(main())
