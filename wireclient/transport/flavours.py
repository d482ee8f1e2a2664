"""Flavours: one step, exposed as a blocking method or as a coroutine method.

A shared class (``BaseCollection``...) writes each public operation once, as a step
(``steps.py``), and declares it with ``operation``. Its two public subclasses choose their
flavour by deriving from ``Blocking`` or ``Asynchronous``: when such a class is created,
every ``operation`` its attribute lookup finds becomes an ordinary method of the class that
runs the step with the flavour's driver (``blocking.run``, or ``await asynchronous.run``).
So a call costs one ordinary method call and the driver, and the type checker sees, through
``operation.__get__``'s overloads, ``R`` on a blocking class and ``Awaitable[R]`` on an
asynchronous one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable, Generic, List, TypeVar, overload

from wireclient.transport.steps import Steps

if TYPE_CHECKING:
    from typing import Concatenate, ParamSpec

    P = ParamSpec("P")
else:  # Python 3.9 has no ParamSpec; at run time the parameters are only a label
    P = TypeVar("P")
R = TypeVar("R")


class Blocking:
    """A public class whose operations block and return their result (``operation``)."""

    __slots__ = ()
    asynchronous = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _materialize(cls, _blocking_method)


class Asynchronous:
    """A public class whose operations are coroutines (``operation``)."""

    __slots__ = ()
    asynchronous = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _materialize(cls, _async_method)


class operation(Generic[P, R]):  # noqa: N801 - used as a decorator, like property
    """Declares a step as a public operation of the classes that share it: a method of a
    ``Blocking`` class that runs it to its result, a coroutine method of an
    ``Asynchronous`` one. The flavoured methods are made once, when the class is created,
    so a call costs one ordinary method call and the driver."""

    def __init__(self, steps: Callable[Concatenate[Any, P], Steps[R]]) -> None:
        self.steps = steps
        self.__doc__ = steps.__doc__
        self.__name__ = steps.__name__
        self.__wrapped__ = steps

    @overload
    def __get__(self, obj: None, owner: Any) -> operation[P, R]: ...

    @overload
    def __get__(self, obj: Blocking, owner: Any) -> Callable[P, R]: ...

    @overload
    def __get__(self, obj: Asynchronous, owner: Any) -> Callable[P, Awaitable[R]]: ...

    def __get__(self, obj: Any, owner: Any) -> Any:
        if obj is None:
            return self
        # reached only on a class that is neither flavour (a shared base used directly)
        raise TypeError(f"{owner.__name__}.{self.__name__} needs a Blocking or Asynchronous class")


def _materialize(cls: type, make: Callable[[operation[Any, Any]], Any]) -> None:
    """Give ``cls`` a flavoured method for every ``operation`` its attribute lookup finds
    (its own, or inherited and not overridden by a plain attribute)."""
    for name in dir(cls):
        for klass in cls.__mro__:
            if name in vars(klass):
                value = vars(klass)[name]
                break
        if isinstance(value, operation):
            method = make(value)
            method.__name__ = name  # the public name, not the step's
            method.__qualname__ = f"{cls.__qualname__}.{name}"
            setattr(cls, name, method)


def _blocking_method(op: operation[Any, Any]) -> Callable[..., Any]:
    from wireclient.transport.blocking import run

    steps = op.steps

    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        return run(steps(self, *args, **kwargs))

    _name(method, op)
    return method


def _async_method(op: operation[Any, Any]) -> Callable[..., Any]:
    steps = op.steps

    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        # a plain function returning the driver's coroutine: one coroutine per call, not two
        try:
            run = _async_run[0]
        except IndexError:  # the first asyncio operation loads the driver (and asyncio)
            run = _load_async_run()
        return run(steps(self, *args, **kwargs))

    _name(method, op)
    return method


_async_run: List[Callable[[Any], Awaitable[Any]]] = []  # the asyncio driver's run, once loaded


def _load_async_run() -> Callable[[Any], Awaitable[Any]]:
    from wireclient.transport.asynchronous import run

    _async_run[:] = [run]
    return run


def _name(method: Callable[..., Any], op: operation[Any, Any]) -> None:
    method.__name__ = op.__name__
    method.__qualname__ = getattr(op.steps, "__qualname__", op.__name__)
    method.__doc__ = op.__doc__
    method.__wrapped__ = op.steps  # type: ignore[attr-defined]


__all__ = ["Asynchronous", "Blocking", "operation"]
