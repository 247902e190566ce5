"""Calls and callables: naming a callable, telling a coroutine function, running one call
in this thread (its coroutine settled, retried as its options say), and a chunk's calls
in order (a failure carrying the results before it).

Shared by the lanes and by the workers, which run calls the same way.
"""

from __future__ import annotations

import itertools
import types
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any, cast

from ._options import TaskOptions, earns_retry

__all__ = ["DONE", "args_at", "call_retrying", "calls_of", "describe", "is_coroutine",
           "is_coroutine_function", "keep_partial_results", "partial_results", "run_items",
           "settle", "sliceable"]


def call_retrying(fn: Any, args: tuple, kwargs: dict, options: TaskOptions | None,
                  retryable: type[BaseException] = BaseException) -> Any:
    """``fn(*args, **kwargs)`` (a coroutine run to its end), run again while it raises a
    ``retryable`` of ``options.retry_on`` and retries are left; the last exception
    propagates."""
    retries, retry_on = (options.retries, options.retry_on) if options is not None else (0, ())
    while True:
        try:
            return settle(fn(*args, **kwargs))
        except retryable as exc:
            if earns_retry(exc, retries, retry_on):
                retries -= 1
                continue
            raise


_plain_types: set[type] = set()  # result types known not to be coroutines


def is_coroutine(value: Any) -> bool:
    """``asyncio.iscoroutine``, with the answer for plain types remembered: every call's
    result on the thread lane and in a worker goes through here."""
    kind = type(value)
    if kind is types.CoroutineType:
        return True
    if kind in _plain_types:
        return False
    # asyncio.iscoroutine's test, without importing asyncio (a worker may never need it):
    # e.g. a Cython coroutine, a Coroutine but not a CoroutineType.
    if isinstance(value, Coroutine):
        return True
    _plain_types.add(kind)
    return False


def settle(value: Any) -> Any:
    """``value``, or what it returns when run if it is a coroutine (a coroutine function
    sent to the thread lane runs on a loop of its own, in that thread)."""
    if not is_coroutine(value):
        return value
    import asyncio

    return asyncio.run(value)


def describe(fn: Any) -> str:
    """A short human name for a callable, for messages: ``module.qualname()``."""
    if isinstance(fn, types.MethodType):
        fn = fn.__func__
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    if name is None:
        return repr(fn)
    module = getattr(fn, "__module__", None)
    return f"{module}.{name}()" if module else f"{name}()"


CO_COROUTINE = 0x0080  # inspect.CO_COROUTINE, without importing inspect (in every worker)


def is_coroutine_function(fn: Any) -> bool:
    """True for ``async def`` functions, partials of them, objects whose ``__call__`` is
    one, and ``@multilane.task`` functions that wrap one."""
    if type(fn) is types.FunctionType:
        return bool(fn.__code__.co_flags & CO_COROUTINE)
    marked = getattr(fn, "_multilane_async", None)
    if marked is not None:
        return bool(marked)
    import inspect

    if inspect.iscoroutinefunction(fn):
        return True
    try:
        call = type(fn).__call__  # an instance of a class with async def __call__
    except AttributeError:
        return False
    return inspect.iscoroutinefunction(call)


SLICEABLE = (list, tuple, range)  # sliced as they are, never copied first


def sliceable(iterables: tuple[Iterable[Any], ...]) -> Sequence[Any]:
    """A map's items, sliceable: single arguments for one iterable (a list, tuple or range
    as it is, else copied to a list), argument tuples for several."""
    if len(iterables) == 1:
        first = iterables[0]
        return cast(Sequence[Any], first) if type(first) in SLICEABLE else list(first)
    return list(zip(*iterables, strict=False))


def args_at(items: Sequence[Any], index: int, single: bool) -> tuple:
    """The argument tuple of ``items[index]``."""
    return (items[index],) if single else items[index]


def calls_of(items: Sequence[Any], start: int, stop: int, single: bool) -> Any:
    """The argument tuples of ``items[start:stop]``."""
    part = items[start:stop]
    return ((item,) for item in part) if single else part


DONE = "_multilane_done"  # where a failed chunk's exception keeps the results before it


def run_items(fn: Any, items: Iterable[Any], single: bool,
              settle: Callable[[Any], Any] | None = None) -> list:
    """``fn`` over a chunk's items (single arguments or argument tuples), in order.

    If a call raises, the exception carries the results of the calls before it, so that
    a map yields those before raising, exactly as if each item were its own task.
    """
    results: list = []
    try:  # extend keeps what it appended before an exception
        calls = map(fn, items) if single else itertools.starmap(fn, items)
        results.extend(calls if settle is None else map(settle, calls))
    except Exception as exc:
        keep_partial_results(exc, results)  # pickled with it, from a worker
        raise
    return results


def keep_partial_results(exc: BaseException, results: list) -> None:
    """Has ``exc`` carry ``results``, those of the calls before it (see run_items)."""
    if results:
        exc.__dict__[DONE] = results


def partial_results(exc: BaseException) -> list | None:
    """The results a failed chunk had before ``exc`` (taken: once only), or None."""
    return exc.__dict__.pop(DONE, None)
