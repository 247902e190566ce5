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
"""

from __future__ import annotations

import collections
import heapq
import itertools
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
import types
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import CancelledError, Executor, Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Literal, cast

from . import _core
from . import _protocol as P
from ._calls import describe
from ._cores import usable_cores
from ._future import LaneFuture, interrupted, iterate_results
from ._options import TaskOptions
from .buffers import _regions
from .buffers._serialize import (
    RAW_TYPES,
    cacheable,
    dumps,
    dumps_call,
    dumps_function,
    dumps_oob,
    dumps_spawning,
    loads,
    loads_oob,
    name_unpicklable_item,
    outband_call,
)
from .errors import (
    RemoteTraceback,
    SerializationError,
    TaskTimeout,
    UnpicklingFailed,
    WorkerCrashed,
)

__all__ = ["ProcessPoolExecutor", "PoolStatistics"]

# How many worker deaths before READY, in a row, make the pool give up respawning.
_MAX_STARTUP_FAILURES = 3
# The same for workers killed by a signal before they were ready: something outside the
# pool may be killing processes at random, so it takes more of them in a row.
_MAX_STARTUP_KILLS = 10
# Bounds of the per-worker queue depth; the depth adapts to the measured task time.
_MIN_DEPTH, _MAX_DEPTH = 1, 16
_TARGET_QUEUED_NS = 200_000  # keep about this much work queued ahead of each worker
# A caller blocked in result() drains replies itself for this long (GIL released, spinning)
# before it sleeps and leaves the work to the collector thread: it saves two thread
# wake-ups per round trip for short tasks and costs at most this much CPU for long ones.
_HELP_SPIN_US = 150.0
_SLICEABLE = (list, tuple, range)

_live_executors: weakref.WeakSet[ProcessPoolExecutor] = weakref.WeakSet()
_interpreter_exiting = False


@dataclass(frozen=True)
class PoolStatistics:
    """A snapshot of a pool, from ``ProcessPoolExecutor.statistics()``."""

    workers: int  # worker processes alive now
    worker_pids: tuple[int, ...]
    pending: int  # submitted, not yet sent to a worker
    inflight: int  # sent to a worker, not finished
    completed: int  # tasks that finished (result or exception)
    crashed: int  # tasks failed with WorkerCrashed
    workers_started: int  # including replacements
    workers_lost: int  # workers that died unexpectedly
    depth: int  # tasks queued ahead of each worker
    workers_recycled: int = 0  # replaced for reaching max_memory_per_child
    workers_killed: int = 0  # killed by the pool: timeouts and forced cancels


class _PoolLock:
    """The pool lock, with a hand-off: a ``submit`` that finds it taken does not wait.

    It leaves its task in ``incoming`` instead; every holder moves ``incoming`` into the
    pending queue when it dispatches (``dispatch``, called with the lock held), and
    checks ``incoming`` again after letting go, so a task handed off while the lock was
    being released is never stranded. Blocking here would cost a context switch per
    collector batch.
    """

    __slots__ = ("_lock", "_incoming", "_dispatch")

    def __init__(self, incoming: collections.deque, dispatch: Callable[[], None]) -> None:
        self._lock = threading.Lock()
        self._incoming = incoming
        self._dispatch = dispatch

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()
        if self._incoming:
            self.kick()

    def try_acquire(self) -> bool:
        return self._lock.acquire(False)

    def kick(self) -> None:
        """Dispatches handed-off tasks unless another holder is about to."""
        incoming, lock = self._incoming, self._lock
        while incoming and lock.acquire(False):
            try:
                self._dispatch()
            finally:
                lock.release()


class _Task:
    __slots__ = ("id", "future", "fn", "fid", "fn_payload", "payload", "flags", "started",
                 "attachments", "regions", "timeout", "retries", "retry_on", "deadline", "fate",
                 "label")

    def __init__(self, task_id: int, future: Future, fn: Any, fid: int, fn_payload: bytes | None,
                 payload: bytes, flags: int, attachments: tuple, regions: tuple) -> None:
        self.id = task_id
        self.future = future
        self.fn = fn
        self.fid = fid
        self.fn_payload = fn_payload
        self.payload = payload
        self.flags = flags
        self.started = False  # its future is RUNNING (set when first sent to a worker)
        # Large buffers of the call (memfd blocks), kept until the task ends: a task requeued
        # after a crash is sent again from them.
        self.attachments = attachments
        self.regions = regions  # multilane.shared regions the call names (held until it ends)
        self.timeout: float | None = None  # seconds it may run, from when it starts
        self.retries = 0  # runs left after a crash of its worker (or a retry_on exception)
        self.retry_on: tuple = ()  # exception types that also earn a retry
        self.deadline: float | None = None  # monotonic time it is stopped at, once running
        self.fate: str | None = None  # "timeout" or "cancelled": why its worker was killed
        self.label: str | None = None  # how messages name the call (TaskOptions.label)

    def name(self) -> str:
        return self.label or describe(self.fn)


class _Worker:
    __slots__ = ("slot", "pid", "inflight", "functions", "regions", "ready", "dispatched",
                 "retiring", "closing", "full", "killed", "lost")

    def __init__(self, slot: int, pid: int) -> None:
        self.slot = slot
        self.pid = pid
        self.inflight: dict[int, _Task] = {}  # insertion order = order sent
        self.functions: set[int] = set()  # function ids this worker has
        self.regions: set[int] = set()  # shared regions this worker has mapped
        self.ready = False
        self.dispatched = 0
        self.retiring = False  # reached max_tasks_per_child: no more tasks
        self.closing = False  # SHUTDOWN sent
        self.full = False  # its ring had no room; retried after its next reply
        self.killed = False  # SIGKILLed by the pool (a timeout or a forced cancel)
        self.lost = False  # its socket is closed: it died, and its exit is yet to be handled


class ProcessPoolExecutor(Executor):
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
      unless the environment sets them;
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
                 max_memory_per_child: int | None = None, _concurrency: int = 1) -> None:
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
            "native_threads": native_threads(max_workers)}
        try:
            self._init_payload = self._make_init_payload()
        except Exception as exc:
            raise SerializationError(
                f"cannot pickle the initializer {describe(initializer)} or its initargs: "
                f"{type(exc).__name__}: {exc}") from exc

        self._incoming: collections.deque[_Task] = collections.deque()  # see _PoolLock
        self._lock = _PoolLock(self._incoming, self._dispatch_locked)
        # Serialises drain-and-handle of hub events between the collector thread and helping
        # callers, so that a worker's last replies are handled before its exit. Taken before
        # self._lock, never while holding it.
        self._collect_lock = threading.Lock()
        self._settling: LaneFuture | None = None  # the future the collector settles now
        self._respawn = 0  # replacements owed; started by the collector thread
        self._pending: collections.deque[_Task] = collections.deque()
        self._workers: dict[int, _Worker] = {}
        self._task_ids = itertools.count(1)
        self._function_ids = itertools.count(1)
        # id(fn) -> (weak reference to fn, (function id, pickled fn)). Keyed by id() rather
        # than a WeakKeyDictionary, whose get() builds a weakref on every submit; the entry
        # is dropped by a finalizer when fn dies, before its id can be reused.
        self._functions: dict[int, tuple[Any, tuple[int, bytes]]] = {}
        self._builtin_functions: dict[Any, tuple[int, bytes]] = {}
        self._forgotten: list[int] = []  # ids of collected functions, to FORGET in workers
        self._forgotten_regions: list[int] = []  # shared regions gone, to FORGET_SHARED
        _regions.on_forget(self)
        self._concurrency = _concurrency
        # (deadline, task id, task) of running tasks with a timeout; the collector waits
        # until the earliest and kills the worker of a task still running then.
        self._deadlines: list[tuple[float, int, _Task]] = []
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
        self._crashed = 0
        self._workers_started = 0
        self._workers_lost = 0
        self._recycled = 0  # workers replaced for reaching max_memory_per_child
        self._killed = 0  # workers killed to stop a timed-out or force-cancelled task

        _oom_kills_seen[0] = _oom_kills()
        self._hub = _core.Hub()
        self._argv = [sys.executable, "-m", "multilane.worker"]
        self._collector = threading.Thread(target=self._collect, name="multilane-collector",
                                           daemon=True)
        try:
            for _ in range(max_workers):
                self._spawn_worker()
            self._collector.start()  # fails at interpreter shutdown: no worker is left
        except BaseException:
            self._hub.terminate_all(0.0)
            self._hub = None
            raise
        _live_executors.add(self)

    # ------------------------------------------------------------------ public API

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Schedules ``fn(*args, **kwargs)`` in a worker; returns its Future.

        Raises ``RuntimeError`` after shutdown and ``BrokenProcessPool`` if the
        initializer failed. A call that cannot be pickled gives a future failed with
        :class:`multilane.SerializationError` naming the argument (as the standard pool's
        future fails); the pool is unaffected.
        """
        return self.submit_call(fn, args, kwargs, None)

    # The lane protocol's calls (multilane.Executor's process and hybrid lanes use them):
    # the same as submit and map, with per-task options and prepared items.

    def submit_call(self, fn: Callable[..., Any], args: tuple, kwargs: dict,
                    options: TaskOptions | None = None) -> Future:
        """``submit(fn, *args, **kwargs)`` with per-task ``options`` (see TaskOptions)."""
        self._check_open()
        if not callable(fn):
            raise TypeError(f"{fn!r} is not callable")
        try:
            entry = self._function_entry(fn)
            if kwargs or len(args) != 1 or type(args[0]) in RAW_TYPES:
                args, kwargs = outband_call(args, kwargs)
            if entry is None:
                payload, attachments, regions = dumps_call(fn, (fn, args, kwargs), args, kwargs)
                return self._enqueue(fn, 0, None, payload, P.CALL_INLINE_FN, attachments,
                                     regions, options)
            fid, fn_payload = entry
            payload, attachments, regions = dumps_call(fn, (args, kwargs), args, kwargs)
        except SerializationError as exc:  # as the standard pool: this future fails alone
            return _failed(exc)
        return self._enqueue(fn, fid, fn_payload, payload, 0, attachments, regions, options)

    def map(self, fn: Callable[..., Any], *iterables: Iterable[Any], timeout: float | None = None,
            chunksize: int | None = None) -> Iterator[Any]:
        """Like the built-in ``map``, in the pool; results come back in order.

        All items are submitted at once, as the standard library does. Without
        ``chunksize`` the pool chooses one (about four chunks per worker, like
        ``multiprocessing.Pool.map``); ``chunksize=1`` sends each item alone.
        ``timeout`` bounds the whole iteration: ``TimeoutError`` if a result is not
        ready by then.
        """
        end_time = None if timeout is None else timeout + time.monotonic()
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
        if chunksize is not None and chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        self._check_open()
        # One iterable: its items are the arguments, no need to build a tuple per item. A
        # list, tuple or range is sliced per chunk rather than copied first, and a slice of
        # a range is a range: it pickles in a few bytes whatever its length.
        if chunksize is None:
            timed = options is not None and options.timeout is not None
            chunksize = 1 if timed else self._auto_chunksize(len(items))
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
        _cancel_all(cancelled)
        hub = self._hub
        if hub is not None:
            hub.wake()
        if wait and threading.current_thread() is not self._collector:
            try:
                self._collector.join()
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
        _cancel_all(cancelled)
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
        # and its settling: the rare 5 s exit after Ctrl-C, issue 14.)
        deadline = time.monotonic() + 5.0
        while collector.is_alive() and time.monotonic() < deadline:
            settling = self._settling
            if settling is not None and settling.held_by_this_thread():
                return
            collector.join(_SETTLE_PATIENCE)

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

    # ------------------------------------------------------------------ submitting

    def _check_open(self) -> None:
        if self._broken is not None:
            raise BrokenProcessPool(self._broken) from self._broken_cause
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        if _interpreter_exiting:
            raise RuntimeError("cannot schedule new futures after interpreter shutdown")

    def _function_entry(self, fn: Any) -> tuple[int, bytes] | None:
        """(id, pickled function) for functions sent once per worker; None to inline."""
        if not cacheable(fn):
            return None
        if type(fn) is types.BuiltinFunctionType:
            # Builtins cannot be weakly referenced; they live as long as their module anyway.
            entry = self._builtin_functions.get(fn)
            if entry is None:
                entry = self._builtin_functions[fn] = (next(self._function_ids),
                                                       dumps_function(fn))
            return entry
        found = self._functions.get(id(fn))
        if found is not None and found[0]() is fn:
            return found[1]
        entry = (next(self._function_ids), dumps_function(fn))
        self._functions[id(fn)] = (weakref.ref(fn), entry)
        weakref.finalize(fn, _forget_function, self._functions, self._forgotten, id(fn), entry[0])
        return entry

    def _enqueue(self, fn: Any, fid: int, fn_payload: bytes | None, payload: bytes,
                 flags: int, attachments: tuple = (), regions: tuple = (),
                 options: TaskOptions | None = None) -> Future:
        future = LaneFuture()
        future.helper = self
        if regions:
            flags |= P.CALL_SHARED
        task = _Task(next(self._task_ids), future, fn, fid, fn_payload, payload, flags,
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
        chunk = items[start:stop]
        try:
            entry = self._function_entry(fn)
        except SerializationError as exc:
            return _failed(exc)
        try:
            payload, attachments, regions = dumps_oob((chunk, {}) if entry else (fn, chunk, {}))
        except Exception as exc:  # as the standard pool: this chunk's future fails alone
            error = name_unpicklable_item(fn, chunk, start, exc)
            error.__cause__ = exc
            return _failed(error)
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

    # ------------------------------------------------------------------ dispatching

    def _dispatch_locked(self) -> None:
        """Sends pending tasks to workers with room, least loaded first. Holds the lock."""
        if self._forgotten or self._forgotten_regions:
            self._forget_locked()
        self._absorb_locked()
        pending = self._pending
        while pending:
            worker = self._pick_worker_locked()
            if worker is None:
                return
            task = pending[0]
            # A plain read: if a cancel() lands right after it, set_running_or_notify_cancel()
            # below still settles the race under the future's lock.
            if not task.started and task.future._state == "CANCELLED":  # noqa: SLF001
                pending.popleft()
                task.future.set_running_or_notify_cancel()  # tells wait()/as_completed()
                continue
            try:
                sent = self._send_task_locked(worker, task)
            except (BrokenPipeError, ConnectionResetError):
                # Descriptors go over the worker's socket, and it died since its last frame:
                # the supervisor has yet to report the exit, which reruns or fails what the
                # worker was sent. This task was not sent and stays first in line.
                worker.lost = True
                continue
            if not sent:
                worker.full = True  # no room in its ring until its next reply
                continue
            pending.popleft()
            if not task.started:
                task.started = True
                # False if cancelled just now: it runs anyway and its result is dropped.
                task.future.set_running_or_notify_cancel()

    def _pick_worker_locked(self) -> _Worker | None:
        """The least loaded worker with room, preferring workers that are ready: a task
        queued on a worker still starting (or a replacement) would wait out its start-up
        while a ready one could run it. Starting workers get tasks only when no ready
        worker has room, so a new pool still queues work at once."""
        best = None
        best_key = 0
        depth = self._depth
        for worker in self._workers.values():
            if worker.retiring or worker.full or worker.closing or worker.lost:
                continue
            load = len(worker.inflight)
            if load < depth:
                key = load if worker.ready else depth + load  # every ready one ranks first
                if best is None or key < best_key:
                    best, best_key = worker, key
        return best

    def _send_task_locked(self, worker: _Worker, task: _Task) -> bool:
        hub = self._hub
        for region in task.regions or ():
            if region.id not in worker.regions:
                if not hub.try_send_attached(worker.slot, P.SHARED, 0, region.id, 0, b"",
                                             (region.attachment,)):
                    return False
                worker.regions.add(region.id)
        if task.fid and task.fid not in worker.functions:
            if not hub.try_send(worker.slot, P.FUNCTION, 0, task.fid, 0, task.fn_payload):
                return False
            worker.functions.add(task.fid)
        attachments = task.attachments
        if not (hub.try_send_attached(worker.slot, P.CALL, task.id, task.fid, task.flags,
                                      task.payload, attachments)
                if attachments else
                hub.try_send(worker.slot, P.CALL, task.id, task.fid, task.flags, task.payload)):
            return False
        worker.inflight[task.id] = task
        if task.timeout is not None and (self._concurrency > 1 or len(worker.inflight) == 1):
            self._start_clock_locked(task)  # it runs now: nothing is ahead of it
        worker.dispatched += 1
        if self._max_tasks_per_child and worker.dispatched >= self._max_tasks_per_child:
            worker.retiring = True
        return True

    def _forget_locked(self) -> None:
        forgotten, self._forgotten[:] = list(self._forgotten), []
        regions, self._forgotten_regions[:] = list(self._forgotten_regions), []
        for worker in self._workers.values():
            for fid in forgotten:
                if fid in worker.functions and self._hub.try_send(
                        worker.slot, P.FORGET, 0, fid, 0, b""):
                    worker.functions.discard(fid)
            for rid in regions:
                if rid in worker.regions and self._hub.try_send(
                        worker.slot, P.FORGET_SHARED, 0, rid, 0, b""):
                    worker.regions.discard(rid)

    def forget_region(self, region_id: int) -> None:
        """A shared region is gone from this process (called from a finalizer: no locks)."""
        self._forgotten_regions.append(region_id)

    # ------------------------------------------------------------------ workers

    def _make_init_payload(self) -> bytes:
        """The INIT frame's payload. The initializer is pickled apart (the worker loads it
        after adopting sys.path), as multiprocessing pickles what it gives a new process:
        its Queues, Locks and Events go across."""
        initializer = self._initializer
        payload = None if initializer is None else dumps_spawning(initializer)
        return dumps({**self._init_settings, "initializer": payload})

    def _spawn_worker(self) -> None:
        slot, pid = self._hub.spawn(self._argv)
        worker = _Worker(slot, pid)
        payload = self._init_payload
        if self._initializer is not None and self._workers_started:
            payload = self._make_init_payload()  # a descriptor in it is handed over once
        if not self._hub.try_send(slot, P.INIT, 0, 0, 0, payload):
            raise RuntimeError("a new worker's ring cannot hold its INIT frame")
        self._workers_started += 1
        with self._lock:
            self._workers[slot] = worker

    def _handle_exit_locked(self, slot: int, running_task: int, exitcode: int, signum: int,
                            completions: list) -> int:
        """Accounts for a worker that exited; returns how many replacements to start."""
        worker = self._workers.pop(slot, None)
        self._hub.release(slot)
        if worker is None:
            return 0
        orderly = (worker.closing or worker.retiring) and not worker.inflight and exitcode == 0
        if orderly:  # during shutdown, a task handed off late still gets a worker
            return 1 if (not self._shutdown or self._pending or self._incoming) else 0
        if self._terminating:
            for task in worker.inflight.values():
                completions.append((task, _BROKEN, BrokenProcessPool("the pool was terminated")))
            return 0
        if not worker.killed:
            self._workers_lost += 1
        if not worker.ready:
            if signum:
                self._startup_kills += 1
            else:
                self._startup_failures += 1
        if self._broken is not None:
            return 0
        # A hybrid worker may have started every task it was sent: none can be rerun.
        doomed = list(worker.inflight) if self._concurrency > 1 else [running_task]
        rerun = []
        for task_id in doomed:
            crashed = worker.inflight.pop(task_id, None)
            if crashed is None:
                continue
            if crashed.fate is None and crashed.retries > 0:
                crashed.retries -= 1
                crashed.deadline = None
                rerun.append(crashed)
                continue
            self._crashed += crashed.fate is None
            completions.append(task_crash(crashed, worker, exitcode, signum))
        # The rest never started: run them elsewhere, first, after those retried.
        self._pending.extendleft(reversed(worker.inflight.values()))
        self._pending.extendleft(reversed(rerun))
        worker.inflight.clear()
        if (self._startup_failures >= _MAX_STARTUP_FAILURES
                or self._startup_kills >= _MAX_STARTUP_KILLS):
            self._break_locked(
                f"worker processes die before they are ready ({_how_it_ended(exitcode, signum)}, "
                "too many times in a row); see their stderr", None, completions)
            return 0
        if self._shutdown and not self._pending and not any(
                w.inflight for w in self._workers.values()):
            return 0
        return 1

    def _break_locked(self, message: str, cause: BaseException | None,
                      completions: list) -> None:
        self._broken = message
        self._broken_cause = cause
        self._shutdown = True
        self._absorb_locked()
        for task in self._pending:
            completions.append((task, _BROKEN, _broken_error(message, cause)))
        self._pending.clear()
        for worker in self._workers.values():
            for task in worker.inflight.values():
                completions.append((task, _BROKEN, _broken_error(message, cause)))
            worker.inflight.clear()

    # ------------------------------------------------------------------ collecting

    def _collect(self) -> None:
        # Signals are for the application's threads. One the kernel gave this thread
        # instead of the main one (CPython's C handler only flags it here; the main
        # thread runs the Python handler when it next wakes) left the main thread asleep
        # in shutdown(wait=True)'s join: Ctrl-C was lost there in 1 run of about 40 on
        # Python 3.12.
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        hub = self._hub
        try:
            while True:
                wait = None
                if self._next_deadline != math.inf:
                    wait = max(0.0, self._next_deadline - time.monotonic())
                hub.wait_ready(wait, 0.0, True)
                completions, finished = self._drain(hub)
                self._finish(completions)
                self._settling = None  # see _can_settle
                del completions
                if not self._terminating:  # terminate() kills them all: none to replace
                    self._respawn_workers()
                if finished:
                    return
        finally:
            _live_executors.discard(self)
            # Its initargs (a Queue, a manager's proxy...) are the caller's: not kept past
            # the pool's end.
            self._initializer = None
            cancelled: list[Future] = []
            with self._lock:
                self._hub = None
                self._reject_incoming_locked()
                if self._terminating:  # left by a terminate() that could not take the lock
                    cancelled = [task.future for task in self._pending]
                    self._pending.clear()
            _cancel_all(cancelled)
            if hub is not None:
                hub.terminate_all(0.0)
            del hub  # the last reference: closes descriptors, joins the supervisor thread
            if not _live_executors:
                _core.arena_trim()  # no pool left to reuse the blocks: give their memory back

    def _drain(self, hub: Any) -> tuple[list, bool]:
        """Takes and handles waiting events; returns (completions, pool finished)."""
        completions: list = []
        with self._collect_lock:
            events = hub.drain(4096)
            with self._lock:
                if self._deadlines:
                    self._expire_locked()
                if events:
                    self._respawn += self._handle_events_locked(events, completions)
                    self._dispatch_locked()
                finished = self._close_if_done_locked()
        return completions, finished

    def _finish(self, completions: list) -> None:
        """Settles futures (no locks held), or requeues a task whose exception earns a retry."""
        for task, kind, value in completions:
            if not self._can_settle(task.future):
                continue
            if kind == P.ERROR and task.retries > 0 and task.retry_on and task.fate is None:
                error = _decode_error(value.flags, value.payload)
                if isinstance(error, task.retry_on):
                    with self._lock:
                        if self._broken is None:
                            task.retries -= 1
                            task.deadline = None
                            self._pending.appendleft(task)
                            self._dispatch_locked()
                            continue
            _complete(task, kind, value)

    def _can_settle(self, future: Future) -> bool:
        """Waits for ``future``'s lock to be free; False if the pool is being torn down and
        it is not: a Ctrl-C can leave a future's lock held for good by the interrupted
        thread (see _future._Condition), and the collector must not hang on it then.

        Once it has looked, the collector notes the future as the one it settles, until
        the next look or the end of the batch: the lock can still be taken before the
        settling takes it, and terminate() must not wait for a collector stuck on the
        lock of its own caller."""
        settling = cast(LaneFuture, future)
        collector = threading.get_ident() == self._collector.ident
        if collector:
            self._settling = None  # this wait ends by itself, see below
        while not settling.lock_free_within(_SETTLE_PATIENCE):
            if self._terminating or _interpreter_exiting:
                return False
        if collector:
            self._settling = settling
        return True

    def help(self, future: Future, timeout: float | None) -> None:
        """Drains replies in the caller's thread for a moment, until ``future`` is done."""
        hub = self._hub
        if hub is None:
            return
        if _received_blocks:  # while the worker runs: keep released result blocks mapped
            _core.settle_kept_mappings()
        budget = _HELP_SPIN_US / 1e6 if timeout is None else min(_HELP_SPIN_US / 1e6, timeout)
        deadline = time.monotonic() + budget
        hub.begin_help()
        try:
            while not future.done():
                left = deadline - time.monotonic()
                if left <= 0 or not hub.wait_ready(left, left * 1e6, False):
                    return
                completions, finished = self._drain(hub)
                self._finish(completions)
                if self._respawn or finished:
                    hub.wake()  # the collector thread starts replacements or finishes
        finally:
            hub.end_help()

    # ------------------------------------------------------------------ timeouts, cancels

    def _start_clock_locked(self, task: _Task) -> None:
        assert task.timeout is not None
        task.deadline = time.monotonic() + task.timeout
        heapq.heappush(self._deadlines, (task.deadline, task.id, task))
        if task.deadline < self._next_deadline:
            self._next_deadline = task.deadline
            self._hub.wake()  # the collector sleeps until the earliest deadline: a new one

    def _expire_locked(self) -> None:
        """Kills the workers of tasks that ran past their deadline."""
        now = time.monotonic()
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            deadline, _, task = heapq.heappop(deadlines)
            worker = self._worker_running_locked(task)
            if worker is not None and task.deadline == deadline:
                self._kill_locked(worker, task, "timeout")
        self._next_deadline = deadlines[0][0] if deadlines else math.inf

    def _worker_running_locked(self, task: _Task) -> _Worker | None:
        for worker in self._workers.values():
            if task.id in worker.inflight:
                return worker
        return None

    def _kill_locked(self, worker: _Worker, task: _Task, fate: str) -> None:
        task.fate = fate
        if not worker.killed:
            worker.killed = True
            worker.retiring = True  # no more tasks: it is about to die
            self._killed += 1
            self._hub.signal(worker.slot, signal.SIGKILL)

    def ready(self) -> bool:
        """True once a worker has started and is ready for calls."""
        return any(worker.ready for worker in list(self._workers.values()))

    def owns(self, future: Future) -> bool:
        """True if ``future`` came from this pool."""
        return getattr(future, "helper", None) is self

    def cancel(self, future: Future, force: bool = False) -> bool:
        """``future.cancel()``, or with ``force=True`` also stop the call if it runs.

        A forced cancel kills the worker running the call (the pool replaces it; tasks
        queued behind it run elsewhere) and the future is cancelled at once. A call
        already sent to a worker behind another one still runs there; its result is
        dropped. Returns False if the future had already finished.
        """
        if future.cancel():
            return True
        if not force or future.done():
            return False
        with self._lock:
            found = next(((worker, task) for worker in self._workers.values()
                          for task in worker.inflight.values() if task.future is future), None)
            if found is not None:
                worker, task = found
                if self._concurrency > 1 or next(iter(worker.inflight)) == task.id:  # running
                    self._kill_locked(worker, task, "cancelled")
                else:
                    task.fate = "cancelled"
        return future.cancel_running()  # type: ignore[attr-defined]

    def _respawn_workers(self) -> None:
        while True:
            with self._lock:
                if self._respawn <= 0 or (self._shutdown and self._broken is not None):
                    self._respawn = 0
                    return
                self._respawn -= 1
            try:
                self._spawn_worker()
            except Exception as exc:  # cannot start processes at all
                self._fail_everything(f"cannot start a worker process: {exc}", exc)
                return
            with self._lock:
                self._dispatch_locked()

    def _handle_events_locked(self, events: list, completions: list) -> int:
        respawn = 0
        workers = self._workers
        done_before = self._completed
        elapsed = 0
        for slot, frame in events:
            kind = frame.kind
            if kind == P.RESULT or kind == P.ERROR:
                worker = workers.get(slot)
                if worker is None:
                    continue
                task = worker.inflight.pop(frame.task_id, None)
                worker.full = False
                if task is None:
                    continue
                if self._timed and worker.inflight and self._concurrency == 1:
                    head = next(iter(worker.inflight.values()))  # runs from now on
                    if head.timeout is not None and head.deadline is None:
                        self._start_clock_locked(head)
                self._completed += 1
                elapsed += frame.aux  # the worker's time for it, in ns
                if frame.flags & P.REPLY_RETIRE and not worker.retiring:
                    worker.retiring = True  # over its memory limit: replaced once drained
                    self._recycled += 1
                completions.append((task, kind, frame))
                if worker.retiring and not worker.inflight and not worker.closing:
                    worker.closing = self._hub.try_send(slot, P.SHUTDOWN, 0, 0, 0, b"")
            elif kind == P.EXIT:
                respawn += self._handle_exit_locked(slot, frame.running_task, frame.exit_code,
                                                    frame.signal, completions)
            elif kind == P.READY:
                worker = workers.get(slot)
                if frame.flags & P.READY_FAILED:
                    cause = _decode_error(frame.flags & ~P.READY_FAILED, frame.payload)
                    self._break_locked(
                        "A process initializer failed, the process pool is not usable anymore",
                        cause, completions)
                    self._hub.terminate_all(0.0)
                elif worker is not None:
                    worker.ready = True
                    self._startup_failures = self._startup_kills = 0
        if self._completed != done_before:
            self._observe(elapsed / (self._completed - done_before))
        return respawn

    def _observe(self, elapsed_ns: float) -> None:
        """Adapts the queue depth to the task time (a batch's mean): deep for tiny tasks,
        1 for long ones."""
        if self._concurrency > 1:
            return
        mean = self._mean_task_ns
        mean = elapsed_ns if mean == 0 else mean + 0.2 * (elapsed_ns - mean)
        self._mean_task_ns = mean
        depth = int(_TARGET_QUEUED_NS / mean) + 1 if mean > 0 else _MAX_DEPTH
        self._depth = max(_MIN_DEPTH + 1 if mean < 2_000_000 else _MIN_DEPTH,
                          min(_MAX_DEPTH, depth))

    def _close_if_done_locked(self) -> bool:
        """During shutdown: stop idle workers; True once none is left."""
        if not self._shutdown:
            return False
        if (self._pending or self._incoming) and not self._terminating and self._broken is None:
            return False
        for worker in self._workers.values():
            if not worker.inflight and not worker.closing:
                worker.closing = self._hub.try_send(worker.slot, P.SHUTDOWN, 0, 0, 0, b"")
        return not self._workers

    def _absorb_locked(self) -> None:
        """Moves handed-off tasks (see _PoolLock) to the end of ``_pending``, in order."""
        incoming, pending = self._incoming, self._pending
        while incoming:
            pending.append(incoming.popleft())

    def _reject_incoming_locked(self) -> None:
        """Fails tasks handed off after the pool finished, as submit would have."""
        while self._incoming:
            task = self._incoming.popleft()
            if task.future.set_running_or_notify_cancel():
                task.future.set_exception(
                    RuntimeError("cannot schedule new futures after shutdown"))

    def _fail_everything(self, message: str, cause: BaseException | None) -> None:
        completions: list = []
        with self._lock:
            self._break_locked(message, cause, completions)
        self._finish(completions)


# ---------------------------------------------------------------------- completing

_BROKEN = -1  # completion kind for futures failed by the parent itself


def task_crash(task: _Task, worker: _Worker, exitcode: int, signum: int) -> tuple:
    if task.fate == "timeout":
        return (task, _BROKEN, TaskTimeout(
            f"{task.name()} ran longer than its timeout of {task.timeout:g} s; the pool "
            f"killed its worker (pid {worker.pid}) and replaced it"))
    if task.fate == "cancelled":
        return (task, _BROKEN, CancelledError())
    how = _how_it_ended(exitcode, signum)
    if worker.killed:
        how += " by the pool, to stop another call it was running (a timeout or a cancel)"
    error = WorkerCrashed(
        f"the worker process (pid {worker.pid}) running {task.name()} {how}; "
        "the pool replaced it",
        pid=worker.pid, exitcode=None if signum else exitcode, signal=signum or None)
    return (task, _BROKEN, error)


def _how_it_ended(exitcode: int, signum: int) -> str:
    if signum:
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        return f"was killed by {name}{_likely_cause(signum)}"
    return f"exited with code {exitcode}"


_oom_kills_seen = [-1]  # the count when last looked at (at pool start, then per crash)


def _oom_kills() -> int:
    """The kernel's count of processes its OOM killer has killed (/proc/vmstat), or -1."""
    try:
        with open("/proc/vmstat") as f:
            for line in f:
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return -1


def _likely_cause(signum: int) -> str:
    kills, before = _oom_kills(), _oom_kills_seen[0]
    _oom_kills_seen[0] = kills
    if signum == signal.SIGKILL:
        if before >= 0 and kills > before:
            return " (the kernel's OOM killer: the machine ran out of memory)"
        return " (kill -9, or the kernel's OOM killer if memory ran out)"
    return _CAUSES.get(signum, "")


_CAUSES = {
    signal.SIGSEGV.value: " (a segmentation fault: a bug in native code, or a stack overflow)",
    signal.SIGTERM.value: " (asked to terminate from outside the pool)",
    signal.SIGABRT.value: " (abort(): a failed assertion in native code)",
    signal.SIGBUS.value: " (a bus error: memory that vanished, e.g. a truncated file mapping)",
}


# The thread pools of native libraries (OpenMP, OpenBLAS, MKL, BLIS, Accelerate, numexpr,
# Numba): each sizes itself to every core of the machine, so N workers using them at once
# would run N times too many threads, spinning against each other.
NATIVE_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                           "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS",
                           "NUMBA_NUM_THREADS")


def native_threads(workers: int) -> dict[str, str]:
    """The environment a worker sets before importing anything: its share of the cores
    for every native thread pool, unless the parent's environment sets one."""
    share = str(max(1, usable_cores() // workers))
    return {name: share for name in NATIVE_THREAD_VARIABLES if name not in os.environ}


def sliceable(iterables: tuple[Iterable[Any], ...]) -> Sequence[Any]:
    """A map's items, sliceable: single arguments for one iterable (a list, tuple or range
    as it is, else copied to a list), argument tuples for several."""
    if len(iterables) == 1:
        first = iterables[0]
        return cast(Sequence[Any], first) if type(first) in _SLICEABLE else list(first)
    return list(zip(*iterables, strict=False))


def _forget_function(table: dict, forgotten: list[int], key: int, fid: int) -> None:
    """Finalizer of a cached function: drop its entry; workers are told to FORGET it."""
    table.pop(key, None)
    forgotten.append(fid)


def _failed(error: BaseException) -> Future:
    """A future that failed before it was sent (its call could not be pickled)."""
    future = LaneFuture()
    future.set_running_or_notify_cancel()
    future.set_exception(error)
    return future


def _cancel_all(futures: list[Future]) -> None:
    for future in futures:
        if future.cancel():
            future.set_running_or_notify_cancel()  # tells wait()/as_completed()


def _broken_error(message: str, cause: BaseException | None) -> BrokenProcessPool:
    error = BrokenProcessPool(message)
    error.__cause__ = cause
    return error


def _decode_error(flags: int, payload: bytes) -> BaseException:
    """The exception a worker sent, with its traceback text attached as ``__cause__``."""
    try:
        if flags & P.ERROR_BARE:
            text, type_name, tb = loads(payload)
            exc: BaseException = SerializationError(
                f"the task raised {type_name}, which could not be pickled: {text}")
        else:
            exc, tb = loads(payload)
    except BaseException as unpickling_error:  # the object's code may raise SystemExit too
        error = UnpicklingFailed(
            f"cannot unpickle the exception a task raised: {type(unpickling_error).__name__}: "
            f"{unpickling_error}")
        error.__cause__ = unpickling_error
        return error
    exc.__cause__ = RemoteTraceback(f'\n"""\n{tb}"""')  # type: ignore[arg-type]  # a str
    if flags & P.ERROR_DECODE:
        failed = UnpicklingFailed(f"the worker could not unpickle the call: "
                                  f"{type(exc).__name__}: {exc}")
        failed.__cause__ = exc
        return failed
    return exc


def _reraise_interrupt(exc: BaseException) -> None:
    """Re-raises a KeyboardInterrupt caught while unpickling in the main thread, where it
    may be the user's Ctrl-C (a caller helping the pool); elsewhere it can only be the
    object's own doing, and stays with its future."""
    if isinstance(exc, KeyboardInterrupt) and threading.current_thread() is threading.main_thread():
        raise exc  # its future is settled already


_received_blocks = False  # a result came in an attachment: see help()
_SETTLE_PATIENCE = 0.05  # seconds between looks at a torn-down pool while a future is locked


def _complete(task: _Task, kind: int, value: Any) -> None:
    global _received_blocks
    future = task.future
    task.payload = b""
    task.attachments = ()  # closes the memfds: the worker holds its own mappings, if any
    task.regions = ()
    try:
        if kind == P.RESULT:
            try:
                if value.attachments is not None:
                    _received_blocks = True
                result = loads_oob(value.payload, value.attachments)
            except BaseException as exc:  # unpickling runs the object's code: SystemExit too
                failed = UnpicklingFailed(f"cannot unpickle the return value of "
                                          f"{task.name()}: {type(exc).__name__}: {exc}")
                failed.__cause__ = exc
                future.set_exception(failed)
                _reraise_interrupt(exc)
            else:
                future.set_result(result)
        elif kind == P.ERROR:
            error = _decode_error(value.flags, value.payload)
            future.set_exception(error)
            if isinstance(error, UnpicklingFailed) and error.__cause__ is not None:
                _reraise_interrupt(error.__cause__)
        else:  # _BROKEN
            if future.done():
                return
            if not future.running():
                future.set_running_or_notify_cancel()
            future.set_exception(value)
    except Exception:  # InvalidStateError: cancelled meanwhile; nothing to report
        pass


def _python_exit() -> None:
    """At interpreter exit: finish submitted work, unless a Ctrl-C already interrupted."""
    global _interpreter_exiting
    _interpreter_exiting = True
    # interrupted() is also true for a program dying of Ctrl-C, wherever it was waiting.
    for executor in list(_live_executors):
        try:
            if interrupted():
                executor.terminate()
            else:
                executor.shutdown(wait=True)
        except KeyboardInterrupt:
            executor.terminate()


# As concurrent.futures does: run before the interpreter joins non-daemon threads.
threading._register_atexit(_python_exit)  # type: ignore[attr-defined]  # noqa: SLF001
