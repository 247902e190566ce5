"""The async lane: coroutine functions on an event loop in a thread of its own (uvloop's
loop when uvloop is installed).

Submissions from other threads are queued and the loop is woken once per batch, not once
per call. A coroutine past its timeout is cancelled.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from .. import _interrupts as interrupts
from .._calls import describe
from .._future import LaneFuture, settle_quietly
from .._options import TaskOptions, earns_retry
from ..errors import TaskTimeout
from ._lane import LaneBase, track_for_exit

__all__ = ["AsyncLane", "LoopStatistics", "new_event_loop", "start_loop_thread"]


@dataclass(frozen=True)
class LoopStatistics:
    """A snapshot of the async lane, from ``statistics()``."""

    running: int  # coroutines started, not finished
    queued: int  # submitted, not yet started on the loop


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


class AsyncLane(LaneBase):
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
        track_for_exit(self)

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
            settle_quietly(future, error=asyncio.CancelledError("the coroutine was cancelled"))
            return
        exc = task.exception()
        if exc is not None:
            settle_quietly(future, error=exc)
        else:
            settle_quietly(future, task.result())

    def owns(self, future: Any) -> bool:
        """True if ``future`` is running or queued here."""
        return any(owner is future for owner in list(self._tasks.values())) or any(
            item[0] is future for item in list(self._incoming))

    def cancel(self, future: Future, force: bool = False) -> bool:
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
        return isinstance(future, LaneFuture) and future.cancel_running()

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
            interrupts.join(self._thread)

    def statistics(self) -> LoopStatistics:
        return LoopStatistics(len(self._tasks), len(self._incoming))

    def terminate(self) -> None:
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
                    f"{options.label or describe(fn)} ran longer than its timeout of "
                    f"{options.timeout:g} s; it was cancelled") from None
        except TaskTimeout:
            raise
        except Exception as exc:
            if earns_retry(exc, retries, options.retry_on):
                retries -= 1
                continue
            raise
