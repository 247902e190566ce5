"""The thread lane: calls on a pool of threads, for blocking I/O and code that releases
the GIL (hashlib, zlib, NumPy).

A thread is started only when no thread is idle, as ``ThreadPoolExecutor`` does; a call
costs less because its future is lighter and there is no work item. A call past its
timeout cannot be stopped: its future fails with :class:`multilane.TaskTimeout` and the
call runs on in its thread.
"""

from __future__ import annotations

import heapq
import itertools
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

from .. import _interrupts as interrupts
from .._calls import call_retrying, describe, settle
from .._future import LaneFuture, settle_quietly
from .._options import TaskOptions
from ..errors import TaskTimeout
from ._lane import LaneBase, track_for_exit

__all__ = ["ThreadLane", "ThreadStatistics", "Watchdog"]


@dataclass(frozen=True)
class ThreadStatistics:
    """A snapshot of a thread lane, from ``statistics()``."""

    threads: int  # alive now
    max_threads: int
    queued: int  # submitted, not yet taken by a thread


class ThreadLane(LaneBase):
    """Runs calls on up to ``max_threads`` threads, started as calls arrive; ``widen``
    allows more, up to ``ceiling`` (the auto lane does, for calls that mostly wait).

    A thread is started only when no thread is idle, as ``ThreadPoolExecutor`` does; the
    per-call cost is lower because the future is lighter and there is no work item.
    """

    def __init__(self, max_threads: int, name: str = "multilane-thread",
                 ceiling: int | None = None) -> None:
        self._max_threads = max_threads
        self._ceiling = max(max_threads, ceiling or max_threads)  # the most ``widen`` allows
        self._name = name
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._shutdown = False
        self._dog: Watchdog | None = None
        track_for_exit(self)

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

    def queued(self) -> int:
        return self._queue.qsize()

    def widen(self, calls: int) -> int:
        """Lets up to ``calls`` calls run at once (more threads start as calls queue),
        within the ceiling it was made with; how many it allows now. It never narrows."""
        with self._lock:
            self._max_threads = max(self._max_threads, min(calls, self._ceiling))
            return self._max_threads

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
            what = options.label or describe(fn)
            self._watchdog().watch(time.monotonic() + options.timeout, lambda: _give_up(
                future, TaskTimeout(
                    f"{what} ran longer than its timeout of {options.timeout:g} s; a "
                    f"thread cannot be stopped, so it runs on in {name}")))
        try:
            result = call_retrying(fn, args, kwargs, options)
        except BaseException as exc:
            settle_quietly(future, error=exc)
        else:
            settle_quietly(future, result)

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
                interrupts.join(thread)
        if self._dog is not None and (wait or not any(t.is_alive() for t in self._threads)):
            self._dog.stop()

    def threads(self) -> int:
        return sum(thread.is_alive() for thread in self._threads)

    def statistics(self) -> ThreadStatistics:
        return ThreadStatistics(self.threads(), self._max_threads, self._queue.qsize())


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


def _give_up(future: LaneFuture, error: BaseException) -> None:
    if future.running():
        settle_quietly(future, error=error)
