"""Spreading calls that mostly wait over the process lane's workers, many at once in each.

On threads, a waiting call still holds this process's GIL for its CPU time: past ``wall /
cpu`` calls at once, the GIL is the limit however many threads wait (a local HTTP GET, a
call that waits and then parses). Each worker process has a GIL of its own, so the calls
are cut into one chunk per worker, and each chunk runs its calls many at once on threads
in its worker (``run_at_once``): the hybrid lane's way, on workers already started.
``spread_gain`` (a pure function of the profile's figures) says when that pays.
"""

from __future__ import annotations

import functools
from typing import Any

from .._calls import calls_of, keep_partial_results
from .._future import LaneFuture, gather, settle_quietly
from ..buffers._serialize import dumps_function
from ..errors import SerializationError, UnpicklingFailed
from ._params import MAX_THREADS, PROCESS_START_S, SPREAD_MIN_GAIN_S
from ._profile import Profile
from ._remote import run_at_once, run_chunk
from ._segments import Segment, bounds, copy_outcome, settle_chunk
from ._state import AutoState
from ._verdict import shipping, spread_gain, waiting_concurrency

__all__ = ["Spreading", "run_into"]


class Spreading(AutoState):
    """The spreading part of AutoLane (see _state)."""

    def _spread_pays_locked(self, p: Profile, calls: int) -> bool:
        """Whether ``calls`` calls of ``p``, decided "thread" for their waits, gain enough
        spread over the workers (see the module's text). Not on a guess made while its
        first call still waited, nor for a function a process cannot take, nor where the
        GIL holds no thread back (calls that release it, a free-threaded CPython)."""
        if (self._cores < 2 or p.early or p.unpicklable is not None or p.solo is None
                or calls < 2 * self._cores or self._machine.free_threaded
                or (p.computing and (p.parallel or p.gil == "released"))):
            return False
        threads = max(p.concurrency, 1)
        # Workers not started yet would first have to be (PROCESS_START_S).
        wanted = SPREAD_MIN_GAIN_S + (0.0 if self._router.ready("process") else PROCESS_START_S)
        return spread_gain(p.basis, p.basis_cpu, calls, threads, self._cores,
                           shipping(p, self._machine), self._machine) >= wanted

    def _send_spread(self, p: Profile, calls: list, segments: list[Segment]) -> None:
        """Sends a released backlog (per-call entries) and segments spread over the
        workers; what cannot go (a function or arguments that cannot be pickled: they
        never ran) goes to threads instead."""
        fn = calls[0][1] if calls else segments[0].fn
        try:
            dumps_function(fn)  # cached by the pool for its calls: a check, once
        except SerializationError as exc:
            with self._lock:
                p.unpicklable = f"it cannot be pickled for a process ({exc})"
            self._send_all(p, [("thread", *call) for call in calls]
                           + ([("segments", "thread", segments)] if segments else []))
            return
        with self._lock:
            p.spread = self._cores
        for part in bounds(0, len(calls), self._cores) if calls else ():
            self._spread_calls(p, fn, calls[part[0]:part[1]])
        for group in _runs(segments):
            self._spread_segments(p, group)

    def _threads_for(self, p: Profile, calls: int) -> int:
        return waiting_concurrency(p.basis, p.basis_cpu, calls, 1, MAX_THREADS,
                                   self._machine)

    def _spread_calls(self, p: Profile, fn: Any, chunk: list) -> None:
        """One chunk of backlog entries (future, fn, args, kwargs, options)."""
        chunk = [call for call in chunk if call[0].set_running_or_notify_cancel()]
        if not chunk:
            return
        work = [(call[2], call[3]) for call in chunk]
        self._at_once(p, fn, work).add_done_callback(
            functools.partial(settle_chunk, [call[0] for call in chunk]))

    def _spread_segments(self, p: Profile, group: list[Segment]) -> None:
        """Contiguous segments of one map, cut anew into one chunk per worker (a worker
        runs one chunk at a time: a chunk per segment would run each worker's share in
        rounds); each piece takes its slice of the chunks' results."""
        group = [segment for segment in group if segment.piece.set_running_or_notify_cancel()]
        if not group:
            return
        first = group[0]
        start, stop = first.start, group[-1].stop
        parts = []
        for a, b in bounds(start, stop, self._cores):
            work: list = [(args, {}) for args in calls_of(first.items, a, b, first.single)]
            parts.append((a, b, self._at_once(p, first.fn, work)))
        for segment in group:
            mine = [part for part in parts if part[0] < segment.stop and part[1] > segment.start]
            gather([part[2] for part in mine]).add_done_callback(
                functools.partial(_settle_slices, segment, mine))

    def _at_once(self, p: Profile, fn: Any, work: list) -> Any:
        """The future of ``work``'s (ok, value) outcomes, run many at once in a worker
        (``run_at_once``); or, if they never ran there (a call that cannot be pickled, a
        function no worker can load: a module the workers cannot import), one after
        another on a thread here."""
        process = self._router.lane("process", internal=True)
        inner = process.submit(run_at_once, (fn, work, self._threads_for(p, len(work))), {})
        outcome = LaneFuture()
        # Failed at once with a SerializationError: pickling it here failed.
        pickled = not (inner.done() and isinstance(inner.exception(), SerializationError))
        inner.add_done_callback(
            functools.partial(self._ran_or_here, p, outcome, fn, work, pickled))
        return outcome

    def _ran_or_here(self, p: Profile, outcome: LaneFuture, fn: Any, work: list,
                     pickled: bool, inner: Any) -> None:
        error = inner.exception()
        if pickled and not (isinstance(error, UnpicklingFailed) and not error.call_ran):
            copy_outcome(outcome, inner)
            return
        with self._lock:
            p.unpicklable = (f"a worker cannot load it ({error})" if pickled else
                             f"it cannot be pickled for a process ({error})")
        try:
            here = self._router.lane("thread", internal=True).submit(run_chunk, (fn, work), {})
        except BaseException as exc:  # the lane is shut down
            settle_quietly(outcome, error=exc)
            return
        here.add_done_callback(functools.partial(copy_outcome, outcome))


def _runs(segments: list[Segment]) -> list[list[Segment]]:
    """Segments grouped into runs of one map's contiguous calls."""
    runs: list[list[Segment]] = []
    for segment in segments:
        last = runs[-1][-1] if runs else None
        if (last is not None and last.items is segment.items and last.stop == segment.start
                and last.fn is segment.fn and last.single == segment.single):
            runs[-1].append(segment)
        else:
            runs.append([segment])
    return runs


def _settle_slices(segment: Segment, parts: list, gathered: Any) -> None:
    """A segment's piece from the (ok, value) lists of the chunks that cover it."""
    error = gathered.exception()
    if error is not None:
        settle_quietly(segment.piece, error=error)
        return
    results: list = []
    for (a, _, _), outcomes in zip(parts, gathered.result(), strict=True):
        for ok, value in outcomes[max(a, segment.start) - a:segment.stop - a]:
            if not ok:
                keep_partial_results(value, results)
                settle_quietly(segment.piece, error=value)
                return
            results.append(value)
    settle_quietly(segment.piece, results)


def run_into(future: Any, fn: Any, args: tuple, kwargs: dict) -> None:
    """On a thread: runs the call and settles ``future`` (already running) with it."""
    try:
        settle_quietly(future, fn(*args, **kwargs))
    except Exception as exc:
        settle_quietly(future, error=exc)
