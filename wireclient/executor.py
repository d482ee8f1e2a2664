"""The operation path: the one place every message a client sends goes through.

Theory of operation
-------------------
``Collection``, ``Cursor`` and ``Database`` build command documents; ``Executor.run`` (one
message) and ``Executor.write`` (a write command whose documents may need several batches)
carry them, always in this order:

1. flush the cursor kills the garbage collector queued (no I/O runs in ``__del__``);
2. find the caller's request (``Requests.for_operation``: where ``auto_start_request`` is
   decided) and choose the server: a ``Selector`` returns the pool of the one server, or of
   the member the read preference (and the request's pin) picks in a replica set;
3. take the caller's socket: the request's socket on that pool if it is still usable, else a
   pooled one (bound to the request, if there is one);
4. encode (``command.build_message``: the envelope for that server's wire version), check
   the frame against the socket's limits (``_check_frame``, between encoding and sending), send
   and read the one reply, or none for ``moreToCome`` (``SocketInfo.send_and_receive``);
5. hand any error to one error handler (``_network_error``, ``_reply_error``), which decides:
   drop the socket (the network layer closed it), clear the pool by generation, tell the
   selector (a replica set marks the member Unknown and wakes its monitor);
6. give the socket back (a request keeps it), then check the reply (``command``).

Pool generations make one server fault cost one error: an error on a socket of an older
generation than the pool's (the pool was cleared since it was taken) changes nothing, and a
request whose bound socket is of an older generation quietly binds a new one. A network
timeout closes its socket but does not clear the pool (the server is slow, not gone).

Size limits are the server's, learnt in each socket's handshake. A frame longer than
``maxMessageSizeBytes``, or whose command document is over ``maxBsonObjectSize`` plus the
16 KiB command allowance (a huge filter, pipeline, update or any command), raises
``DocumentTooLarge`` with nothing sent; the socket is intact, so it goes back to its pool (or
stays with its request) and nothing reaches the error handler. A write's documents are
encoded and checked, each of them, before its first batch is sent (``_batches``).

The difference between one server and a replica set is the ``Selector`` only: a
``SingleServer`` here, a ``ReplicaSetSelector`` in ``replica_set.py`` fed by its monitor.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple

import bson

from wireclient import command, protocol
from wireclient.errors import (
    AutoReconnect,
    DocumentTooLarge,
    InvalidDocument,
    NetworkTimeout,
    ProtocolError,
    WireClientError,
)
from wireclient.requests import Requests, RequestState

if TYPE_CHECKING:
    from typing import Protocol

    from wireclient.network import SocketInfo
    from wireclient.pool import Pool

    class Selector(Protocol):
        """How an operation's server is chosen, and what the topology hears of errors."""

        def select(
            self, for_read: bool, read_preference: Any, state: Optional[RequestState]
        ) -> Pool: ...

        def read_preference_document(
            self, pool: Pool, for_read: bool, read_preference: Any
        ) -> Optional[Dict[str, Any]]: ...

        def primary_address(self) -> Tuple[str, int]: ...

        def server_failed(self, pool: Pool, message: str) -> None: ...

        def not_primary(self, pool: Pool, error: Mapping[str, Any]) -> bool: ...

        def pools(self) -> List[Pool]: ...

        fills_pools_lazily: bool

        def close(self) -> None: ...


Document = Mapping[str, Any]

# How much larger than maxBsonObjectSize a command document (or an update or delete
# statement) may be: the server's own allowance for the command around a user document.
COMMAND_OVERHEAD = 16 * 1024
_CLEARS_ON_STATE_CHANGE_BELOW = 8  # servers before 4.2 close every socket on a step-down


class SingleServer:
    """The selector of a ``Connection``: every operation goes to its one pool."""

    fills_pools_lazily = True  # minPoolSize: topped up after an operation (no thread here)

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    def select(self, for_read: bool, read_preference: Any, state: Optional[RequestState]) -> Pool:
        return self.pool

    def read_preference_document(
        self, pool: Pool, for_read: bool, read_preference: Any
    ) -> Optional[Dict[str, Any]]:
        return None

    def primary_address(self) -> Tuple[str, int]:
        return self.pool.address

    def server_failed(self, pool: Pool, message: str) -> None:
        """Nothing to mark: the pool was cleared, the next operation reconnects."""

    def not_primary(self, pool: Pool, error: Mapping[str, Any]) -> bool:
        return True

    def pools(self) -> List[Pool]:
        return [self.pool]

    def close(self) -> None:
        """No monitor to stop."""


class Executor:
    """Runs every message of one connection (see the module notes)."""

    def __init__(self, selector: Selector, requests: Requests) -> None:
        self.selector = selector
        self.requests = requests
        self._kill_queue: List[Tuple[Pool, str, str, int]] = []

    # -- the path -----------------------------------------------------------------------

    def select(
        self, for_read: bool = False, read_preference: Any = None, operation: bool = False
    ) -> Pool:
        """The pool an operation would run on now. A cursor (``operation=True``) keeps it for
        its getMores, and its request (started now if ``auto_start_request``) pins it."""
        state = self.requests.for_operation() if operation else self.requests.current()
        return self.selector.select(for_read, read_preference, state)

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
    ) -> Optional[Dict[str, Any]]:
        """Run one command; its reply document (None when unacknowledged)."""
        if self._kill_queue:
            self._flush_kills()
        state = self.requests.for_operation()
        if pool is None:
            pool = self.selector.select(for_read, read_preference, state)
        rp_document = self.selector.read_preference_document(pool, for_read, read_preference)
        sock = self.acquire(pool, state)
        generation = pool.generation_of(sock)
        try:
            reply = self._exchange(
                pool, sock, generation, dbname, spec, sequences, unacknowledged, rp_document
            )
        finally:
            self.release(pool, sock, state)
        if pool.open_count < pool.min_size and self.selector.fills_pools_lazily:
            self._fill(pool)
        if reply is not None and check:
            self._check(pool, sock, generation, reply, next(iter(spec), "command"))
        return reply

    def _fill(self, pool: Pool) -> None:
        try:
            pool.fill_to_minimum()
        except WireClientError:  # best effort: the next operation meets the fault itself
            pass

    def write(
        self,
        dbname: str,
        spec: Document,
        field: str,
        documents: Sequence[Any],
        unacknowledged: bool,
    ) -> Optional[Dict[str, Any]]:
        """Run a write command whose ``field`` documents (encoded ``bytes``, or mappings
        encoded here) travel in kind-1 sequences, split into batches by the server's limits
        (``_batches``: every document is checked before anything is sent); stops at the
        first batch that fails. Returns the last batch's reply (None when unacknowledged)."""
        if self._kill_queue:
            self._flush_kills()
        state = self.requests.for_operation()
        pool = self.selector.select(False, None, state)
        sock = self.acquire(pool, state)
        generation = pool.generation_of(sock)
        name = next(iter(spec), "command")
        reply: Optional[Dict[str, Any]] = None
        try:
            for batch in _batches(dbname, spec, field, documents, unacknowledged, sock):
                seq = protocol.DocumentSequence(field, tuple(batch))
                reply = self._exchange(
                    pool, sock, generation, dbname, spec, (seq,), unacknowledged, None
                )
                if reply is not None:
                    self._check(pool, sock, generation, reply, name)
                    command.raise_write_errors(reply)
        finally:
            self.release(pool, sock, state)
        return reply

    def acquire(self, pool: Pool, state: Optional[RequestState]) -> SocketInfo:
        """The caller's socket on ``pool``: its request's, if still usable, else a pooled
        one (bound to the request, if there is one)."""
        if state is None:
            return self._checkout(pool)
        sock = state.sockets.get(pool)
        if sock is not None and pool.usable(sock):
            return sock
        sock = self._checkout(pool)
        state.sockets[pool] = sock
        return sock

    def _checkout(self, pool: Pool) -> SocketInfo:
        generation = pool.generation
        try:
            return pool.get_socket()
        except AutoReconnect as exc:  # connecting or the handshake failed, timeouts included
            if generation == pool.generation:
                pool.clear()
                self.selector.server_failed(pool, f"could not connect: {exc}")
            raise

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
    ) -> Optional[Dict[str, Any]]:
        message, expect_reply = command.build_message(
            dbname, spec, sequences, unacknowledged, rp_document, sock.max_wire_version
        )
        try:  # _check_frame refuses a frame over the server's limits before it is sent
            return sock.send_and_receive(message, expect_reply, _check_frame)
        except (AutoReconnect, ProtocolError) as exc:
            if sock.closed:  # not a message we refused to build: the conversation broke
                self._network_error(pool, generation, exc)
            raise

    # -- the error handler --------------------------------------------------------------

    def _network_error(self, pool: Pool, generation: Optional[int], exc: BaseException) -> None:
        """A socket broke mid-conversation (the network layer has closed it)."""
        if isinstance(exc, NetworkTimeout):
            return  # slow, not gone: only that socket is lost
        if generation == pool.generation:  # an older socket's error was handled already
            pool.clear()
            self.selector.server_failed(pool, f"network error during an operation: {exc}")

    def _check(
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
            pool.clear()

    # -- cursors killed by the garbage collector ----------------------------------------

    def defer_kill(self, pool: Pool, dbname: str, collection: str, cursor_id: int) -> None:
        """Called from Cursor.__del__: no I/O there, the next operation sends the kill."""
        self._kill_queue.append((pool, dbname, collection, cursor_id))

    def _flush_kills(self) -> None:
        """Kill the cursors the garbage collector found, one command per namespace."""
        queue, self._kill_queue = self._kill_queue, []
        batches: Dict[Tuple[int, str, str], Tuple[Pool, List[int]]] = {}
        for pool, dbname, collection, cursor_id in queue:
            batches.setdefault((id(pool), dbname, collection), (pool, []))[1].append(cursor_id)
        for (_, dbname, collection), (pool, ids) in batches.items():
            try:
                self.run(
                    dbname, {"killCursors": collection, "cursors": ids}, pool=pool, check=False
                )
            except WireClientError:  # best effort: the server times idle cursors out anyway
                continue

    # -- lifetime -----------------------------------------------------------------------

    def close(self) -> None:
        """Close every idle socket now and every lent one when it comes back; the caller's
        own request sockets go now. The connection stays usable."""
        self._kill_queue.clear()
        self.selector.close()
        pools = self.selector.pools()
        for pool in pools:
            pool.close()
        self.requests.close_own()


# The write command field whose documents are stored as they are (insert's): each must fit
# maxBsonObjectSize itself. Update and delete statements wrap a filter and an update in a few
# fields of their own, so they get the command allowance on top.
_STORED_FIELD = "documents"
_INT32 = struct.Struct("<i")


def _check_frame(sock: SocketInfo, frame: bytes) -> None:
    """Refuse a frame the server would not take, before it is sent: one longer than its
    ``maxMessageSizeBytes``, or whose command document is larger than ``maxBsonObjectSize``
    plus the command allowance (a server resets the connection on either). Called by
    ``SocketInfo.send_and_receive`` between encoding and sending."""
    size = len(frame)
    if size > sock.max_message_size:
        raise DocumentTooLarge(
            f"message of {size} bytes is larger than the server's maxMessageSizeBytes of "
            f"{sock.max_message_size} bytes",
            size,
            sock.max_message_size,
        )
    limit = sock.max_bson_size + COMMAND_OVERHEAD
    if size > limit:  # only then can the command document in it be too large
        body = _command_size(frame)
        if body > limit:
            raise DocumentTooLarge(
                f"command document of {body} bytes is larger than the server's "
                f"maxBsonObjectSize of {sock.max_bson_size} bytes plus {COMMAND_OVERHEAD} "
                "for the command",
                body,
                limit,
            )


def _command_size(frame: bytes) -> int:
    """The size of the command document in a frame this client encoded: the kind-0 section
    of an OP_MSG (the encoder writes it first), the query of an OP_QUERY."""
    (op_code,) = _INT32.unpack_from(frame, 12)
    if op_code == protocol.OP_MSG:
        return int(_INT32.unpack_from(frame, 21)[0])  # after the flags and the kind byte
    if op_code == protocol.OP_QUERY:  # after the namespace, numberToSkip, numberToReturn
        return int(_INT32.unpack_from(frame, frame.index(b"\x00", 20) + 9)[0])
    return 0


def _encode(document: Any) -> bytes:
    if isinstance(document, bytes):
        return document
    try:
        data: bytes = bson.encode(document)
    except (bson.errors.BSONError, TypeError, ValueError, OverflowError) as exc:
        raise InvalidDocument(f"cannot encode a write statement: {exc}") from exc
    return data


def _batches(
    dbname: str,
    spec: Document,
    field: str,
    documents: Sequence[Any],
    unacknowledged: bool,
    sock: SocketInfo,
) -> List[List[bytes]]:
    """``documents``, encoded, in batches the server takes: at most ``maxWriteBatchSize``
    each, in a frame within ``maxMessageSizeBytes`` (for wire 4 and 5, where they travel as
    an array inside the command, in a command within ``maxBsonObjectSize`` plus the
    allowance too). Every document is checked first, so nothing is sent when one is too
    large (``DocumentTooLarge``): an inserted document over ``maxBsonObjectSize``, an
    update or delete statement over it plus the command allowance, or one no message can
    carry. The room is measured on the command really encoded without its documents."""
    encoded = [_encode(doc) for doc in documents]
    in_command = sock.max_wire_version < command.OP_MSG_WIRE_VERSION
    # OP_QUERY: the command with an empty array; OP_MSG: the command alone (the encoder's
    # quick path) plus the kind-1 section's framing (kind byte, int32 size, identifier, NUL).
    sequences = (protocol.DocumentSequence(field, ()),) if in_command else ()
    message, _ = command.build_message(
        dbname, spec, sequences, unacknowledged, None, sock.max_wire_version
    )
    frame = protocol.encode(message, 0)
    _check_frame(sock, frame)  # the command alone must fit
    framing = 0 if in_command else 6 + len(field.encode("utf-8"))
    room = sock.max_message_size - len(frame) - framing
    if in_command:  # each document also grows the command document
        room = min(room, sock.max_bson_size + COMMAND_OVERHEAD - _command_size(frame))
    max_bson = sock.max_bson_size
    stored = field == _STORED_FIELD
    each = max_bson if stored else max_bson + COMMAND_OVERHEAD
    for data in encoded:
        size = len(data)
        if size > each:
            what = "document" if stored else f"{field.rstrip('s')} statement"
            extra = "" if stored else f" plus {COMMAND_OVERHEAD} for the command"
            raise DocumentTooLarge(
                f"{what} of {size} bytes is larger than the server's maxBsonObjectSize of "
                f"{max_bson} bytes{extra}",
                size,
                each,
            )
        if size + (3 if in_command else 0) > room:  # an array element: type, "0", NUL
            raise DocumentTooLarge(
                f"{field} entry of {size} bytes does not fit in a message: the server's "
                f"maxMessageSizeBytes of {sock.max_message_size} bytes leaves {room} for it",
                size,
                room,
            )
    max_count = sock.max_write_batch_size
    batches: List[List[bytes]] = []
    batch: List[bytes] = []
    used = 0
    for data in encoded:
        cost = len(data) + (2 + len(str(len(batch))) if in_command else 0)
        if batch and (len(batch) >= max_count or used + cost > room):
            batches.append(batch)
            batch, used = [], 0
            cost = len(data) + (3 if in_command else 0)
        batch.append(data)
        used += cost
    if batch:
        batches.append(batch)
    return batches
