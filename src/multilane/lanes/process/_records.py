"""What the process pool is made of: its tasks, its workers, its lock and its statistics."""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from ..._calls import describe

__all__ = ["PoolLock", "PoolStatistics", "Task", "Worker"]


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


class PoolLock:
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


class Task:
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


class Worker:
    __slots__ = ("slot", "pid", "inflight", "functions", "regions", "ready", "dispatched",
                 "retiring", "closing", "full", "killed", "lost")

    def __init__(self, slot: int, pid: int) -> None:
        self.slot = slot
        self.pid = pid
        self.inflight: dict[int, Task] = {}  # insertion order = order sent
        self.functions: set[int] = set()  # function ids this worker has
        self.regions: set[int] = set()  # shared regions this worker has mapped
        self.ready = False
        self.dispatched = 0
        self.retiring = False  # reached max_tasks_per_child: no more tasks
        self.closing = False  # SHUTDOWN sent
        self.full = False  # its ring had no room; retried after its next reply
        self.killed = False  # SIGKILLed by the pool (a timeout or a forced cancel)
        self.lost = False  # its socket is closed: it died, and its exit is yet to be handled
