"""``@multilane.task``: a function that can also be submitted, mapped and awaited on a lane.

A plain call stays a plain call. ``fn.submit(...)``, ``fn.map(...)``, ``await fn.run(...)``
and ``fn.map_async(...)`` go to the lane chosen in the decorator, with its options, on the
executor given there or on the process-wide default executor (:func:`default_executor`).
Every keyword of a call goes to the function, as with ``Executor.submit``.
"""

from __future__ import annotations

import functools
import importlib
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import Future
from typing import Any

from ._calls import describe, is_coroutine_function
from ._executor import LANES, Executor
from ._options import KEEP, TaskOptions, changed_options, task_options
from ._view import Options
from .lanes._registry import plain_on_coroutine_lane, unknown_lane

__all__ = ["TaskFunction", "default_executor", "task"]

_default: Executor | None = None
_default_lock = threading.Lock()


def default_executor() -> Executor:
    """The executor ``@task`` functions use unless given one; made on first use, with
    every lane at its default size. Its lanes stop at interpreter exit."""
    global _default
    with _default_lock:
        if _default is None or _default.closed:
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

    def __init__(self, fn: Callable[..., Any], lane: str | None, executor: Executor | None,
                 options: TaskOptions | None = None) -> None:
        functools.update_wrapper(self, fn)
        self._fn = fn
        self._lane = lane
        self._options = options
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
        return TaskFunction, (self._fn, self._lane, None, self._options)

    def options(self, *, lane: str | None = KEEP, timeout: float | None = KEEP,
                retries: int = KEEP,
                retry_on: type[BaseException] | tuple[type[BaseException], ...] = KEEP,
                ) -> TaskFunction:
        """The same task with these options changed (see :meth:`multilane.Executor.options`).

        It runs under the same name in the workers: a plain call of it is the function's.
        """
        lane = self._lane if lane is KEEP else lane
        _check_lane(self._fn, lane)
        options = changed_options(self._options, timeout, retries, retry_on)
        return TaskFunction(self._fn, lane, self._executor, options)

    def _on(self) -> Options:
        """The executor's view with this task's lane and options (the executor keeps the
        views it made)."""
        executor = self._executor if self._executor is not None else default_executor()
        options = self._options or TaskOptions()
        return executor.options(lane=self._lane, timeout=options.timeout,
                                retries=options.retries, retry_on=options.retry_on)

    # Processes get this object, which pickles by name (the module's attribute is this
    # object, not the function); in-process lanes call through it.

    def submit(self, *args: Any, **kwargs: Any) -> Future:
        """Schedules a call on the task's lane; returns its Future."""
        return self._on().submit(self, *args, **kwargs)

    def map(self, *iterables: Iterable[Any], timeout: float | None = None,
            chunksize: int | None = None) -> Iterator[Any]:
        """``Executor.map`` on the task's lane, with its options."""
        return self._on().map(self, *iterables, timeout=timeout, chunksize=chunksize)

    async def run(self, *args: Any, **kwargs: Any) -> Any:
        """``await fn.run(...)``: the result of a call on the task's lane."""
        return await self._on().run(self, *args, **kwargs)

    def map_async(self, *iterables: Iterable[Any],
                  chunksize: int | None = None) -> AsyncIterator[Any]:
        """``async for result in fn.map_async(items)``: results in order."""
        return self._on().map_async(self, *iterables, chunksize=chunksize)


def _check_lane(fn: Any, lane: str | None) -> None:
    if lane is not None and lane not in LANES:
        raise unknown_lane(lane, LANES)
    if lane == "async" and not is_coroutine_function(fn):
        raise plain_on_coroutine_lane(fn, lane)


def task(fn: Callable[..., Any] | None = None, *, lane: str | None = None,
         timeout: float | None = None, retries: int = 0,
         retry_on: type[BaseException] | tuple[type[BaseException], ...] = (),
         executor: Executor | None = None) -> Any:
    """Decorator: ``@task`` or ``@task(lane="thread", timeout=5, executor=ex)``.

    The lane and the options are checked here, so a mistake shows at import time: an
    unknown lane, a plain function given ``lane="async"``, a timeout that is not a
    positive number.

    Example::

        @multilane.task(lane="process", timeout=60)
        def count_words(text): ...

        count_words(text)                      # a plain call
        count_words.submit(text).result()      # on the default executor's process lane
    """
    options = task_options(timeout, retries, retry_on)

    def decorate(function: Callable[..., Any]) -> TaskFunction:
        if not callable(function):
            raise TypeError(f"@multilane.task decorates functions, not {function!r}")
        _check_lane(function, lane)
        return TaskFunction(function, lane, executor, options)

    if lane is not None and lane not in LANES:
        raise unknown_lane(lane, LANES)
    return decorate if fn is None else decorate(fn)
