"""The in-process lanes of :class:`multilane.Executor`: threads and an event loop.

Both return :class:`LaneFuture` objects and follow ``concurrent.futures`` semantics: a
future cancelled before its call starts is skipped; ``shutdown(wait=True)`` lets every
submitted call finish; ``cancel_futures=True`` cancels those that have not started. At
interpreter exit they are drained like the standard executors, unless a Ctrl-C reached
a waiting caller: then nothing is waited for.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import heapq
import itertools
import queue
import threading
import time
import types
import weakref
from concurrent.futures import InvalidStateError
from typing import Any

from ._future import LaneFuture, TaskOptions, interrupted
from ._serialize import describe
from .errors import TaskTimeout

__all__ = ["AsyncLane", "ThreadLane", "new_event_loop"]

_live_lanes: weakref.WeakSet[Any] = weakref.WeakSet()


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when uvloop is installed (it is faster), asyncio's otherwise."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def start_loop_thread(name: str) -> tuple[threading.Thread, asyncio.AbstractEventLoop]:
    """A daemon thread running a new event loop until it is stopped; then the loop's
    leftover tasks are cancelled and it is closed, in that thread.

    The loop is made in the thread that runs it: uvloop made in the main thread keeps a
    signal pipe open that only closing it there would release.
    """
    made: list[asyncio.AbstractEventLoop] = []
    ready = threading.Event()

    def run() -> None:
        loop = new_event_loop()
        asyncio.set_event_loop(loop)
        made.append(loop)
        ready.set()
        try:
            loop.run_forever()
            for task in asyncio.all_tasks(loop):  # only when stopped without waiting
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
            # Drops the thread's reference to the closed loop.
            asyncio.set_event_loop(None)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    if not ready.wait(60):
        raise RuntimeError(f"the event loop thread {name} did not start")
    return thread, made[0]


def call_retrying(fn: Any, args: tuple, kwargs: dict, options: TaskOptions | None,
                  retryable: type[BaseException] = BaseException) -> Any:
    """``fn(*args, **kwargs)`` (a coroutine run to its end), run again while it raises a
    ``retryable`` of ``options.retry_on`` and retries are left; the last exception
    propagates."""
    retries = options.retries if options is not None else 0
    while True:
        try:
            return settle(fn(*args, **kwargs))
        except retryable as exc:
            if retries > 0 and options is not None and isinstance(exc, options.retry_on):
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
    if asyncio.iscoroutine(value):  # e.g. a Cython coroutine: a Coroutine, not CoroutineType
        return True
    _plain_types.add(kind)
    return False


def settle(value: Any) -> Any:
    """``value``, or what it returns when run if it is a coroutine (a coroutine function
    sent to the thread lane runs on a loop of its own, in that thread)."""
    return asyncio.run(value) if is_coroutine(value) else value


class ThreadLane:
    """Runs calls on up to ``max_threads`` threads, started as calls arrive.

    A thread is started only when no thread is idle, as ``ThreadPoolExecutor`` does; the
    per-call cost is lower because the future is lighter and there is no work item.
    """

    def __init__(self, max_threads: int, name: str = "multilane-thread") -> None:
        self._max_threads = max_threads
        self._name = name
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._shutdown = False
        self._dog: Watchdog | None = None
        _live_lanes.add(self)

    def submit(self, fn: Any, args: tuple, kwargs: dict,
               options: TaskOptions | None = None) -> LaneFuture:
        future = LaneFuture()
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._queue.put((future, fn, args, kwargs, options))
            if not self._idle.acquire(False) and len(self._threads) < self._max_threads:
                thread = threading.Thread(target=self._work, daemon=True,
                                          name=f"{self._name}-{len(self._threads)}")
                thread.start()
                self._threads.append(thread)
        return future

    def _work(self) -> None:
        get = self._queue.get
        while True:
            item = get()
            if item is None:
                self._queue.put(None)  # tells the next thread too
                return
            future, fn, args, kwargs, options = item
            del item
            if future.set_running_or_notify_cancel():
                if options is None:
                    try:
                        result = settle(fn(*args, **kwargs))
                    except BaseException as exc:
                        future.set_exception(exc)
                        del exc
                    else:
                        future.set_result(result)
                        del result
                else:
                    self._run_with(options, future, fn, args, kwargs)
            del future, fn, args, kwargs, options
            self._idle.release()

    def _run_with(self, options: TaskOptions, future: LaneFuture, fn: Any, args: tuple,
                  kwargs: dict) -> None:
        """A call with a timeout (the future fails when it passes; the thread cannot be
        stopped) or exceptions to retry on."""
        if options.timeout is not None:
            name = threading.current_thread().name
            self._watchdog().watch(time.monotonic() + options.timeout, lambda: _give_up(
                future, TaskTimeout(
                    f"{describe(fn)} ran longer than its timeout of {options.timeout:g} s; a "
                    f"thread cannot be stopped, so it runs on in {name}")))
        try:
            result = call_retrying(fn, args, kwargs, options)
        except BaseException as exc:
            _settle_quietly(future, exc)
        else:
            _settle_quietly(future, None, result)

    def _watchdog(self) -> Watchdog:
        with self._lock:
            if self._dog is None:
                self._dog = Watchdog(f"{self._name}-watchdog")
            return self._dog

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                while True:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is not None and item[0].cancel():
                        item[0].set_running_or_notify_cancel()  # tells wait()/as_completed()
            self._queue.put(None)
        if wait:
            for thread in list(self._threads):
                thread.join()
        if self._dog is not None and (wait or not any(t.is_alive() for t in self._threads)):
            self._dog.stop()

    def threads(self) -> int:
        return sum(thread.is_alive() for thread in self._threads)


class AsyncLane:
    """Runs coroutine functions on an event loop in a thread of its own.

    Submissions from other threads are queued and the loop is woken once per batch, not
    once per call.
    """

    def __init__(self, name: str = "multilane-async") -> None:
        self._incoming: collections.deque[Any] = collections.deque()
        self._scheduled = False  # a wake-up of the loop is pending
        self._tasks: dict[asyncio.Task[Any], LaneFuture] = {}  # running, with their futures
        self._lock = threading.Lock()
        self._shutdown = False
        self._stopping = False
        self._thread, self._loop = start_loop_thread(name)
        _live_lanes.add(self)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def submit(self, fn: Any, args: tuple, kwargs: dict,
               options: TaskOptions | None = None) -> LaneFuture:
        future = LaneFuture()
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._incoming.append((future, fn, args, kwargs, options))
            wake = not self._scheduled
            self._scheduled = True
        if wake:
            self._loop.call_soon_threadsafe(self._start_incoming)
        return future

    def _start_incoming(self) -> None:
        with self._lock:
            items = list(self._incoming)
            self._incoming.clear()
            self._scheduled = False
        create_task = self._loop.create_task
        for future, fn, args, kwargs, options in items:
            if not future.set_running_or_notify_cancel():
                continue
            try:
                coroutine = fn(*args, **kwargs) if options is None else _with_options(
                    options, fn, args, kwargs)
                task = create_task(coroutine)
            except BaseException as exc:
                future.set_exception(exc)
                continue
            self._tasks[task] = future
            task.add_done_callback(functools.partial(self._finish, future))

    def _finish(self, future: LaneFuture, task: asyncio.Task[Any]) -> None:
        del self._tasks[task]
        if task.cancelled():
            _settle_quietly(future, asyncio.CancelledError("the coroutine was cancelled"))
            return
        exc = task.exception()
        if exc is not None:
            _settle_quietly(future, exc)
        else:
            _settle_quietly(future, None, task.result())

    def owns(self, future: Any) -> bool:
        """True if ``future`` is running or queued here."""
        return any(owner is future for owner in list(self._tasks.values())) or any(
            item[0] is future for item in list(self._incoming))

    def cancel(self, future: LaneFuture, force: bool = False) -> bool:
        """``future.cancel()``; with ``force=True`` also while its coroutine runs (the
        coroutine is cancelled)."""
        if future.cancel():
            return True
        if not force:
            return False
        for task, owner in list(self._tasks.items()):
            if owner is future:
                self._loop.call_soon_threadsafe(task.cancel)
                break
        return future._cancel_running()

    async def _drain_and_stop(self) -> None:
        while self._tasks or self._incoming:
            self._start_incoming()
            if self._tasks:
                await asyncio.wait(list(self._tasks))
        self._loop.stop()

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                for future, *_ in self._incoming:
                    if future.cancel():
                        future.set_running_or_notify_cancel()
                self._incoming.clear()
            first = not self._stopping
            self._stopping = True
        if first and self._thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(self._drain_and_stop(), self._loop)
            except RuntimeError:  # the loop is already closed
                pass
        if wait and threading.current_thread() is not self._thread:
            self._thread.join()

    def abandon(self) -> None:
        """Stops the loop now: running coroutines are cancelled (used after a Ctrl-C)."""
        with self._lock:
            self._shutdown = True
        if self._thread.is_alive():
            try:
                self._loop.call_soon_threadsafe(self._loop.stop)
            except RuntimeError:
                pass


async def _with_options(options: TaskOptions, fn: Any, args: tuple, kwargs: dict) -> Any:
    """Runs a coroutine function with a timeout (TaskTimeout; the coroutine is cancelled)
    and retries on the exception types asked for."""
    retries = options.retries
    while True:
        try:
            if options.timeout is None:
                return await fn(*args, **kwargs)
            limit = asyncio.timeout(options.timeout)
            try:
                async with limit:
                    return await fn(*args, **kwargs)
            except TimeoutError:
                if not limit.expired():
                    raise  # the coroutine's own TimeoutError, not ours
                raise TaskTimeout(
                    f"{describe(fn)} ran longer than its timeout of {options.timeout:g} s; "
                    "it was cancelled") from None
        except TaskTimeout:
            raise
        except Exception as exc:
            if retries > 0 and options.retry_on and isinstance(exc, options.retry_on):
                retries -= 1
                continue
            raise


def _settle_quietly(future: LaneFuture, error: BaseException | None, result: Any = None) -> None:
    """Settles ``future`` unless a timeout or a forced cancel already did."""
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except InvalidStateError:
        pass


def _give_up(future: LaneFuture, error: BaseException) -> None:
    if future.running():
        _settle_quietly(future, error)


class Watchdog:
    """One thread that runs actions at deadlines (thread-lane timeouts)."""

    def __init__(self, name: str) -> None:
        self._heap: list[tuple[float, int, Any]] = []
        self._ids = itertools.count()
        self._cond = threading.Condition(threading.Lock())
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def watch(self, deadline: float, action: Any) -> None:
        with self._cond:
            heapq.heappush(self._heap, (deadline, next(self._ids), action))
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while not self._stopped:
                if not self._heap:
                    self._cond.wait()
                    continue
                left = self._heap[0][0] - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                action = heapq.heappop(self._heap)[2]
                self._cond.release()
                try:
                    action()
                finally:
                    self._cond.acquire()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join()


def _at_exit() -> None:
    for lane in list(_live_lanes):
        if interrupted():
            if isinstance(lane, AsyncLane):
                lane.abandon()
            else:
                lane.shutdown(wait=False, cancel_futures=True)
        else:
            lane.shutdown(wait=True)


threading._register_atexit(_at_exit)  # type: ignore[attr-defined]  # as concurrent.futures
