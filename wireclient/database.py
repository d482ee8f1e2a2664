"""Database: a name on a connection; runs commands and hands out collections."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Union

from wireclient.arguments import check_bool, check_read_preference, encode, type_name
from wireclient.errors import (
    ConfigurationError,
    InvalidArgument,
    InvalidOperation,
    OperationFailure,
)

if TYPE_CHECKING:
    from wireclient.collection import Collection
    from wireclient.connection import Connection

_BAD_DB_CHARS = frozenset('/\\. "$\x00')


def check_database_name(name: Any) -> str:
    if not isinstance(name, str):
        raise InvalidArgument(f"database name must be a string, not {type(name).__name__}")
    if not name or _BAD_DB_CHARS.intersection(name):
        raise ConfigurationError(f"invalid database name {name!r}")
    return name


class Database:
    """``connection['name']`` or ``connection.name``."""

    __slots__ = ("connection", "name", "read_preference")

    def __init__(self, connection: Connection, name: str, read_preference: Any = None) -> None:
        self.connection = connection
        self.name = check_database_name(name)
        self.read_preference = read_preference

    def __getitem__(self, name: str) -> Collection:
        from wireclient.collection import Collection

        return Collection(self, name)

    def __getattr__(self, name: str) -> Collection:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Database):
            return self.connection is other.connection and self.name == other.name
        return NotImplemented

    def __hash__(self) -> int:
        return hash((id(self.connection), self.name))

    def __repr__(self) -> str:
        return f"Database({self.connection!r}, {self.name!r})"

    def command(
        self,
        command: Union[str, Mapping[str, Any]],
        value: Any = 1,
        check: bool = True,
        read_preference: Any = None,
        **kwargs: Any,
    ) -> Dict[str, Any]:
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
        reply = self.connection._executor.run(
            self.name,
            spec,
            check=check,
            for_read=read_preference is not None,
            read_preference=read_preference,
        )
        assert reply is not None
        return reply

    def collection_names(self) -> List[str]:
        reply = self.command("listCollections", nameOnly=True)
        names = [doc["name"] for doc in reply["cursor"]["firstBatch"]]
        return sorted(names)

    list_collection_names = collection_names

    def drop_collection(self, name: Union[str, Collection]) -> None:
        from wireclient.collection import Collection, check_collection_name

        if isinstance(name, Collection):
            name = name.name
        check_collection_name(name)
        try:
            self.command("drop", name)  # checked on the operation path, like any command
        except OperationFailure as exc:
            if exc.code != 26:  # 26: NamespaceNotFound, the collection did not exist
                raise

    def create_collection(self, name: str, **options: Any) -> Collection:
        from wireclient.collection import check_collection_name

        self.command("create", check_collection_name(name), **options)
        return self[name]
