"""Maps that read their input as they go: ``buffersize`` and ``ordered=False``.

``map(fn, items, buffersize=N)`` has the semantics of Python 3.14's ``Executor.map``: the
input is read lazily, and at most N items are in flight or done but not yet consumed; a
full window pauses the reading until the consumer takes a result. A map over an endless
generator then runs in constant memory. ``ordered=False`` yields each result as its call
completes instead of in input order, so one slow item holds back no result behind it.

The window is refilled in batches of about half of it, each submitted as one map to the
lane (which may cut it into process chunks): a window of 10,000 tiny items costs two
submissions per 10,000 results, not one per item. Closing the iterator (or dropping it)
cancels what has not started; the rest of the input is never read.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import queue
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any, cast

from ._calls import SLICEABLE, partial_results
from ._progress import Bar

__all__ = ["Results", "Window", "checked_buffersize", "chunk_for", "iterate_window",
           "iterate_window_async"]

# Submits a batch of items (single arguments, or argument tuples): (futures in order,
# whether each future's result is a list of results for a chunk of items).
Submit = Callable[[Sequence[Any]], tuple[list[Future], bool]]


def checked_buffersize(buffersize: Any) -> int | None:
    """``buffersize`` as ``Executor.map`` takes it: None, or an int of at least 1."""
    if buffersize is None:
        return None
    if not isinstance(buffersize, int):
        raise TypeError("buffersize must be an integer or None")
    if buffersize < 1:
        raise ValueError("buffersize must be None or > 0")
    return buffersize


def chunk_for(limit: int | None, workers: int) -> int | None:
    """The chunk size of a process task in a window of ``limit`` items (None: the lane's
    own): each batch (half the window) in two chunks per worker. The lane's choice for
    an unbounded map (four chunks per worker of the whole map) cut each batch of a
    bounded one into chunks four times smaller: 1,000,000 tiny calls in a window of
    10,000 took 0.34 s, against 0.18 s with this."""
    if limit is None:
        return None
    return max(1, (limit // 2) // (2 * max(1, workers)))


class Window:
    """The map's input, read into a window of at most ``limit`` items (None: all of it
    at once, as ``concurrent.futures`` reads it) that are in flight or done and not yet
    consumed. Each submitted future comes with whether its result is a chunk's list of
    results; ``ordered``: they are taken in submission order (``pending``), else in any
    order (``pending`` is then a set)."""

    def __init__(self, submit: Submit, iterables: tuple[Iterable[Any], ...],
                 limit: int | None, ordered: bool, bar: Bar | None = None) -> None:
        self._submit = submit
        self._bar = bar
        # A list, tuple or range is sliced, not read item by item: a slice of a range is a
        # range, a few bytes to pickle for a process chunk.
        self._sequence: Sequence[Any] | None = (
            cast(Sequence[Any], iterables[0])
            if len(iterables) == 1 and type(iterables[0]) in SLICEABLE else None)
        self._next = 0  # the sequence's first item not yet read
        self._source: Iterator[Any] = (iter(iterables[0]) if len(iterables) == 1
                                       else zip(*iterables, strict=False))
        self._limit = limit
        self._batch = max(1, limit // 2) if limit is not None else 0
        self.ordered = ordered
        self.pending: Any = deque() if ordered else set()
        self.open = 0  # items submitted and not yet consumed
        self.taken = 0  # items consumed
        self.exhausted = False
        self._watcher: Callable[[list[tuple[Future, bool]]], None] | None = None
        self.fill()

    def watch(self, watcher: Callable[[list[tuple[Future, bool]]], None]) -> None:
        """Has ``watcher`` see every future submitted, from those pending now on."""
        self._watcher = watcher
        watcher(list(self.pending))

    def fill(self) -> list[tuple[Future, bool]]:
        """Reads and submits batches while the window has room for one (for any items at
        all if it is empty); returns what it submitted."""
        added: list[tuple[Future, bool]] = []
        while not self.exhausted:
            if self._limit is None:
                batch = self._read(None)
                self.exhausted = True
            else:
                room = self._limit - self.open
                wanted = min(room, self._batch)
                if wanted < self._batch and self.open:
                    break  # wait for room for a whole batch
                batch = self._read(wanted)
                self.exhausted = len(batch) < wanted
            if not batch:
                break
            futures, chunked = self._submit(batch)
            self.open += len(batch)
            added.extend((future, chunked) for future in futures)
            if self._bar is not None:
                for future in futures:
                    self._bar.watch(future, chunked)
        if self.ordered:
            self.pending.extend(added)
        else:
            self.pending.update(added)
        if self._watcher is not None:
            self._watcher(added)
        return added

    def _read(self, n: int | None) -> Any:
        """Up to ``n`` more items of the input (None: all the rest)."""
        if self._sequence is not None:
            start = self._next
            self._next = len(self._sequence) if n is None else start + n
            return self._sequence[start:self._next]
        return list(self._source if n is None else itertools.islice(self._source, n))

    def take(self, future: Future, chunked: bool, timeout: float | None) -> list:
        """The results of ``future``, settled (or within ``timeout``), out of the window's
        pending futures. A chunk that failed part way raises ``_Partial``."""
        values = _values(future, chunked, timeout)
        if self.ordered:
            self.pending.popleft()
        else:
            self.pending.discard((future, chunked))
        return values

    def consumed(self, n: int) -> None:
        """``n`` results were taken: room for more input."""
        self.open -= n
        self.taken += n
        if not self.exhausted:
            self.fill()

    def close(self) -> None:
        """Cancels what has not started, reads no more input, and ends the bar."""
        self.exhausted = True
        for future, _ in self.pending:
            future.cancel()
        if self._bar is not None:
            self._bar.close(self.taken)


def _values(future: Future, chunked: bool, timeout: float | None) -> list:
    """The results ``future`` stands for (a chunk's list, or one result). A chunk that
    failed part way raises ``_Partial`` with its results before the failure."""
    try:
        value = future.result(timeout)
    except Exception as exc:
        done = partial_results(exc)
        if done:
            raise _Partial(done, exc) from exc
        raise
    return value if chunked else [value]


class _Partial(Exception):
    """A chunk failed after ``done`` results: yield them, then raise ``error``."""

    def __init__(self, done: list, error: BaseException) -> None:
        super().__init__(error)
        self.done, self.error = done, error


def _finished(put: Callable[[Any], Any], chunked: bool, future: Future) -> None:
    """A future's done-callback for unordered maps: hands it to the consumer."""
    put((future, chunked))


def _remaining(end_time: float | None) -> float | None:
    return None if end_time is None else max(0.0, end_time - time.monotonic())


class Results(itertools.chain):
    """A map's results: the window's result lists chained, item by item at C speed (a
    generator's frame per item cost a bounded map of tiny calls half its time).
    ``close()`` ends the map: what has not started is cancelled, and no more input is
    read (the items of the list in hand, already done, still come if asked for)."""

    pieces: Generator[list, None, None]  # the lists chained

    @classmethod
    def chained(cls, pieces: Generator[list, None, None]) -> Results:
        results = cast(Results, cls.from_iterable(pieces))
        results.pieces = pieces
        return results

    def close(self) -> None:
        self.pieces.close()


def iterate_window(window: Window, end_time: float | None) -> Iterator[Any]:
    """The results of ``window``'s map: in input order, or as they complete; cancels what
    is left if the consumer stops early, a call fails or ``end_time`` passes."""
    return Results.chained(_pieces(window, end_time))


def _pieces(window: Window, end_time: float | None) -> Generator[list, None, None]:
    """``iterate_window``'s results, a list at a time: the window counts a list's items
    consumed once the next one is asked for."""
    finished: queue.SimpleQueue = queue.SimpleQueue()
    if not window.ordered:
        window.watch(functools.partial(_watch, finished.put))
    try:
        while window.pending:
            if window.ordered:
                future, chunked = window.pending[0]
            else:
                try:
                    future, chunked = finished.get(timeout=_remaining(end_time))
                except queue.Empty:
                    raise TimeoutError from None
            try:
                values = window.take(future, chunked, _remaining(end_time))
            except _Partial as failed:
                yield failed.done
                raise failed.error from None
            del future
            n = len(values)
            yield values
            del values
            window.consumed(n)
    finally:
        window.close()


async def iterate_window_async(window: Window) -> AsyncIterator[Any]:
    """``iterate_window`` for ``async for``, without blocking the loop."""
    loop = asyncio.get_running_loop()
    finished: asyncio.Queue = asyncio.Queue()

    def post(item: tuple[Future, bool]) -> None:  # on whichever thread settled it
        loop.call_soon_threadsafe(finished.put_nowait, item)

    if not window.ordered:
        window.watch(functools.partial(_watch, post))
    try:
        while window.pending:
            if window.ordered:
                future, chunked = window.pending[0]
                if not future.done():
                    await asyncio.wait({asyncio.wrap_future(future)})
            else:
                future, chunked = await finished.get()
            try:
                values = window.take(future, chunked, 0)
            except _Partial as failed:
                for value in failed.done:
                    yield value
                raise failed.error from None
            del future
            for value in values:
                yield value
            window.consumed(len(values))
    finally:
        window.close()


def _watch(put: Callable[[Any], Any], added: list[tuple[Future, bool]]) -> None:
    """For unordered maps: each future, once done, goes to the consumer through ``put``."""
    for future, chunked in added:
        future.add_done_callback(functools.partial(_finished, put, chunked))
