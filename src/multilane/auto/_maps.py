"""How the auto lane places a map: its head runs in the caller as probes, the rest waits
in segments for the decision, and a decided map goes in segments (inline, here, or as
process chunks) or call by call (a thread, a loop).

A map submits everything at once; placing it all before knowing where it runs fastest
would be a guess, and a future per call would cost a map of tiny calls more than the
calls. So the calls of a map travel in segments: one future each for many calls.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Sequence
from typing import Any

from .._calls import args_at, calls_of
from .._future import LaneFuture, gather, settle_quietly
from .._options import TaskOptions
from ._params import (
    CALLER_SLICE_S,
    EARLY_S,
    HEAD,
    MEASURED_CALLS,
    MEASURED_RUN_S,
    SAMPLE,
    SEGMENTS_PER_CORE,
    TINY_S,
    WAITING,
)
from ._probes import (
    CallerProbe,
    GilSamples,
    lost_its_core,
    thread_rusage,
    timed_probe,
    wait_watch,
    watch_probe,
)
from ._profile import Profile, function_key
from ._remote import run_chunk
from ._segments import (
    Segment,
    bounds,
    copy_outcome,
    failed,
    settle_chunk,
)
from ._state import AutoState

__all__ = ["MapRouting"]


class MapRouting(AutoState):
    """The map placing part of AutoLane (see _state)."""

    def map_calls(self, fn: Any, items: Sequence[Any], single: bool, chunksize: int | None,
                  options: TaskOptions | None, caller_waits: bool) -> tuple[list, bool]:
        """A map's calls: (futures in order, whether each future's result is a list).

        ``items`` are single arguments or argument tuples. A decided function's calls run
        in segments (inline, here, or in process chunks) or, on a thread or a loop, one
        by one. An undecided one explores with the first calls while the rest wait as a
        few segments, released once it is decided. With ``caller_waits`` (a blocking
        ``map``, not ``map_async``) the first probes run here, in the calling thread, as
        long as they are tiny: a map of tiny calls then costs what a loop would.

        ``chunksize``, if given, is the size of the chunks the map's calls go to the
        processes in, decided or not. With ``options`` every call is placed as a
        ``submit`` of its own.
        """
        n = len(items)
        if n == 0:
            return [], False
        if options is not None:
            return [self.submit(fn, args, {}, options)
                    for args in calls_of(items, 0, n, single)], False
        key = function_key(fn)
        first_args = args_at(items, 0, single)
        p = self._profile(fn, first_args, {}, key)
        last_args = args_at(items, n - 1, single)
        if n < 3 or (last_args is not first_args and  # sizes vary: one by one
                     p is not self._profile(fn, last_args, {}, key)):
            return [self.submit(fn, args, {}) for args in calls_of(items, 0, n, single)], False
        done, rest = self._probe_here_counted(p, fn, items, single) if caller_waits else ([], None)
        if rest is not None:  # the watcher sent the rest to threads while the probe waited
            return done + rest, False
        k = len(done)
        with self._lock:
            if p.coroutine and p.exploring and not p.probes_out:
                # Decided without a probe: the calls go straight to the loop, with no
                # segment gathering them (a gathering future per segment costs a map of
                # short coroutines a noticeable share of its time).
                self._next_probe_locked(p)
            lane = p.lane if not p.exploring else None
            if lane in ("inline", "process"):
                p.calls += n - k
        if lane in ("inline", "process"):
            head = [gather(done)] if done else []
            return head + self._map_decided(p, lane, fn, items, k, single, chunksize), True
        if lane is not None:  # a thread or a loop: as decided calls go, one by one
            with self._lock:
                p.calls += n - k
                if lane == "thread":
                    self._widen_locked(p, n - k)
                spread = lane == "thread" and self._spread_pays_locked(p, n - k)
            if spread:
                segments = [Segment(LaneFuture(), fn, items, a, b, single)
                            for a, b in bounds(k, n, self._cores * SEGMENTS_PER_CORE)]
                self._send_spread(p, [], segments)
                return ([gather(done)] if done else []) + [s.piece for s in segments], True
            return done + self._submit_each(p, lane, fn, calls_of(items, k, n, single)), False
        # The first calls wait one by one, the rest in segments; the next probes (a pair
        # takes two at once) come from them.
        head_end = min(n, k + HEAD)
        waiting: list[tuple] = [(LaneFuture(), fn, args, {}, None)
                                for args in calls_of(items, k, head_end, single)]
        bulk = [Segment(LaneFuture(), fn, items, a, b, single, chunksize)
                for a, b in bounds(head_end, n, self._cores * SEGMENTS_PER_CORE)]
        release: list = []
        drain = False
        with self._lock:
            queued = p.lane is None or p.exploring
            if queued:
                p.calls += n - k
                p.backlog.extend(waiting)
                p.bulk.extend(bulk)
                # The caller waits anyway: while the workers warm up, it runs the map.
                drain = caller_waits and not p.draining
                p.draining |= drain
                if not p.probes_out:
                    release = self._next_probe_from_backlog_locked(p)
        if not queued:  # decided meanwhile
            rest = calls_of(items, k, n, single)
            return done + [self.submit(fn, args, {}) for args in rest], False
        self._send_all(p, release)
        pieces = [gather(done + [call[0] for call in waiting])] + [
            segment.piece for segment in bulk]  # before a drain seals a segment anew
        if drain:
            self._run_while_probing(p)
        return pieces, True

    def _probe_here_counted(self, p: Profile, fn: Any, items: Sequence[Any],
                            single: bool) -> tuple[list, list | None]:
        """``_probe_here``, the whole map counted meanwhile in the exploration budget (its
        calls are counted as they go, after the probes; a process probe must fit the
        map's time, not that of its first call)."""
        with self._lock:
            p.coming += len(items)
        try:
            return self._probe_here(p, fn, items, single)
        finally:
            with self._lock:
                p.coming -= len(items)

    def _probe_here(self, p: Profile, fn: Any, items: Sequence[Any],
                    single: bool) -> tuple[list, list | None]:
        """Solo probes of a map run in its calling thread, which waits for the results
        anyway (on another thread, the rest of the map would wait for them all the same):
        then a decision they settle (tiny, or computing on every core: inline) lets the
        caller run the rest itself, with no hand-over. Their futures, done; and the
        futures of the rest of the map if a watcher sent them to threads meanwhile."""
        done: list = []
        while len(done) < len(items) - 1:
            with self._lock:
                if (not p.exploring or p.probes_out or p.coroutine or p.backlog
                        or not p.solo_wanted()):
                    return done, None
                if self._next_probe_locked(p) != "probe:solo":  # decided at once
                    return done, None
                p.calls += 1
            args = args_at(items, len(done), single)
            future = LaneFuture()
            future.set_running_or_notify_cancel()
            done.append(future)
            # Watched for the GIL-wait probes; the first call also because it may wait
            # for long (the watcher then sends the rest of the map to threads).
            watched, gil = CallerProbe(), GilSamples()
            take_over = (None if done[:-1] else
                         functools.partial(self._take_over, p, watched, fn, items, single))
            watched.ticket = watch_probe(gil, take_over)
            try:
                result, wall, cpu, start, stolen, crowded = timed_probe(
                    fn, args, {}, gil, p.others_exactly())
            except BaseException as exc:
                gil.ended = True
                rest = self._probe_ended(watched)
                self._settle_probe_missing(p)
                if not isinstance(exc, Exception):
                    raise  # a Ctrl-C in the caller's own thread is the caller's
                future.set_exception(exc)
                if rest is not None:
                    return done, rest
                continue
            gil.ended = True
            rest = self._probe_ended(watched)
            self._settle(p, "inline", future, result, wall, cpu, start, None, "solo", stolen,
                         crowded, gil.counts())
            if rest is not None:
                return done, rest
        return done, None

    def _drain_while_probing(self, p: Profile) -> None:
        """The warm-up probe went out: unless someone runs the backlog meanwhile (a blocking
        map's caller does), a thread does, as the best guess until the decision comes.
        One-time costs (a worker importing a slow module) make a probe long; the calls
        waiting for it should not wait idle."""
        with self._lock:
            if p.draining or not (p.backlog or p.bulk):
                return
            p.draining = True
        try:
            self._router.lane("thread", internal=True).submit(self._run_while_probing, (p,), {})
        except BaseException:  # the lane is shut down: the decision releases the backlog
            with self._lock:
                p.draining = False

    def _run_while_probing(self, p: Profile) -> None:
        """Runs the calls waiting for ``p``'s decision here, a slice of about
        CALLER_SLICE_S at a time, while the warm-up probe is out (the others want the cores
        to themselves, and a process probe's round trip must not wait for this thread to
        let go of the GIL); the decision releases what is left."""
        try:
            while True:
                with self._lock:
                    if not (p.exploring and p.warming) or self._closed:
                        return
                    call = p.backlog.popleft() if p.backlog else None
                    segment = self._slice_locked(p) if call is None else None
                    if call is None and segment is None:
                        return
                if call is not None:
                    self._send(p, "inline", *call)
                elif segment is not None:
                    self._run_segment(p, segment)
        finally:
            with self._lock:
                p.draining = False

    def _slice_locked(self, p: Profile) -> Segment | None:
        """About CALLER_SLICE_S of calls from the profile's first waiting segment (cut from
        it, or all of it), or None."""
        while p.bulk:
            segment = p.bulk[0]
            if segment.piece.done():
                p.bulk.popleft()  # cancelled
                continue
            per_call = p.solo[0] if p.solo is not None else CALLER_SLICE_S
            size = max(1, int(CALLER_SLICE_S / max(per_call, 1e-9)))
            if len(segment) > size:
                return segment.cut(size)
            return p.bulk.popleft().seal()
        return None

    def _probe_ended(self, watched: CallerProbe) -> list | None:
        """The caller's probe is over: the futures the watcher made, if it did."""
        if watched.ticket:
            wait_watch().unwatch(watched.ticket)  # if it is taking over, once it is done
        with self._lock:
            watched.closed = True
            return watched.rest

    def _take_over(self, p: Profile, watched: CallerProbe, fn: Any, items: Sequence[Any],
                   single: bool) -> None:
        """On the watcher's thread, the caller's first probe having waited EARLY_S: decide
        "thread" now and send the rest of its map there (``_confirm_early_locked``)."""
        with self._lock:
            if (watched.closed or not (p.exploring and p.solo is None and p.probes_out == 1)
                    or self._closed):
                return
            p.early = True  # stored once its call confirms it
            self._decide_locked(p, "thread", "waiting (seen while its first call ran)",
                                EARLY_S)
            queued = self._release_locked(p, "thread")  # other callers' calls, if any
            p.calls += len(items) - 1
            self._widen_locked(p, len(items) - 1)
        self._send_all(p, queued)
        # Taken over: the caller, once its probe ends, returns these. It cannot miss
        # them: its unwatch() waits for this callback to end. Sent as decided calls go,
        # most with no timing (timing every call of a large map costs it several ms).
        rest = self._submit_each(p, "thread", fn, calls_of(items, 1, len(items), single))
        with self._lock:
            watched.rest = rest

    def _confirm_early_locked(self, p: Profile, wall: float, cpu: float) -> None:
        """The early-judged call ended: one that mostly waited confirms the thread lane;
        one that computed after all is explored again (what went to threads stays)."""
        p.early = False
        if cpu < WAITING * wall:
            p.verdict, p.basis, p.recent = "mostly waiting", wall, wall
            p.basis_cpu = p.recent_cpu = cpu
            self._remember_locked(p)
            # Taken over after EARLY_S, its threads were counted for calls that short.
            self._widen_to_queue_locked(p)
            return
        p.exploring, p.lane, p.verdict = True, None, "exploring: its first call computed"

    def _map_decided(self, p: Profile, lane: str, fn: Any, items: Sequence[Any], start: int,
                     single: bool, chunksize: int | None = None) -> list:
        """Segments for ``items[start:]`` of a decided map: process chunks; or inline, here
        and now, as one segment, or as ``_run_decided_inline`` runs them if they have work
        enough for every core."""
        n = len(items)
        head: list = []
        if (lane == "inline" and p.basis < TINY_S and p.basis_calls < MEASURED_CALLS
                and self._worth_chunks(p, n - start, loaded=False)):
            # A tiny call's time alone says little (see MEASURED_RUN_S): time a run first,
            # or a map the caller runs in a millisecond goes to processes for two. A run
            # that took under MEASURED_RUN_S can be mostly one interruption (a page fault,
            # a preemption: 32 calls of 0.5 µs read 2.5 µs each so): while it still points
            # to chunks, the next run is twice as long, and its figure counts.
            count = max(MEASURED_CALLS, int(MEASURED_RUN_S / max(p.basis, 1e-9)))
            while True:
                stop = min(n, start + count)
                segment = Segment(LaneFuture(), fn, items, start, stop, single)
                self._run_segment(p, segment, rebase=True)
                head.append(segment.piece)
                start = stop
                if (start >= n or p.basis * count >= MEASURED_RUN_S
                        or not self._worth_chunks(p, n - start, loaded=False)):
                    break
                count *= 2
            if start >= n:
                return head
        if lane == "process":
            pool = self._router.lane("process", internal=True)
            ranges = (bounds(start, n, self._cores * SEGMENTS_PER_CORE) if chunksize is None
                      else [(a, min(a + chunksize, n)) for a in range(start, n, chunksize)])
            return head + [pool.submit_chunk(fn, items, a, b, single) for a, b in ranges]
        if self._worth_chunks(p, n - start, loaded=False):
            segments = deque(Segment(LaneFuture(), fn, items, a, b, single, chunksize)
                             for a, b in bounds(start, n, self._cores * SEGMENTS_PER_CORE))
            pieces = [segment.piece for segment in segments]
            self._run_decided_inline(p, segments)
            return head + pieces
        segment = Segment(LaneFuture(), fn, items, start, n, single)
        self._run_segment(p, segment)
        return head + [segment.piece]

    def _run_decided_inline(self, p: Profile, left: deque[Segment]) -> None:
        """Runs segments of calls decided inline here, one after another, unless they
        would gain in process chunks: then this thread runs them a slice of
        CALLER_SLICE_S at a time only until the workers have loaded the function
        (``_warm_decided``), and the rest goes to chunks. Loading it may take longer than
        the whole map (a module that builds a table at import): 20,000 calls of 1 µs
        took 0.5 s in chunks sent before, against 14 ms in a loop."""
        if left and not p.warmed and self._worth_chunks(p, _calls_in(left), loaded=False):
            self._warm_decided(p, left[0].fn)
            size = max(1, int(CALLER_SLICE_S / max(p.basis, 1e-9)))
            while left and not p.warmed:
                self._run_segment(p, left[0].cut(size) if len(left[0]) > size
                                  else left.popleft().seal())
        if left and self._worth_chunks(p, _calls_in(left)):
            self._send_segments(p, "process", [segment.seal() for segment in left])
            return
        for segment in left:
            self._run_segment(p, segment.seal())

    def _send_segments(self, p: Profile, lane: str, segments: list[Segment]) -> None:
        """Released segments to processes (one chunk each) or to a thread or loop lane
        (inline ones run in ``_run_batch``)."""
        for segment in segments:
            piece = segment.piece
            if lane == "process":
                if not piece.set_running_or_notify_cancel():
                    continue
                size = segment.chunksize or len(segment)  # the caller's chunk size, if any
                submit_chunk = self._router.lane("process", internal=True).submit_chunk
                fn, items, stop, single = segment.fn, segment.items, segment.stop, segment.single
                try:
                    chunks = [submit_chunk(fn, items, a, min(a + size, stop), single)
                              for a in range(segment.start, stop, size)]
                except BaseException as exc:  # the lane is shut down
                    settle_quietly(piece, error=exc)
                    continue
                if len(chunks) == 1:
                    chunks[0].add_done_callback(functools.partial(copy_outcome, piece))
                else:
                    gather(chunks, piece, concatenate=True)
            else:  # a thread or a loop: each call on its own, the piece gathers them
                gather(self._submit_each(p, lane, segment.fn, segment.calls()), piece)

    def _submit_each(self, p: Profile, lane: str, fn: Any, calls: Any) -> list:
        """Futures for ``calls`` sent one by one to a thread or loop lane, as decided calls
        go: one in SAMPLE is timed. If the lane is shut down, the calls left fail."""
        futures: list = []
        calls = iter(calls)
        submit = self._router.lane(lane, internal=True).submit
        empty: dict[str, Any] = {}
        try:
            for args in calls:
                if len(futures) % SAMPLE:
                    futures.append(submit(fn, args, empty))
                else:
                    futures.append(LaneFuture())
                    self._send(p, lane, futures[-1], fn, args, empty)
        except BaseException as exc:  # the lane is shut down
            futures.append(failed(exc))
            futures.extend(failed(exc) for _ in calls)
        return futures

    def _run_segment(self, p: Profile, segment: Segment, rebase: bool = False) -> None:
        """Runs a segment inline, in this thread, and times it (with ``rebase``, the
        decision's time per call is then its own)."""
        if not segment.piece.set_running_or_notify_cancel():
            return
        rusage = thread_rusage if rebase else None
        before = rusage() if rusage is not None else None
        try:
            results, wall, cpu = segment.run()
        except Exception as exc:
            segment.piece.set_exception(exc)
            return
        segment.piece.set_result(results)
        # A run that lost its core (to another process) did work for its CPU time only:
        # timed by its wall time, a map of tiny calls on a busy machine looks worth
        # sending to processes.
        work = wall
        if (rusage is not None and before is not None
                and lost_its_core(rusage().ru_nvcsw - before.ru_nvcsw, wall, cpu)):
            work = cpu
        with self._lock:
            p.record("inline", wall, cpu, len(segment))
            if p.warming:
                p.ran_alone(work, cpu, len(segment))
            if rebase and not p.exploring:
                p.rebase(work, cpu, len(segment))
                self._remember_locked(p)
            p.drifted()

    def _run_batch(self, p: Profile, calls: list, segments: list[Segment]) -> None:
        """Runs a backlog decided inline, one call after another, on one thread (its
        segments as ``_run_decided_inline`` does)."""
        for call in calls:
            self._send(p, "inline", *call)
        self._run_decided_inline(p, deque(segments))

    def _send_chunks(self, calls: list) -> None:
        """Small calls of one function, a backlog too big for one core: sent to the
        process lane in about four chunks per core, each run in a worker one call after
        another; the results come back together and settle their own futures."""
        size = max(1, -(-len(calls) // (self._cores * 4)))
        for start in range(0, len(calls), size):
            chunk = calls[start:start + size]
            futures = [call[0] for call in chunk if call[0].set_running_or_notify_cancel()]
            if len(futures) != len(chunk):  # some were cancelled meanwhile: keep the rest
                chunk = [c for c in chunk if c[0].running()]
            if not chunk:
                continue
            fn = chunk[0][1]
            work = [(args, kwargs) for _, _, args, kwargs, _ in chunk]
            try:
                inner = self._router.lane("process", internal=True).submit(
                    run_chunk, (fn, work), {})
            except BaseException as exc:
                for future in futures:
                    settle_quietly(future, error=exc)
                continue
            inner.add_done_callback(functools.partial(settle_chunk, futures))


def _calls_in(segments: Any) -> int:
    return sum(len(segment) for segment in segments)
