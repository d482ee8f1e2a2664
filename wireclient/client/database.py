"""Database: a name on a connection; runs commands and hands out collections.

Besides ``command`` and the collection helpers, the pymongo 2.8 database helpers: users
(``add_user`` / ``remove_user``: ``createUser``, ``updateUser``, ``dropUser``),
``authenticate`` / ``logout`` (the connection's ``CredentialStore``,
``wireclient.engine.credentials``), ``current_op``, the profiler
(``profiling_level``, ``set_profiling_level``, ``profiling_info``), ``validate_collection``
and ``dereference``. A database hands out one ``Collection`` object per name, so settings
made on a collection stay; ``read_preference``, ``tag_sets`` and ``write_concern`` are
inherited from the connection until set (its ``Settings``, ``settings.py``).

Two flavours share one class (``transport/flavours.py``): ``BaseDatabase`` writes every
helper once, as a step, and ``Database`` (blocking) and ``AsyncDatabase`` (coroutines) are
its two public faces, each handing out collections of its own flavour.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Generic, List, Mapping, Optional, Type, TypeVar, Union

from bson.dbref import DBRef

from wireclient.client import settings
from wireclient.client.legacy import not_callable, refuse
from wireclient.client.settings import Settings, check_read_preference
from wireclient.errors import (
    CollectionInvalid,
    ConfigurationError,
    InvalidArgument,
    InvalidOperation,
    OperationFailure,
)
from wireclient.rules.arguments import (
    check_bool,
    check_int,
    check_str,
    encode,
    type_name,
)
from wireclient.transport.flavours import Asynchronous, Blocking, operation

if TYPE_CHECKING:
    from wireclient.client.collection import AsyncCollection, BaseCollection, Collection
    from wireclient.client.connection import BaseConnection
    from wireclient.transport.steps import Steps

# Profiling levels (pymongo 2.8's pymongo.OFF, SLOW_ONLY, ALL)
OFF = 0
SLOW_ONLY = 1
ALL = 2
_NAMESPACE_EXISTS = 48
_UNAUTHORIZED = 13

_BAD_DB_CHARS = frozenset('/\\. "$\x00')


def check_database_name(name: Any) -> str:
    if not isinstance(name, str):
        raise InvalidArgument(f"database name must be a string, not {type(name).__name__}")
    if not name or _BAD_DB_CHARS.intersection(name):
        raise ConfigurationError(f"invalid database name {name!r}")
    return name


C = TypeVar("C", bound="BaseCollection[Any, Any]")  # the flavour's collection class


class _CollectionClass:
    """A flavour's collection class, named here and imported on first use, so that a
    connection that only runs commands never loads the collection and cursor modules."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: Any) -> Any:
        from wireclient.client import collection

        cls = getattr(collection, self.name)
        owner._collection_class = cls  # found directly from now on
        return cls


class BaseDatabase(Generic[C]):
    """``connection['name']`` or ``connection.name`` (the flavours' shared class, generic in
    the class of the collections it hands out)."""

    __slots__ = ("connection", "name", "_settings", "_collections")

    _collection_class: Type[C]  # the flavour's collections

    read_preference = settings.READ_PREFERENCE
    tag_sets = settings.TAG_SETS
    write_concern = settings.WRITE_CONCERN

    def __init__(
        self, connection: BaseConnection[Any], name: str, read_preference: Any = None
    ) -> None:
        self.connection = connection
        self.name = check_database_name(name)
        self._settings: Settings = Settings(connection._settings, read_preference)
        self._collections: Dict[str, C] = {}

    @property
    def client(self) -> BaseConnection[Any]:
        """pymongo 4's name for ``connection``."""
        return self.connection

    def get_collection(
        self, name: str, read_preference: Any = None, write_concern: Any = None
    ) -> C:
        """pymongo 4's name: the cached ``db[name]``, or with ``read_preference`` /
        ``write_concern`` a new ``Collection`` object carrying them."""
        if read_preference is None and write_concern is None:
            return self[name]
        coll = self._collection_class(self, name, read_preference)
        coll.write_concern = write_concern
        return coll

    def __getitem__(self, name: str) -> C:
        """The collection ``name`` (one object per name: settings on it stay)."""
        coll = self._collections.get(name)
        if coll is None:
            coll = self._collections.setdefault(name, self._collection_class(self, name))
        return coll

    def __getattr__(self, name: str) -> C:
        """``db.events``: a collection, unless ``name`` is a pymongo 2.8 name wireclient does
        not provide (``InvalidOperation`` saying why; see ``legacy.py``)."""
        if name.startswith("_") or hasattr(type(self), name):
            raise AttributeError(f"'{type(self).__name__}' object has no attribute {name!r}")
        refuse("Database", name, "Database")
        return self[name]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise not_callable("Database", self.name, type(self.connection).__name__)

    def __iter__(self) -> Any:
        raise TypeError("'Database' object is not iterable")

    def __eq__(self, other: object) -> bool:
        if isinstance(other, BaseDatabase):
            return self.connection is other.connection and self.name == other.name
        return NotImplemented

    def __hash__(self) -> int:
        return hash((id(self.connection), self.name))

    def __repr__(self) -> str:
        return f"Database({self.connection!r}, {self.name!r})"

    def _command(
        self,
        /,
        command: Union[str, Mapping[str, Any]],
        value: Any = 1,
        check: bool = True,
        read_preference: Any = None,
        **kwargs: Any,
    ) -> Steps[Dict[str, Any]]:
        """Run a command: ``db.command('ping')``, ``db.command('count', 'things')``,
        ``db.command({'count': 'things', 'query': {...}})``. Raises OperationFailure when
        the reply's ``ok`` is not 1 (unless ``check=False``). The whole command is checked
        (encoded) before anything is sent."""
        if isinstance(command, str):
            if not command:
                raise InvalidOperation("empty command name")
            spec: Dict[str, Any] = {command: value}
        elif isinstance(command, Mapping):
            if not command:
                raise InvalidOperation("empty command document")
            spec = dict(command)
            if not isinstance(next(iter(spec)), str):
                raise InvalidArgument("the command name (the first key) must be a string")
        else:
            raise InvalidArgument(
                f"command must be a string or a mapping, not {type_name(command)}"
            )
        check_bool(check, "check")
        check_read_preference(read_preference)
        spec.update(kwargs)
        encode(spec, "command")
        reply = yield from self.connection._executor.run(
            self.name,
            spec,
            check=check,
            for_read=read_preference is not None,
            read_preference=read_preference,
        )
        assert reply is not None
        return reply

    command = operation(_command)

    def _collection_names(self, include_system_collections: bool = True) -> Steps[List[str]]:
        """The names of the database's collections, sorted (without ``system.*`` ones if
        ``include_system_collections`` is False)."""
        check_bool(include_system_collections, "include_system_collections")
        reply = yield from self._command("listCollections", nameOnly=True)
        names = [doc["name"] for doc in reply["cursor"]["firstBatch"]]
        if not include_system_collections:
            names = [name for name in names if not name.startswith("system.")]
        return sorted(names)

    collection_names = operation(_collection_names)

    def _list_collection_names(self) -> Steps[List[str]]:
        """pymongo 4's name: every collection name (sorted)."""
        return (yield from self._collection_names())

    list_collection_names = operation(_list_collection_names)

    def _drop_collection(self, name: Union[str, BaseCollection[Any, Any]]) -> Steps[None]:
        from wireclient.client.collection import BaseCollection, check_collection_name

        if isinstance(name, BaseCollection):
            name = name.name
        check_collection_name(name)
        try:
            yield from self._command("drop", name)  # checked on the path, like any command
        except OperationFailure as exc:
            if exc.code != 26:  # 26: NamespaceNotFound, the collection did not exist
                raise

    drop_collection = operation(_drop_collection)

    def _create_collection(self, /, name: str, **options: Any) -> Steps[C]:
        """Create the collection with ``options`` (``capped``, ``size``, ``max``...);
        ``CollectionInvalid`` (an ``OperationFailure``, code 48) if it exists."""
        from wireclient.client.collection import check_collection_name

        try:
            yield from self._command("create", check_collection_name(name), **options)
        except OperationFailure as exc:
            if exc.code == _NAMESPACE_EXISTS:
                raise CollectionInvalid(
                    f"collection {self.name}.{name} already exists", exc.code, exc.details
                ) from None
            raise
        return self[name]

    create_collection = operation(_create_collection)

    def _validate_collection(
        self, name_or_collection: Any, scandata: bool = False, full: bool = False
    ) -> Steps[Dict[str, Any]]:
        """Run ``validate``; its reply, or ``CollectionInvalid`` when it says the collection
        is not valid. ``scandata`` is accepted for 2.8 and ignored (current servers always
        scan the data); ``full=True`` asks for the thorough check."""
        from wireclient.client.collection import BaseCollection

        name = name_or_collection
        if isinstance(name, BaseCollection):
            name = name.name
        check_str(name, "name_or_collection")
        check_bool(scandata, "scandata")
        extra = {"full": True} if check_bool(full, "full") else {}
        result = yield from self._command("validate", name, **extra)
        if not result.get("valid", False):
            errors = result.get("errors") or result.get("result") or result
            raise CollectionInvalid(f"collection {self.name}.{name} is not valid: {errors!r}")
        return result

    validate_collection = operation(_validate_collection)

    # -- operations, the profiler, references --------------------------------------------

    def _current_op(self, include_all: bool = False) -> Steps[Dict[str, Any]]:
        """The server's operations in progress (``currentOp``; ``include_all`` adds idle
        connections and system operations). The reply's ``inprog`` lists them."""
        extra = {"$all": True} if check_bool(include_all, "include_all") else {}
        reply: Dict[str, Any] = yield from self.connection["admin"]._command("currentOp", **extra)
        return reply

    current_op = operation(_current_op)

    def _profiling_level(self) -> Steps[int]:
        """The profiler's level for this database: ``OFF`` (0), ``SLOW_ONLY`` (1), ``ALL`` (2)."""
        return int((yield from self._command("profile", -1))["was"])

    profiling_level = operation(_profiling_level)

    def _set_profiling_level(self, level: int, slow_ms: Optional[int] = None) -> Steps[None]:
        """Set the profiler's level (``OFF``, ``SLOW_ONLY``, ``ALL``) and, with ``slow_ms``,
        the threshold of a slow operation in milliseconds."""
        check_int(level, "level", OFF, ALL)
        extra: Dict[str, Any] = {}
        if slow_ms is not None:
            extra["slowms"] = check_int(slow_ms, "slow_ms", 0)
        yield from self._command("profile", level, **extra)

    set_profiling_level = operation(_set_profiling_level)

    def _profiling_info(self) -> Steps[List[Dict[str, Any]]]:
        """The profiler's records (the documents of ``system.profile``)."""
        documents: List[Dict[str, Any]] = yield from self["system.profile"].find()._to_list()
        return documents

    profiling_info = operation(_profiling_info)

    def _dereference(self, /, dbref: Any, **kwargs: Any) -> Steps[Optional[Dict[str, Any]]]:
        """The document a ``bson.dbref.DBRef`` points to, or None (keywords go to
        ``find_one``). A reference to another database is refused."""
        if not isinstance(dbref, DBRef):
            raise InvalidArgument(f"dbref must be a bson.dbref.DBRef, not {type_name(dbref)}")
        if dbref.database is not None and dbref.database != self.name:
            raise ConfigurationError(
                f"the DBRef points to database {dbref.database!r}, not {self.name!r}"
            )
        found: Optional[Dict[str, Any]]
        found = yield from self[dbref.collection]._find_one({"_id": dbref.id}, **kwargs)
        return found

    dereference = operation(_dereference)

    # -- users and authentication ----------------------------------------------------------

    def _user_write_concern(self) -> Dict[str, Any]:
        _, document = self._settings.effective_write_concern().resolve(None, None)
        return {"writeConcern": document} if document else {}

    def _add_user(
        self,
        /,
        name: str,
        password: Optional[str] = None,
        read_only: Optional[bool] = None,
        **kwargs: Any,
    ) -> Steps[None]:
        """Create the user ``name``, or update it if it exists (``createUser`` /
        ``updateUser``). Without ``roles``, a new user gets 2.8's default role: ``dbOwner``
        (``root`` on ``admin``), or ``read`` (``readAnyDatabase``) with ``read_only=True``.
        Other keywords (``roles``, ``customData``, ``mechanisms``...) go to the command.
        The password is sent for the server to hash (``digestPassword`` is the server's)."""
        check_str(name, "name")
        if password is not None:
            check_str(password, "password")
        if read_only is not None:
            check_bool(read_only, "read_only")
            if "roles" in kwargs:
                raise ConfigurationError("read_only and roles cannot be used together")
        if "digestPassword" in kwargs:
            raise ConfigurationError(
                "digestPassword is not supported by add_user: use db.command('createUser', ...)"
            )
        try:
            exists = bool((yield from self._command("usersInfo", name))["users"])
        except OperationFailure as exc:
            if exc.code != _UNAUTHORIZED:  # no user yet may mean no right to look
                raise
            exists = False
        options: Dict[str, Any] = {}
        if read_only is not None or (not exists and "roles" not in kwargs):
            options["roles"] = [self._default_role(bool(read_only))]
        if password is not None:
            options["pwd"] = password
        options.update(self._user_write_concern())
        options.update(kwargs)
        yield from self._command("updateUser" if exists else "createUser", name, **options)

    add_user = operation(_add_user)

    def _default_role(self, read_only: bool) -> str:
        if self.name == "admin":
            return "readAnyDatabase" if read_only else "root"
        return "read" if read_only else "dbOwner"

    def _remove_user(self, name: str) -> Steps[None]:
        """Drop the user ``name`` (``dropUser``)."""
        yield from self._command("dropUser", check_str(name, "name"), **self._user_write_concern())

    remove_user = operation(_remove_user)

    def _authenticate(
        self,
        /,
        name: str,
        password: Optional[str] = None,
        source: Optional[str] = None,
        mechanism: str = "DEFAULT",
        **kwargs: Any,
    ) -> Steps[bool]:
        """Authenticate as ``name`` (a user of ``source``, default this database) on every
        socket of the connection, now and later; ``OperationFailure`` if the server refuses
        (see ``wireclient.engine.credentials``). ``mechanism``: ``'DEFAULT'``,
        ``'SCRAM-SHA-1'`` or ``'SCRAM-SHA-256'``."""
        conn = self.connection
        store = conn._parts.credential_store
        return (
            yield from store.login(
                conn._executor, self.name, name, password, source, mechanism, kwargs
            )
        )

    authenticate = operation(_authenticate)

    def logout(self) -> None:
        """Forget the credentials ``authenticate`` stored for this database."""
        conn = self.connection
        conn._parts.credential_store.logout(conn._executor, self.name)


class Database(BaseDatabase["Collection"], Blocking):
    """``connection['name']`` or ``connection.name`` of a blocking connection."""

    __slots__ = ()
    if TYPE_CHECKING:
        _collection_class = Collection
    else:
        _collection_class = _CollectionClass("Collection")


class AsyncDatabase(BaseDatabase["AsyncCollection"], Asynchronous):
    """``connection['name']`` of an ``AsyncConnection``: the same helpers, as coroutines."""

    __slots__ = ()
    if TYPE_CHECKING:
        _collection_class = AsyncCollection
    else:
        _collection_class = _CollectionClass("AsyncCollection")
