"""Dispatching: pending tasks go to the least loaded worker with room, under the pool lock.

A worker gets at most ``depth`` tasks ahead of it; the depth adapts to the measured task
time (deep for microsecond tasks, 1 for long ones). A function, a shared region, is sent
to a worker once before the first call that needs it, and forgotten when it dies."""

from __future__ import annotations

from typing import Any

from ... import _protocol as P
from ...errors import SerializationError
from ._records import Task, Worker
from ._state import MAX_DEPTH, MIN_DEPTH, TARGET_QUEUED_NS, PoolState

__all__ = ["Dispatch"]


class Dispatch(PoolState):
    """The dispatching part of ProcessPoolExecutor (see _state)."""

    def _dispatch_locked(self) -> None:
        """Sends pending tasks to workers with room, least loaded first. Holds the lock."""
        if self._functions.forgotten or self._forgotten_regions:
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

    def _pick_worker_locked(self) -> Worker | None:
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

    def _send_task_locked(self, worker: Worker, task: Task) -> bool:
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

    def preload(self, fn: Any) -> None:
        """Sends ``fn`` to every worker that does not have it yet, so each loads it (imports
        its module, or rebuilds it by value) now, in parallel, rather than at its first
        call. Nothing to send for a callable pickled with each call; a worker whose ring
        is full is skipped (it gets the function with its first call, as always)."""
        try:
            entry = self._functions.entry(fn)
        except SerializationError:
            return
        if entry is None:
            return
        fid, payload = entry
        with self._lock:
            hub = self._hub
            if self._shutdown or self._broken is not None or hub is None:
                return
            for worker in self._workers.values():
                if (fid not in worker.functions and not (worker.closing or worker.lost)
                        and hub.try_send(worker.slot, P.FUNCTION, 0, fid, 0, payload)):
                    worker.functions.add(fid)

    def _forget_locked(self) -> None:
        forgotten, self._functions.forgotten[:] = list(self._functions.forgotten), []
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

    def _absorb_locked(self) -> None:
        """Moves handed-off tasks (see PoolLock) to the end of ``_pending``, in order."""
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

    def _observe(self, elapsed_ns: float) -> None:
        """Adapts the queue depth to the task time (a batch's mean): deep for tiny tasks,
        1 for long ones."""
        if self._concurrency > 1:
            return
        mean = self._mean_task_ns
        mean = elapsed_ns if mean == 0 else mean + 0.2 * (elapsed_ns - mean)
        self._mean_task_ns = mean
        depth = int(TARGET_QUEUED_NS / mean) + 1 if mean > 0 else MAX_DEPTH
        self._depth = max(MIN_DEPTH + 1 if mean < 2_000_000 else MIN_DEPTH,
                          min(MAX_DEPTH, depth))
