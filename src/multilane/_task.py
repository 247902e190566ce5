"""``@multilane.task``: a function that can also be submitted, mapped and awaited on a lane.

A plain call stays a plain call. ``fn.submit(...)``, ``fn.map(...)``, ``await fn.run(...)``
and ``fn.map_async(...)`` go to the lane chosen in the decorator, on the executor given
there or on the process-wide default executor (:func:`default_executor`).
"""

from __future__ import annotations

import functools
import importlib
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import Future
from typing import Any

from ._executor import LANES, Executor, plain_on_async, unknown_lane
from ._serialize import describe, is_coroutine_function

__all__ = ["TaskFunction", "default_executor", "task"]

_default: Executor | None = None
_default_lock = threading.Lock()


def default_executor() -> Executor:
    """The executor ``@task`` functions use unless given one; made on first use, with
    every lane at its default size. Its lanes stop at interpreter exit."""
    global _default
    with _default_lock:
        if _default is None or _default._shutdown:
            _default = Executor()
        return _default


def _load(module: str, qualname: str) -> Any:
    """Finds a ``@task`` function by name in a worker process (how it is unpickled)."""
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    return found


class TaskFunction:
    """What ``@multilane.task`` makes of a function: the function, plus lane methods.

    It pickles by reference (module and name) like the function it wraps, so process
    workers import it once and then refer to it by id; one defined in ``__main__`` is
    pickled by value.
    """

    _multilane_cacheable = True  # see _serialize.cacheable

    def __init__(self, fn: Callable[..., Any], lane: str | None,
                 executor: Executor | None) -> None:
        functools.update_wrapper(self, fn)
        self._fn = fn
        self._lane = lane
        self._executor = executor
        self._multilane_async = is_coroutine_function(fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._fn(*args, **kwargs)

    def __repr__(self) -> str:
        lane = f" lane={self._lane!r}" if self._lane else ""
        return f"<multilane task {describe(self._fn)}{lane}>"

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        module, qualname = self.__module__, getattr(self, "__qualname__", "<locals>")
        if module != "__main__" and "<locals>" not in qualname:
            return _load, (module, qualname)
        return TaskFunction, (self._fn, self._lane, None)

    def _target(self, executor: Executor) -> tuple[Any, str]:
        """(what to submit, lane): processes get this object, which pickles by name;
        in-process lanes get the function itself."""
        lane = executor._resolve(self._fn, self._lane)
        return (self if lane in ("process", "hybrid") else self._fn), lane

    def _ex(self) -> Executor:
        return self._executor if self._executor is not None else default_executor()

    def submit(self, *args: Any, **kwargs: Any) -> Future:
        """Schedules a call on the task's lane; returns its Future."""
        executor = self._ex()
        target, lane = self._target(executor)
        return executor.submit(target, *args, lane=lane, **kwargs)

    def map(self, *iterables: Iterable[Any], timeout: float | None = None,
            chunksize: int | None = None) -> Iterator[Any]:
        """``Executor.map`` on the task's lane."""
        executor = self._ex()
        target, lane = self._target(executor)
        return executor.map(target, *iterables, lane=lane, timeout=timeout,
                            chunksize=chunksize)

    async def run(self, *args: Any, **kwargs: Any) -> Any:
        """``await fn.run(...)``: the result of a call on the task's lane."""
        executor = self._ex()
        target, lane = self._target(executor)
        return await executor.run(target, *args, lane=lane, **kwargs)

    def map_async(self, *iterables: Iterable[Any],
                  chunksize: int | None = None) -> AsyncIterator[Any]:
        """``async for result in fn.map_async(items)``: results in order."""
        executor = self._ex()
        target, lane = self._target(executor)
        return executor.map_async(target, *iterables, lane=lane, chunksize=chunksize)


def task(fn: Callable[..., Any] | None = None, *, lane: str | None = None,
         executor: Executor | None = None) -> Any:
    """Decorator: ``@task`` or ``@task(lane="thread", executor=ex)``.

    The lane is checked here, so a mistake shows at import time: an unknown lane, or a
    plain function given ``lane="async"``.
    """
    if lane is not None and lane not in LANES:
        raise unknown_lane(lane)

    def decorate(function: Callable[..., Any]) -> TaskFunction:
        if not callable(function):
            raise TypeError(f"@multilane.task decorates functions, not {function!r}")
        if lane == "async" and not is_coroutine_function(function):
            raise plain_on_async(function)
        return TaskFunction(function, lane, executor)

    return decorate if fn is None else decorate(fn)
