"""``wireclient`` (``python -m wireclient``): the command-line protocol-testing tool.

Subcommands: ``ping``, ``cmd``, ``send``, ``decode``, ``proxy``, ``fuzz``, ``replay`` (and
``affinity``); ``wireclient SUBCOMMAND --help`` describes each. Results go to stdout
(replies as relaxed Extended JSON, frames as ``trace.describe`` writes them); ``--trace``
frames and errors go to stderr.

Exit status: 0 on success, 1 when the server answered ``ok: 0`` (or QueryFailure), hung up,
or the network failed, 2 on a usage error (bad arguments, JSON, URI or option; a file that
cannot be read). Expected failures (any ``WireClientError`` or ``OSError``) print one line on
stderr, never a traceback.

Everything given on the command line is parsed before a socket is opened, so a usage error
never reaches the server; a ``ConfigurationError`` raised later (a server outside the wire
versions wireclient speaks) is a failure, not a usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from bson import json_util

from wireclient import protocol
from wireclient._version import __version__
from wireclient.errors import ConfigurationError, InvalidDocument, ProtocolError, WireClientError
from wireclient.rules import command
from wireclient.rules.uri import format_address, parse_host
from wireclient.toolkit import capture, probe, trace

OK, FAILED, USAGE = 0, 1, 2
BROKEN_PIPE = 128 + 13  # 141: what a shell reports for a program stopped by SIGPIPE
PROG = "wireclient"


class UsageError(Exception):
    """Bad input from the command line (exit status 2)."""


# --------------------------------------------------------------------------- input


def read_input(path: str, hex_text: bool = False) -> bytes:
    """The bytes of ``path`` (``-``: stdin); with ``hex_text``, the bytes its hex text
    spells (``trace.parse_hex_text``: plain hex, ``0x``/``\\x`` bytes, xxd, ``--dump``)."""
    try:
        if path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as f:
                data = f.read()
    except OSError as exc:
        raise UsageError(f"cannot read {path!r}: {exc.strerror or exc}") from None
    if not hex_text:
        return data
    try:
        return trace.parse_hex_text(data.decode("ascii", "replace"))
    except ValueError as exc:
        raise UsageError(f"{path!r} is not hex text: {exc}") from None


def parse_document(text: str, what: str) -> Any:
    try:
        doc = json_util.loads(text)
    except Exception as exc:  # json.JSONDecodeError, or bson's errors for bad $-types
        raise UsageError(f"{what} is not Extended JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise UsageError(f"{what} must be a JSON object, not {type(doc).__name__}")
    return doc


def parse_sequence(spec: str) -> protocol.DocumentSequence:
    """``NAME=FILE``: documents one per line, or a JSON array."""
    name, equals, path = spec.partition("=")
    if not equals or not name or not path:
        raise UsageError(f"--sequence takes NAME=FILE, not {spec!r}")
    text = read_input(path).decode("utf-8", "replace").strip()
    if text.startswith("["):
        try:
            docs = json_util.loads(text)
        except Exception as exc:
            raise UsageError(f"{path!r} is not Extended JSON: {exc}") from None
        for i, doc in enumerate(docs):
            if not isinstance(doc, dict):
                raise UsageError(f"{path!r}: element {i} is not a JSON object")
    else:
        lines = [line for line in text.splitlines() if line.strip()]
        docs = [parse_document(line, f"{path!r} line {i + 1}") for i, line in enumerate(lines)]
    try:
        return protocol.DocumentSequence(name, docs)
    except (ProtocolError, TypeError) as exc:
        raise UsageError(f"--sequence {name!r}: {exc}") from None


def _target(args: argparse.Namespace) -> probe.Target:
    if args.timeout is not None and not args.timeout > 0:
        raise UsageError(f"--timeout must be more than 0 seconds, not {args.timeout:g}")
    try:
        return probe.parse_target(args.uri, args.timeout)
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from None


def _tracer(args: argparse.Namespace) -> Optional[trace.Tracer]:
    if not args.trace:
        return None
    return trace.Tracer(
        trace.write_to(sys.stderr),
        hex_dump=args.dump,
        json_mode=args.json,
        show_secrets=args.show_secrets,
    )


def _describe(frame: trace.Frame, label: str, args: argparse.Namespace) -> str:
    return trace.describe(
        frame, label, args.dump, json_mode=args.json, show_secrets=args.show_secrets
    )


def _print(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


# --------------------------------------------------------------------------- subcommands


def run_cmd(args: argparse.Namespace) -> int:
    target = _target(args)
    spec = parse_document(args.command, "the command")
    if not spec:
        raise UsageError("the command document is empty")
    sequences = [parse_sequence(s) for s in args.sequence]
    op_query = args.op_query or args.namespace is not None
    try:
        flags = probe.parse_flags(
            args.flags, protocol.QueryFlags if op_query else protocol.MsgFlags
        )
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from None
    dbname = args.db or target.database or "admin"
    tracer = _tracer(args)
    session = probe.open_session(target, tracer)
    try:
        message, expect_reply = probe.command_message(
            dbname, spec, sequences, session.max_wire_version, flags, args.op_query, args.namespace
        )
        status = OK

        unchained_replies: List[probe.Unchained] = []

        def warn(unchained: probe.Unchained) -> None:
            if not unchained_replies:  # once per stream: the server does it to every reply
                sys.stderr.write(
                    f"{PROG}: warning: exhaust reply {unchained.reply_number} answers requestID "
                    f"{unchained.response_to} (the request), not {unchained.expected} (the "
                    "reply before it) as the wire protocol chains them; every reply is shown\n"
                )
            unchained_replies.append(unchained)

        replies = probe.exchange(session, message, expect_reply, on_unchained=warn)
        for _header, reply in replies:
            if isinstance(reply, protocol.OpReply) and args.namespace is not None:
                documents: Any = list(reply.documents)  # a legacy query
            else:
                documents = command.reply_document(reply)
            _print(trace.to_json(documents, indent=2, mode=args.json))
            if probe.failed(reply):
                status = FAILED
        if not expect_reply:
            sys.stderr.write("moreToCome: sent; the server sends no reply\n")
        return status
    finally:
        session.close()
        if tracer is not None:
            tracer.finish()


def run_send(args: argparse.Namespace) -> int:
    target = _target(args)
    data = read_input(args.file, args.hex)
    if not data:
        raise UsageError(f"{args.file!r} is empty: nothing to send")
    if capture.is_capture(data):
        data = _captured_requests(data, args.file, args.connection)
    elif args.connection is not None:
        raise UsageError(f"--connection picks a connection of a capture; {args.file!r} is not one")
    replies = args.replies if args.replies is not None else probe.expected_replies(data)
    tracer = _tracer(args)
    session = probe.open_session(target, tracer, handshake=not args.no_handshake)
    try:
        outcome = probe.send_raw_and_wait(session, data, replies, target.socket_timeout)
    finally:
        session.close()
        if tracer is not None:
            tracer.finish()
    status = OK
    for frame in outcome.frames:
        _print(_describe(frame, trace.SERVER_TO_CLIENT, args))
        if frame.error is not None or probe.failed(frame.message):
            status = FAILED
    _print(f"{outcome.ending}: {outcome.detail}")
    if outcome.ending in ("closed", "undecodable"):
        status = FAILED
    return status


def _captured_requests(data: bytes, path: str, connection: Optional[int]) -> bytes:
    """The requests one connection of a capture sent, as bytes to send again: the only
    connection, or ``--connection N``. Authentication steps are left out (their proofs
    answer the captured server's challenge, never this one's; send's own handshake
    authenticates with the URI's credentials)."""
    records, error = capture.read_capture(data)
    if error is not None:
        sys.stderr.write(f"{PROG}: capture: {error}\n")
    talking = [c for c in capture.conversations(records) if c.requests]
    numbers = ", ".join(str(c.connection) for c in talking) or "none"
    if connection is None:
        if len(talking) != 1:
            raise UsageError(
                f"{path!r} holds {len(talking)} client connections with requests "
                f"({numbers}): pick one with --connection N"
            )
        chosen = talking[0]
    else:
        found = [c for c in talking if c.connection == connection]
        if not found:
            raise UsageError(f"{path!r} has no connection {connection} with requests ({numbers})")
        chosen = found[0]
    kept = [r.frame for r in chosen.requests if not trace.is_authentication(r.frame.message)]
    skipped = len(chosen.requests) - len(kept)
    if skipped:
        sys.stderr.write(
            f"{PROG}: left out {skipped} captured authentication frame(s) of connection "
            f"{chosen.connection}: captured SCRAM proofs are never sent again\n"
        )
    if not kept:
        raise UsageError(f"connection {chosen.connection} of {path!r} sent nothing but auth")
    return b"".join(frame.raw for frame in kept)


def run_decode(args: argparse.Namespace) -> int:
    data = read_input(args.file, args.hex)
    if capture.is_capture(data):
        return _decode_capture(data, args)
    frames = trace.frames_of(data)
    if not frames:
        sys.stderr.write(f"{PROG}: no frames in {args.file!r}\n")
        return FAILED
    status = OK
    offset = 0
    for i, frame in enumerate(frames, 1):
        if args.jsonl:
            _print_jsonl(frame, args, frame=i, offset=offset)
        else:
            _print(_describe(frame, f"frame {i} @{offset}", args))
        offset += len(frame.raw)
        if frame.error is not None:
            sys.stderr.write(f"{PROG}: frame {i} does not decode: {frame.error}\n")
            status = FAILED
    return status


def _print_jsonl(item: trace.Frame, args: argparse.Namespace, **where: Any) -> None:
    """``decode --jsonl``: one frame as one line of Extended JSON, where it was first."""
    fields = {**where, **trace.frame_fields(item, show_secrets=args.show_secrets)}
    _print(trace.to_json(fields, mode=args.json))


def _decode_capture(data: bytes, args: argparse.Namespace) -> int:
    records, error = capture.read_capture(data)
    streams: Dict[Tuple[int, int], trace.FrameStream] = {}
    status = OK
    start = records[0].timestamp if records else 0.0
    labels = {
        capture.CLIENT_BYTES: trace.CLIENT_TO_SERVER,
        capture.SERVER_BYTES: trace.SERVER_TO_CLIENT,
    }
    directions = {capture.CLIENT_BYTES: "client", capture.SERVER_BYTES: "server"}

    def show(frames: List[trace.Frame], conn: int, kind: int, when: float) -> None:
        nonlocal status
        for frame in frames:
            if args.jsonl:
                _print_jsonl(
                    frame, args, connection=conn, sender=directions[kind], time=when - start
                )
            else:
                _print(_describe(frame, f"+{when - start:.3f}s conn {conn} {labels[kind]}", args))
            if frame.error is not None:
                status = FAILED

    for record in records:
        if record.kind == capture.EVENT:
            text = record.payload.decode("utf-8", "replace")
            if args.jsonl:
                event = {"connection": record.connection, "time": record.timestamp - start}
                _print(trace.to_json({**event, "event": text}, mode=args.json))
            else:
                _print(f"+{record.timestamp - start:.3f}s conn {record.connection} {text}")
            continue
        stream = streams.setdefault((record.connection, record.kind), trace.FrameStream())
        show(stream.feed(record.payload), record.connection, record.kind, record.timestamp)
    end = records[-1].timestamp if records else 0.0
    for (conn, kind), stream in streams.items():
        show(stream.flush(), conn, kind, end)
    if error is not None:
        sys.stderr.write(f"{PROG}: capture: {error}\n")
        status = FAILED
    return status


def parse_address(text: str, option: str, lowest_port: int = 1) -> Tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` (port 0 allowed for ``--listen``: any free port), read
    by the package's address parser; the port must be written."""
    usage = f"{option} takes HOST:PORT (port {lowest_port}-65535), not {text!r}"
    _, bracket, after = text.rpartition("]")
    if ":" not in (after if bracket else text) or (not bracket and text.count(":") > 1):
        raise UsageError(usage)
    try:
        return parse_host(text, lowest_port=lowest_port)
    except ConfigurationError:
        raise UsageError(usage) from None


def run_proxy(args: argparse.Namespace) -> int:
    from wireclient.toolkit import proxy

    listen = parse_address(args.listen, "--listen", lowest_port=0)
    upstream = parse_address(args.upstream, "--upstream")
    for name in ("delay_ms", "close_after", "corrupt_after"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "delay_ms" else 1):
            option = "--" + name.replace("_", "-")
            raise UsageError(f"{option} must be {'>= 0' if name == 'delay_ms' else '>= 1'}")
    fault_options = proxy_fault_options(args)  # rules and TLS files checked before any file
    capture_file = None
    if args.capture:
        try:
            capture_file = open(args.capture, "wb")
        except OSError as exc:
            raise UsageError(f"cannot write {args.capture!r}: {exc.strerror or exc}") from None
    server = proxy.Proxy(
        listen,
        upstream,
        out=sys.stdout,
        show_frames=not args.quiet,
        hex_dump=args.dump,
        capture=capture_file,
        delay_ms=args.delay_ms or 0,
        close_after=args.close_after,
        corrupt_after=args.corrupt_after,
        corrupt_byte=args.corrupt_byte,
        **fault_options,
        json_mode=args.json,
        show_secrets=args.show_secrets,
    )
    try:
        server.start()
    except OSError as exc:
        if capture_file is not None:
            capture_file.close()
        where = format_address(listen)
        raise UsageError(f"cannot listen on {where}: {exc.strerror or exc}") from None
    return proxy.serve_until_signalled(server)


# ------------------------------------------------------------------- proxy: fault rules, TLS


def add_proxy_fault_options(px: argparse.ArgumentParser) -> None:
    """``wireclient proxy``'s fault rules and TLS options."""
    px.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="RULE",
        help="NAME:ORDINAL:ACTION, e.g. 'find:2:error=91', 'insert:*:close', '*:5:delay=300ms', "
        "'getMore:3+:drop'; NAME a command or *, ORDINAL N (once), N+ (from N on) or * (every), "
        "counted per client connection; repeatable",
    )
    px.add_argument(
        "--fault-monitors",
        action="store_true",
        help="count and fault hello/isMaster on connections that sent nothing else (by default "
        "monitoring connections and handshakes are spared)",
    )
    px.add_argument("--tls-cert-file", metavar="PEM", help="listen with TLS: the certificate")
    px.add_argument("--tls-key-file", metavar="PEM", help="its key (if not in --tls-cert-file)")
    px.add_argument(
        "--tls-ca-file", metavar="PEM", help="verify client certificates signed by this CA"
    )
    px.add_argument("--upstream-tls", action="store_true", help="speak TLS to the upstream")
    px.add_argument(
        "--upstream-tls-ca-file",
        metavar="PEM",
        help="the CA that signed the upstream's certificate",
    )
    px.add_argument(
        "--upstream-tls-cert-file", metavar="PEM", help="a client certificate for the upstream"
    )
    px.add_argument("--upstream-tls-key-file", metavar="PEM", help="its key")
    px.add_argument(
        "--upstream-tls-insecure",
        action="store_true",
        help="do not verify the upstream's certificate nor its name",
    )


def proxy_fault_options(args: argparse.Namespace) -> Dict[str, Any]:
    """The ``Proxy`` keyword arguments of the options ``add_proxy_fault_options`` adds."""
    from wireclient.toolkit import faults, proxy

    try:
        rules = faults.parse_rules(args.fault)
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from None
    upstream_options = (
        args.upstream_tls_ca_file,
        args.upstream_tls_cert_file,
        args.upstream_tls_key_file,
        args.upstream_tls_insecure or None,
    )
    if not args.upstream_tls and any(o is not None for o in upstream_options):
        raise UsageError("the --upstream-tls-* options need --upstream-tls")
    if args.tls_cert_file is None and (args.tls_key_file or args.tls_ca_file):
        raise UsageError("--tls-key-file and --tls-ca-file need --tls-cert-file")
    listen_tls = upstream_tls = None
    try:
        if args.tls_cert_file is not None:
            listen_tls = proxy.server_tls_context(
                args.tls_cert_file, args.tls_key_file, args.tls_ca_file
            )
        if args.upstream_tls:
            upstream_tls = proxy.client_tls_context(
                args.upstream_tls_ca_file,
                args.upstream_tls_cert_file,
                args.upstream_tls_key_file,
                args.upstream_tls_insecure,
            )
    except OSError as exc:  # ssl.SSLError included: a file missing or not a certificate
        raise UsageError(f"TLS: {exc.strerror or exc}") from None
    return {
        "faults": rules,
        "spare_monitors": not args.fault_monitors,
        "listen_tls": listen_tls,
        "upstream_tls": upstream_tls,
    }


# --------------------------------------------------------------------------- fuzz

FUZZ_MAX_CASES = 1_000_000
FUZZ_MAX_TIMEOUT = 60.0


def run_fuzz(args: argparse.Namespace) -> int:
    from wireclient.toolkit import fuzz, fuzz_run

    if not 1 <= args.cases <= FUZZ_MAX_CASES:
        raise UsageError(f"--cases must be 1-{FUZZ_MAX_CASES}, not {args.cases}")
    if not 0 < args.timeout <= FUZZ_MAX_TIMEOUT:
        raise UsageError(f"--timeout must be more than 0 and at most {FUZZ_MAX_TIMEOUT:g} s")
    if not args.time_limit > 0:
        raise UsageError("--time-limit must be more than 0 seconds")
    try:
        classes = fuzz.parse_classes(args.classes)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    target = _target(args)
    if args.corpus:
        data = read_input(args.corpus)
        if not capture.is_capture(data):
            raise UsageError(
                f"--corpus {args.corpus!r} is not a capture (wireclient proxy --capture)"
            )
        seeds = fuzz.seeds_from_capture(data)
        if not seeds:
            raise UsageError(f"--corpus {args.corpus!r} holds no client frame that decodes")
    else:
        seeds = fuzz.builtin_seeds()
    if args.json:
        try:
            open(args.json, "a").close()
        except OSError as exc:
            raise UsageError(f"cannot write {args.json!r}: {exc.strerror or exc}") from None
    write = fuzz_run.write_lines(sys.stdout)

    def on_case(result: fuzz_run.CaseResult) -> None:
        if not args.quiet or result.outcome == "dead":
            write(fuzz_run.case_lines(result))

    cases = fuzz.generate_all(args.seed, args.cases, seeds, classes)
    report = fuzz_run.run(
        target,
        cases,
        run_seed=args.seed,
        planned=args.cases,
        timeout=args.timeout,
        time_limit=args.time_limit,
        save_dir=args.save_dir,
        on_case=on_case,
    )
    write(report.summary_lines())
    if args.json:
        report.write_json(args.json)
    return OK if report.survived else FAILED


def run_replay(args: argparse.Namespace) -> int:
    """``wireclient replay``: 0 every reply equal, 1 any difference or error, 2 when the
    replay could not run (usage, an unreadable capture, a server that cannot be reached)."""
    from wireclient.toolkit import compare, replay

    if args.speed is not None and not args.speed > 0:
        raise UsageError(f"--speed must be more than 0, not {args.speed:g}")
    sides = [replay.Side(_side_name(args.uri), _target_of(args.uri, args.timeout))]
    if args.against is not None:
        sides.append(replay.Side(_side_name(args.against), _target_of(args.against, args.timeout)))
        if sides[0].name == sides[1].name:
            sides = [side._replace(name=f"{side.name} ({n})") for n, side in enumerate(sides, 1)]
    try:
        ignore = compare.IgnoreList().extended(args.ignore)
    except ValueError as exc:
        raise UsageError(f"--ignore: {exc}") from None
    report_file = None
    if args.json is not None:
        try:
            report_file = open(args.json, "w", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {args.json!r}: {exc.strerror or exc}") from None
    try:
        try:
            records, problems = replay.load(args.capture, args.server_port)
        except replay.CaptureError as exc:
            raise UsageError(str(exc)) from None
        the_plan = replay.plan(records)
        the_plan.problems[:0] = problems
        if not the_plan.connections:
            raise UsageError(f"{args.capture!r} holds no request to replay")
        runner = replay.Replay(the_plan, sides, ignore, args.speed)
        try:
            runner.check_sides()
        except (WireClientError, OSError) as exc:
            sys.stderr.write(f"{PROG} replay: cannot replay: {type(exc).__name__}: {exc}\n")
            return USAGE
        results = runner.run()
        for line in replay.summary_lines(results, the_plan, sides, args.show):
            _print(line)
        if report_file is not None:
            report_file.write(replay.json_report(results, the_plan, sides, args.capture) + "\n")
        return results.status()
    finally:
        if report_file is not None:
            report_file.close()


def _target_of(uri: str, timeout: Optional[float]) -> probe.Target:
    if timeout is not None and not timeout > 0:
        raise UsageError(f"--timeout must be more than 0 seconds, not {timeout:g}")
    try:
        return probe.parse_target(uri, timeout)
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from None


def _side_name(uri: str) -> str:
    """How a report names a server: its address (never the URI's credentials)."""
    try:
        return format_address(probe.parse_target(uri).address)
    except ConfigurationError:
        return uri


# --------------------------------------------------------------------------- the parser


def _output_options(parser: argparse.ArgumentParser, dump_alias: bool = True) -> None:
    """``--dump``, ``--json`` and ``--show-secrets``: how frames and replies are printed.
    ``dump_alias`` keeps ``--hex`` as the old name of ``--dump`` where no input is hex."""
    dump_flags = ["--dump", "--hex"] if dump_alias else ["--dump"]
    parser.add_argument(
        *dump_flags,
        dest="dump",
        action=_DumpAction,
        nargs=0,
        default=False,
        help="add a hex dump of each frame" + (" (--hex: its old name)" if dump_alias else ""),
    )
    parser.add_argument(
        "--json",
        choices=sorted(trace.JSON_MODES),
        default=trace.DEFAULT_JSON_MODE,
        help="Extended JSON flavour of documents: relaxed (default) or canonical (keeps "
        'every BSON type: {"$numberLong": "5"})',
    )
    parser.add_argument(
        "--show-secrets",
        action="store_true",
        help="show SCRAM payloads (client proofs) in traces instead of redacting them",
    )


class _DumpAction(argparse.Action):
    """``--dump``; ``--hex`` too where it is the old name, with a warning saying so."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: Optional[str] = None,
    ) -> None:
        if option_string == "--hex":
            sys.stderr.write(
                f"{PROG}: warning: --hex is the old name of --dump here (add a hex dump); "
                "--hex now means 'the input is hex text' (send, decode)\n"
            )
        setattr(namespace, self.dest, True)


def _network_options(parser: argparse.ArgumentParser, hex_is_input: bool = False) -> None:
    parser.add_argument(
        "uri", metavar="URI", help="mongodb://[user:pass@]host[:port]/... or host:port"
    )
    parser.add_argument(
        "--trace",
        action="store_true",
        help="print every frame both ways, handshake included, on stderr",
    )
    _output_options(parser, dump_alias=not hex_is_input)
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="bound connecting and every read (default: the URI's timeouts, else "
        f"{probe.DEFAULT_TIMEOUT:g})",
    )


_HEX_INPUT_HELP = (
    "FILE is hex text: plain hex (whitespace ignored), 0x or \\x bytes, xxd output, or a "
    "--dump of this tool"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Talk to a MongoDB server frame by frame, decode frames, or proxy connections.",
        epilog="exit status: 0 success, 1 server error reply or network failure, 2 usage error",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)

    ping = sub.add_parser(
        "ping",
        help="send {ping: 1} and print the reply",
        description=(
            "Connect (hello, then SCRAM if the URI has credentials), send {ping: 1} to admin, "
            "print the reply."
        ),
    )
    _network_options(ping)
    # ping is cmd with its arguments fixed
    ping.set_defaults(
        run=run_cmd, command='{"ping": 1}', db="admin", flags=None, sequence=[],
        op_query=False, namespace=None,
    )  # fmt: skip

    cmd = sub.add_parser(
        "cmd",
        help="run one command and print its reply",
        description=(
            "Run one command given as Extended JSON and print the reply as relaxed Extended JSON. "
            "Exit status 1 when the reply has ok: 0."
        ),
    )
    _network_options(cmd)
    cmd.add_argument(
        "command", metavar="COMMAND", help='the command document, e.g. \'{"count": "x"}\''
    )
    cmd.add_argument("--db", help="the database (default: the URI's, else admin)")
    cmd.add_argument(
        "--op-query", action="store_true", help="send it over OP_QUERY on DB.$cmd instead of OP_MSG"
    )
    cmd.add_argument(
        "--namespace",
        metavar="DB.COLL",
        help=(
            "send a legacy OP_QUERY on this namespace, COMMAND being the query (implies --op-query)"
        ),
    )
    cmd.add_argument(
        "--flags",
        help=(
            "flag bits by name, comma-separated: OP_MSG checksumPresent, moreToCome (no reply is "
            "read), exhaustAllowed; with --op-query the OP_QUERY flags (SlaveOk ...); numbers "
            "such as 0x4 set bits no name covers"
        ),
    )
    cmd.add_argument(
        "--sequence",
        action="append",
        default=[],
        metavar="NAME=FILE",
        help=(
            "add an OP_MSG kind-1 document sequence NAME (FILE: Extended JSON, one document per "
            "line or a JSON array; - for stdin); repeatable"
        ),
    )
    cmd.set_defaults(run=run_cmd)

    send = sub.add_parser(
        "send",
        help="send raw bytes and show what comes back",
        description=(
            "After the handshake, send FILE's bytes exactly as they are (malformed ones included), "
            "or the requests of one connection of a capture (authentication steps left out), "
            "then print each frame the server sends back, or that it closed the connection, or "
            "that it said nothing within --timeout. Waits for as many replies as the frames call "
            "for (at least one). Exit status 1 if the server hung up, sent an undecodable frame "
            "or an ok: 0 reply; 0 if it replied or stayed silent."
        ),
    )
    _network_options(send, hex_is_input=True)
    send.add_argument("file", metavar="FILE", help="the bytes to send, or a capture (- for stdin)")
    send.add_argument("--hex", action="store_true", help=_HEX_INPUT_HELP)
    send.add_argument(
        "--connection",
        type=int,
        metavar="N",
        help="with a capture: send the requests of its connection N (needed when it has several)",
    )
    send.add_argument("--replies", type=int, metavar="N", help="wait for N replies")
    send.add_argument("--no-handshake", action="store_true", help="send before any hello")
    send.set_defaults(run=run_send)

    decode = sub.add_parser(
        "decode",
        help="decode frames offline",
        description=(
            "Decode a file of concatenated frames, hex text (--hex), or a capture written by "
            "'wireclient proxy --capture'. Exit status 1 if a frame does not decode."
        ),
    )
    decode.add_argument("file", metavar="FILE", help="frames, hex text or a capture (- for stdin)")
    decode.add_argument("--hex", action="store_true", help=_HEX_INPUT_HELP)
    _output_options(decode, dump_alias=False)
    decode.add_argument(
        "--jsonl", action="store_true", help="print one JSON object per frame (and per event)"
    )
    decode.set_defaults(run=run_decode)

    px = sub.add_parser(
        "proxy",
        help="forward and print every frame between a client and a server",
        description=(
            "Accept MongoDB clients on --listen, open one connection to --upstream for each, "
            "forward bytes both ways and print every frame as it passes. Fault options count the "
            "replies of each client connection. Stops cleanly on Ctrl-C or SIGTERM."
        ),
    )
    px.add_argument(
        "--listen", required=True, metavar="HOST:PORT", help="where clients connect (port 0: any)"
    )
    px.add_argument("--upstream", required=True, metavar="HOST:PORT", help="the server")
    px.add_argument(
        "--capture", metavar="FILE", help="write a capture that 'wireclient decode' reads"
    )
    px.add_argument("--quiet", action="store_true", help="print connections, not frames")
    _output_options(px)
    px.add_argument(
        "--delay-ms", type=int, metavar="N", help="wait N ms before forwarding each reply"
    )
    px.add_argument(
        "--close-after",
        type=int,
        metavar="N",
        help=("after N replies, close the connection at its next message instead of forwarding it"),
    )
    px.add_argument("--corrupt-after", type=int, metavar="N", help="flip a byte of the N-th reply")
    px.add_argument(
        "--corrupt-byte",
        type=int,
        default=-1,
        metavar="OFFSET",
        help=(
            "which byte --corrupt-after flips (XOR 0xff), from the frame's start, or from its end "
            "if negative (default -1: the last byte, a BSON terminator or the checksum)"
        ),
    )
    add_proxy_fault_options(px)
    px.set_defaults(run=run_proxy)

    fz = sub.add_parser(
        "fuzz",
        help="send mutated frames and check that the server survives each one",
        description=(
            "Send --cases frames, each a valid command (built in, or from --corpus) broken one "
            "way: message lengths, opcodes, flag bits, sections, checksums, BSON, OP_COMPRESSED. "
            "Each goes on a new connection, without a handshake; after each, a ping on a fresh "
            "connection checks that the server still answers. The same --seed sends the same "
            "bytes. A case after which the server answers no ping is saved as a frame file "
            "(replay it with 'wireclient send URI FILE') and ends the run. Exit status 0 when "
            "the server survived every case, 1 when it did not."
        ),
    )
    fz.add_argument("uri", metavar="URI", help="mongodb://[user:pass@]host[:port]/... or host:port")
    fz.add_argument("--cases", type=int, default=100, metavar="N", help="how many (default 100)")
    fz.add_argument("--seed", type=int, default=1, metavar="S", help="the run's seed (default 1)")
    fz.add_argument(
        "--timeout",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="how long each case waits for a reply, and each ping (default 1)",
    )
    fz.add_argument(
        "--time-limit",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="start no case after this many seconds (default 600)",
    )
    fz.add_argument(
        "--corpus", metavar="CAPTURE", help="mutate the client frames of this proxy capture"
    )
    fz.add_argument(
        "--classes",
        metavar="LIST",
        help="only these mutation classes, comma-separated: length, opcode, flags, sections, "
        "checksum, bson, compressed (default: all, in turn)",
    )
    fz.add_argument("--json", metavar="FILE", help="also write the whole report as JSON")
    fz.add_argument(
        "--save-dir",
        default=".",
        metavar="DIR",
        help="where a case that kills the server is saved (default: here)",
    )
    fz.add_argument(
        "--quiet", action="store_true", help="print only the summary (and any dead case)"
    )
    fz.set_defaults(run=run_fuzz, trace=False, dump=False)

    rp = sub.add_parser(
        "replay",
        help="replay a capture against a server and compare the replies",
        description=(
            "Replay the requests of a capture ('wireclient proxy --capture', or a pcap/pcapng "
            "file of MongoDB traffic) against URI, one connection per captured client "
            "connection, and compare each reply with the captured one (with --against, the "
            "replies of the two servers with each other), after normalising the fields that "
            "legitimately differ. Handshakes and authentication are done afresh with the URI's "
            "credentials; captured hello and SCRAM steps are not replayed. Exit status 0 when "
            "every reply is equal, 1 on any difference or error, 2 when the replay could not run."
        ),
    )
    rp.add_argument("capture", metavar="CAPTURE", help="a wireclient capture, pcap or pcapng file")
    rp.add_argument("uri", metavar="URI", help="the server to replay to")
    rp.add_argument(
        "--against",
        metavar="URI2",
        help="replay to this server as well and compare the two servers' replies",
    )
    rp.add_argument(
        "--speed",
        type=float,
        metavar="X",
        help="keep the captured timing, X times faster (default: as fast as replies come)",
    )
    rp.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="PATH",
        help="leave this field out of the comparison too: a name (at any depth) or a dotted path "
        "from the reply's top, * for any one field or index; repeatable",
    )
    rp.add_argument(
        "--json", metavar="FILE", help="write every difference and error, with the summary"
    )
    rp.add_argument(
        "--server-port",
        type=int,
        action="append",
        default=[],
        metavar="PORT",
        help="pcap: the server's port when no SYN says which side is the client (default 27017)",
    )
    rp.add_argument(
        "--show", type=int, default=20, metavar="N", help="differences printed (default 20)"
    )
    rp.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="bound connecting and every read (default: the URI's timeouts, else "
        f"{probe.DEFAULT_TIMEOUT:g})",
    )
    rp.set_defaults(run=run_replay)

    sub.add_parser(
        "affinity",
        add_help=False,  # its own parser (wireclient.toolkit.affinity) answers --help
        help="measure which sockets threads, greenlets and asyncio Tasks use, and what it "
        "costs ('wireclient affinity --help')",
    )
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["affinity"]:  # the affinity lab parses its own options
        from wireclient.toolkit import affinity

        return affinity.main(args_list[1:], prog=f"{PROG} affinity")
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)  # exits 2 on a bad argument, 0 after --help
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else USAGE
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except UsageError as exc:
        sys.stderr.write(f"{PROG} {args.subcommand}: error: {exc}\n")
        return USAGE
    except (InvalidDocument, ProtocolError) as exc:
        if isinstance(exc, ProtocolError) and exc.side != "local":
            sys.stderr.write(f"{PROG}: {type(exc).__name__}: {exc}\n")
            return FAILED
        sys.stderr.write(f"{PROG} {args.subcommand}: error: {exc}\n")  # our own input
        return USAGE
    except BrokenPipeError:  # an OSError, but not the network's: before the clause below
        return _reader_went_away()
    except (WireClientError, OSError) as exc:
        sys.stderr.write(f"{PROG}: {type(exc).__name__}: {exc}\n")
        return FAILED
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130


def _reader_went_away() -> int:
    """stdout's reader stopped reading (``wireclient decode x | head``): stop quietly, with
    the status a shell gives a program that SIGPIPE stopped. stdout is pointed at
    /dev/null first, so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real stdout (a test's capture): nothing to flush
        pass
    return BROKEN_PIPE


__all__ = ["BROKEN_PIPE", "FAILED", "OK", "USAGE", "UsageError", "build_parser", "main"]
