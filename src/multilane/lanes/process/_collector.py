"""Collecting: one thread per pool sleeps on every worker's replies and exits at once, and
settles futures; a caller blocked in result() drains the same way for a moment first.

A worker's last replies are handled before its exit (the collect lock serialises the
collector and helping callers). Futures are settled with no lock held."""

from __future__ import annotations

import math
import signal
import threading
import time
from concurrent.futures import Future
from typing import Any, cast

import multilane._core as _core

from ... import _protocol as P
from ..._future import LaneFuture
from ..._options import earns_retry
from ._completion import blocks_received, cancel_all, complete, decode_error
from ._state import HELP_SPIN_US, INTERPRETER_EXITING, LIVE, SETTLE_PATIENCE, PoolState

__all__ = ["Collector", "start_without_signals"]


class Collector(PoolState):
    """The collecting part of ProcessPoolExecutor (see _state)."""

    def _collect(self) -> None:
        # Signals are for the application's threads: see start_without_signals().
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
            LIVE.discard(self)
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
            cancel_all(cancelled)
            if hub is not None:
                hub.terminate_all(0.0)
            del hub  # the last reference: closes descriptors, joins the supervisor thread
            if not LIVE:
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
                    cause = decode_error(frame.flags & ~P.READY_FAILED, frame.payload)
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

    def _finish(self, completions: list) -> None:
        """Settles futures (no locks held), or requeues a task whose exception earns a retry."""
        for task, kind, value in completions:
            if not self._can_settle(task.future):
                continue
            if kind == P.ERROR and task.retry_on and task.fate is None:
                error = decode_error(value.flags, value.payload)
                if earns_retry(error, task.retries, task.retry_on):
                    with self._lock:
                        if self._broken is None:
                            task.retries -= 1
                            task.deadline = None
                            self._pending.appendleft(task)
                            self._dispatch_locked()
                            continue
            complete(task, kind, value)

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
        while not settling.lock_free_within(SETTLE_PATIENCE):
            if self._terminating or INTERPRETER_EXITING.value:
                return False
        if collector:
            self._settling = settling
        return True

    def help(self, future: Future, timeout: float | None) -> None:
        """Waits for ``future`` in the caller's thread: spinning, draining replies itself
        (GIL released) for up to HELP_SPIN_US, or sleeping until the collector thread
        settles it, whichever has been faster here lately (see ``_spin``). Without a
        timeout it waits to the end and times the wait; with one it spins at most (if
        spinning is the choice), untimed, and ``result()`` waits for the rest."""
        hub = self._hub
        if hub is None:
            return
        if blocks_received():  # while the worker runs: keep released result blocks mapped
            _core.settle_kept_mappings()
        spin = self._spin.spin_now()
        start = time.monotonic()
        if spin:
            budget = HELP_SPIN_US / 1e6 if timeout is None else min(HELP_SPIN_US / 1e6, timeout)
            deadline = start + budget
            hub.begin_help()
            try:
                while not future.done():
                    left = deadline - time.monotonic()
                    if left <= 0 or not hub.wait_ready(left, left * 1e6, False):
                        break
                    completions, finished = self._drain(hub)
                    self._finish(completions)
                    if self._respawn or finished:
                        hub.wake()  # the collector thread starts replacements or finishes
            finally:
                hub.end_help()
        if timeout is not None:
            return
        cast(LaneFuture, future).wait_in_slices()
        self._spin.waited(spin, time.monotonic() - start)


def start_without_signals(thread: threading.Thread) -> None:
    """Starts ``thread`` with every signal blocked, from its first instruction.

    A signal the kernel gives a thread other than the main one is only flagged there by
    CPython's C handler; the main thread runs the Python handler when it next wakes, so
    one asleep in shutdown(wait=True)'s join never would, and a Ctrl-C would be lost. A
    new thread inherits its creator's mask: blocked for the moment of the start, the
    collector never has a window in which to take a signal (under load it may not run
    its first line until long after the caller has gone on). Signals that arrive in that
    moment wait, pending, for the unblocking.
    """
    old = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
