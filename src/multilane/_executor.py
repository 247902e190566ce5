"""multilane.Executor: one ``concurrent.futures`` executor, every lane.

Each lane starts on first use, so a program that only uses threads never starts a
process:

=========  ==============================================================================
lane       runs the call
=========  ==============================================================================
process    in a pool of worker processes (:class:`multilane.ProcessPoolExecutor`)
thread     on a pool of threads: blocking I/O, and code that releases the GIL
async      on an event loop in a thread of its own (uvloop when installed); coroutine
           functions only
inline     in the caller, at once; the future is finished when ``submit`` returns
hybrid     in a process worker that runs many tasks at once on inner threads and its
           own event loop: I/O waits overlap while sibling processes compute
=========  ==============================================================================
"""

from __future__ import annotations

import asyncio
import difflib
import inspect
import itertools
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import Executor as _BaseExecutor
from concurrent.futures import Future
from typing import Any, Literal

from ._auto import AutoLane, Explanation
from ._future import LaneFuture, TaskOptions, iterate_results, note_interrupt, partial_results
from ._lanes import AsyncLane, ThreadLane, call_retrying
from ._process_pool import ProcessPoolExecutor, sliceable
from ._serialize import describe, is_coroutine_function
from .errors import LaneError

__all__ = ["LANES", "Executor"]

LANES = ("auto", "process", "thread", "async", "inline", "hybrid")
_PROCESS_LANES = ("process", "hybrid")
_HYBRID_CONCURRENCY = 32


def _default_threads() -> int:
    # As ThreadPoolExecutor: enough for I/O, bounded for machines with many cores.
    return min(32, (os.cpu_count() or 1) + 4)


def _check_count(name: str, value: int | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int or None, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, not {value}")


def unknown_lane(lane: object) -> LaneError:
    valid = ", ".join(repr(name) for name in LANES)
    close = difflib.get_close_matches(str(lane), LANES, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return LaneError(f"unknown lane {lane!r}{hint}; the lanes are {valid}")


def plain_on_async(fn: object) -> LaneError:
    return LaneError(
        f"{describe(fn)} is a plain function, and lane='async' runs coroutine functions "
        "(async def) on an event loop, where blocking code would stall every other task: "
        "use lane='thread' for blocking I/O, lane='process' for computing, or make it an "
        "async def")


def _options(lane: str, timeout: float | None, retries: int,
             retry_on: Any) -> TaskOptions | None:
    """Checked per-task options, or None when they are all defaults (the fast path)."""
    if timeout is None and not retries and not retry_on:
        return None
    if lane == "auto":
        raise LaneError("timeout, retries and retry_on need a lane chosen by you: pass "
                        "lane='process', 'thread', 'async' or 'hybrid' with them")
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        if lane == "inline":
            raise LaneError("lane='inline' runs the call in the caller, which cannot be "
                            "stopped: use lane='thread' or lane='process' for a timeout")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be an int >= 0, not {retries!r}")
    if isinstance(retry_on, type):
        retry_on = (retry_on,)
    if not isinstance(retry_on, tuple) or not all(
            isinstance(t, type) and issubclass(t, BaseException) for t in retry_on):
        raise TypeError(f"retry_on must be an exception type or a tuple of them, not "
                        f"{retry_on!r}")
    return TaskOptions(None if timeout is None else float(timeout), retries, retry_on)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _not_callable(fn: object) -> TypeError:
    if inspect.iscoroutine(fn):
        name = getattr(fn, "__qualname__", "the coroutine")
        fn.close()  # it will never run: no "never awaited" warning on top of this error
        return TypeError(
            f"{name}(...) is a coroutine object, not a coroutine function: pass the function "
            f"and its arguments, as in submit({name}, arg), not submit({name}(arg))")
    return TypeError(f"{fn!r} is not callable")


class Executor(_BaseExecutor):
    """One executor for every lane; a drop-in ``concurrent.futures.Executor``.

    ``processes`` and ``threads`` size the process and thread lanes (defaults: one
    process per core; as many threads as ``ThreadPoolExecutor``). The hybrid lane has
    ``hybrid_processes`` workers (default: one per core), each running up to
    ``hybrid_concurrency`` tasks at once. ``lane`` is where ``submit`` and ``map`` send a
    plain function when the call names no lane; coroutine functions go to ``"async"``.
    ``max_tasks_per_child`` and ``max_memory_per_child`` (bytes of resident memory,
    checked after each task) replace process workers without losing queued work.

    ``submit(fn, *args, lane=..., **kwargs)`` and ``map(fn, *iterables, lane=...)``
    return standard futures and results; ``await ex.run(fn, *args, lane=...)`` and
    ``async for r in ex.map_async(...)`` do the same from a running event loop, and
    ``loop.run_in_executor(ex, fn, *args)`` works. ``lane`` is taken by multilane, never
    passed to ``fn``: bind a parameter of that name with ``functools.partial``.

    Example::

        with multilane.Executor(threads=64) as ex:
            pages = list(ex.map(download, urls, lane="thread"))
            sizes = list(ex.map(parse, pages, lane="process"))
    """

    def __init__(self, processes: int | None = None, threads: int | None = None, *,
                 hybrid_processes: int | None = None,
                 hybrid_concurrency: int = _HYBRID_CONCURRENCY,
                 lane: str = "auto", max_tasks_per_child: int | None = None,
                 max_memory_per_child: int | None = None) -> None:
        _check_count("processes", processes)
        _check_count("threads", threads)
        _check_count("hybrid_processes", hybrid_processes)
        _check_count("hybrid_concurrency", hybrid_concurrency)
        if lane not in LANES:
            raise unknown_lane(lane)
        self._processes = processes
        self._threads = threads or _default_threads()
        self._hybrid_processes = hybrid_processes
        self._hybrid_concurrency = hybrid_concurrency
        self._default_lane = lane
        # Recycling, for both process lanes: checked by ProcessPoolExecutor when it starts.
        self._max_tasks_per_child = max_tasks_per_child
        self._max_memory_per_child = max_memory_per_child
        self._lanes: dict[str, Any] = {}  # started lanes, by name
        self._lock = threading.Lock()
        self._shutdown = False

    # ------------------------------------------------------------------ public API

    def submit(self, fn: Callable[..., Any], /, *args: Any,  # type: ignore[override]
               lane: str | None = None, timeout: float | None = None, retries: int = 0,
               retry_on: type[BaseException] | tuple[type[BaseException], ...] = (),
               **kwargs: Any) -> Future:
        """Schedules ``fn(*args, **kwargs)`` on ``lane``; returns its Future.

        ``timeout``: seconds the call may run once started; past it the future fails
        with :class:`multilane.TaskTimeout` (a process call is stopped by killing its
        worker, which is replaced; a coroutine is cancelled; a thread cannot be stopped
        and runs on). ``retries``: how many times a call whose worker crashed is run
        again; ``retry_on``: exception types that also earn a re-run. These names are
        taken by multilane, never passed to ``fn`` (bind such parameters with
        ``functools.partial``).
        """
        name = self._resolve(fn, lane)
        options = _options(name, timeout, retries, retry_on)
        if name == "auto":
            return self._auto().submit(fn, args, kwargs)
        if name == "inline":
            return self._inline(fn, args, kwargs, options)
        started = self._lanes.get(name) or self._start(name)
        if name in _PROCESS_LANES:
            return started._submit(fn, args, kwargs, options)
        return started.submit(fn, args, kwargs, options)

    def map(self, fn: Callable[..., Any], *iterables: Iterable[Any], lane: str | None = None,
            timeout: float | None = None, chunksize: int | None = None,
            task_timeout: float | None = None, retries: int = 0,
            retry_on: type[BaseException] | tuple[type[BaseException], ...] = (),
            ) -> Iterator[Any]:
        """Like the built-in ``map`` on ``lane``; results come back in order.

        Every item is submitted at once. ``chunksize`` applies to the process lanes (the
        pool chooses one when it is None); the other lanes run each item as its own task.
        ``timeout`` bounds the whole iteration, as in ``concurrent.futures``;
        ``task_timeout``, ``retries`` and ``retry_on`` apply to each call as in
        :meth:`submit` (with ``task_timeout`` each item is its own task unless
        ``chunksize`` is given).
        """
        end_time = None if timeout is None else timeout + time.monotonic()
        futures, chunked = self._map_futures(fn, iterables, lane, chunksize,
                                             (task_timeout, retries, retry_on), caller_waits=True)
        if chunked and all(future.done() for future in futures):
            # Run in the caller (a map decided inline): one list, which list() copies at
            # 1 ns an item; chaining the pieces cost 5 ns, 15% of a map of add_one.
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

    async def run(self, fn: Callable[..., Any], /, *args: Any, lane: str | None = None,
                  **kwargs: Any) -> Any:
        """``await ex.run(fn, *args, lane=...)``: the result, without blocking the loop.

        On the inline lane the call runs right here, on the running loop (a coroutine
        function is awaited directly). Cancelling the awaiting task cancels the call if
        it has not started.
        """
        name = self._resolve(fn, lane)
        if name == "inline":
            self._check_open()
            result = fn(*args, **kwargs)
            return await result if inspect.isawaitable(result) else result
        return await asyncio.wrap_future(self.submit(fn, *args, lane=name, **kwargs))

    async def map_async(self, fn: Callable[..., Any], *iterables: Iterable[Any],
                        lane: str | None = None,
                        chunksize: int | None = None) -> AsyncIterator[Any]:
        """``async for result in ex.map_async(fn, items, lane=...)``: results in order.

        Every item is submitted at once; leaving the loop early cancels what has not
        started.
        """
        futures, chunked = self._map_futures(fn, iterables, lane, chunksize, (None, 0, ()))
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
                else:
                    yield value
        finally:
            for future in futures:
                if future is not None:
                    future.cancel()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stops every started lane; with ``wait``, returns once their tasks are done."""
        with self._lock:
            self._shutdown = True
            auto = self._lanes.get("auto")
        if auto is not None:
            auto.close()  # calls still waiting for its decision go to their lanes now
        with self._lock:
            lanes = [started for started in self._lanes.values() if started is not auto]
        for started in lanes:  # all told first, then all waited for: they stop in parallel
            started.shutdown(wait=False, cancel_futures=cancel_futures)
        if wait:
            for started in lanes:
                started.shutdown(wait=True, cancel_futures=cancel_futures)

    def terminate(self) -> None:
        """Stops at once: process workers are killed, queued calls cancelled, the event
        loop stopped. Running threads cannot be stopped; they are not waited for."""
        with self._lock:
            self._shutdown = True
            lanes = list(self._lanes.items())
        for name, started in lanes:
            if name == "auto":
                continue
            if name in _PROCESS_LANES:
                started.terminate()
            elif name == "async":
                started.abandon()
            else:
                started.shutdown(wait=False, cancel_futures=True)

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> Literal[False]:
        if exc_type is not None and not issubclass(exc_type, Exception):
            note_interrupt()  # Ctrl-C (or SystemExit) in the block: do not wait for tasks
            self.terminate()
        else:
            self.shutdown(wait=True)
        return False

    def lanes(self) -> tuple[str, ...]:
        """The lanes started so far, in the order they started."""
        return tuple(name for name in self._lanes if name != "auto")

    def explain(self, fn: Callable[..., Any]) -> Explanation:
        """What the auto lane measured about ``fn`` and where it sends its calls, per
        argument size: ``str()`` of it is a readable summary."""
        return self._auto().explain(fn)

    def report(self) -> str:
        """Per function the auto lane has seen: calls, lanes used, time spent."""
        return self._auto().report()

    def _auto(self) -> AutoLane:
        started = self._lanes.get("auto")
        if started is None:
            with self._lock:
                self._check_open()
                started = self._lanes.get("auto")
                if started is None:
                    processes = self._processes or os.cpu_count() or 1
                    started = self._lanes["auto"] = AutoLane(self, processes)
        return started

    # ------------------------------------------------------------------ internals

    def _resolve(self, fn: Any, lane: str | None) -> str:
        """The lane for ``fn``: checked, with a clear error for every misuse."""
        if not callable(fn):
            raise _not_callable(fn)
        if lane is None:
            if self._default_lane == "auto" or not is_coroutine_function(fn):
                return self._default_lane
            return "async"
        if lane == "async":
            if not is_coroutine_function(fn):
                raise plain_on_async(fn)
            return lane
        if lane not in LANES:
            raise unknown_lane(lane)
        return lane

    def _check_open(self) -> None:
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")

    def _lane_ready(self, name: str) -> bool:
        """True if ``name`` has started (for a process lane: with a worker ready)."""
        started = self._lanes.get(name)
        if started is None or name not in _PROCESS_LANES:
            return started is not None
        return any(worker.ready for worker in list(started._workers.values()))

    def _lane_submit(self, name: str, fn: Any, args: tuple, kwargs: dict | None = None) -> Future:
        """For the auto lane: a call on ``name``, even while the executor shuts down (the
        lane itself refuses once it has)."""
        started = self._lanes.get(name) or self._start(name, internal=True)
        if name in _PROCESS_LANES:
            return started._submit(fn, args, kwargs or {}, None)
        return started.submit(fn, args, kwargs or {})

    def _process_chunk(self, fn: Any, items: Any, start: int, stop: int,
                       single: bool) -> Future:
        """For the auto lane: ``items[start:stop]`` as one process task (a list result)."""
        pool = self._lanes.get("process") or self._start("process", internal=True)
        return pool._submit_chunk(fn, items, start, stop, single)

    def _start(self, name: str, internal: bool = False) -> Any:
        with self._lock:
            if not internal:
                self._check_open()
            started = self._lanes.get(name)
            if started is None:
                started = self._lanes[name] = self._make_lane(name)
            return started

    def _make_lane(self, name: str) -> Any:
        if name in _PROCESS_LANES:
            hybrid = name == "hybrid"
            return ProcessPoolExecutor(
                self._hybrid_processes if hybrid else self._processes,
                max_tasks_per_child=self._max_tasks_per_child,
                max_memory_per_child=self._max_memory_per_child,
                _concurrency=self._hybrid_concurrency if hybrid else 1)
        if name == "thread":
            return ThreadLane(self._threads)
        return AsyncLane()

    def _inline(self, fn: Any, args: tuple, kwargs: dict,
                options: TaskOptions | None = None) -> Future:
        self._check_open()
        if is_coroutine_function(fn) and _loop_running():
            raise LaneError(
                f"lane='inline' cannot run the coroutine function {describe(fn)} here: an "
                "event loop is already running in this thread; use "
                "`await ex.run(fn, ..., lane='inline')` to await it on this loop, or "
                "lane='async'")
        future = LaneFuture()
        future.set_running_or_notify_cancel()
        try:
            result = call_retrying(fn, args, kwargs, options, Exception)
        except Exception as exc:  # a Ctrl-C in the caller's own code goes to the caller
            future.set_exception(exc)
        else:
            future.set_result(result)
        return future

    def _map_futures(self, fn: Any, iterables: tuple[Iterable[Any], ...], lane: str | None,
                     chunksize: int | None, raw_options: tuple,
                     caller_waits: bool = False) -> tuple[list[Future], bool]:
        if chunksize is not None and chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        name = self._resolve(fn, lane)
        options = _options(name, *raw_options)
        if name in _PROCESS_LANES:
            pool = self._lanes.get(name) or self._start(name)
            return pool._map_futures(fn, iterables, chunksize, options)
        if name == "auto":
            single = len(iterables) == 1
            return self._auto().map(fn, sliceable(iterables), single, caller_waits)
        calls = zip(*iterables, strict=False)
        empty: dict[str, Any] = {}
        if name == "inline":
            return [self._inline(fn, args, empty, options) for args in calls], False
        started = self._lanes.get(name) or self._start(name)
        submit = started.submit
        return [submit(fn, args, empty, options) for args in calls], False

    def cancel(self, future: Future, force: bool = False) -> bool:
        """``future.cancel()``; with ``force=True``, also stop the call if it is running.

        A forced cancel kills and replaces the worker of a process call and cancels a
        coroutine; a running thread cannot be stopped (returns False, as ``cancel()``).
        """
        if future.cancel():
            return True
        if not force:
            return False
        for name, started in list(self._lanes.items()):
            if name in _PROCESS_LANES or name == "async":
                if started.owns(future):
                    return bool(started.cancel(future, force=True))
        return False
