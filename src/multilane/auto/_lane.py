"""The auto lane: measure each function, route its calls to the fastest lane, explain why.

A policy over the other lanes, not a pool. Calls are grouped into **profiles**: one per
function (module, qualified name and code object) and argument size (one bucket below
64 KiB, then one per 16x of the bytes its arguments hold), so a function that is cheap
on small inputs and costly on large ones is judged for each.

A profile starts by **exploring** with a few real calls while the calls behind them wait
in its backlog (a ``map`` submits everything at once; sending it all somewhere before
knowing would be a guess). After each probe the cost model (``_verdict.choose``: an
estimate of a call's time per lane, from the profile's figures and the machine's) either
decides or names the next probe, which is taken only while its lane's best case could
win, and a process probe only within an exploration budget. In the usual order:

1. a call alone on a thread, twice (the faster counts; once if it clearly waits, or
   clearly computes holding the GIL, see below): wall and CPU time. Tiny (< 30 µs) ->
   inline: shipping it anywhere costs more. Waiting much of the time -> thread, where
   calls at once overlap their waits and hold the GIL only for their CPU time, unless
   a process could be faster still. A blocking map runs these in its caller, and a
   watcher sends the rest of the map to threads as soon as the first is seen waiting.
2. two calls at once on two threads (the GIL probe: parallel efficiency): holding the
   GIL, two threads can never use more than one core between them, however idle the
   machine. If they used 1.1 cores or more, the function releases the GIL (hashlib,
   zlib, NumPy) -> thread, provided two at once also finished 1.2x sooner than two in a
   row would (NumPy's multithreaded BLAS releases the GIL but already uses every core).
   Calls submitted one at a time never overlap, and a call that alone kept every core
   busy (its own native threads) cannot gain: then this step is skipped.
   Step 1 also has the native watcher ask for the GIL while a solo probe computes, and
   time the wait (``GilSamples``): about one switch interval if the call holds it, a few
   µs if it let go. Found held, this step is skipped (two threads would share a core);
   found released, threads win if a pair used more than 1.1 cores and was no slower
   than two in a row.
3. the warm-up: the workers load the function (one timed: its one-time set-up, never
   counted as transport), while the calls waiting for the decision run here or on a
   thread. No process probe at all if shipping a call's bytes costs more than the call.
4. one call in a process (two if the worker took 1.5x the time here: the faster counts):
   the round trip minus the work is the transport cost for calls of this size, and the
   part spent sending is serial. Process if the work outweighs it on this machine's
   cores, else inline. A call that alone kept every core busy needs no such probe: no
   lane has a core to add, so it runs inline.

Waiting work on threads runs as many calls at once as pays (``waiting_concurrency``), and
is spread over the workers, many at once in each, where this process's GIL would hold
the threads back (``_spread``). A decision is stored for the next run (``_store``).

Coroutine functions always go to the async lane. On a free-threaded CPython CPU work goes
to threads. Once decided, the backlog is released (an inline decision runs it as one
batch on a thread, so the caller is not blocked), later calls go straight to the lane,
and every call keeps being measured: if a profile's work per call drifts by more than 4x
from what the decision was based on, it explores again while calls keep flowing.
"""

from __future__ import annotations

import functools
import math
import sys
import threading
import time
from collections import deque
from concurrent.futures import Future, wait
from dataclasses import dataclass
from typing import Any

from .._calls import call_retrying, describe, is_coroutine_function
from .._future import LaneFuture, settle_quietly
from .._options import TaskOptions
from ..buffers._serialize import dumps_function
from ..errors import SerializationError, TaskTimeout
from ..lanes import Lanes
from ._explain import Explanation, evidence, report
from ._exploring import Exploring, rewound
from ._fingerprints import function_fingerprint
from ._machine import Machine, remember, remembered
from ._maps import MapRouting
from ._params import (
    CHUNKS_MIN_S,
    MAX_THREADS,
    PAIRS,
    SAMPLE,
    SLOWER_TOGETHER,
    SOLO_PATIENCE_S,
    WAIT_SLOWED,
)
from ._probes import (
    end_wait_watch_if_idle,
    timed_call,
    timed_coroutine,
    timed_pair_probe,
    timed_probe,
    watched_probe,
)
from ._profile import (
    Profile,
    arguments_size,
    bucket_of,
    cores_used,
    function_key,
    overlapped,
    pickling_time,
    size_of,
    span,
)
from ._remote import loaded_probe
from ._spread import Spreading, run_into
from ._store import ProfileStore
from ._verdict import Decision, choose, chunks_pay, estimates, shipping, waiting_concurrency

__all__ = ["AutoLane", "AutoStatistics"]


@dataclass(frozen=True)
class AutoStatistics:
    """A snapshot of the auto lane, from ``statistics()``."""

    profiles: int  # (function, argument size) pairs seen
    exploring: int  # of those, still measuring
    decided: dict[str, int]  # lane -> profiles sent there


class AutoLane(MapRouting, Spreading, Exploring):
    """Routes calls to the other lanes of a registry (which run them).

    It is a lane itself (the protocol's submit, map, shutdown...), and reaches the others
    only through ``router``: ``router.lane(name, internal=True)`` starts one on first use,
    even while the executor shuts down (calls it accepted before still go somewhere).
    """

    def __init__(self, router: Lanes, process_count: int, store: ProfileStore | None = None,
                 owns_store: bool = False, join_cluster: bool = False) -> None:
        self._router = router
        # Where what it learns lasts: flushed at shutdown, and closed if it is this lane's
        # own (a process-wide store stays open for the next executor).
        self._store = store or ProfileStore.disabled()
        self._owns_store = owns_store
        self._cores = max(1, process_count)
        self._lock = threading.Lock()
        self._profiles: dict[tuple, Profile] = {}
        self._machine = Machine(self._cores, not getattr(sys, "_is_gil_enabled", lambda: True)())
        self._machine_read = False  # the store's calibration of this machine, if any
        self._closed = False
        if join_cluster:
            # Connecting takes a while: until it is done the cluster is not weighed.
            threading.Thread(target=self._join_cluster, name="multilane-join-cluster",
                             daemon=True).start()

    def _join_cluster(self) -> None:
        """Starts the cluster lane, then weighs the cluster with the calls it runs at once
        (``Machine.cluster_slots``; read once: a cluster that grows later is not seen).
        A cluster that cannot be reached is not weighed: a call that names its lane says
        why."""
        try:
            slots = self._router.lane("cluster").at_once  # type: ignore[attr-defined]
        except Exception:  # the executor shut down first, or no cluster answered
            return
        with self._lock:
            self._machine = self._machine._replace(cluster_slots=slots)

    # ---------------------------------------------------------------- submitting

    def submit(self, fn: Any, args: tuple, kwargs: dict,
               options: TaskOptions | None = None) -> Future:
        p = self._profile(fn, args, kwargs)
        lane = p.lane
        counted = False
        if lane is not None and not p.exploring:
            # Decided: most calls go straight to the lane; one in SAMPLE is timed, which
            # is enough to notice a drift and costs nothing on the others.
            p.calls += 1  # a count for reports: a lost increment between threads is fine
            counted = True
            if p.calls % SAMPLE:
                if options is not None:
                    lane = _able(lane, options)
                return self._router.lane(lane, internal=True).submit(fn, args, kwargs, options)
        future = LaneFuture()
        probing = drain = joining = False
        with self._lock:
            if not counted:
                p.calls += 1
            if p.exploring and not p.probes_out:
                lane = self._next_probe_locked(p)
            elif p.warming and p.guess is not None and options is None:
                # The warm-up probe can take long (a worker importing a slow module): the
                # call goes where the model would send it now, in this thread if inline
                # (as a decided call would), not to a backlog a thread runs by turns with
                # this one (4,600 NumPy sums of 20 µs took 90 µs each that way).
                lane = p.guess
            elif p.pair_open and options is None:
                # The second call of the pair out now (``_take_pair_locked``).
                p.pair_open = False
                p.probes_out += 1
                lane, joining = "probe:pair", True
            elif p.lane is None:
                p.backlog.append((future, fn, args, kwargs, options))  # waits for a decision
                # While the workers load the function, the backlog runs on a thread; one
                # that emptied it has stopped (submits came slower than it ran them).
                drain = p.warming and not p.draining
            else:
                lane = p.lane  # exploring again, its calls flow to the lane meanwhile
                probing = p.exploring
            call = self._take_pair_locked(p, lane) if lane is not None and not joining else None
        if lane is not None:
            self._send(p, lane, future, fn, args, kwargs, options)
            if call is not None:
                self._send(p, lane, *call)
        elif drain:
            self._drain_while_probing(p)
        if lane == "probe:solo":
            # Its call is timed alone on a thread. Going on to submit, this thread would
            # hold the GIL that call needs back after each system call, and the probe would
            # read the wait as the call's own: 800 file round trips of 22 µs read 260 µs,
            # mostly waiting, and went to threads at 80 µs each. A short call is timed
            # clean meanwhile; a long one, only this long late.
            wait([future], SOLO_PATIENCE_S)
        elif lane is None or probing:
            # A probe is out on a thread while this one submits, holding the GIL: a probe
            # call that lets go of it (NumPy, zlib, a read) waits a switch interval (5 ms)
            # to take it back, and reads that as waiting (a 34 µs NumPy sum read 5 ms and
            # went to threads). Letting go of it here, the probe takes it back at once.
            time.sleep(0)
        return future

    def _profile(self, fn: Any, args: tuple, kwargs: dict, fkey: tuple | None = None) -> Profile:
        key = (fkey or function_key(fn), bucket_of(args, kwargs))
        profile = self._profiles.get(key)
        if profile is None:
            with self._lock:
                profile = self._profiles.get(key)
                if profile is None:
                    profile = self._profiles[key] = self._new_profile(fn, key[1], args, kwargs)
        return profile

    def _new_profile(self, fn: Any, bucket: int, args: tuple, kwargs: dict) -> Profile:
        """A profile, decided already if an earlier run stored what it learned of ``fn``."""
        p = Profile(describe(fn), bucket, is_coroutine_function(fn))
        p.arg_bytes = arguments_size(args, kwargs)
        self._read_machine_locked()
        if self._store.enabled and not p.coroutine:
            p.fingerprint = function_fingerprint(fn)
            record = None if p.fingerprint is None else self._store.load(p.fingerprint, bucket)
            if record is not None and p.restore(record, self._lanes_to_route()):
                p.verdict += " (learned in an earlier run)"
                if p.lane == "thread" and p.concurrency > 1:  # as many at once as last time
                    p.concurrency = self._router.lane("thread", internal=True).widen(
                        p.concurrency)
                return p
        if not p.coroutine:
            p.args_pickle_s = pickling_time(*args, *kwargs.values())
        return p

    def _lanes_to_route(self) -> tuple[str, ...]:
        kinds = self._router.kinds
        return tuple(name for name, kind in kinds.items() if not kind.routes)

    def _remember_locked(self, p: Profile) -> None:
        """Stores what was decided for ``p``, for the next run (a decision taken early, on
        a call still waiting, is stored once that call confirms it)."""
        # Not a cluster's: the next run may join another, or none.
        if (p.fingerprint is not None and not p.early and p.lane is not None
                and p.lane != "cluster"):
            self._store.save(p.fingerprint, p.bucket, p.to_record())

    # ---------------------------------------------------------------- running

    def _send(self, p: Profile, lane: str, future: LaneFuture, fn: Any, args: tuple,
              kwargs: dict, options: TaskOptions | None = None) -> None:
        probe = lane[6:] if lane.startswith("probe:") else None
        if probe == "warm":
            self._warm(p, (future, fn, args, kwargs, options))
            return
        if probe is not None:
            lane = probe if probe in ("process", "cluster") else "thread"
            if probe == "process" and not self._router.ready("process"):
                probe = "cold"  # this round trip includes starting the workers: not a measure
        if options is not None:
            lane = _able(lane, options)
            options = options._replace(label=describe(fn))  # not the timing wrapper's name
        if lane == "inline":
            if future.set_running_or_notify_cancel():
                try:
                    result, wall, cpu, start = (
                        timed_call(fn, args, kwargs) if options is None else
                        call_retrying(timed_call, (fn, args, kwargs), {}, options, Exception))
                except Exception as exc:
                    future.set_exception(exc)
                    return
                self._settle(p, lane, future, result, wall, cpu, start, None, probe)
            return
        timed: Any = (timed_coroutine if lane == "async" else watched_probe if probe == "solo"
                      else timed_probe if probe is not None else timed_call)
        timed_args: tuple = (fn, args, kwargs)
        if probe == "solo":
            # The first one, if seen waiting, sends the calls behind it to threads at once.
            take_over = (functools.partial(self._take_over_backlog, p) if p.solo is None
                         else None)
            timed_args += (p.others_exactly(), take_over)
        elif probe == "pair":
            timed, timed_args = timed_pair_probe, (p.pair_gate, fn, args, kwargs)
        elif probe in ("process", "cold", "cluster"):
            try:  # pickled here, so the worker times loading it apart (``loaded_probe``)
                timed, timed_args = loaded_probe, (dumps_function(fn), args, kwargs)
            except SerializationError as exc:
                self._unpicklable(p, (future, fn, args, kwargs, options), exc)
                return
        if not future.set_running_or_notify_cancel():
            if probe is not None:
                self._settle_probe_missing(p)
            return
        sent, sent_at = time.perf_counter(), time.monotonic()
        try:
            inner = self._router.lane(lane, internal=True).submit(timed, timed_args, {}, options)
        except BaseException as exc:  # the lane is shut down
            if self._closed and isinstance(exc, RuntimeError):
                # Accepted before the executor shut down, and sent after that lane
                # stopped (a watcher's take-over racing the shutdown): it runs here.
                run_into(future, fn, args, kwargs)
                if probe is not None:
                    self._settle_probe_missing(p)
            else:
                settle_quietly(future, error=exc)
            return
        sending = time.perf_counter() - sent  # pickling the call, here, before it goes
        refused = inner.exception() if probe in ("process", "cold") and inner.done() else None
        if isinstance(refused, SerializationError):
            # Its arguments cannot be pickled: it never ran, so it runs here instead.
            future = rewound(future)
            self._unpicklable(p, (future, fn, args, kwargs, options), refused)
            return

        def done(inner_future: Any) -> None:
            if inner_future.cancelled():
                # The lane dropped it unrun (a shutdown that cancels what is queued): so
                # is the call here, though its future was marked running when it went.
                future.cancel_running()
                if probe is not None:
                    self._settle_probe_missing(p)
                return
            error = inner_future.exception()
            if error is not None:
                settle_quietly(future, error=error)
                if (probe is not None and isinstance(error, TaskTimeout) and lane == "thread"
                        and options is not None and options.timeout is not None):
                    self._outlived(p, options.timeout)
                elif probe is not None:
                    self._settle_probe_missing(p)  # a failed call teaches nothing
                return
            gil = None
            setup = 0.0
            if probe is None:
                (result, wall, cpu, start), stolen, crowded = inner_future.result(), False, False
            elif probe == "solo":
                result, wall, cpu, start, stolen, crowded, gil = inner_future.result()
            elif probe in ("process", "cold", "cluster"):
                result, wall, cpu, start, stolen, crowded, setup = inner_future.result()
            else:
                result, wall, cpu, start, stolen, crowded = inner_future.result()
            round_trip = time.perf_counter() - sent - setup
            if probe == "process" and 0 <= start - sent_at - setup < round_trip:
                # The reply is seen here when this process's GIL lets the collector in: a
                # caller still submitting, or a thread running the backlog, made a 30 µs
                # round trip read 15 ms. The way out is timed by the worker's clock
                # (CLOCK_MONOTONIC, one for every process), and the way back is taken to
                # cost no more than it.
                round_trip = min(round_trip, wall + 2 * (start - sent_at - setup))
            self._settle(p, lane, future, result, wall, cpu, start, (round_trip, sending),
                         probe, stolen, crowded, gil, setup)

        inner.add_done_callback(done)

    def _settle(self, p: Profile, lane: str, future: LaneFuture, result: Any, wall: float,
                cpu: float, start: float, trip: tuple[float, float] | None, probe: str | None,
                stolen: bool = False, crowded: bool = False,
                gil: tuple[int, int, float] | None = None, setup: float = 0.0) -> None:
        """Records a call that ran (``trip``: its round trip less any one-time set-up, and
        the time spent sending it, for a call to another lane; ``stolen`` and ``crowded``:
        see ``timed_probe``; ``gil``: a solo probe's GIL-wait probes, see ``GilSamples``;
        ``setup``: the seconds a worker took to load the function, see ``loaded_probe``)
        and settles its future."""
        settle_quietly(future, result)
        release: list = []
        if stolen and probe != "pair":
            wall = cpu  # the work, as it would run on a core of its own
        shipped = size_of(result) if probe is not None else 0
        pickled = (pickling_time(result) if probe == "solo" and p.result_pickle_s is None
                   else None)
        with self._lock:
            if pickled is not None:
                p.result_pickle_s = pickled
            p.record(lane, wall, cpu)
            p.result_bytes = max(p.result_bytes, shipped)
            if probe == "solo":
                p.solo_runs += 1
                if p.solo is None or wall < p.solo[0]:
                    p.solo = (wall, cpu)
                p.solo_crowded |= crowded  # its own threads' doing: whichever solo saw it
                if gil is not None:
                    p.gil_held += gil[0]
                    p.gil_released += gil[1]
                    p.gil_longest = max(p.gil_longest, gil[2])
                if p.early:
                    self._confirm_early_locked(p, wall, cpu)
            elif probe == "pair":
                p.pair.append((wall, cpu, start))
                p.pair_stolen |= stolen
                if (len(p.pair) == 2 and p.pair_gate is not None
                        and p.pair_gate.contended(span(p.pair))):
                    p.pair_stolen = True
                    p.pairs_contended += 1
                if overlapped(p.pair):
                    # A call that lost its core to another process makes a function that
                    # releases the GIL look held, never the reverse: such a pair is only
                    # evidence of release.
                    p.pairs_judged += not p.pair_stolen
                    p.parallel_seen = max(p.parallel_seen, cores_used(p.pair))
                    if p.solo is not None:
                        speedup = 2 * p.solo[0] / span(p.pair)
                        p.speedup_seen = max(p.speedup_seen, speedup)
                        if speedup < SLOWER_TOGETHER and not p.pair_stolen:
                            # Threads lose, whatever the reason; unless the machine took
                            # a core from the pair (then another pair tells).
                            p.pairs_judged = PAIRS
            elif probe in ("process", "cold"):
                p.saw_process(trip if probe == "process" else None, wall, setup)
                if probe == "process" and p.transport_seen is not None:
                    self._machine = self._machine.saw_trip(p.transport_seen)
            elif probe == "cluster" and trip is not None:
                # Its worker's time for the call, and the rest of the round trip (the
                # function's load there apart): the cluster's, for every function.
                if p.cluster_work is None or wall < p.cluster_work:
                    p.cluster_work = wall
                self._machine = self._machine.saw_cluster_trip(max(0.0, trip[0] - wall))
            if probe is not None:
                p.probes_out -= 1
                if not p.probes_out:
                    if probe == "pair" and p.pair_open:  # no second call came to join it
                        p.pair_open, p.no_pair = False, True
                    release = self._after_probes_locked(p)
            elif p.warming and lane == "inline":
                p.ran_alone(wall, cpu)
            elif not p.drifted() and lane == "thread" and p.lane == "thread":
                self._widen_to_queue_locked(p)  # a sampled call: calls may be waiting
        self._send_all(p, release)

    def _send_all(self, p: Profile, calls: list) -> None:
        """Sends what a decision released: per-call entries (lane, future, fn, args,
        kwargs), and ("batch" | "chunks" | "segments", calls or lane, segments)."""
        for lane, *call in calls:
            if lane == "batch":  # one batch on a thread: the caller is not blocked
                self._router.lane("thread", internal=True).submit(
                    self._run_batch, (p, *call), {})
            elif lane == "chunks":  # many small calls: in chunks, on every core
                self._send_chunks(call[0])
                self._send_segments(p, "process", call[1])
            elif lane == "segments":
                self._send_segments(p, *call)
            elif lane == "spread":  # waiting calls the GIL would hold back: over the workers
                self._send_spread(p, *call)
            else:
                self._send(p, lane, *call)

    # ---------------------------------------------------------------- deciding

    def _worth_chunks(self, p: Profile, calls: int, loaded: bool = True) -> bool:
        """Whether ``calls`` calls decided inline go to processes in chunks: with work
        enough for more than one core, and small arguments (a chunk shares the fixed
        cost of a round trip between its calls, not the cost of copying their bytes);
        unless ``loaded`` is False, only once the workers have loaded the function (see
        ``_warm_decided``)."""
        return (self._cores > 1 and calls * p.basis >= CHUNKS_MIN_S and p.unpicklable is None
                and (p.warmed or not loaded)
                and chunks_pay(p.basis, shipping(p, self._machine), self._cores))

    def _release_locked(self, p: Profile, lane: str) -> list:
        """Empties the backlog and the bulk: what to send to ``lane`` (see _send_all)."""
        calls, p.backlog = list(p.backlog), deque()
        segments, p.bulk = [segment.seal() for segment in p.bulk], deque()
        if lane == "inline":
            # A call with options is run as they say (a timeout: in a process, which can
            # stop it), never inside a chunk, which would run it without them.
            timed = [("process", *call) for call in calls
                     if call[4] is not None and call[4].timeout is not None]
            if timed:
                calls = [call for call in calls if call[4] is None or call[4].timeout is None]
            n = len(calls) + sum(len(segment) for segment in segments)
            if self._worth_chunks(p, n) and all(call[4] is None for call in calls):
                return timed + [("chunks", calls, segments)]
            return timed + ([("batch", calls, segments)] if n else [])
        if lane == "thread":
            n = len(calls) + sum(len(segment) for segment in segments)
            self._widen_locked(p, n + p.probes_out)  # (a probe out still holds a thread)
            if self._spread_pays_locked(p, n):
                with_options = [("thread", *call) for call in calls if call[4] is not None]
                plain = [call for call in calls if call[4] is None]
                return with_options + [("spread", plain, segments)]
        return [(lane, *call) for call in calls] + (
            [("segments", lane, segments)] if segments else [])

    def _widen_to_queue_locked(self, p: Profile) -> None:
        """More of ``p``'s calls at once if calls are waiting for a thread."""
        queued = self._router.lane("thread", internal=True).queued()
        if queued:
            self._widen_locked(p, queued + max(p.concurrency, 1))

    def _widen_locked(self, p: Profile, calls: int) -> None:
        """Lets ``calls`` calls decided "thread" run at once as far as it pays
        (``waiting_concurrency``), unless its sampled calls already take WAIT_SLOWED times
        their time alone: then they slow each other, and more at once gains nothing."""
        if calls <= 1 or (p.basis and p.recent > WAIT_SLOWED * p.basis):
            return
        # Taken over while its first call still waits, its wait is only known to be longer
        # than EARLY_S: too few threads cost a whole round of that wait, too many
        # THREAD_START_S each, so every waiting call gets one (the end of that first call
        # tells the true wait, for the calls after).
        wall = math.inf if p.early else p.basis
        wanted = waiting_concurrency(wall, p.basis_cpu, calls, 1, MAX_THREADS, self._machine)
        allowed = self._router.lane("thread", internal=True).widen(wanted)
        before, p.concurrency = p.concurrency, max(p.concurrency, min(wanted, allowed))
        if p.concurrency > before and not p.exploring:
            # Stored with it: the next run's decided calls go straight to the threads, with
            # no backlog to size them by (stored at the decision, before this, the next run
            # started with the lane's default threads: 662 waits took twice as long).
            self._remember_locked(p)

    def _choose_locked(self, p: Profile) -> Decision | str:
        """The model's choice for ``p`` (``choose``), on this machine's parameters: a
        decision, or the probe to run first."""
        return choose(p, self._machine, p.calls + p.coming, self._router.ready("process"))

    def _read_machine_locked(self) -> None:
        """This machine's parameters as the store's calibration scales them, read once,
        with the first profile (a restored profile, decided already, uses them too: its
        thread concurrency, its chunks)."""
        if not self._machine_read:
            self._machine_read = True
            self._machine = remembered(self._machine, self._store)

    def _verdict_locked(self, p: Profile) -> tuple | None:
        found = self._choose_locked(p)
        return None if isinstance(found, str) else self._decide_locked(p, *found)

    def _decide_locked(self, p: Profile, lane: str, verdict: str, basis: float,
                       revisit: int = 0) -> tuple:
        p.decide(lane, verdict, basis, revisit)
        self._remember_locked(p)
        return (lane, verdict)

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        """The executor is shutting down: calls still waiting for a decision go now, to
        the lane decided or, without one, to a thread (no call is lost or left hanging);
        the executor then waits for those lanes. With ``cancel_futures`` they are
        cancelled instead."""
        remember(self._machine, self._store)  # (a first run on this machine calibrates it)
        with self._lock:
            self._closed = True
            if cancel_futures:
                waiting = []
                cancelled = [self._drop_locked(p) for p in self._profiles.values()]
            else:
                waiting = [(p, self._release_locked(p, p.lane or "thread"))
                           for p in self._profiles.values() if p.backlog or p.bulk]
                cancelled = []
        for futures in cancelled:
            for future in futures:
                if future.cancel():
                    future.set_running_or_notify_cancel()  # tells wait()/as_completed()
        for p, release in waiting:
            self._send_all(p, release)
        if self._owns_store:
            self._store.close()
        else:
            self._store.flush()
        end_wait_watch_if_idle()

    def terminate(self) -> None:
        """Stops now: calls still waiting for a decision are cancelled."""
        self.shutdown(wait=False, cancel_futures=True)

    def _drop_locked(self, p: Profile) -> list[Future]:
        """Empties the backlog and the bulk: the futures of the calls they held."""
        futures = [call[0] for call in p.backlog] + [segment.piece for segment in p.bulk]
        p.backlog, p.bulk = deque(), deque()
        return futures

    def statistics(self) -> AutoStatistics:
        with self._lock:
            profiles = list(self._profiles.values())
        decided: dict[str, int] = {}
        for p in profiles:
            if p.lane is not None and not p.exploring:
                decided[p.lane] = decided.get(p.lane, 0) + 1
        return AutoStatistics(len(profiles), sum(p.exploring for p in profiles), decided)

    # ---------------------------------------------------------------- reporting

    def explain(self, fn: Any) -> Explanation:
        key = function_key(fn)
        with self._lock:
            found = [p for (k, _), p in self._profiles.items() if k == key]
            return Explanation(describe(fn), tuple(evidence(p, self._estimated_locked(p))
                                                   for p in found), self._machine._asdict())

    def _estimated_locked(self, p: Profile) -> dict[str, float]:
        """The cost model's time per call of ``p`` on each lane it has measured, from a
        run of calls timed together if there was one (see MEASURED_RUN_S), else from a
        call alone."""
        if p.basis_calls > 1:
            alone = (p.basis, p.basis_cpu)
        elif p.solo is not None:
            alone = p.solo
        else:
            return {}
        return {lane: e.seconds for lane, e in estimates(p, self._machine, alone).items()
                if math.isfinite(e.seconds)}

    def forget(self, fn: Any = None) -> None:
        """Drops the profiles of ``fn`` (None: all) that have no call waiting in them."""
        key = None if fn is None else function_key(fn)
        with self._lock:
            for k, p in list(self._profiles.items()):
                if (key is None or k[0] == key) and not (p.backlog or p.bulk or p.probes_out):
                    del self._profiles[k]
                    if p.fingerprint is not None:
                        self._store.forget(p.fingerprint)  # a later run starts afresh too

    def report(self) -> str:
        """Per function: calls, lanes used and time spent (a Markdown table)."""
        with self._lock:
            return report(list(self._profiles.values()))



def _able(lane: str, options: TaskOptions) -> str:
    """The lane that can honour ``options`` in place of ``lane``: only a process can stop
    a call that runs past its timeout, so a timed call decided inline goes there."""
    return "process" if lane == "inline" and options.timeout is not None else lane
