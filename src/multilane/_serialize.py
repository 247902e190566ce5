"""Pickling across the process boundary: protocol 5, cloudpickle where plain pickle cannot."""

from __future__ import annotations

import inspect
import pickle
import types
from collections.abc import Callable, Sequence
from typing import Any

from .errors import SerializationError

PROTOCOL = 5
# What plain pickle raises for objects it cannot handle (locks, lambdas, local classes...).
_PICKLE_FAILURES = (pickle.PicklingError, TypeError, AttributeError, ValueError, RecursionError)
_MAIN = b"__main__"


def _cloudpickle_dumps(obj: Any) -> bytes:
    import cloudpickle  # imported on first need: most tasks never pay for it

    return cloudpickle.dumps(obj, protocol=PROTOCOL)


def dumps(obj: Any) -> bytes:
    """Pickles ``obj`` for another interpreter.

    Plain pickle first (fast, in C). A reference to ``__main__`` would not resolve in a
    worker (its ``__main__`` is the worker module), and lambdas, closures and local
    classes do not pickle by reference at all: both go through cloudpickle, which pickles
    them by value. Raises whatever pickling raised if both fail.
    """
    try:
        data = pickle.dumps(obj, protocol=PROTOCOL)
    except _PICKLE_FAILURES:
        return _cloudpickle_dumps(obj)
    if _MAIN in data:  # maybe a __main__ reference; a false alarm only costs a slower pickle
        return _cloudpickle_dumps(obj)
    return data


def dumps_function(fn: Callable[..., Any]) -> bytes:
    """Pickles a callable, naming it in the error if it cannot be pickled."""
    try:
        return dumps(fn)
    except Exception as exc:
        raise SerializationError(
            f"cannot pickle the function {describe(fn)}: {type(exc).__name__}: {exc}"
        ) from exc


def dumps_call(fn: Callable[..., Any], payload: Any, args: Sequence[Any], kwargs: dict) -> bytes:
    """Pickles a call's payload; on failure names the argument that failed and why."""
    try:
        return dumps(payload)
    except Exception as exc:
        raise _name_culprit(fn, args, kwargs, exc) from exc


def _name_culprit(fn: Callable[..., Any], args: Sequence[Any], kwargs: dict,
                  exc: BaseException) -> SerializationError:
    where = f"of {describe(fn)}"
    for index, value in enumerate(args):
        reason = _why_unpicklable(value)
        if reason is not None:
            return SerializationError(
                f"cannot pickle argument {index} ({type(value).__name__}) {where}: {reason}")
    for name, value in kwargs.items():
        reason = _why_unpicklable(value)
        if reason is not None:
            return SerializationError(
                f"cannot pickle keyword argument {name!r} ({type(value).__name__}) {where}: "
                f"{reason}")
    reason = _why_unpicklable(fn)
    if reason is not None:
        return SerializationError(f"cannot pickle the function {describe(fn)}: {reason}")
    return SerializationError(f"cannot pickle the call {where}: {type(exc).__name__}: {exc}")


def name_unpicklable_item(fn: Callable[..., Any], chunk: Sequence[Any], start: int,
                          exc: BaseException) -> SerializationError:
    """For map: names the input item (by its index in the whole input) that failed."""
    for offset, item in enumerate(chunk):
        reason = _why_unpicklable(item)
        if reason is not None:
            return SerializationError(
                f"cannot pickle item {start + offset} ({type(item).__name__}) of the input to "
                f"map({describe(fn)}): {reason}")
    return _name_culprit(fn, (), {}, exc)


def _why_unpicklable(value: Any) -> str | None:
    try:
        dumps(value)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def loads(data: bytes) -> Any:
    """Unpickles what ``dumps`` made (cloudpickle output is plain pickle data)."""
    return pickle.loads(data)


def describe(fn: Any) -> str:
    """A short human name for a callable, for messages: ``module.qualname()``."""
    if isinstance(fn, types.MethodType):
        fn = fn.__func__
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    if name is None:
        return repr(fn)
    module = getattr(fn, "__module__", None)
    return f"{module}.{name}()" if module else f"{name}()"


def cacheable(fn: Any) -> bool:
    """True for callables that are safe to pickle once and refer to by id afterwards.

    Plain functions and builtins: their identity is their behaviour. Bound methods,
    partials and callable objects carry state that may change between calls, so they
    are pickled with every call, as the standard library does. Functions made by
    ``@multilane.task`` are plain functions with methods attached.
    """
    return isinstance(fn, (types.FunctionType, types.BuiltinFunctionType)) or getattr(
        type(fn), "_multilane_cacheable", False)


def is_coroutine_function(fn: Any) -> bool:
    """True for ``async def`` functions, partials of them, objects whose ``__call__`` is
    one, and ``@multilane.task`` functions that wrap one."""
    if type(fn) is types.FunctionType:
        return bool(fn.__code__.co_flags & inspect.CO_COROUTINE)
    marked = getattr(fn, "_multilane_async", None)
    if marked is not None:
        return bool(marked)
    if inspect.iscoroutinefunction(fn):
        return True
    try:
        call = type(fn).__call__  # an instance of a class with async def __call__
    except AttributeError:
        return False
    return inspect.iscoroutinefunction(call)
