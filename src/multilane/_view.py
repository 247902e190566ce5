"""``executor.options(...)``: an executor seen with a lane and per-task options.

Every keyword a caller passes to ``submit``, ``run`` or a mapped function belongs to that
function, exactly as in ``concurrent.futures``. What multilane itself is told (the lane,
a timeout, retries) is set on a view instead, Ray's ``.options()`` style::

    ex.options(lane="process", timeout=30, retries=2).submit(crunch, data, timeout=5)
    #          ^ multilane's                                       ^ crunch's own keyword

A view is immutable and cheap (four references); keep one and reuse it. Its methods are
the executor's: ``submit``, ``map``, ``map_async``, ``run``, and ``options`` to derive
another view.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any

from ._calls import describe, partial_results, sliceable
from ._cores import usable_cores
from ._future import iterate_results
from ._options import KEEP, TaskOptions, changed_options
from ._progress import Bar, checked_progress, closing, closing_pieces, open_bar, total_of
from ._streams import (
    Results,
    Window,
    checked_buffersize,
    chunk_for,
    iterate_window,
    iterate_window_async,
)
from .lanes import Lanes

__all__ = ["Options"]


class Options:
    """An executor with a lane and per-task options chosen: ``ex.options(...)``.

    ``lane``: where calls go (None: the executor's default lane). ``timeout``: seconds a
    call may run once started; past it the future fails with
    :class:`multilane.TaskTimeout` (a process call is stopped by killing its worker, which
    is replaced; a coroutine is cancelled; a thread cannot be stopped and runs on).
    ``retries``: how many times a call is run again after its worker crashed, or after it
    raised one of ``retry_on`` (an exception type or a tuple of them).

    Example::

        slow = ex.options(lane="process", timeout=30)
        futures = [slow.submit(crunch, part) for part in parts]
        for page in ex.options(retries=2, retry_on=ConnectionError).map(fetch, urls):
            ...
    """

    __slots__ = ("_lanes", "_lane", "_task")

    def __init__(self, lanes: Lanes, lane: str | None = None,
                 task: TaskOptions | None = None) -> None:
        lanes.check(lane, task.timeout if task is not None else None)
        self._lanes = lanes
        self._lane = lane
        self._task = task

    # ------------------------------------------------------------------ the view itself

    @property
    def lane(self) -> str | None:
        return self._lane

    @property
    def timeout(self) -> float | None:
        return self._task.timeout if self._task is not None else None

    @property
    def retries(self) -> int:
        return self._task.retries if self._task is not None else 0

    @property
    def retry_on(self) -> tuple[type[BaseException], ...]:
        return self._task.retry_on if self._task is not None else ()

    def options(self, *, lane: str | None = KEEP, timeout: float | None = KEEP,
                retries: int = KEEP,
                retry_on: type[BaseException] | tuple[type[BaseException], ...] = KEEP,
                ) -> Options:
        """A view with these options changed and the others kept.

        Raises :class:`multilane.LaneError` for an unknown lane or a timeout on a lane
        that cannot stop a call (inline), ``ValueError`` and ``TypeError`` for values
        out of range or of the wrong type.
        """
        task = changed_options(self._task, timeout, retries, retry_on)
        return Options(self._lanes, self._lane if lane is KEEP else lane, task)

    def __repr__(self) -> str:
        shown = [f"lane={self._lane!r}"] if self._lane is not None else []
        if self._task is not None:
            shown += [f"{name}={value!r}" for name, value in
                      (("timeout", self.timeout), ("retries", self.retries),
                       ("retry_on", self.retry_on)) if value]
        return f"<multilane options {' '.join(shown) or '(defaults)'}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Options):
            return NotImplemented
        return (self._lanes is other._lanes and self._lane == other._lane
                and self._task == other._task)

    def __hash__(self) -> int:
        return hash((id(self._lanes), self._lane, self._task))

    # ------------------------------------------------------------------ calls

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Schedules ``fn(*args, **kwargs)``; returns its ``concurrent.futures.Future``.
        Every keyword goes to ``fn``."""
        lanes = self._lanes
        return lanes.lane(lanes.resolve(fn, self._lane)).submit(fn, args, kwargs, self._task)

    def map(self, fn: Callable[..., Any], *iterables: Iterable[Any],
            timeout: float | None = None, chunksize: int | None = None,
            buffersize: int | None = None, ordered: bool = True,
            progress: bool | str = False) -> Iterator[Any]:
        """Like the built-in ``map``; results come back in order.

        Every item is submitted at once, as ``concurrent.futures`` does, unless
        ``buffersize`` is given: then the input is read as results are consumed, with at
        most ``buffersize`` items in flight or done and not yet consumed (Python 3.14's
        ``Executor.map(buffersize=)``; a map over an endless generator runs in constant
        memory). ``ordered=False`` yields results as their calls complete. ``timeout``
        bounds the whole iteration (``TimeoutError`` if a result is not ready by then);
        the view's own timeout applies to each call. ``chunksize`` is the number of items
        a process task takes (the lane picks one when it is None); other lanes run each
        item alone. ``progress=True`` draws a bar on stderr if it is a terminal
        (``"always"``: even if not), counting items as their calls complete.
        """
        end_time = None if timeout is None else timeout + time.monotonic()
        buffersize = checked_buffersize(buffersize)
        bar = open_bar(checked_progress(progress), total_of(iterables), describe(fn))
        try:
            if buffersize is not None or not ordered:
                window = self._window(fn, iterables, chunksize, buffersize, ordered, True, bar)
                return iterate_window(window, end_time)
            futures, chunked = self._map_futures(fn, iterables, chunksize, caller_waits=True)
        except BaseException:
            if bar is not None:
                bar.close()
            raise
        if bar is not None:
            for future in futures:
                bar.watch(future, chunked)
            if chunked and all(future.done() for future in futures):
                bar.close()  # run here, all of it: counted already, and one list to copy
                return self._results(futures, chunked, end_time)
            if chunked:  # lists of results: counted a list at a time
                return Results.chained(closing_pieces(iterate_results(futures, end_time),
                                                      bar))
            return closing(self._results(futures, chunked, end_time), bar)
        return self._results(futures, chunked, end_time)

    @staticmethod
    def _results(futures: list[Future], chunked: bool, end_time: float | None,
                 ) -> Iterator[Any]:
        """A map's results, in order, from its futures (see ``_map_futures``)."""
        if chunked and all(future.done() for future in futures):
            # All run in the caller (a map decided inline): one list. Chaining the pieces
            # costs a frame per item where list() copies at C speed.
            flat: list = []
            try:
                for future in futures:
                    flat.extend(future.result())
            except Exception:  # a failed or cancelled piece: yield up to it, then raise
                pass
            else:
                return iter(flat)
        results = iterate_results(futures, end_time)
        return itertools.chain.from_iterable(results) if chunked else results

    async def run(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """``await view.run(fn, *args, **kwargs)``: the result, without blocking the loop.

        On the inline lane the call runs right here, on the running loop (a coroutine
        function is awaited). Cancelling the awaiting task cancels the call if it has not
        started.
        """
        lanes = self._lanes
        lane = lanes.lane(lanes.resolve(fn, self._lane))
        return await lane.run(fn, args, kwargs, self._task)

    async def map_async(self, fn: Callable[..., Any], *iterables: Iterable[Any],
                        chunksize: int | None = None, buffersize: int | None = None,
                        ordered: bool = True, progress: bool | str = False,
                        ) -> AsyncIterator[Any]:
        """``async for result in view.map_async(fn, items)``: results in order.

        Every item is submitted at once, unless ``buffersize`` bounds the items in flight
        or done and not yet consumed (see ``map``); ``ordered=False`` yields results as
        they complete; ``progress`` as ``map`` has it. Leaving the loop early cancels what
        has not started.
        """
        buffersize = checked_buffersize(buffersize)
        bar = open_bar(checked_progress(progress), total_of(iterables), describe(fn))
        try:
            if buffersize is not None or not ordered:
                window = self._window(fn, iterables, chunksize, buffersize, ordered, False,
                                      bar)
            else:
                futures, chunked = self._map_futures(fn, iterables, chunksize)
        except BaseException:
            if bar is not None:
                bar.close()
            raise
        if buffersize is not None or not ordered:
            async for value in iterate_window_async(window):
                yield value
            return
        if bar is not None:
            for future in futures:
                bar.watch(future, chunked)
        taken = 0
        try:
            for index, future in enumerate(futures):
                try:
                    value = await asyncio.wrap_future(future)
                except Exception as exc:
                    for item in partial_results(exc) or ():  # a chunk that failed part way
                        yield item
                    raise
                futures[index] = None  # type: ignore[call-overload]  # let results go
                if chunked:
                    for item in value:
                        yield item
                    taken += len(value)
                else:
                    yield value
                    taken += 1
        finally:
            for future in futures:
                if future is not None:
                    future.cancel()
            if bar is not None:
                bar.close(taken)

    def _window(self, fn: Any, iterables: tuple[Iterable[Any], ...], chunksize: int | None,
                buffersize: int | None, ordered: bool, caller_waits: bool,
                bar: Bar | None) -> Window:
        """A map's lazily read input (see ``_streams``), its first batch submitted."""
        if chunksize is not None and chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        lanes = self._lanes
        lane = lanes.lane(lanes.resolve(fn, self._lane))
        single, task = len(iterables) == 1, self._task
        chunksize = chunksize or chunk_for(buffersize, usable_cores())

        def submit(batch: Sequence[Any]) -> tuple[list[Future], bool]:
            return lane.map_calls(fn, batch, single, chunksize, task, caller_waits)

        return Window(submit, iterables, buffersize, ordered, bar)

    def _map_batch(self, fn: Any, batch: list) -> tuple[list[Future], bool]:
        """A batch of single-argument calls as one map to the lane, nobody waiting for it
        in this thread (a ``Pipeline`` stage's): (futures, whether each is a chunk's)."""
        lanes = self._lanes
        lane = lanes.lane(lanes.resolve(fn, self._lane))
        return lane.map_calls(fn, batch, True, None, self._task, False)

    def _map_futures(self, fn: Any, iterables: tuple[Iterable[Any], ...],
                     chunksize: int | None, caller_waits: bool = False,
                     ) -> tuple[list[Future], bool]:
        if chunksize is not None and chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        lanes = self._lanes
        lane = lanes.lane(lanes.resolve(fn, self._lane))
        return lane.map_calls(fn, sliceable(iterables), len(iterables) == 1, chunksize,
                              self._task, caller_waits)
