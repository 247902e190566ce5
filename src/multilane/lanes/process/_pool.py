"""ProcessPoolExecutor: a drop-in for ``concurrent.futures.ProcessPoolExecutor`` on the C++ core.

Data flow (who reads and writes what)::

    caller threads                          collector thread (one per pool)
    --------------                          -------------------------------
    submit()/map(): pickle (no lock)        hub.wait_ready(background): one futex sleep
      lock free?  pending.append(task)        for every worker's replies and exits,
                  dispatch()                  GIL released, no spinning
      lock taken? incoming.append(task)     collect lock + pool lock: drain, match replies
                  (the holder dispatches      to in-flight tasks, requeue a dead worker's
                   it; see _PoolLock)         unstarted tasks, dispatch() pending tasks
    future.result(): spin-drain replies     no locks: unpickle, set futures; respawn
      itself for up to 150 us (same
      drain-and-handle path), then sleep

    dispatch() (under the pool lock) moves tasks from ``pending`` to a worker's ring
    (shared memory, written only under the pool lock, read only by that worker) and into
    that worker's ``inflight``; a worker gets at most ``depth`` tasks ahead of it.

A worker publishes the id of the task it runs in its link region. When a worker dies,
its last replies are delivered first, then its exit: the task it was running fails
with WorkerCrashed, the tasks queued behind it go back to ``pending``, and a
replacement worker starts. The pool is never broken by a crash.

The parts of the pool live beside this module, one concern each (see _state)."""

from __future__ import annotations

import collections
import itertools
import math
import multiprocessing
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Literal

import multilane._core as _core

from ... import _interrupts as interrupts
from ... import _protocol as P
from ..._calls import describe, sliceable
from ..._cores import native_threads as _native_threads
from ..._cores import usable_cores
from ..._future import LaneFuture, interrupted, iterate_results
from ..._options import TaskOptions, map_chunksize
from ..._streams import Window, checked_buffersize, chunk_for, iterate_window
from ...buffers import _regions
from ...buffers._serialize import (
    RAW_TYPES,
    dumps_call,
    dumps_oob,
    name_unpicklable_item,
    outband_call,
    outband_items,
)
from ...errors import SerializationError
from ._collector import Collector, start_without_signals
from ._completion import cancel_all, failed_future
from ._crash import note_oom_kills
from ._deadlines import Deadlines
from ._dispatch import Dispatch
from ._functions import FunctionCache
from ._records import PoolLock, PoolStatistics, Task, Worker
from ._spin import HelpSpin
from ._state import INTERPRETER_EXITING, LIVE, SETTLE_PATIENCE
from ._workers import Workers

__all__ = ["ProcessPoolExecutor"]


class ProcessPoolExecutor(Collector, Workers, Dispatch, Deadlines, Executor):
    """Runs calls in a pool of pre-started worker processes, like the standard one, faster.

    A drop-in for :class:`concurrent.futures.ProcessPoolExecutor`: the same arguments,
    ``submit``, ``map`` and ``shutdown``, and real :class:`concurrent.futures.Future`
    objects, so ``as_completed``, ``wait``, ``asyncio.wrap_future`` and
    ``loop.run_in_executor`` work. Differences you can rely on:

    - tasks travel through shared memory, and a function is sent to each worker once;
    - lambdas, closures and functions defined in ``__main__`` work (cloudpickle);
    - a call that cannot be pickled fails its future with
      :class:`multilane.SerializationError` naming the argument; one that cannot be
      unpickled (a call in its worker, a result here) fails its future alone with
      :class:`multilane.UnpicklingFailed`, where the standard pool breaks;
    - ``map`` chooses its chunk size unless you pass ``chunksize``, and an item that
      raises fails alone: the results of the items before it in its chunk come first;
    - workers limit native thread pools (BLAS, OpenMP) to their share of the cores,
      unless the environment sets them, or to ``native_threads`` threads if given;
    - a worker that dies fails only the task it was running, with
      :class:`multilane.WorkerCrashed`; the pool replaces it and goes on;
    - Ctrl-C while waiting tears the pool down at once instead of waiting for every task.

    ``mp_context`` is accepted for compatibility; workers are always fresh interpreters
    (``python -m multilane.worker``), never forks of the caller, as with the ``spawn``
    context: multiprocessing objects given in ``initargs`` (a Queue, a Lock) must come
    from a spawn or forkserver context. Workers share the caller's authkey, so they can
    use its managers.

    Example::

        with multilane.ProcessPoolExecutor() as ex:
            print(list(ex.map(pow, [2, 3], [5, 5])))   # [32, 243]
    """

    def __init__(self, max_workers: int | None = None, mp_context: Any = None,
                 initializer: Callable[..., Any] | None = None, initargs: tuple = (),
                 max_tasks_per_child: int | None = None, *,
                 max_memory_per_child: int | None = None, native_threads: int | None = None,
                 _concurrency: int = 1) -> None:
        # _concurrency > 1 makes hybrid workers (for multilane.Executor's hybrid lane): each
        # runs that many tasks at once on inner threads and its own event loop.
        if max_workers is None:
            max_workers = usable_cores()
        elif max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        if max_tasks_per_child is not None:
            if not isinstance(max_tasks_per_child, int):
                raise TypeError("max_tasks_per_child must be an integer")
            if max_tasks_per_child <= 0:
                raise ValueError("max_tasks_per_child must be >= 1")
        if max_memory_per_child is not None and (
                isinstance(max_memory_per_child, bool) or not isinstance(max_memory_per_child, int)
                or max_memory_per_child <= 0):
            raise ValueError("max_memory_per_child must be a positive number of bytes, not "
                             f"{max_memory_per_child!r}")
        if native_threads is not None and (isinstance(native_threads, bool) or not isinstance(
                native_threads, int) or native_threads <= 0):
            raise ValueError("native_threads must be a positive number of threads, not "
                             f"{native_threads!r}")
        if mp_context is not None and not hasattr(mp_context, "get_start_method"):
            raise TypeError(f"mp_context must be a multiprocessing context, not {mp_context!r}")
        self._max_workers = max_workers
        self._max_tasks_per_child = max_tasks_per_child
        self._initializer = None if initializer is None else (initializer, tuple(initargs))
        self._init_settings = {
            "sys_path": list(sys.path),
            # As multiprocessing's spawn: the workers reach this process's managers.
            "authkey": bytes(multiprocessing.current_process().authkey),
            "concurrency": _concurrency,
            "max_rss": max_memory_per_child,
            "native_threads": _native_threads(max_workers, native_threads)}
        try:
            self._init_payload = self._make_init_payload()
        except Exception as exc:
            raise SerializationError(
                f"cannot pickle the initializer {describe(initializer)} or its initargs: "
                f"{type(exc).__name__}: {exc}") from exc

        self._incoming: collections.deque[Task] = collections.deque()  # see PoolLock
        self._lock = PoolLock(self._incoming, self._dispatch_locked)
        # Serialises drain-and-handle of hub events between the collector thread and helping
        # callers, so that a worker's last replies are handled before its exit. Taken before
        # self._lock, never while holding it.
        self._collect_lock = threading.Lock()
        self._settling: LaneFuture | None = None  # the future the collector settles now
        self._respawn = 0  # replacements owed; started by the collector thread
        self._pending: collections.deque[Task] = collections.deque()
        self._workers: dict[int, Worker] = {}
        self._task_ids = itertools.count(1)
        self._functions = FunctionCache()
        self._forgotten_regions: list[int] = []  # shared regions gone, to FORGET_SHARED
        _regions.on_forget(self)
        self._concurrency = _concurrency
        # (deadline, task id, task) of running tasks with a timeout; the collector waits
        # until the earliest and kills the worker of a task still running then.
        self._deadlines: list[tuple[float, int, Task]] = []
        self._next_deadline = math.inf
        self._timed = False  # a task with a timeout was ever submitted (then clocks are kept)
        # Tasks sent ahead to each worker: adapts to the task time, or a hybrid worker's
        # concurrency (they all run at once there).
        self._depth = 2 if _concurrency == 1 else _concurrency
        self._mean_task_ns = 0.0
        self._shutdown = False
        self._terminating = False
        self._broken: str | None = None
        self._broken_cause: BaseException | None = None
        self._startup_failures = 0
        self._startup_kills = 0
        self._completed = 0
        self._spin = HelpSpin()
        self._crashed = 0
        self._workers_started = 0
        self._workers_lost = 0
        self._recycled = 0  # workers replaced for reaching max_memory_per_child
        self._killed = 0  # workers killed to stop a timed-out or force-cancelled task

        note_oom_kills()
        self._hub = _core.Hub()
        self._argv = [sys.executable, "-m", "multilane.worker"]
        self._collector = threading.Thread(target=self._collect, name="multilane-collector",
                                           daemon=True)
        try:
            for _ in range(max_workers):
                self._spawn_worker()
            start_without_signals(self._collector)  # fails at interpreter shutdown
        except BaseException:
            self._hub.terminate_all(0.0)
            self._hub = None
            raise
        LIVE.add(self)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Schedules ``fn(*args, **kwargs)`` in a worker; returns its Future.

        Raises ``RuntimeError`` after shutdown and ``BrokenProcessPool`` if the
        initializer failed. A call that cannot be pickled gives a future failed with
        :class:`multilane.SerializationError` naming the argument (as the standard pool's
        future fails); the pool is unaffected.
        """
        return self.submit_call(fn, args, kwargs, None)

    def submit_call(self, fn: Callable[..., Any], args: tuple, kwargs: dict,
                    options: TaskOptions | None = None) -> Future:
        """``submit(fn, *args, **kwargs)`` with per-task ``options`` (see TaskOptions)."""
        self._check_open()
        if not callable(fn):
            raise TypeError(f"{fn!r} is not callable")
        try:
            entry = self._functions.entry(fn)
            if kwargs or len(args) != 1 or type(args[0]) in RAW_TYPES:
                args, kwargs = outband_call(args, kwargs)
            if entry is None:
                payload, attachments, regions = dumps_call(fn, (fn, args, kwargs), args, kwargs)
                return self._enqueue(fn, 0, None, payload, P.CALL_INLINE_FN, attachments,
                                     regions, options)
            fid, fn_payload = entry
            payload, attachments, regions = dumps_call(fn, (args, kwargs), args, kwargs)
        except SerializationError as exc:  # as the standard pool: this future fails alone
            return failed_future(exc)
        return self._enqueue(fn, fid, fn_payload, payload, 0, attachments, regions, options)

    def map(self, fn: Callable[..., Any], *iterables: Iterable[Any], timeout: float | None = None,
            chunksize: int | None = None, buffersize: int | None = None) -> Iterator[Any]:
        """Like the built-in ``map``, in the pool; results come back in order.

        All items are submitted at once, as the standard library does, unless
        ``buffersize`` is given: then, as in Python 3.14, the input is read as results
        are consumed, with at most ``buffersize`` tasks (chunks of ``chunksize`` items)
        in flight or done and not yet consumed. Without ``chunksize`` the pool chooses
        one (about four chunks per worker, like ``multiprocessing.Pool.map``);
        ``chunksize=1`` sends each item alone. ``timeout`` bounds the whole iteration:
        ``TimeoutError`` if a result is not ready by then.
        """
        end_time = None if timeout is None else timeout + time.monotonic()
        buffersize = checked_buffersize(buffersize)
        if buffersize is not None:
            if chunksize is not None and chunksize < 1:  # (map_calls says it too, if called)
                raise ValueError("chunksize must be >= 1.")
            single, limit = len(iterables) == 1, buffersize * (chunksize or 1)
            size = chunksize or chunk_for(limit, self._max_workers)

            def submit(batch: Sequence[Any]) -> tuple[list[Future], bool]:
                return self.map_calls(fn, batch, single, size, None)

            window = Window(submit, iterables, limit, True)
            return iterate_window(window, end_time)
        futures, chunked = self.map_calls(fn, sliceable(iterables), len(iterables) == 1,
                                          chunksize, None)
        if not chunked:
            return iterate_results(futures, end_time)
        # The chunks' lists are flattened in C: no Python frame per item.
        return itertools.chain.from_iterable(iterate_results(futures, end_time))

    def map_calls(self, fn: Callable[..., Any], items: Sequence[Any], single: bool,
                  chunksize: int | None, options: TaskOptions | None = None,
                  caller_waits: bool = False) -> tuple[list[Future], bool]:
        """Submits a map of ``items`` (single arguments, or argument tuples unless
        ``single``; see ``sliceable``): (futures in order, whether each one's result is a
        list of results for a chunk of items). With a per-task timeout each item is its
        own task unless ``chunksize`` says otherwise (the timeout then applies to each
        chunk)."""
        chunksize = map_chunksize(chunksize, options, lambda: self._auto_chunksize(len(items)))
        self._check_open()
        # One iterable: its items are the arguments, no need to build a tuple per item. A
        # list, tuple or range is sliced per chunk rather than copied first, and a slice of
        # a range is a range: it pickles in a few bytes whatever its length.
        if chunksize == 1:
            empty: dict[str, Any] = {}
            return [self.submit_call(fn, (item,) if single else item, empty, options)
                    for item in items], False
        return [self.submit_chunk(fn, items, i, i + chunksize, single, options)
                for i in range(0, len(items), chunksize)], True

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stops accepting work; workers exit once the submitted tasks are done.

        ``wait=True`` blocks until then and until every worker process is reaped.
        ``cancel_futures=True`` cancels the tasks not yet sent to a worker. A Ctrl-C
        while waiting kills the workers at once and re-raises.
        """
        cancelled: list[Future] = []
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                self._absorb_locked()
                cancelled = [task.future for task in self._pending]
                self._pending.clear()
        cancel_all(cancelled)
        hub = self._hub
        if hub is not None:
            hub.wake()
        if wait and threading.current_thread() is not self._collector:
            try:
                interrupts.join(self._collector)
            except KeyboardInterrupt:
                self.terminate()
                raise

    def terminate(self) -> None:
        """Kills the workers now; unfinished futures fail with ``BrokenProcessPool``.

        After a Ctrl-C it waits for nothing the interrupted thread may have left held: a
        KeyboardInterrupt landing just after an acquire, before the ``try`` or ``with``
        that releases it, keeps that lock taken for good (see _future._Condition). The
        workers are killed without any Python lock.
        """
        cancelled: list[Future] = []
        # The pool lock is only ever held for short steps: not free within half a second,
        # an interrupt left it held (or the collector holds it, waiting for a future's lock
        # left so), and neither this thread nor the collector would ever get it.
        lock = self._lock
        deadline = time.monotonic() + 0.5
        locked = lock.try_acquire()
        while not locked and time.monotonic() < deadline:
            time.sleep(0.001)
            locked = lock.try_acquire()
        if locked:
            try:
                self._shutdown = True
                self._terminating = True
                self._absorb_locked()
                cancelled = [task.future for task in self._pending]
                self._pending.clear()
            finally:
                lock.__exit__()
        else:  # the collector cancels what is pending, if it ever finishes
            self._shutdown = True
            self._terminating = True
        cancel_all(cancelled)
        hub = self._hub
        if hub is not None:
            hub.terminate_all(0.1)  # returns once every worker is reaped
            hub.wake()
        collector = self._collector
        if not locked or threading.current_thread() is collector:
            return
        # The collector fails the unfinished futures, then closes the hub. It is not waited
        # for once it settles a future whose lock this thread holds: only this thread could
        # let it go on. (That lock can be taken between the collector's look in _can_settle
        # and its settling; waiting then would only end at the deadline below.)
        deadline = time.monotonic() + 5.0
        while collector.is_alive() and time.monotonic() < deadline:
            settling = self._settling
            if settling is not None and settling.held_by_this_thread():
                return
            collector.join(SETTLE_PATIENCE)

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> Literal[False]:
        if exc_type is not None and not issubclass(exc_type, Exception):
            self.terminate()  # KeyboardInterrupt, SystemExit: do not wait for the work
        else:
            self.shutdown(wait=True)
        return False

    def statistics(self) -> PoolStatistics:
        """Counters and sizes of the pool, as a frozen snapshot."""
        with self._lock:
            workers = list(self._workers.values())
            return PoolStatistics(
                workers=len(workers),
                worker_pids=tuple(w.pid for w in workers),
                pending=len(self._pending),
                inflight=sum(len(w.inflight) for w in workers),
                completed=self._completed,
                crashed=self._crashed,
                workers_started=self._workers_started,
                workers_lost=self._workers_lost,
                depth=self._depth,
                workers_recycled=self._recycled,
                workers_killed=self._killed,
            )

    def ready(self) -> bool:
        """True once a worker has started and is ready for calls."""
        return any(worker.ready for worker in list(self._workers.values()))

    def _check_open(self) -> None:
        if self._broken is not None:
            raise BrokenProcessPool(self._broken) from self._broken_cause
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        if INTERPRETER_EXITING.value:
            raise RuntimeError("cannot schedule new futures after interpreter shutdown")

    def _enqueue(self, fn: Any, fid: int, fn_payload: bytes | None, payload: bytes,
                 flags: int, attachments: tuple = (), regions: tuple = (),
                 options: TaskOptions | None = None) -> Future:
        future = LaneFuture()
        future.helper = self
        if regions:
            flags |= P.CALL_SHARED
        task = Task(next(self._task_ids), future, fn, fid, fn_payload, payload, flags,
                     attachments, regions)
        if options is not None:
            task.timeout, task.retries, task.retry_on, task.label = options
            if task.timeout is not None:
                self._timed = True
        lock = self._lock
        if lock.try_acquire():
            try:
                self._check_open()
                self._pending.append(task)
                self._dispatch_locked()
            finally:
                lock.__exit__()
            return future
        self._incoming.append(task)  # the holder dispatches it (submit() checked we are open)
        lock.kick()
        if self._hub is None:  # the collector finished meanwhile: nobody else will take it
            with lock:
                self._reject_incoming_locked()
        return future

    def submit_chunk(self, fn: Any, items: Sequence[Any], start: int, stop: int,
                     single: bool, options: TaskOptions | None = None) -> Future:
        """One task for ``items[start:stop]``: single arguments or argument tuples."""
        flags = P.CALL_CHUNK | (P.CALL_CHUNK_SINGLE if single else 0)
        chunk = outband_items(items[start:stop], single)
        try:
            entry = self._functions.entry(fn)
        except SerializationError as exc:
            return failed_future(exc)
        try:
            payload, attachments, regions = dumps_oob((chunk, {}) if entry else (fn, chunk, {}))
        except Exception as exc:  # as the standard pool: this chunk's future fails alone
            error = name_unpicklable_item(fn, chunk, start, exc)
            error.__cause__ = exc
            return failed_future(error)
        if entry is None:
            return self._enqueue(fn, 0, None, payload, flags | P.CALL_INLINE_FN, attachments,
                                 regions, options)
        return self._enqueue(fn, entry[0], entry[1], payload, flags, attachments, regions,
                             options)

    def _auto_chunksize(self, n: int) -> int:
        # About four chunks per task a worker runs at once: a hybrid worker's inner threads
        # would otherwise run a chunk's items one after another.
        chunks = self._max_workers * self._concurrency * 4
        size, extra = divmod(n, chunks)
        return max(1, size + (1 if extra else 0))


def _python_exit() -> None:
    """At interpreter exit: finish submitted work, unless a Ctrl-C already interrupted."""
    INTERPRETER_EXITING.value = True
    # interrupted() is also true for a program dying of Ctrl-C, wherever it was waiting.
    for executor in list(LIVE):
        try:
            if interrupted():
                executor.terminate()
            else:
                executor.shutdown(wait=True)
        except KeyboardInterrupt:
            executor.terminate()


# As concurrent.futures does: run before the interpreter joins non-daemon threads.
threading._register_atexit(_python_exit)  # type: ignore[attr-defined]  # noqa: SLF001
