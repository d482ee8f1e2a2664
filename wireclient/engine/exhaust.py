"""Exhaust cursors: one getMore, and the stream of replies the server sends for it.

Theory of operation
-------------------
A find with ``exhaust=True`` (or option bit 64) opens its cursor with an ordinary ``find``
(``Executor.run``). Its first getMore is then sent by an ``ExhaustStream`` as an OP_MSG with
the ``exhaustAllowed`` flag bit, on a socket the stream checks out of the cursor's pool and
holds for itself (never a request's: an exhaust cursor is refused inside a request, whose
one socket per server could not be shared; a request the caller starts while iterating one
leaves the stream on its own socket). The stream is one of the pool's ``maxPoolSize``
sockets until it ends. A server that honours the flag answers with a run of replies, each
flagged ``moreToCome`` but the last, without being asked again: the stream reads them one
at a time, as the cursor's buffer runs dry, each within ``socketTimeoutMS`` (the socket's
``send_raw`` and ``receive_message``, which close it on any error).
MongoDB answers each reply "to" the previous one (its ``responseTo`` is the previous reply's
``requestID``); SecantusDB answers every one to the getMore itself; both are accepted,
anything else is a ``ProtocolError``.

The stream ends with a reply that has no ``moreToCome`` (the cursor is exhausted, the server
returned an error, or it ignored the flag, as a server may: the cursor then sends another
getMore when it needs one); the socket then goes back to its pool. A reply that ends the
cursor (cursor id 0, or an error) while still flagged ``moreToCome`` breaks the stream's
promise, so its socket is discarded instead. A cursor closed, rewound or garbage-collected
mid-stream abandons the stream: unread replies are in flight, so the socket is closed and
its pool slot freed (``Pool.discard_socket``, or from ``__del__`` the non-blocking
``Pool.checkin_from_callback``), then the cursor is killed as any unfinished cursor is.

Errors take the operation path's handlers: a network error or timeout closes the socket
(the network layer does) and goes to ``Executor.network_error`` (``AutoReconnect`` clears
the pool, ``NetworkTimeout`` does not); a malformed reply is checked by ``replies.check``
(``Executor.validate``); an error reply raises its ``OperationFailure`` through
``Executor.check``.

Command events (when listened to): every reply of the stream is published as a getMore of
its own, a ``CommandStartedEvent`` carrying the getMore command and a succeeded (or failed)
event for that reply, with one request id per pair: the getMore's for the first reply, then
the previous reply's ``requestID`` (the id of the getMore the server repeats for itself).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Tuple

from wireclient import protocol
from wireclient.errors import AutoReconnect, InvalidOperation, ProtocolError
from wireclient.rules import command
from wireclient.rules.limits import check_frame
from wireclient.rules.uri import format_address
from wireclient.transport import network
from wireclient.transport.steps import Steps

if TYPE_CHECKING:
    from wireclient.engine.executor import Executor
    from wireclient.pooling.pool import Pool
    from wireclient.pooling.requests import Requests

EXHAUST_IN_REQUEST = (
    "exhaust cursors cannot run inside a request: the server streams its replies over a "
    "socket held by the cursor alone, and a request's socket is shared by all its "
    "operations (end_request() first, or use a connection with auto_start_request=False, "
    "such as MongoClient)"
)


def refuse_in_request(requests: Requests) -> None:
    """``InvalidOperation`` when the caller is in a request, or would start one with its
    next operation (``auto_start_request``)."""
    if requests.auto_start or requests.current() is not None:
        raise InvalidOperation(EXHAUST_IN_REQUEST)


class ExhaustStream:
    """One exhaust getMore on a socket of ``pool``: ``first()`` sends it and returns the
    first reply document, ``next()`` each following one while ``active``; ``abandon()``
    drops the socket mid-stream."""

    def __init__(self, executor: Executor, pool: Pool, dbname: str, spec: Mapping[str, Any]):
        self._executor = executor
        self._pool = pool
        self._dbname = dbname
        self._spec = spec
        self._sock: Optional[network.SocketInfo] = None
        self._generation: Optional[int] = None
        self._request_id = 0  # the getMore's
        self._last_id = 0  # the latest reply's requestID
        self.replies = 0  # how many replies have been read

    @property
    def active(self) -> bool:
        """Whether the stream holds its socket: the server has more replies to send."""
        return self._sock is not None

    def first(self) -> Steps[Dict[str, Any]]:
        """Send the getMore (``exhaustAllowed`` over OP_MSG) and read its first reply."""
        executor = self._executor
        yield from executor.flush_kills()
        pool = self._pool
        sock = yield from pool.checkout()
        self._sock = sock
        self._generation = pool.generation_of(sock)
        message, _ = command.build_message(
            self._dbname, self._spec, (), False, None, sock.max_wire_version
        )
        if isinstance(message, protocol.OpMsg):  # before OP_MSG: a plain getMore
            message = message.replace(flags=message.flags | protocol.MsgFlags.exhaustAllowed)
        self._request_id = network.next_request_id()
        return (yield from self._read(sock, message))

    def next(self) -> Steps[Dict[str, Any]]:
        """Read the next reply the server sent unasked."""
        sock = self._sock
        if sock is None:
            raise InvalidOperation("the exhaust stream has ended")
        return (yield from self._read(sock, None))

    def abandon(self, from_gc: bool = False) -> None:
        """Drop the socket mid-stream: replies are still in flight, so it is closed, never
        reused. ``from_gc``: called from ``__del__``, where the pool's lock may be held."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        sock.close()
        if from_gc:
            self._pool.checkin_from_callback(sock)  # closed: dropped, its slot freed
        else:
            self._pool.discard_socket(sock)

    # -- one reply ----------------------------------------------------------------------

    def _read(self, sock: network.SocketInfo, message: Any) -> Steps[Dict[str, Any]]:
        executor = self._executor
        pool, generation = self._pool, self._generation
        events = executor.events
        observed = events is not None and events.command is not None
        pair_id = self._request_id if message is not None else self._last_id
        ids: Tuple[Any, ...] = ()
        if observed:
            ids = self._publish_started(sock, pair_id)
        started = time.perf_counter()
        try:
            header, reply, more = yield from self._exchange(sock, message)
        except BaseException as exc:
            if observed:
                self._publish_ended(ids, started, exc)
            if isinstance(exc, (AutoReconnect, ProtocolError)) and sock.closed:
                executor.network_error(pool, generation, exc)
            self._end(sock)
            raise
        if observed:
            self._publish_ended(ids, started, reply)
        self.replies += 1
        self._last_id = header.request_id
        try:
            executor.validate(pool, sock, generation, self._spec, reply, True)
        except BaseException:
            self._end(sock)
            raise
        ended_cursor = reply.get("ok") != 1 or not int(reply["cursor"]["id"])
        if more and ended_cursor:
            sock.close()  # the server promised another reply for a finished cursor
        if not more or ended_cursor:
            self._end(sock)
        if reply.get("ok") != 1:
            executor.check(pool, sock, generation, reply, "getMore")
        return reply

    def _exchange(
        self, sock: network.SocketInfo, message: Any
    ) -> Steps[Tuple[protocol.Header, Dict[str, Any], bool]]:
        """Send ``message`` (None: the stream goes on, nothing is sent) and read one reply:
        its header, its document, and whether it is flagged ``moreToCome``. The socket's
        ``send_raw`` / ``receive_message`` each run within ``socketTimeoutMS`` and close the
        socket on any error; so does a reply that answers neither the getMore nor the
        previous reply."""
        if message is not None:
            data = protocol.encode(message, self._request_id)
            check_frame(sock, data)  # the server's limits: refused before anything is sent
            if sock.compressor is not None:  # getMore is compressible (the compression spec)
                data = sock.compressor.frame(data)
            yield from sock.send_raw(data)
            answers: Tuple[int, ...] = (self._request_id,)
        else:
            answers = (self._last_id, self._request_id)
        header, reply = yield from sock.receive_message()
        try:
            if header.response_to not in answers:
                expected = " or ".join(str(a) for a in answers)
                raise ProtocolError(
                    f"{format_address(sock.address)}: streamed reply responseTo "
                    f"{header.response_to} answers neither the getMore nor the previous "
                    f"reply ({expected})"
                )
            document = command.reply_document(reply)
        except BaseException:
            sock.close()  # nothing more on this socket can be trusted
            raise
        return header, document, isinstance(reply, protocol.OpMsg) and reply.more_to_come

    def _end(self, sock: network.SocketInfo) -> None:
        """The stream is over: the socket goes back to its pool (which drops it if closed)."""
        self._sock = None
        if sock.closed:
            self._pool.discard_socket(sock)
        else:
            self._pool.return_socket(sock)

    # -- command events -----------------------------------------------------------------

    def _publish_started(self, sock: network.SocketInfo, request_id: int) -> Tuple[Any, ...]:
        from wireclient.monitoring import Caller, CommandStartedEvent

        events = self._executor.events
        assert events is not None
        requests = self._executor.requests
        document = {**self._spec, "$db": self._dbname}
        ids = (
            request_id,
            self._dbname,
            "getMore",
            self._pool.address,
            sock.local_address,
            sock.connection_id,
            Caller(requests.current() is not None, requests.caller_task()),
        )
        events.publish(events.command, "started", CommandStartedEvent(document, *ids))
        return ids

    def _publish_ended(self, ids: Tuple[Any, ...], started: float, outcome: Any) -> None:
        from wireclient.monitoring import CommandFailedEvent, CommandSucceededEvent

        events = self._executor.events
        assert events is not None
        micros = int((time.perf_counter() - started) * 1e6)
        if isinstance(outcome, BaseException) or outcome.get("ok") != 1:
            events.publish(events.command, "failed", CommandFailedEvent(outcome, micros, *ids))
        else:
            event = CommandSucceededEvent(outcome, micros, *ids)
            events.publish(events.command, "succeeded", event)


__all__ = ["EXHAUST_IN_REQUEST", "ExhaustStream", "refuse_in_request"]
