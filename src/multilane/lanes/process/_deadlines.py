"""Timeouts and forced cancels: a running task past its deadline, or cancelled by force, is
stopped by killing its worker (the pool replaces it; what was queued behind it runs
elsewhere)."""

from __future__ import annotations

import heapq
import math
import signal
import time
from concurrent.futures import Future

from ._records import Task, Worker
from ._state import PoolState

__all__ = ["Deadlines"]


class Deadlines(PoolState):
    """The timeouts and cancels of ProcessPoolExecutor (see _state)."""

    def _start_clock_locked(self, task: Task) -> None:
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

    def _worker_running_locked(self, task: Task) -> Worker | None:
        for worker in self._workers.values():
            if task.id in worker.inflight:
                return worker
        return None

    def _kill_locked(self, worker: Worker, task: Task, fate: str) -> None:
        task.fate = fate
        if not worker.killed:
            worker.killed = True
            worker.retiring = True  # no more tasks: it is about to die
            self._killed += 1
            self._hub.signal(worker.slot, signal.SIGKILL)

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
