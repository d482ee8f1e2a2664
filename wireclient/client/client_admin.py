"""The Connection's server-wide helpers: databases, fsync and its lock, cursors by id.

pymongo 2.8 names (``server_info``, ``database_names``, ``drop_database``, ``fsync``,
``unlock``, ``is_locked``, ``close_cursor``, ``kill_cursors``) and the pymongo 4 one
(``list_database_names``). Each is a command on the ``admin`` database (or the database
named), run on the operation path like any other.

Cursors by id: current servers kill a cursor with the ``killCursors`` *command*, which
needs the cursor's collection, where 2.8 sent the legacy ``OP_KILL_CURSORS`` opcode with the
id alone. A connection therefore remembers (weakly) the cursors it opened, so
``close_cursor(id)`` closes that cursor (on the server that holds it); an id the connection
did not open needs ``kill_cursors(ids, namespace='db.collection')``.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Tuple, Union

from bson import Int64

from wireclient.errors import ConfigurationError, InvalidArgument, InvalidOperation
from wireclient.rules.arguments import check_int, check_str, type_name
from wireclient.rules.uri import Address
from wireclient.rules.wire import INT64_MAX

if TYPE_CHECKING:
    from wireclient.client.cursor import Cursor
    from wireclient.client.database import Database
    from wireclient.engine.executor import Executor
    from wireclient.pooling.pool import Pool


class ServerAdmin:
    """The server-wide helpers of a Connection (see the module notes)."""

    _executor: Executor
    _cursors: weakref.WeakValueDictionary[int, Cursor]

    if TYPE_CHECKING:

        def __getitem__(self, name: str) -> Database: ...

    def server_info(self) -> Dict[str, Any]:
        """The server's ``buildInfo`` (``version``, ``versionArray``, ...)."""
        return self["admin"].command("buildinfo")

    def database_names(self) -> List[str]:
        reply = self["admin"].command("listDatabases", nameOnly=True)
        return [d["name"] for d in reply.get("databases", [])]

    list_database_names = database_names

    def drop_database(self, name_or_database: Union[str, Database]) -> None:
        from wireclient.client.database import Database

        name = name_or_database
        if isinstance(name, Database):
            name = name.name
        self[check_str(name, "name_or_database")].command("dropDatabase")

    def fsync(self, **kwargs: Any) -> Dict[str, Any]:
        """Flush every write to disk (``fsync``); ``lock=True`` also blocks writes until
        ``unlock()``. Keywords are added to the command."""
        return self["admin"].command("fsync", **kwargs)

    def unlock(self) -> Dict[str, Any]:
        """Unlock a server locked by ``fsync(lock=True)`` (``fsyncUnlock``)."""
        return self["admin"].command("fsyncUnlock")

    @property
    def is_locked(self) -> bool:
        """Whether the server is locked by ``fsync(lock=True)`` (``currentOp``'s
        ``fsyncLock``)."""
        return bool(self["admin"].command("currentOp").get("fsyncLock", False))

    def close_cursor(self, cursor_id: int, address: Optional[Address] = None) -> None:
        """Close the cursor this connection opened with id ``cursor_id`` (on the server
        holding it; ``address`` is accepted for 2.8 and must be that server's)."""
        self.kill_cursors([cursor_id], address)

    def kill_cursors(
        self,
        cursor_ids: Iterable[int],
        address: Optional[Address] = None,
        namespace: Optional[str] = None,
    ) -> None:
        """Kill cursors by id. Cursors this connection opened are closed where they live;
        other ids need ``namespace`` (``'db.collection'``) and go to the server at
        ``address`` (default: the server, or a replica set's primary). Everything is
        checked before anything is sent."""
        if isinstance(cursor_ids, (str, bytes)) or not isinstance(cursor_ids, Iterable):
            raise InvalidArgument(f"cursor_ids must be a list of ints, not {type_name(cursor_ids)}")
        ids = [check_int(i, "cursor_ids[]", 1, INT64_MAX) for i in cursor_ids]
        mine = [self._cursors.get(i) for i in ids]
        others = [i for i, cursor in zip(ids, mine) if cursor is None]
        pool = self._pool_at(address)
        if others and namespace is None:
            raise InvalidOperation(
                f"cursor(s) {others} were not opened by this connection: the killCursors "
                "command needs the cursor's collection; pass namespace='db.collection'"
            )
        target: Optional[Tuple[str, str]] = None
        if others:
            assert namespace is not None
            dbname, _, collection = check_str(namespace, "namespace").partition(".")
            if not dbname or not collection:
                raise ConfigurationError(f"namespace must be 'db.collection', not {namespace!r}")
            target = (dbname, collection)
        for cursor in mine:
            if cursor is not None:
                if pool is not None and cursor.address not in (None, pool.address):
                    raise ConfigurationError(
                        f"cursor {cursor.cursor_id} lives on {cursor.address}, not {address}"
                    )
        for cursor in mine:
            if cursor is not None:
                cursor.close()
        if target is not None:
            spec = {"killCursors": target[1], "cursors": [Int64(i) for i in others]}
            self._executor.run(target[0], spec, pool=pool)

    def _pool_at(self, address: Optional[Address]) -> Optional[Pool]:
        if address is None:
            return None
        for pool in self._executor.selector.pools():
            if pool.address == tuple(address):
                return pool
        raise ConfigurationError(f"this connection has no server at {address!r}")


__all__ = ["ServerAdmin"]
