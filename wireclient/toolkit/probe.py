"""One socket to one server, driven by hand: what the command-line tool runs.

Theory of operation
-------------------
``parse_target`` reads a URI (or a bare ``host:port``) once, with the client's own parser
and validation, into a ``Target``: the one address, credentials, TLS context and timeouts.
``open_session`` returns a handshaken (and, with credentials, authenticated)
``network.SocketInfo`` from ``network.connect``; with a tracer, ``connect`` wraps the
socket in a ``trace.TracingSocket`` *before* the handshake (its ``wrap`` argument), so the
trace shows every byte the connection carries, frames that do not decode included: hello,
the SCRAM conversation, the command.

``command_message`` puts a command in its envelope (``command.build_message``; OP_QUERY on
``db.$cmd`` with ``op_query``, or a legacy query on another namespace), with any OP_MSG or
OP_QUERY flag bits the tester asked for. ``exchange`` sends one message and yields its
replies (none with ``moreToCome``; more than one while replies carry ``moreToCome``, as in
an exhaust stream, whether the server chains their ``responseTo`` as the protocol says or
answers each to the original request, as SecantusDB 0.7 does; the caller is told of the
latter). ``send_raw_and_wait`` sends bytes as they are and reports what came
back, frame by frame with their exact bytes, or that the server hung up, or kept silent.
"""

from __future__ import annotations

import socket
import time
from typing import (
    Any,
    Callable,
    Iterator,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from wireclient import protocol
from wireclient.errors import ConfigurationError, ProtocolError
from wireclient.rules import command, uri
from wireclient.rules.uri import Address
from wireclient.toolkit.trace import Frame, FrameStream, Tracer, TracingSocket
from wireclient.transport import compressors, network
from wireclient.transport.blocking import run

DEFAULT_TIMEOUT = 10.0


class Target(NamedTuple):
    address: Address
    credentials: Any
    ssl_context: Any
    app_name: Optional[str]
    connect_timeout: Optional[float]
    socket_timeout: Optional[float]
    database: Optional[str]
    compression: Any = None  # compressors.CompressionSettings from ?compressors=...


def _ms(options: Mapping[str, Any], name: str) -> Optional[float]:
    value = options.get(name)
    return None if value is None else (float(value) / 1000.0 or None)


def parse_target(text: str, timeout: Optional[float] = None) -> Target:
    """A ``Target`` from ``mongodb://...`` or ``host[:port]``; ``ConfigurationError`` if bad.

    ``timeout`` (seconds) bounds connecting and every read; without it the URI's
    ``connectTimeoutMS`` / ``socketTimeoutMS`` apply, and ``DEFAULT_TIMEOUT`` otherwise.
    """
    if "://" not in text:
        text = uri.SCHEME + text
    parsed = uri.parse_uri(text)
    if len(parsed.hosts) != 1:
        raise ConfigurationError(
            f"the URI names {len(parsed.hosts)} hosts: the tool talks to one server, name it"
        )
    options = parsed.options
    # The client's own rules, so the tool reads credentials and TLS options as it does.
    from wireclient.rules.options import check_auth_options
    from wireclient.transport.tls import make_ssl_context

    check_auth_options(parsed.username, options)
    credentials = None
    if parsed.username is not None:
        from wireclient.transport.auth import credentials_from_uri

        credentials = credentials_from_uri(
            parsed.username, parsed.password, options, parsed.database
        )
    ssl_context = make_ssl_context(options)
    connect_timeout = _ms(options, "connectTimeoutMS") if timeout is None else timeout
    socket_timeout = _ms(options, "socketTimeoutMS") if timeout is None else timeout
    if timeout is None and "connectTimeoutMS" not in options:
        connect_timeout = DEFAULT_TIMEOUT
    if timeout is None and "socketTimeoutMS" not in options:
        socket_timeout = DEFAULT_TIMEOUT
    return Target(
        parsed.hosts[0],
        credentials,
        ssl_context,
        options.get("appName"),
        connect_timeout,
        socket_timeout,
        parsed.database,
        compressors.settings_from_options(options),
    )


def open_session(
    target: Target, tracer: Optional[Tracer] = None, handshake: bool = True
) -> network.SocketInfo:
    """A connected socket: handshaken and authenticated unless ``handshake`` is False."""
    wrap = None if tracer is None else (lambda raw: TracingSocket(raw, tracer))
    return run(
        network.connect(
            target.address,
            target.connect_timeout,
            target.socket_timeout,
            target.ssl_context,
            app_name=target.app_name,
            credentials=target.credentials,
            wrap=wrap,
            handshake=handshake,
            compression=target.compression,
        )
    )


# --------------------------------------------------------------------------- commands


def parse_flags(text: Optional[str], flags: Any) -> int:
    """``'checksumPresent,exhaustAllowed'`` (names of the ``flags`` enum, or numbers such as
    ``0x4`` for bits no name covers) -> the int. ``ConfigurationError`` on unknown names."""
    if not text:
        return 0
    value = 0
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        member = flags.__members__.get(item)
        if member is not None:
            value |= int(member)
            continue
        try:
            value |= int(item, 0)
        except ValueError:
            names = ", ".join(flags.__members__)
            raise ConfigurationError(
                f"unknown {flags.__name__} flag {item!r} (known: {names}; or a number)"
            ) from None
    if not 0 <= value <= 0xFFFFFFFF:
        raise ConfigurationError(f"flags 0x{value:x} do not fit the 32 flag bits")
    return value


def command_message(
    dbname: str,
    spec: Mapping[str, Any],
    sequences: Sequence[protocol.DocumentSequence],
    max_wire_version: int,
    flags: int = 0,
    op_query: bool = False,
    namespace: Optional[str] = None,
) -> Tuple[Union[protocol.OpMsg, protocol.OpQuery], bool]:
    """``(message, expect_reply)``: ``spec`` in its envelope for ``dbname``.

    By default the server's envelope (OP_MSG from wire version 6); ``op_query`` forces
    OP_QUERY on ``dbname.$cmd`` (sequences become arrays), and ``namespace`` sends a legacy
    OP_QUERY on that namespace instead, with ``spec`` as the query. ``flags`` are OR-ed
    into the message's flags (``MsgFlags`` or ``QueryFlags`` bits, as the message is).
    """
    if op_query or namespace is not None:
        message, _ = command.build_message(dbname, spec, sequences, False, None, 5)
        assert isinstance(message, protocol.OpQuery)
        if namespace is not None and namespace != message.full_collection_name:
            body = dict(message.query)
            body.pop("$db", None)
            message = protocol.OpQuery(namespace, body, number_to_return=0)
        return message.replace(flags=message.flags | flags), True
    message, expect_reply = command.build_message(
        dbname, spec, sequences, False, None, max_wire_version
    )
    if isinstance(message, protocol.OpQuery):
        if flags:
            raise ConfigurationError(
                f"the server speaks wire version {max_wire_version}, so commands go over "
                "OP_QUERY: give OP_QUERY flags with --op-query"
            )
        return message, expect_reply
    message = message.replace(flags=message.flags | flags)
    return message, not message.more_to_come


class Unchained(NamedTuple):
    """An exhaust reply that answers the original request rather than the reply before it
    (the wire protocol chains each streamed reply's ``responseTo`` to the previous reply's
    ``requestID``; SecantusDB 0.7 answers every one to the original request)."""

    reply_number: int  # 2 for the second reply of the stream, ...
    response_to: int  # what it answers: the original requestID
    expected: int  # the previous reply's requestID


def exchange(
    session: network.SocketInfo,
    message: Any,
    expect_reply: bool = True,
    on_unchained: Optional[Callable[[Unchained], None]] = None,
) -> Iterator[Tuple[protocol.Header, protocol.Message]]:
    """Send ``message`` (compressed when the session negotiated a compressor: the URI's
    ``compressors``); yield its reply, and the next ones while replies have moreToCome.

    A streamed reply that answers the original request instead of the reply before it is
    still yielded, after ``on_unchained`` is told (a tool shows every reply and warns); a
    reply answering anything else is a ``ProtocolError`` (the socket is closed)."""
    request_id = network.next_request_id()
    data = protocol.encode(message, request_id)
    if session.compressor is not None:
        data = session.compressor.frame(data)
    run(session.send_raw(data))
    if not expect_reply:
        return
    answers = request_id
    number = 0
    while True:
        header, reply = run(session.receive_message())
        number += 1
        if header.response_to != answers:
            if number > 1 and header.response_to == request_id:
                if on_unchained is not None:
                    on_unchained(Unchained(number, request_id, answers))
            else:
                session.close()
                raise ProtocolError(
                    f"reply responseTo {header.response_to} does not answer requestID {answers}"
                )
        yield header, reply
        if not (isinstance(reply, protocol.OpMsg) and reply.more_to_come):
            return
        answers = header.request_id  # an exhaust stream: each reply answers the last one


def failed(message: Any) -> bool:
    """Whether a reply says the command failed (``ok`` other than 1, or QueryFailure)."""
    if isinstance(message, protocol.OpReply):
        if message.response_flags & protocol.ReplyFlags.QueryFailure:
            return True
        docs = message.documents
        return bool(docs) and "ok" in docs[0] and docs[0]["ok"] != 1
    if isinstance(message, protocol.OpMsg):
        body = message.body
        return "ok" in body and body["ok"] != 1
    return False


# --------------------------------------------------------------------------- raw bytes

_REPLIED = (protocol.OP_MSG, protocol.OP_QUERY, protocol.OP_GET_MORE)


def expected_replies(data: bytes) -> int:
    """How many replies the frames in ``data`` call for (at least 1: a malformed frame is
    answered by an error reply, a hang-up, or silence, and one of them is worth waiting for)."""
    count = 0
    for frame in FrameStream().feed(data):
        message = frame.message
        if isinstance(message, protocol.OpCompressed):
            try:
                message = protocol.decompress(message)
            except (ProtocolError, ConfigurationError):
                message = None
        if message is None:
            count += 1
        elif message.op_code in _REPLIED and not (
            isinstance(message, protocol.OpMsg) and message.more_to_come
        ):
            count += 1
    return max(count, 1)


class Outcome(NamedTuple):
    frames: List[Frame]  # what came back, in order, each with its exact bytes
    ending: str  # "replied", "undecodable", "closed" or "silent"
    detail: str


def send_raw_and_wait(
    session: network.SocketInfo, data: bytes, replies: int, timeout: Optional[float]
) -> Outcome:
    """Send ``data`` as it is, then read until ``replies`` frames came back, the server
    closed the connection, or ``timeout`` seconds passed without the next one."""
    run(session.send_raw(data))
    sock = session.sock
    stream = FrameStream(session.max_message_size or protocol.DEFAULT_MAX_MESSAGE_SIZE)
    frames: List[Frame] = []
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while len(frames) < replies:
            if deadline is not None:
                sock.settimeout(max(deadline - time.monotonic(), 0.001))
            try:
                data = sock.recv(64 * 1024)
            except socket.timeout:
                return Outcome(frames + stream.flush(), "silent", f"no reply within {timeout:g} s")
            except OSError as exc:
                return Outcome(frames + stream.flush(), "closed", f"connection lost: {exc}")
            if not data:
                return Outcome(
                    frames + stream.flush(), "closed", "the server closed the connection"
                )
            for frame in stream.feed(data):
                frames.append(frame)
                if frame.error is not None:  # the stream cannot be framed any further
                    return Outcome(frames, "undecodable", frame.error)
            if timeout is not None:  # each reply gets the whole timeout
                deadline = time.monotonic() + timeout
        return Outcome(frames, "replied", f"{len(frames)} repl{'y' if len(frames) == 1 else 'ies'}")
    finally:
        session.close()


__all__ = [
    "DEFAULT_TIMEOUT",
    "Outcome",
    "Target",
    "Unchained",
    "command_message",
    "exchange",
    "expected_replies",
    "failed",
    "open_session",
    "parse_flags",
    "parse_target",
    "send_raw_and_wait",
]
