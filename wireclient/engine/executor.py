"""The operation path: the one place every message a client sends goes through.

Theory of operation
-------------------
``Collection``, ``Cursor`` and ``Database`` build command documents; ``Executor.run`` (one
message) and ``Executor.write`` (a write command whose documents may need several batches)
carry them, always in this order:

1. flush the cursor kills the garbage collector queued (no I/O runs in ``__del__``);
2. find the caller's request (``Requests.current``, a builtin lookup; for a caller in none,
   ``Requests.for_operation``: where ``auto_start_request`` is decided) and choose the
   server: a ``Selector``'s plain ``select`` returns the pool of the one server, or of the
   member the read preference (and the request's pin) picks in a replica set; only when it
   says None (nothing suitable is known now) does the step ``select_waiting`` wait for the
   monitor, so the usual operation pays no generator for its selection;
3. take the caller's socket: the request's socket on that pool if it is still usable, else a
   pooled one (bound to the request, if there is one);
4. encode (``command.build_frame``: the envelope for that server's wire version, as a whole
   frame), check the frame against the socket's limits (``limits.check_frame``, between
   encoding and sending, for a frame longer than one of them), send and read the one reply,
   or none for ``moreToCome`` (``SocketInfo.send_and_receive``), and check the fields of
   the reply before anything reads them (``replies.check``): a malformed reply document
   closes the socket and is handled like a broken frame;
5. hand any error to one error handler (``network_error``, ``_reply_error``), which decides:
   drop the socket (the network layer closed it), clear the pool by generation, tell the
   selector (a replica set marks the member Unknown and wakes its monitor);
6. give the socket back (a request keeps it), then check the reply (``command``).

Pool generations make one server fault cost one error: an error on a socket of an older
generation than the pool's (the pool was cleared since it was taken) changes nothing, and a
request whose bound socket is of an older generation keeps it while it is alive, or quietly
binds a new one if the server closed it (``Pool.usable``). A network timeout closes its
socket but does not clear the pool (the server is slow, not gone). A new socket that fails
before its handshake completes (``handshake_error``, told by the pool's connector: timeouts
count there) marks the server Unknown, unless it was begun before the pool's last clear.

Size limits are the server's, learnt in each socket's handshake. A frame longer than
``maxMessageSizeBytes``, or whose command document is over ``maxBsonObjectSize`` plus the
16 KiB command allowance (a huge filter, pipeline, update or any command), raises
``DocumentTooLarge`` with nothing sent; the socket is intact, so it goes back to its pool (or
stays with its request) and nothing reaches the error handler. A write's documents are
encoded and checked, each of them, before its first batch is sent (``limits.batches``).

The difference between one server and a replica set is the ``Selector`` only: a
``SingleServer`` here, a ``ReplicaSetSelector`` (``replica_set_selector.py``) fed by its
monitor, or the routers' ``MongosSelector`` (``router_selector.py``). The replica-set selectors live
in modules of their own, loaded only by the connections that use them (they bring the
topology, the monitor and read preferences); ``assembly.py`` chooses and builds one.
"""

from __future__ import annotations

import threading
import time
import types
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple

import bson

from wireclient import protocol
from wireclient.errors import (
    AutoReconnect,
    ConfigurationError,
    NetworkTimeout,
    ProtocolError,
    WireClientError,
)
from wireclient.pooling.requests import Requests, RequestState
from wireclient.rules import command, replies
from wireclient.rules.limits import batches, check_frame
from wireclient.rules.options import DEFAULT_LOCAL_THRESHOLD_MS
from wireclient.rules.replies import passes_quickly
from wireclient.rules.uri import format_address
from wireclient.transport import network
from wireclient.transport.steps import Steps, done

if TYPE_CHECKING:
    from typing import Protocol

    from wireclient.engine.exhaust import ExhaustStream
    from wireclient.engine.topology_events import TopologyEvents
    from wireclient.monitoring import EventPublisher
    from wireclient.pooling.pool import Pool
    from wireclient.transport.network import SocketInfo

    class Selector(Protocol):
        """How an operation's server is chosen, and what the topology hears of errors."""

        def select(
            self, for_read: bool, read_preference: Any, state: Optional[RequestState]
        ) -> Optional[Pool]: ...

        def select_waiting(
            self, for_read: bool, read_preference: Any, state: Optional[RequestState]
        ) -> Steps[Pool]: ...

        def wait_here(self, steps: Steps[Any]) -> Any: ...

        def read_preference_document(
            self, pool: Pool, for_read: bool, read_preference: Any
        ) -> Optional[Dict[str, Any]]: ...

        def primary_address(self) -> Tuple[str, int]: ...

        def server_failed(self, pool: Pool, message: str) -> None: ...

        def handshaken(self, pool: Pool, reply: Mapping[str, Any]) -> None: ...

        def not_primary(self, pool: Pool, error: Mapping[str, Any]) -> bool: ...

        def pools(self) -> List[Pool]: ...

        fills_pools_lazily: bool
        read_preference: Any  # the connection's default (None: one server's, PRIMARY)
        local_threshold_ms: float  # the latency window of reads (or of routers), in ms

        def set_read_preference(self, value: Any) -> None: ...

        def close(self) -> None: ...

        def wait_stopped(self) -> Steps[bool]: ...


Document = Mapping[str, Any]

_LOOK_UP: Any = object()  # run(state=...) not given: look the caller's request up
_CLEARS_ON_STATE_CHANGE_BELOW = 8  # servers before 4.2 close every socket on a step-down


class SingleServer:
    """The selector of a ``Connection``: every operation goes to its one pool. Its read
    preference is None (reads go to the server) or, when set, PRIMARY; its latency window
    is kept for pymongo 2.8's ``secondary_acceptable_latency_ms``, and chooses nothing.

    With server or topology listeners it also keeps a one-server view for their events
    (``topology_events.py``): the server is described by each new socket's handshake
    (``handshaken``) and marked Unknown by the error handler (``server_failed``,
    ``not_primary``); ``close()`` publishes the closing events, and the next operation the
    opening ones again. Without such listeners none of this is built or loaded."""

    fills_pools_lazily = True  # minPoolSize: topped up after an operation (no thread here)

    def __init__(self, pool: Pool, events: Optional[EventPublisher] = None) -> None:
        self.pool = pool
        self.read_preference: Any = None
        self.local_threshold_ms = float(DEFAULT_LOCAL_THRESHOLD_MS)
        self._topology_events: Optional[TopologyEvents] = None
        self._view: Any = None  # the one-server TopologyView the events show
        self._reopen = False  # closed with listeners: the next operation opens again
        if events is not None and (events.server is not None or events.topology is not None):
            from wireclient.engine.topology_events import TopologyEvents
            from wireclient.sdam.topology import TopologyView

            self._view_lock = threading.Lock()
            self._view = TopologyView.from_seeds([pool.address], None)
            self._topology_events = TopologyEvents(events)
            self._topology_events.opened(self._view)

    def set_read_preference(self, value: Any) -> None:
        if value.mode != "primary":
            raise ConfigurationError(
                f"read preference {value.name} applies to a replica set: use ReplicaSetConnection"
            )
        self.read_preference = value

    def select(
        self, for_read: bool, read_preference: Any, state: Optional[RequestState]
    ) -> Optional[Pool]:
        """The one pool (never None: nothing to wait for)."""
        if self._reopen:
            self._open_again()
        return self.pool

    def select_waiting(
        self, for_read: bool, read_preference: Any, state: Optional[RequestState]
    ) -> Steps[Pool]:
        """Never needed (``select`` always answers); the ``Selector`` interface's."""
        return done(self.pool)

    def wait_here(self, steps: Steps[Any]) -> Any:
        """Never needed; the ``Selector`` interface's (``blocking.run`` for a step)."""
        from wireclient.transport.blocking import run

        return run(steps)

    def read_preference_document(
        self, pool: Pool, for_read: bool, read_preference: Any
    ) -> Optional[Dict[str, Any]]:
        return None

    def primary_address(self) -> Tuple[str, int]:
        return self.pool.address

    def server_failed(self, pool: Pool, message: str) -> None:
        """Nothing to choose differently: the pool was cleared, the next operation
        reconnects. Listeners hear that the server is Unknown."""
        if self._topology_events is not None:
            self._mark_unknown(f"{format_address(pool.address)}: {message}")

    def not_primary(self, pool: Pool, error: Mapping[str, Any]) -> bool:
        if self._topology_events is not None:
            message = error.get("errmsg") or error.get("code")
            self._mark_unknown(f"{format_address(pool.address)}: {message}")
        return True

    def handshaken(self, pool: Pool, reply: Mapping[str, Any]) -> None:
        """A new socket's handshake: for listeners, what the server says it is now."""
        if self._topology_events is not None:
            from wireclient.sdam.topology import ServerDescription

            self._describe(ServerDescription.from_reply(pool.address, reply, None))

    def _mark_unknown(self, message: str) -> None:
        from wireclient.sdam.topology import ServerDescription

        self._describe(ServerDescription.unknown(self.pool.address, message))

    def _describe(self, description: Any) -> None:
        assert self._topology_events is not None
        with self._view_lock:
            old = self._view
            members = types.MappingProxyType({description.address: description})
            new = self._view = old._replace(members=members)
        self._topology_events.changed(old, new)

    def _open_again(self) -> None:
        self._reopen = False
        if self._topology_events is not None:
            self._topology_events.opened(self._view)

    def pools(self) -> List[Pool]:
        return [self.pool]

    def close(self) -> None:
        """No monitor to stop; listeners hear the topology close. Its sockets are closed
        with it, so the server is Unknown again until the next one's handshake."""
        if self._topology_events is not None:
            self._topology_events.closed(self._view)
            with self._view_lock:
                self._view = self._view.from_seeds([self.pool.address], None)
            self._reopen = True

    def wait_stopped(self) -> Steps[bool]:
        """Nothing runs in the background."""
        return done(True)


class Executor:
    """Runs every message of one connection (see the module notes)."""

    def __init__(
        self, selector: Selector, requests: Requests, events: Optional[EventPublisher] = None
    ) -> None:
        self.selector = selector
        self.requests = requests
        self.events = events  # command events, when listened to
        self._kill_queue: List[Tuple[Pool, str, str, int]] = []

    # -- the path -----------------------------------------------------------------------

    def select(
        self, for_read: bool = False, read_preference: Any = None, operation: bool = False
    ) -> Pool:
        """The pool an operation would run on now. A cursor (``operation=True``) keeps it for
        its getMores, and its request (started now if ``auto_start_request``) pins it.
        A plain call: when selection must wait for the monitor, the blocking client blocks
        and an asyncio client raises (``Selector.wait_here``); a step uses
        ``select_waiting``."""
        state = self.requests.for_operation() if operation else self.requests.current()
        selector = self.selector
        pool = selector.select(for_read, read_preference, state)
        if pool is None:
            pool = selector.wait_here(selector.select_waiting(for_read, read_preference, state))
        return pool

    def select_waiting(
        self, for_read: bool = False, read_preference: Any = None, operation: bool = False
    ) -> Steps[Pool]:
        """``select`` as a step: waits for the monitor (the asyncio client awaits)."""
        state = self.requests.for_operation() if operation else self.requests.current()
        pool = self.selector.select(for_read, read_preference, state)
        if pool is None:
            pool = yield from self.selector.select_waiting(for_read, read_preference, state)
        return pool

    def select_for_cursor(
        self, for_read: bool, read_preference: Any
    ) -> Steps[Tuple[Pool, Optional[RequestState]]]:
        """``select(..., operation=True)``, and the caller's request it looked up: a cursor
        keeps the pool for its getMores and hands the request to ``run(state=...)``, so its
        first batch looks the caller up once. Waits for the monitor when nothing suitable
        is known now."""
        state = self.requests.current()  # a builtin: the usual caller is in a request
        if state is None:
            state = self.requests.for_operation()
        pool = self.selector.select(for_read, read_preference, state)
        if pool is None:
            pool = yield from self.selector.select_waiting(for_read, read_preference, state)
        return pool, state

    def run(
        self,
        dbname: str,
        spec: Document,
        sequences: Sequence[protocol.DocumentSequence] = (),
        unacknowledged: bool = False,
        pool: Optional[Pool] = None,
        for_read: bool = False,
        read_preference: Any = None,
        check: bool = True,
        state: Any = _LOOK_UP,
    ) -> Steps[Optional[Dict[str, Any]]]:
        """Run one command; its reply document (None when unacknowledged). ``state`` is the
        caller's request when the caller has just looked it up (``select_for_cursor``)."""
        if self._kill_queue:
            yield from self.flush_kills()
        if state is _LOOK_UP:
            state = self.requests.current()  # a builtin: the usual caller is in a request
            if state is None:
                state = self.requests.for_operation()
        if pool is None:
            pool = self.selector.select(for_read, read_preference, state)
            if pool is None:  # nothing suitable known now: wait for the monitor
                pool = yield from self.selector.select_waiting(for_read, read_preference, state)
        rp_document = self.selector.read_preference_document(pool, for_read, read_preference)
        sock = yield from self.acquire(pool, state)
        generation = pool.generation_of(sock)
        try:
            reply = yield from self._exchange(
                pool, sock, generation, dbname, spec, sequences, unacknowledged, rp_document
            )
            if reply is not None and check:
                self.validate(pool, sock, generation, spec, reply, not unacknowledged)
        finally:
            self.release(pool, sock, state)
        if pool.min_size and pool.open_count < pool.min_size and self.selector.fills_pools_lazily:
            yield from self._fill(pool)
        if reply is not None and check and (reply.get("ok") != 1 or "writeConcernError" in reply):
            self.check(pool, sock, generation, reply, next(iter(spec), "command"))
        return reply

    def exhaust_stream(self, dbname: str, spec: Document, pool: Pool) -> ExhaustStream:
        """An exhaust getMore ``spec`` on ``pool``, not yet sent: ``first()`` sends it on a
        socket the stream holds until its replies end (``wireclient.engine.exhaust``)."""
        from wireclient.engine.exhaust import ExhaustStream

        return ExhaustStream(self, pool, dbname, spec)

    def _fill(self, pool: Pool) -> Steps[None]:
        try:
            yield from pool.fill_to_minimum()
        except WireClientError:  # best effort: the next operation meets the fault itself
            pass

    def write(
        self,
        dbname: str,
        spec: Document,
        field: str,
        documents: Sequence[Any],
        unacknowledged: bool,
    ) -> Steps[Optional[Dict[str, Any]]]:
        """Run a write command whose ``field`` documents (encoded ``bytes``, or mappings
        encoded here) travel in kind-1 sequences, split into batches by the server's limits
        (``limits.batches``: every document is checked before anything is sent); stops at the
        first batch that fails. Returns the last batch's reply (None when unacknowledged)."""
        if self._kill_queue:
            yield from self.flush_kills()
        state = self.requests.current()  # a builtin: the usual caller is in a request
        if state is None:
            state = self.requests.for_operation()
        pool = self.selector.select(False, None, state)
        if pool is None:  # no primary known now: wait for the monitor
            pool = yield from self.selector.select_waiting(False, None, state)
        sock = yield from self.acquire(pool, state)
        generation = pool.generation_of(sock)
        name = next(iter(spec), "command")
        reply: Optional[Dict[str, Any]] = None
        try:
            # OP_MSG: the command is encoded once, whatever the number of batches
            envelopes = command.write_envelopes(dbname, spec, unacknowledged, sock.max_wire_version)
            body, flags, frame = envelopes if envelopes is not None else (None, 0, None)
            for batch in batches(dbname, spec, field, documents, unacknowledged, sock, frame):
                if body is None:  # wire 4 and 5: the documents go inside the command
                    seq = protocol.encoded_sequence(field, batch)
                    reply = yield from self._exchange(
                        pool, sock, generation, dbname, spec, (seq,), unacknowledged, None
                    )
                else:
                    request_id = network.next_request_id()
                    data = protocol.encode_msg(request_id, body, flags, field, batch)
                    reply = yield from self._exchange(
                        pool, sock, generation, dbname, spec, (), unacknowledged, None, data,
                        request_id,
                    )  # fmt: skip
                if reply is not None:
                    self.validate(pool, sock, generation, spec, reply, not unacknowledged)
                    self.check(pool, sock, generation, reply, name)
                    # checked just now (replies.check: the write's shape), so only a reply
                    # that carries errors needs raise_write_errors
                    if "writeErrors" in reply or "writeConcernError" in reply:
                        command.raise_write_errors(reply)
        finally:
            self.release(pool, sock, state)
        return reply

    def acquire(self, pool: Pool, state: Optional[RequestState]) -> Steps[SocketInfo]:
        """The caller's socket on ``pool``: its request's, if still usable, else a pooled
        one (bound to the request, if there is one)."""
        if state is None:
            return (yield from pool.checkout())
        sock = state.sockets.get(pool)
        if sock is not None:
            if pool.usable(sock):
                return sock
            del state.sockets[pool]  # dropped by the pool: forget it even if checkout fails
        # A new socket that fails to connect or handshake is reported by the pool's
        # connector to ``handshake_error``.
        sock = yield from pool.checkout()
        state.sockets[pool] = sock
        return sock

    def release(self, pool: Pool, sock: SocketInfo, state: Optional[RequestState]) -> None:
        """Give back what ``acquire`` gave: a request keeps its socket unless it broke."""
        if state is not None and state.sockets.get(pool) is sock:
            if sock.closed:  # broken: the request binds a new one on its next operation
                del state.sockets[pool]
                pool.discard_socket(sock)
            return
        pool.return_socket(sock)

    def _exchange(
        self,
        pool: Pool,
        sock: SocketInfo,
        generation: Optional[int],
        dbname: str,
        spec: Document,
        sequences: Sequence[protocol.DocumentSequence],
        unacknowledged: bool,
        rp_document: Optional[Dict[str, Any]],
        frame: Optional[bytes] = None,
        request_id: int = 0,
    ) -> Steps[Optional[Dict[str, Any]]]:
        """Send ``spec`` on ``sock`` (or ``frame``, a write batch's, encoded already with
        ``request_id``) and read its reply; the error handler hears of a broken
        conversation."""
        observed = self.events is not None and self.events.command is not None
        if frame is not None:
            expect_reply = not unacknowledged
            if observed:
                return (
                    yield from self._exchange_observed(
                        pool, sock, generation, dbname, frame, expect_reply, request_id
                    )
                )
        else:
            request_id = network.next_request_id()
            if observed:  # the events show the command as given (tuples, SONs), not decoded
                message, expect_reply = command.build_message(
                    dbname, spec, sequences, unacknowledged, rp_document, sock.max_wire_version
                )
                return (
                    yield from self._exchange_observed(
                        pool, sock, generation, dbname, message, expect_reply, request_id
                    )
                )
            frame, expect_reply = command.build_frame(
                dbname, spec, sequences, unacknowledged, rp_document, sock.max_wire_version,
                request_id,
            )  # fmt: skip
        # check_frame refuses a frame over the server's limits before it is sent; a frame
        # within both of them passes it whatever it holds, so it is not called for one
        size = len(frame)
        check = check_frame if size > sock.max_bson_size or size > sock.max_message_size else None
        try:
            return (yield from sock.send_and_receive(frame, expect_reply, check, request_id))
        except (AutoReconnect, ProtocolError) as exc:
            if sock.closed:  # not a message we refused to build: the conversation broke
                self.network_error(pool, generation, exc)
            raise

    def validate(
        self,
        pool: Pool,
        sock: SocketInfo,
        generation: Optional[int],
        spec: Document,
        reply: Document,
        acknowledged: bool,
    ) -> None:
        """Check the reply's fields before anything reads them: the usual reply passes
        ``replies.passes_quickly``'s few exact tests, anything else ``replies.check`` in full. A
        malformed reply document makes the conversation as untrustworthy as a broken frame:
        the socket is closed and the error handled as one."""
        if passes_quickly(spec, reply, acknowledged):
            return
        try:
            replies.check(spec, reply, format_address(pool.address), acknowledged)
        except ProtocolError as exc:
            sock.close()
            self.network_error(pool, generation, exc)
            raise

    def _exchange_observed(
        self,
        pool: Pool,
        sock: SocketInfo,
        generation: Optional[int],
        dbname: str,
        message: Any,
        expect_reply: bool,
        request_id: int,
    ) -> Steps[Optional[Dict[str, Any]]]:
        """``_exchange`` with command events around the send and the reply (``message``: a
        message object, or a frame encoded with ``request_id``)."""
        from wireclient.monitoring import (
            Caller,
            CommandFailedEvent,
            CommandStartedEvent,
            CommandSucceededEvent,
            is_sensitive,
        )

        events = self.events
        assert events is not None
        document = _command_document(message)
        name = next(iter(document), "command")
        ids = (
            request_id,
            dbname,
            name,
            pool.address,
            sock.local_address,
            sock.connection_id,
            Caller(self.requests.current() is not None, self.requests.caller_task()),
        )
        sensitive = is_sensitive(name, document)  # then the reply is hidden too
        shown_command = {} if sensitive else document
        events.publish(events.command, "started", CommandStartedEvent(shown_command, *ids))
        started = time.perf_counter()
        try:
            reply = yield from sock.send_and_receive(message, expect_reply, check_frame, request_id)
        except BaseException as exc:
            micros = int((time.perf_counter() - started) * 1e6)
            events.publish(events.command, "failed", CommandFailedEvent(exc, micros, *ids))
            if isinstance(exc, (AutoReconnect, ProtocolError)) and sock.closed:
                self.network_error(pool, generation, exc)
            raise
        micros = int((time.perf_counter() - started) * 1e6)
        if reply is not None and reply.get("ok") != 1:
            failure = {} if sensitive else reply
            events.publish(events.command, "failed", CommandFailedEvent(failure, micros, *ids))
        else:
            shown = {} if sensitive else (reply if reply is not None else {"ok": 1})
            events.publish(events.command, "succeeded", CommandSucceededEvent(shown, micros, *ids))
        return reply

    # -- the error handler --------------------------------------------------------------

    def handshake_error(self, pool: Pool, generation: int, exc: BaseException) -> None:
        """A new socket of ``pool``, begun in ``generation``, failed to connect, handshake or
        authenticate (``Pool.establishment_fault``: on the network, timeouts included, as a
        server too slow to answer a hello is not one to send work to; or its credentials
        were refused, as they will be on every new socket); the pool clears itself. The
        server is marked Unknown, unless the pool was cleared while that socket was being
        made: then the fault was reported already and changes nothing. Whoever asked for
        the socket (an operation, or ``minPoolSize``'s filling) gets the error."""
        if generation == pool.generation:
            self.selector.server_failed(pool, f"could not connect: {exc}")

    def network_error(self, pool: Pool, generation: Optional[int], exc: BaseException) -> None:
        """A socket broke mid-conversation (the network layer has closed it)."""
        if isinstance(exc, NetworkTimeout):
            return  # slow, not gone: only that socket is lost
        if generation == pool.generation:  # an older socket's error was handled already
            pool.clear(pause=True)  # paused if monitored, until the monitor's next check
            self.selector.server_failed(pool, f"network error during an operation: {exc}")

    def check(
        self,
        pool: Pool,
        sock: SocketInfo,
        generation: Optional[int],
        reply: Document,
        name: str,
    ) -> None:
        """Raise the typed error for a failed reply; tell the error handler about it, and
        about a ``writeConcernError`` (written, but the member may be stepping down)."""
        if reply.get("ok") != 1:
            self._reply_error(pool, sock, generation, reply)
            command.check_reply(reply, name)
        elif "writeConcernError" in reply:
            self._reply_error(pool, sock, generation, reply["writeConcernError"])

    def _reply_error(
        self, pool: Pool, sock: SocketInfo, generation: Optional[int], error: Document
    ) -> None:
        code = error.get("code")
        if not command.is_not_primary(code, str(error.get("errmsg", ""))):
            return
        if generation != pool.generation:
            return  # from before the pool was cleared: already handled
        if not self.selector.not_primary(pool, error):
            return  # stale (topologyVersion): changes nothing
        if code in command.SHUTDOWN_CODES or sock.max_wire_version < _CLEARS_ON_STATE_CHANGE_BELOW:
            pool.clear(pause=True)  # paused if monitored, until the monitor's next check

    # -- cursors killed by the garbage collector ----------------------------------------

    def defer_kill(self, pool: Pool, dbname: str, collection: str, cursor_id: int) -> None:
        """Called from Cursor.__del__: no I/O there, the next operation sends the kill."""
        self._kill_queue.append((pool, dbname, collection, cursor_id))

    def flush_kills(self) -> Steps[None]:
        """Kill the cursors the garbage collector found, one command per namespace."""
        queue, self._kill_queue = self._kill_queue, []
        if not queue:
            return
        batches: Dict[Tuple[int, str, str], Tuple[Pool, List[int]]] = {}
        for pool, dbname, collection, cursor_id in queue:
            batches.setdefault((id(pool), dbname, collection), (pool, []))[1].append(cursor_id)
        for (_, dbname, collection), (pool, ids) in batches.items():
            try:
                yield from self.run(
                    dbname, {"killCursors": collection, "cursors": ids}, pool=pool, check=False
                )
            except WireClientError:  # best effort: the server times idle cursors out anyway
                continue

    # -- lifetime -----------------------------------------------------------------------

    def close(self) -> None:
        """Close every idle socket now and every lent one when it comes back; the caller's
        own request sockets go now; a replica set's monitor stops (a thread is joined, an
        asyncio Task cancelled: ``wait_stopped`` waits for its end). The connection stays
        usable."""
        self._kill_queue.clear()
        self.selector.close()
        pools = self.selector.pools()
        for pool in pools:
            pool.close(reopen=True)  # a Connection reconnects after close()
        self.requests.close_own()

    def wait_stopped(self) -> Steps[bool]:
        """After ``close()``: wait until nothing of the connection runs in the background
        (a replica set's asyncio monitor Task has ended); whether that is so."""
        return (yield from self.selector.wait_stopped())


def _command_document(message: Any) -> Dict[str, Any]:
    """The command as it goes out: the body with its document sequences as arrays."""
    if isinstance(message, bytes):  # a write's batch, encoded: as it would be decoded
        message = protocol.decode(message, max(len(message), protocol.HEADER_SIZE))[1]
    if isinstance(message, protocol.OpMsg):
        body = message.body  # a write's batches carry their command encoded once
        document = bson.decode(body) if isinstance(body, bytes) else dict(body)
        for seq in message.sequences:
            document[seq.identifier] = [
                bson.decode(d) if isinstance(d, (bytes, bytearray)) else d for d in seq.documents
            ]
        return document
    return {k: _decoded(v) for k, v in message.query.items()}


def _decoded(value: Any) -> Any:
    """Documents the path encoded early (kind-1 items, OP_QUERY arrays) shown decoded."""
    if isinstance(value, list):
        from bson.raw_bson import RawBSONDocument  # only OP_QUERY (wire 4-5) arrays need it

        return [dict(v) if isinstance(v, RawBSONDocument) else v for v in value]
    return value
