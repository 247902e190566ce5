"""The cluster lane: calls on a Dask or Ray cluster, with the local lanes' semantics.

What it adds to a backend (``_backend.Cluster``), the same for every cluster:

- **standard futures**: ``submit`` returns a ``concurrent.futures.Future`` at once;
- **a bounded window**: at most ``window`` calls are on the cluster at a time (the
  backend's ``window``, else enough to cover a scheduler's latency); the others wait
  here, so a map of a million items does not put a million tasks on the scheduler;
- **retries as the local pool's**: a call is sent again after its worker was lost
  (:class:`multilane.WorkerCrashed`) or it raised one of ``retry_on``, while ``retries``
  are left. The clusters' own retries are not used: Dask's re-runs a call after *any*
  exception;
- **timeouts**: the clock starts when the call is sent to the cluster (the window keeps
  that close to when it starts); at the end its future fails with
  :class:`multilane.TaskTimeout` and the call is cancelled there;
- **shared objects**: arrays made by ``multilane.shared`` go to each worker once
  (``_sharing.py``);
- **chunks**: a map's items travel in chunks, one task each, as on the process lane.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from .. import _interrupts as interrupts
from .._calls import describe
from .._future import LaneFuture, settle_quietly
from .._options import TaskOptions, earns_retry, map_chunksize
from ..errors import TaskTimeout, WorkerCrashed
from ..lanes._lane import LaneBase, track_for_exit
from ..lanes.thread import Watchdog
from . import _remote
from ._backend import Cluster
from ._sharing import Sharing

__all__ = ["ClusterLane", "ClusterStatistics"]

# The default window: calls on the cluster at once, at least MIN_WINDOW, else so many per
# slot. A Dask LocalCluster here takes ~4 ms per tiny task from submit to result, so a
# window of 4 ran 500 of them at 11.7 ms each; 128, 512 and no bound at all came within
# the noise of each other (5.2, 5.0 and 4.7 ms).
MIN_WINDOW = 256
CALLS_PER_SLOT = 4
CHUNKS_PER_SLOT = 4  # a map without a chunksize: about this many chunks per slot


@dataclass(frozen=True)
class ClusterStatistics:
    """A snapshot of a cluster lane, from ``statistics()``."""

    cluster: str  # the backend's name
    slots: int  # calls the cluster runs at once
    window: int  # calls on the cluster at most
    in_flight: int  # on the cluster now
    queued: int  # waiting here for room in the window
    sent: int  # sent so far, retries included
    retried: int


class _Call:
    """One call (or chunk) on its way: its future, what to send, and its state."""

    __slots__ = ("future", "remote", "payload", "options", "label", "retries_left",
                 "token", "handle", "sent")

    def __init__(self, future: LaneFuture, remote: Any, payload: tuple,
                 options: TaskOptions | None, label: str) -> None:
        self.future = future
        self.remote = remote
        self.payload = payload
        self.options = options
        self.label = label
        self.retries_left = options.retries if options is not None else 0
        # While the call is on the cluster: a token its end must match (a call timed out or
        # cancelled by force is settled already, and its token gone) and the backend's
        # handle.
        self.token: object | None = None
        self.handle: Any = None
        self.sent = False


class ClusterLane(LaneBase):
    """Runs calls on ``cluster``, at most its ``window`` at a time."""

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster
        cluster.start()
        self._slots = max(1, cluster.slots())
        self._window = cluster.window or max(MIN_WINDOW, CALLS_PER_SLOT * self._slots)
        self._sharing = Sharing(cluster)
        self._waiting: deque[_Call] = deque()
        self._calls: dict[Future, _Call] = {}  # waiting or on the cluster
        self._in_flight = 0
        self._sent = 0
        self._retried = 0
        self._lock = threading.Lock()
        self._drained = threading.Condition(self._lock)
        self._closed = False
        self._closing = False
        self._cluster_closed = threading.Event()
        self._dog: Watchdog | None = None
        track_for_exit(self)

    @property
    def at_once(self) -> int:
        """Calls that run on the cluster at once: its slots as it told them when it
        started, or the window if that is smaller."""
        return min(self._slots, self._window)

    # ------------------------------------------------------------------ calls

    def submit(self, fn: Any, args: tuple, kwargs: dict,
               options: TaskOptions | None = None) -> LaneFuture:
        bases: list = []
        args, kwargs = _remote.each_value(lambda values: self._sharing.lift(values, bases),
                                          args, kwargs)
        return self._queue(_remote.call, (fn, args, kwargs, *bases), options, fn)

    def submit_chunk(self, fn: Any, items: Sequence[Any], start: int, stop: int,
                     single: bool, options: TaskOptions | None = None) -> LaneFuture:
        part = list(items[start:stop])
        bases: list = []
        if single:
            part = list(self._sharing.lift(tuple(part), bases))
        else:
            part = [self._sharing.lift(tuple(item), bases) for item in part]
        return self._queue(_remote.chunk, (fn, part, single, *bases), options, fn)

    def map_calls(self, fn: Any, items: Sequence[Any], single: bool, chunksize: int | None,
                  options: TaskOptions | None, caller_waits: bool) -> tuple[list[Future], bool]:
        chunksize = map_chunksize(chunksize, options, lambda: max(1, math.ceil(
            len(items) / (CHUNKS_PER_SLOT * self._slots))))
        if chunksize == 1:
            return super().map_calls(fn, items, single, None, options, caller_waits)
        return [self.submit_chunk(fn, items, i, i + chunksize, single, options)
                for i in range(0, len(items), chunksize)], True

    def _queue(self, remote: Any, payload: tuple, options: TaskOptions | None,
               fn: Any) -> LaneFuture:
        label = (options.label if options is not None else None) or describe(fn)
        call = _Call(LaneFuture(), remote, payload, options, label)
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._waiting.append(call)
            self._calls[call.future] = call
        self._pump()
        return call.future

    def _pump(self) -> None:
        """Sends waiting calls while the window has room."""
        while True:
            with self._lock:
                if self._in_flight >= self._window or not self._waiting:
                    return
                call = self._waiting.popleft()
                if not call.sent and not call.future.set_running_or_notify_cancel():
                    del self._calls[call.future]  # cancelled while it waited
                    continue
                call.sent = True
                self._in_flight += 1
                self._sent += 1
            self._send(call)

    def _send(self, call: _Call) -> None:
        token = call.token = object()
        try:
            handle = self._cluster.send(call.remote, call.payload,
                                        lambda result, error: self._ended(call, token, result,
                                                                          error))
        except BaseException as exc:  # the backend refused it (say, after its close)
            self._ended(call, token, None, exc)
            return
        with self._lock:
            if call.token is token:
                call.handle = handle
        options = call.options
        if options is not None and options.timeout is not None:
            self._watchdog().watch(time.monotonic() + options.timeout,
                                   lambda: self._time_out(call, token))

    def _ended(self, call: _Call, token: object, result: Any,
               error: BaseException | None) -> None:
        with self._lock:
            if call.token is not token:
                return  # timed out or cancelled by force: already settled
            call.token = call.handle = None
        self._end(call, result, error)

    def _end(self, call: _Call, result: Any, error: BaseException | None) -> None:
        retry = error is not None and not call.future.done() and earns_retry(
            error, call.retries_left, call.options.retry_on if call.options else (),
            lost_worker=isinstance(error, WorkerCrashed))
        with self._lock:
            self._in_flight -= 1
            if retry:
                call.retries_left -= 1
                self._retried += 1
                self._waiting.appendleft(call)
            else:
                self._calls.pop(call.future, None)
                call.payload = ()  # the arguments are not kept once the call is done
        if not retry:
            settle_quietly(call.future, result, error)
        self._pump()
        with self._lock:
            if not self._calls:
                self._drained.notify_all()

    def _time_out(self, call: _Call, token: object) -> None:
        with self._lock:
            if call.token is not token:
                return
            handle, call.token, call.handle = call.handle, None, None
        stopped = self._cluster.cancel(handle) if handle is not None else False
        assert call.options is not None and call.options.timeout is not None
        call.retries_left = 0
        fate = "it was stopped" if stopped else "it was cancelled, but may run on in its worker"
        self._end(call, None, TaskTimeout(
            f"{call.label} ran longer than its timeout of {call.options.timeout:g} s on "
            f"the {self._cluster.name} cluster (counted from when it was sent there); "
            f"{fate}"))

    # ------------------------------------------------------------------ looking inside

    def queued(self) -> int:
        return len(self._waiting)

    def owns(self, future: Future) -> bool:
        return future in self._calls

    def cancel(self, future: Future, force: bool = False) -> bool:
        if future.cancel():
            return True
        if not force:
            return False
        with self._lock:
            call = self._calls.get(future)
            handle = call.handle if call is not None else None
            if call is None or handle is None:
                return False
            call.token = call.handle = None
        self._cluster.cancel(handle)
        call.retries_left = 0
        assert isinstance(call.future, LaneFuture)
        call.future.cancel_running()
        self._end(call, None, None)
        return True

    def statistics(self) -> ClusterStatistics:
        with self._lock:
            return ClusterStatistics(self._cluster.name, self._slots, self._window,
                                     self._in_flight, len(self._waiting), self._sent,
                                     self._retried)

    # ------------------------------------------------------------------ lifecycle

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed = True
            if cancel_futures:
                for call in self._waiting:
                    if not call.sent and call.future.cancel():
                        call.future.set_running_or_notify_cancel()
                        self._calls.pop(call.future, None)
                self._waiting = deque(c for c in self._waiting if c.future in self._calls)
        if not wait:
            threading.Thread(target=self._close_when_drained, daemon=True,
                             name=f"multilane-{self._cluster.name}-close").start()
            return
        try:
            self._close_when_drained()
        except KeyboardInterrupt:
            self.terminate()
            raise

    def _close_when_drained(self) -> None:
        with self._lock:
            while self._calls:
                self._drained.wait(interrupts.SLICE_S)
        self._close_cluster()

    def terminate(self) -> None:
        with self._lock:
            self._closed = True
            calls = list(self._calls.values())
            self._calls.clear()
            self._waiting.clear()
            handles = [call.handle for call in calls if call.handle is not None]
            for call in calls:
                call.token = call.handle = None
            self._drained.notify_all()
        for handle in handles:
            self._cluster.cancel(handle)
        for call in calls:
            if not call.future.cancel():
                settle_quietly(call.future, error=WorkerCrashed(
                    f"{call.label} was stopped: the executor was terminated while it ran "
                    f"on the {self._cluster.name} cluster"))
        self._close_cluster()

    def _close_cluster(self) -> None:
        """Closes the backend once; a second caller returns when the first has."""
        with self._lock:
            first = not self._closing
            self._closing = True
        if not first:
            while not self._cluster_closed.wait(interrupts.SLICE_S):
                pass
            return
        try:
            self._sharing.clear()
            if self._dog is not None:
                self._dog.stop()
            self._cluster.close()
        finally:
            self._cluster_closed.set()

    def _watchdog(self) -> Watchdog:
        with self._lock:
            if self._dog is None:
                self._dog = Watchdog(f"multilane-{self._cluster.name}-watchdog")
            return self._dog
