"""Workers: starting them, replacing one that died, and what a death does to its tasks.

A worker that dies fails only the task it was running (WorkerCrashed, or a retry); the
tasks queued behind it go back to the front of ``pending``. Workers that die before they
are ready, too many times in a row, break the pool: something is wrong with every worker."""

from __future__ import annotations

from concurrent.futures.process import BrokenProcessPool

from ... import _protocol as P
from ..._options import earns_retry
from ...buffers._serialize import dumps, dumps_spawning
from ._completion import broken_error
from ._crash import BROKEN, how_it_ended, task_crash
from ._records import Worker
from ._state import MAX_STARTUP_FAILURES, MAX_STARTUP_KILLS, PoolState

__all__ = ["Workers"]


class Workers(PoolState):
    """The worker lifecycle of ProcessPoolExecutor (see _state)."""

    def _make_init_payload(self) -> bytes:
        """The INIT frame's payload. The initializer is pickled apart (the worker loads it
        after adopting sys.path), as multiprocessing pickles what it gives a new process:
        its Queues, Locks and Events go across."""
        initializer = self._initializer
        payload = None if initializer is None else dumps_spawning(initializer)
        return dumps({**self._init_settings, "initializer": payload})

    def _spawn_worker(self) -> None:
        slot, pid = self._hub.spawn(self._argv)
        worker = Worker(slot, pid)
        payload = self._init_payload
        if self._initializer is not None and self._workers_started:
            payload = self._make_init_payload()  # a descriptor in it is handed over once
        if not self._hub.try_send(slot, P.INIT, 0, 0, 0, payload):
            raise RuntimeError("a new worker's ring cannot hold its INIT frame")
        self._workers_started += 1
        with self._lock:
            self._workers[slot] = worker

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
                completions.append((task, BROKEN, BrokenProcessPool("the pool was terminated")))
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
            if crashed.fate is None and earns_retry(None, crashed.retries, (), lost_worker=True):
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
        if (self._startup_failures >= MAX_STARTUP_FAILURES
                or self._startup_kills >= MAX_STARTUP_KILLS):
            self._break_locked(
                f"worker processes die before they are ready ({how_it_ended(exitcode, signum)}, "
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
            completions.append((task, BROKEN, broken_error(message, cause)))
        self._pending.clear()
        for worker in self._workers.values():
            for task in worker.inflight.values():
                completions.append((task, BROKEN, broken_error(message, cause)))
            worker.inflight.clear()

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

    def _fail_everything(self, message: str, cause: BaseException | None) -> None:
        completions: list = []
        with self._lock:
            self._break_locked(message, cause, completions)
        self._finish(completions)
