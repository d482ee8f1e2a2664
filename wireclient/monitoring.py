"""Event listeners: commands, wire frames, pools and requests, replica-set state.

Theory of operation
-------------------
A listener is an object of one (or several) of the listener classes below; it is handed to
one connection (``Connection(..., event_listeners=[...])``) or registered for every
connection created afterwards (``monitoring.register(listener)``), as in pymongo. When a
connection is built, its listeners are sorted by kind into an ``EventPublisher``; a
connection with no listener at all has no publisher (``None``), and every place that could
emit an event tests that one attribute first, so the hot path pays one ``is None`` check
and builds no event.

Events are small read-only records (``__slots__``). Commands are emitted by the operation
path (``executor.py``), frames by the socket (``network.py``: the handshake and
authentication included), pool and request events by the pool and the request table, and
topology events (opening, description changes, closing: ``engine/topology_events.py``, in
the SDAM monitoring specification's order) by the selector, heartbeats by the checker. A
listener that raises never breaks the operation: the error is reported once per listener
and event name through ``warnings``, then that listener's later errors of the same kind are
ignored.

Authentication commands (``saslStart``, ``saslContinue``, ``authenticate``, ``getnonce``,
``createUser``, ``updateUser``, ``copydbgetnonce``, ``copydbsaslstart``, ``copydb``, and a
``hello`` carrying ``speculativeAuthenticate``) are redacted: the event carries an empty
command and an empty reply, as the command-monitoring specification requires.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

if TYPE_CHECKING:  # a base module: the address type is read by the type checker only
    from wireclient.rules.uri import Address

_SENSITIVE = frozenset(
    {
        "authenticate",
        "saslstart",
        "saslcontinue",
        "getnonce",
        "createuser",
        "updateuser",
        "copydbgetnonce",
        "copydbsaslstart",
        "copydb",
    }
)


def is_sensitive(command_name: str, command: Mapping[str, Any]) -> bool:
    """Whether a command (or its reply) must be redacted from events."""
    name = command_name.lower()
    if name in _SENSITIVE:
        return True
    return name in ("hello", "ismaster") and "speculativeAuthenticate" in command


# -- listener classes -------------------------------------------------------------------


class CommandListener:
    """Override ``started``, ``succeeded``, ``failed``."""

    def started(self, event: CommandStartedEvent) -> None:
        """A command is about to be sent."""

    def succeeded(self, event: CommandSucceededEvent) -> None:
        """A command's reply said ok: 1 (or an unacknowledged command was sent)."""

    def failed(self, event: CommandFailedEvent) -> None:
        """A command failed: an ok: 0 reply, or an error before its reply was read."""


class FrameListener:
    """Override ``sent`` and ``received``: every frame on every socket, as bytes."""

    def sent(self, event: FrameEvent) -> None:
        """A frame was written to a socket."""

    def received(self, event: FrameEvent) -> None:
        """A frame was read from a socket."""


class PoolListener:
    """A pool's life and its sockets' (CMAP's events, with pymongo 4's ConnectionPoolListener
    names), and requests. Every method is a no-op here: override those you need. The order
    of the events, their fields and their units are in docs/monitoring.md."""

    def pool_created(self, event: PoolEvent) -> None:
        """A pool was made for ``event.address`` (``event.options``: its pool options)."""

    def pool_ready(self, event: PoolEvent) -> None:
        """The pool serves checkouts: at its creation, and after a pause, when its monitor
        reached the server again."""

    def pool_cleared(self, event: PoolEvent) -> None:
        """A new generation began (``event.generation``): older sockets will be closed. A
        pool with a monitor is paused too, until ``pool_ready``."""

    def pool_closed(self, event: PoolEvent) -> None:
        """The pool was closed: its idle sockets are closed, lent ones will be."""

    def connection_created(self, event: PoolEvent) -> None:
        """A socket is about to be opened (``event.driver_connection_id``: the pool's number
        for it); ``connection_ready`` follows when it is connected and handshaken, or
        ``connection_closed`` (reason ``error``) when that fails."""

    def connection_ready(self, event: PoolEvent) -> None:
        """A socket is connected, handshaken and authenticated (``event.duration_ms``)."""

    def connection_check_out_started(self, event: PoolEvent) -> None:
        """A caller asks the pool for a socket."""

    def connection_check_out_failed(self, event: PoolEvent) -> None:
        """A checkout failed: ``event.reason`` is ``timeout``, ``connectionError`` or
        ``poolClosed``; ``event.duration_ms`` since it started."""

    def connection_checked_out(self, event: PoolEvent) -> None:
        """A socket was lent for an operation (or bound to a request); ``event.duration_ms``
        since the checkout started."""

    def connection_checked_in(self, event: PoolEvent) -> None:
        """A socket came back to the pool (``connection_closed`` follows if it is not kept)."""

    def connection_closed(self, event: PoolEvent) -> None:
        """A socket was closed; ``event.reason`` says why (``event.detail``: more, if known)."""

    def request_started(self, event: RequestEvent) -> None:
        """A thread or greenlet entered a request (outermost level)."""

    def request_ended(self, event: RequestEvent) -> None:
        """A thread or greenlet left its request (or died in it)."""


class ServerListener:
    """A server of a topology (the one server, a replica-set member, a router): opened,
    its description changed, closed."""

    def opened(self, event: ServerOpeningEvent) -> None:
        """The topology began to watch ``event.address`` (a seed, or a member found)."""

    def description_changed(self, event: ServerDescriptionChangedEvent) -> None:
        """``event.previous`` became ``event.new``."""

    def closed(self, event: ServerClosedEvent) -> None:
        """The topology stopped watching ``event.address`` (removed, or the connection
        was closed)."""


class TopologyListener:
    """A connection's topology (one server, a replica set, routers): opened, its view
    changed, closed."""

    def opened(self, event: TopologyOpeningEvent) -> None:
        """The topology ``event.topology_id`` is opening (before its servers)."""

    def description_changed(self, event: TopologyDescriptionChangedEvent) -> None:
        """``event.previous`` (a TopologyView) became ``event.new``."""

    def closed(self, event: TopologyClosedEvent) -> None:
        """The topology was closed (after its servers); the last event of the topology."""


class HeartbeatListener:
    """The replica-set monitor's checks."""

    def started(self, event: HeartbeatEvent) -> None:
        """A check of a member begins."""

    def succeeded(self, event: HeartbeatEvent) -> None:
        """A member answered its check (``event.reply``, ``event.duration``)."""

    def failed(self, event: HeartbeatEvent) -> None:
        """A check failed (``event.failure``)."""


# -- events -----------------------------------------------------------------------------


class _Event:
    __slots__: Tuple[str, ...] = ()

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"


class Caller(_Event):
    """Who ran an operation: the thread (and greenlet, if any; the asyncio Task, for the
    asyncio client: ``task_name`` and ``task_id``, None elsewhere) and whether it was in a
    request."""

    __slots__ = ("thread_name", "thread_id", "greenlet_id", "task_name", "task_id", "in_request")

    def __init__(self, in_request: bool, task: Any = None) -> None:
        thread = threading.current_thread()
        self.thread_name = thread.name
        self.thread_id = thread.ident
        self.greenlet_id = _greenlet_id()
        # the caller's Task, given by an asyncio client (a blocking client called from a
        # coroutine keys its requests by thread: its events name no Task)
        self.task_name: Optional[str] = None if task is None else task.get_name()
        self.task_id: Optional[int] = None if task is None else id(task)
        self.in_request = in_request


def _greenlet_id() -> Optional[int]:
    import sys

    greenlet = sys.modules.get("greenlet")
    if greenlet is None:
        return None
    current = greenlet.getcurrent()
    return None if getattr(current, "parent", None) is None else id(current)


class _CommandEvent(_Event):
    __slots__ = (
        "request_id",
        "database_name",
        "command_name",
        "address",
        "local_address",
        "connection_id",
        "caller",
    )

    def __init__(
        self,
        request_id: int,
        database_name: str,
        command_name: str,
        address: Address,
        local_address: Any,
        connection_id: Optional[int],
        caller: Caller,
    ) -> None:
        self.request_id = request_id
        self.database_name = database_name
        self.command_name = command_name
        self.address = address
        self.local_address = local_address
        self.connection_id = connection_id
        self.caller = caller


class CommandStartedEvent(_CommandEvent):
    __slots__ = ("command",)

    def __init__(self, command: Mapping[str, Any], *args: Any) -> None:
        super().__init__(*args)
        self.command = command


class CommandSucceededEvent(_CommandEvent):
    __slots__ = ("reply", "duration_micros")

    def __init__(self, reply: Mapping[str, Any], duration_micros: int, *args: Any) -> None:
        super().__init__(*args)
        self.reply = reply
        self.duration_micros = duration_micros


class CommandFailedEvent(_CommandEvent):
    __slots__ = ("failure", "duration_micros")

    def __init__(self, failure: Any, duration_micros: int, *args: Any) -> None:
        super().__init__(*args)
        self.failure = failure
        self.duration_micros = duration_micros


class FrameEvent(_Event):
    """One frame: ``data`` (the whole frame's bytes), its ``header`` (decoded) and the
    socket's ends."""

    __slots__ = ("direction", "data", "header", "address", "local_address")

    def __init__(
        self, direction: str, data: bytes, header: Any, address: Address, local_address: Any
    ) -> None:
        self.direction = direction
        self.data = data
        self.header = header
        self.address = address
        self.local_address = local_address


class PoolEvent(_Event):
    """One event of a pool (the listener's method says which). Fields that do not apply to
    an event are None: ``connection_id`` (the server's number for the socket, from its
    handshake), ``driver_connection_id`` (the pool's: 1, 2, 3... in the order it opens
    them), ``local_address``, ``generation``, ``reason`` (closed, check-out failed),
    ``detail``, ``duration_ms`` (ready, checked out, check-out failed; milliseconds, a
    float) and ``options`` (pool created)."""

    __slots__ = (
        "address",
        "connection_id",
        "local_address",
        "generation",
        "reason",
        "driver_connection_id",
        "duration_ms",
        "detail",
        "options",
    )

    def __init__(
        self,
        address: Address,
        connection_id: Optional[int] = None,
        local_address: Any = None,
        generation: Optional[int] = None,
        reason: Optional[str] = None,
        driver_connection_id: Optional[int] = None,
        duration_ms: Optional[float] = None,
        detail: Optional[str] = None,
        options: Optional[Mapping[str, Any]] = None,
    ) -> None:
        self.address = address
        self.connection_id = connection_id
        self.local_address = local_address
        self.generation = generation
        self.reason = reason
        self.driver_connection_id = driver_connection_id
        self.duration_ms = duration_ms
        self.detail = detail
        self.options = options


class RequestEvent(_Event):
    __slots__ = ("identity", "caller")

    def __init__(self, identity: Any, caller: Optional[Caller]) -> None:
        self.identity = identity
        self.caller = caller


class _TopologyLifeEvent(_Event):
    __slots__ = ("topology_id",)

    def __init__(self, topology_id: Any) -> None:
        self.topology_id = topology_id


class TopologyOpeningEvent(_TopologyLifeEvent):
    __slots__ = ()


class TopologyClosedEvent(_TopologyLifeEvent):
    __slots__ = ()


class _ServerLifeEvent(_Event):
    __slots__ = ("address", "topology_id")

    def __init__(self, address: Address, topology_id: Any = None) -> None:
        self.address = address
        self.topology_id = topology_id


class ServerOpeningEvent(_ServerLifeEvent):
    __slots__ = ()


class ServerClosedEvent(_ServerLifeEvent):
    __slots__ = ()


class ServerDescriptionChangedEvent(_Event):
    __slots__ = ("address", "previous", "new", "topology_id")

    def __init__(self, address: Address, previous: Any, new: Any, topology_id: Any = None) -> None:
        self.address = address
        self.previous = previous
        self.new = new
        self.topology_id = topology_id


class TopologyDescriptionChangedEvent(_Event):
    __slots__ = ("previous", "new", "topology_id")

    def __init__(self, previous: Any, new: Any, topology_id: Any = None) -> None:
        self.previous = previous
        self.new = new
        self.topology_id = topology_id


class HeartbeatEvent(_Event):
    __slots__ = ("address", "reply", "duration", "failure")

    def __init__(
        self,
        address: Address,
        reply: Optional[Mapping[str, Any]] = None,
        duration: Optional[float] = None,
        failure: Any = None,
    ) -> None:
        self.address = address
        self.reply = reply
        self.duration = duration
        self.failure = failure


# -- registration and publishing ---------------------------------------------------------

_KINDS = (
    CommandListener,
    FrameListener,
    PoolListener,
    ServerListener,
    TopologyListener,
    HeartbeatListener,
)
_global_listeners: List[Any] = []


def register(listener: Any) -> None:
    """Register ``listener`` for every connection created from now on."""
    if not isinstance(listener, _KINDS):
        raise TypeError(
            f"{type(listener).__name__} is not a listener: subclass one of "
            + ", ".join(kind.__name__ for kind in _KINDS)
        )
    _global_listeners.append(listener)


def unregister(listener: Any) -> None:
    """Undo ``register`` (connections already made keep their listeners)."""
    try:
        _global_listeners.remove(listener)
    except ValueError:
        pass


class EventPublisher:
    """The listeners of one connection, by kind; ``None`` stands for "no listener"."""

    __slots__ = ("command", "frame", "pool", "server", "topology", "heartbeat", "_warned")

    def __init__(self, listeners: Sequence[Any]) -> None:
        self.command = [x for x in listeners if isinstance(x, CommandListener)] or None
        self.frame = [x for x in listeners if isinstance(x, FrameListener)] or None
        self.pool = [x for x in listeners if isinstance(x, PoolListener)] or None
        self.server = [x for x in listeners if isinstance(x, ServerListener)] or None
        self.topology = [x for x in listeners if isinstance(x, TopologyListener)] or None
        self.heartbeat = [x for x in listeners if isinstance(x, HeartbeatListener)] or None
        self._warned: Set[Tuple[int, str]] = set()

    @classmethod
    def for_connection(cls, event_listeners: Optional[Iterable[Any]]) -> Optional[EventPublisher]:
        listeners = list(_global_listeners)
        for listener in event_listeners or ():
            if not isinstance(listener, _KINDS):
                from wireclient.errors import ConfigurationError

                raise ConfigurationError(
                    f"event_listeners: {type(listener).__name__} is not a listener"
                )
            listeners.append(listener)
        return cls(listeners) if listeners else None

    def publish(self, listeners: Optional[List[Any]], method: str, event: Any) -> None:
        """Call ``method(event)`` on each listener; a listener's error never escapes."""
        if listeners is None:
            return
        for listener in listeners:
            try:
                getattr(listener, method)(event)
            except Exception as exc:  # a listener's bug must not break the operation
                key = (id(listener), method)
                if key not in self._warned:
                    self._warned.add(key)
                    import warnings

                    warnings.warn(
                        f"event listener {type(listener).__name__}.{method} raised "
                        f"{type(exc).__name__}: {exc} (reported once)",
                        RuntimeWarning,
                        stacklevel=2,
                    )


__all__ = [
    "CommandListener",
    "FrameListener",
    "PoolListener",
    "ServerListener",
    "TopologyListener",
    "HeartbeatListener",
    "CommandStartedEvent",
    "CommandSucceededEvent",
    "CommandFailedEvent",
    "FrameEvent",
    "PoolEvent",
    "RequestEvent",
    "TopologyOpeningEvent",
    "TopologyClosedEvent",
    "ServerOpeningEvent",
    "ServerClosedEvent",
    "ServerDescriptionChangedEvent",
    "TopologyDescriptionChangedEvent",
    "HeartbeatEvent",
    "Caller",
    "EventPublisher",
    "register",
    "unregister",
]
