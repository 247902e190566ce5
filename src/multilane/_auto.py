"""The auto lane: measure each function, route its calls to the fastest lane, explain why.

A policy over the other lanes, not a pool. Calls are grouped into **profiles**: one per
function (module, qualified name and code object) and argument size (a bucket per 16x of
the bytes its arguments hold), so a function that is cheap on small inputs and costly on
large ones is judged for each.

A profile starts by **exploring** with a few real calls while the calls behind them wait
in its backlog (a ``map`` submits everything at once; sending it all somewhere before
knowing would be a guess):

1. a call alone on a thread, twice (the faster counts; once if it clearly waits): wall and
   CPU time. Tiny (< 30 µs) -> inline: shipping it anywhere costs more. Mostly waiting
   (CPU < half the wall time) -> thread.
2. two calls at once on two threads (the GIL probe: parallel efficiency): holding the
   GIL, two threads can never use more than one core between them, however idle the
   machine. If they used 1.1 cores or more, the function releases the GIL (hashlib,
   zlib, NumPy) -> thread, provided two at once also finished 1.2x sooner than two in a
   row would (NumPy's multithreaded BLAS releases the GIL but already uses every core).
   Calls submitted one at a time never overlap: then this step is skipped.
3. one call in a process: the round trip minus the work is the transport cost for calls
   of this size. Process if the work outweighs it on this machine's cores, else inline.

Coroutine functions always go to the async lane. On a free-threaded CPython CPU work goes
to threads. Once decided, the backlog is released (an inline decision runs it as one
batch on a thread, so the caller is not blocked), later calls go straight to the lane,
and every call keeps being measured: if a profile's work per call drifts by more than 4x
from what the decision was based on, it explores again while calls keep flowing.
"""

from __future__ import annotations

import functools
import math
import resource
import sys
import threading
import time
from collections import deque
from concurrent.futures import InvalidStateError
from dataclasses import dataclass, field
from typing import Any

from ._future import LaneFuture
from ._serialize import describe, is_coroutine_function

__all__ = ["AutoLane", "Explanation", "timed_call"]

TINY_S = 30e-6  # below this a call runs inline
SOLO_RUNS = 2  # calls timed alone on a thread before judging
SAMPLE = 8  # once decided, one call in this many is timed
PAIRS = 2  # pairs of calls run together before concluding that the GIL is held
THREAD_SPEEDUP = 1.2  # two at once on threads must beat two in a row by this much
CHUNKS_MIN_S = 0.005  # an inline backlog with this much work goes to processes in chunks
WAITING = 0.5  # CPU / wall below this: the call mostly waits
# Two calls at once used at least this many cores between them: the GIL was released (with
# the GIL held they cannot exceed one core, however idle the machine).
PARALLEL_CORES = 1.1
DRIFT = 4.0  # re-explore when the work per call moves this far from the decision's basis
_BUCKET_BITS = 4  # argument-size buckets: a new profile per 16x more bytes
# One exploring call this long that barely used the CPU is waiting: no second look. Shorter
# gaps can be the GIL held by the submitting thread (a switch interval is 5 ms).
CLEARLY_WAITING_S = 0.1
STOLEN = 0.2  # a probe that never blocked yet ran this much less than its wall time
# Context switches of the calling thread (Linux): None where the OS cannot tell.
_thread_rusage = (functools.partial(resource.getrusage, resource.RUSAGE_THREAD)
                  if hasattr(resource, "RUSAGE_THREAD") else None)


def timed_call(fn: Any, args: tuple, kwargs: dict) -> tuple[Any, float, float, float]:
    """(result, wall seconds, CPU seconds of this thread, start): how every auto call runs.
    The start is CLOCK_MONOTONIC, comparable across the threads of a process."""
    start, cpu = time.monotonic(), time.thread_time()
    result = fn(*args, **kwargs)
    return result, time.monotonic() - start, time.thread_time() - cpu, start


def timed_probe(fn: Any, args: tuple, kwargs: dict) -> tuple[Any, float, float, float, bool]:
    """``timed_call`` for an exploring call, plus whether its core was stolen: its wall
    time is well above its CPU time, yet the thread never blocked (no I/O, sleep, lock or
    GIL wait), so another thread or process held the core. On a loaded machine that gap
    says nothing about the function."""
    if _thread_rusage is None:
        return (*timed_call(fn, args, kwargs), False)
    blocked = _thread_rusage().ru_nvcsw
    result, wall, cpu, start = timed_call(fn, args, kwargs)
    stolen = _thread_rusage().ru_nvcsw == blocked and wall - cpu > STOLEN * wall
    return result, wall, cpu, start, stolen


async def timed_coroutine(fn: Any, args: tuple, kwargs: dict) -> tuple[Any, float, float, float]:
    start = time.monotonic()
    result = await fn(*args, **kwargs)
    return result, time.monotonic() - start, 0.0, start


def _size_of(value: Any) -> int:
    nbytes = getattr(value, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes
    if isinstance(value, (bytes, bytearray, str, list, tuple, dict, set)):
        return len(value)
    return 0


def _bucket(args: tuple, kwargs: dict) -> int:
    size = sum(_size_of(a) for a in args)
    if kwargs:
        size += sum(_size_of(v) for v in kwargs.values())
    return size.bit_length() >> _BUCKET_BITS


def _function_key(fn: Any) -> tuple:
    code = getattr(fn, "__code__", None)
    if code is None:
        code = getattr(getattr(fn, "__wrapped__", None), "__code__", None)
    return (getattr(fn, "__module__", None), getattr(fn, "__qualname__", repr(type(fn))),
            id(code) if code is not None else id(type(fn)))


@dataclass
class LaneTime:
    """What calls of one profile cost on one lane."""

    calls: int = 0
    wall: float = 0.0  # seconds, summed (for a process: the worker's own time)
    cpu: float = 0.0

    def add(self, wall: float, cpu: float) -> None:
        self.calls += 1
        self.wall += wall
        self.cpu += cpu

    @property
    def mean_wall(self) -> float:
        return self.wall / self.calls if self.calls else math.nan

    @property
    def mean_cpu(self) -> float:
        return self.cpu / self.calls if self.calls else math.nan


@dataclass
class Profile:
    name: str
    bucket: int
    coroutine: bool
    lanes: dict[str, LaneTime] = field(default_factory=dict)
    solo: tuple[float, float] | None = None  # (wall, cpu) of a call alone on a thread
    solo_runs: int = 0  # two are taken, the faster kept: a first call is often an outlier
    pair: list[tuple[float, float, float]] = field(default_factory=list)  # (wall, cpu, start)
    pair_stolen: bool = False  # a call of the pair lost its core to another thread
    pair_tries: int = 0
    pairs_judged: int = 0  # pairs that really ran together
    parallel_seen: float = 0.0  # the most cores any of them used between its two calls
    # The most throughput two calls at once gave over two in a row: a function that
    # releases the GIL but already uses every core (multithreaded BLAS) gains nothing.
    speedup_seen: float = 0.0
    round_trip: float | None = None  # seconds, submit to result, of one process call
    process_work: float | None = None  # the worker's time for that call
    verdict: str = "exploring"
    lane: str | None = None
    basis: float = 0.0  # work per call the decision was based on
    recent: float = 0.0  # moving mean of work per call since
    exploring: bool = True
    probes_out: int = 0
    no_pair: bool = False  # calls come one at a time: two cannot be run at once
    backlog: deque = field(default_factory=deque)
    calls: int = 0

    def record(self, lane: str, wall: float, cpu: float) -> None:
        self.lanes.setdefault(lane, LaneTime()).add(wall, cpu)
        self.recent = wall if not self.recent else self.recent + 0.05 * (wall - self.recent)

    @property
    def transport(self) -> float | None:
        if self.round_trip is None or self.process_work is None:
            return None
        return max(0.0, self.round_trip - self.process_work)


@dataclass(frozen=True)
class Explanation:
    """The evidence about a function and what the auto lane decided, per argument size."""

    function: str
    profiles: tuple[dict[str, Any], ...]

    def __str__(self) -> str:
        lines = [f"auto lane: {self.function}"]
        if not self.profiles:
            return lines[0] + ": no calls seen yet"
        for p in self.profiles:
            size = ("arguments of any size" if p["argument_bytes"] == 0 else
                    f"arguments of {_bytes(p['argument_bytes'])} or more")
            lines.append(f"  {size}: {p['calls']} calls -> {p['lane'] or 'deciding'} "
                         f"({p['verdict']})")
            lines.append(f"    alone on a thread: wall {_us(p['solo_wall_s'])}, "
                         f"CPU {_us(p['solo_cpu_s'])}; transport to a process "
                         f"{_us(p['transport_s'])}")
            estimates = ", ".join(f"{lane} {_us(t)}" for lane, t in p["estimated_s"].items())
            lines.append(f"    estimated per call: {estimates or 'not yet'}")
        return "\n".join(lines)


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n} {unit}"
        n //= 1024
    return f"{n} TiB"


def _us(seconds: float | None) -> str:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "?"
    return f"{seconds * 1e6:,.0f} µs" if seconds < 0.1 else f"{seconds:.2f} s"


class AutoLane:
    """Routes calls for an Executor (whose lanes run them)."""

    def __init__(self, executor: Any, process_count: int) -> None:
        self._ex = executor
        self._cores = max(1, process_count)
        self._lock = threading.Lock()
        self._profiles: dict[tuple, Profile] = {}
        self._free_threaded = not getattr(sys, "_is_gil_enabled", lambda: True)()
        self._closed = False

    # ---------------------------------------------------------------- submitting

    def submit(self, fn: Any, args: tuple, kwargs: dict) -> Any:
        p = self._profile(fn, args, kwargs)
        lane = p.lane
        counted = False
        if lane is not None and not p.exploring:
            # Decided: most calls go straight to the lane; one in SAMPLE is timed, which
            # is enough to notice a drift and costs nothing on the others.
            p.calls += 1  # a count for reports: a lost increment between threads is fine
            counted = True
            if p.calls % SAMPLE:
                if lane == "inline":
                    return self._ex._inline(fn, args, kwargs)
                return self._ex._lane_submit(lane, fn, args, kwargs)
        future = LaneFuture()
        with self._lock:
            if not counted:
                p.calls += 1
            if p.exploring and not p.probes_out:
                lane = self._next_probe_locked(p)
            elif p.lane is None:
                p.backlog.append((future, fn, args, kwargs))  # waits for the decision
                return future
            else:
                lane = p.lane
            call = self._take_pair_locked(p, lane)
        self._send(p, lane, future, fn, args, kwargs)
        if call is not None:
            self._send(p, lane, *call)
        return future

    def submit_many(self, fn: Any, calls: list[tuple]) -> list:
        """A map's calls (argument tuples) of one function, submitted together: while the
        function is undecided they wait as one backlog, so that a decision to run them
        inline can send them to processes in chunks instead of one by one."""
        if not calls:
            return []
        p = self._profile(fn, calls[0], {})
        if len(calls) < 3 or p is not self._profile(fn, calls[-1], {}):
            return [self.submit(fn, args, {}) for args in calls]  # sizes vary: one by one
        with self._lock:
            decided = p.lane is not None and not p.exploring
            chunked = (decided and p.lane == "inline" and self._cores > 1
                       and len(calls) * p.basis >= CHUNKS_MIN_S)
        if decided and not chunked:
            return [self.submit(fn, args, {}) for args in calls]
        waiting: list[tuple]
        if chunked:
            waiting = [(LaneFuture(), fn, args, {}) for args in calls]
            with self._lock:
                p.calls += len(waiting)
            self._send_chunks(waiting)
            return [call[0] for call in waiting]
        first = self.submit(fn, calls[0], {})  # explores
        waiting = [(LaneFuture(), fn, args, {}) for args in calls[1:]]
        release: list = []
        with self._lock:
            if p.lane is None or p.exploring:
                p.calls += len(waiting)
                p.backlog.extend(waiting)
                if not p.probes_out:
                    release = self._next_probe_from_backlog_locked(p)
                waiting_futures = [call[0] for call in waiting]
            else:
                waiting_futures = []
        if not waiting_futures:  # decided meanwhile
            return [first] + [self.submit(fn, args, {}) for args in calls[1:]]
        self._send_all(p, release)
        return [first] + waiting_futures

    def _profile(self, fn: Any, args: tuple, kwargs: dict) -> Profile:
        key = (_function_key(fn), _bucket(args, kwargs))
        profile = self._profiles.get(key)
        if profile is None:
            with self._lock:
                profile = self._profiles.get(key)
                if profile is None:
                    profile = self._profiles[key] = Profile(
                        describe(fn), key[1], is_coroutine_function(fn))
        return profile

    def _next_probe_locked(self, p: Profile) -> str:
        """The lane of the next exploring call (probes_out must be 0)."""
        if p.coroutine:
            self._decide_locked(p, "async", "a coroutine function: it waits on its loop", 0.0)
            return "async"
        if p.solo_runs < SOLO_RUNS:
            p.probes_out = 1
            return "probe:solo"
        # Two pairs that ran together, unless one already showed the GIL released: another
        # process stealing a core can make a releasing function look held, never the
        # reverse (held, two threads use one core at most).
        parallel = p.parallel_seen >= PARALLEL_CORES and p.speedup_seen >= THREAD_SPEEDUP
        if (not p.no_pair and p.pairs_judged < PAIRS and not parallel
                and p.pair_tries < PAIRS + 2):
            p.pair_tries += 1
            p.probes_out = 2
            p.pair.clear()
            p.pair_stolen = False
            return "probe:pair"
        if p.pairs_judged == 0:
            p.no_pair = True  # they never ran together: judge without the pair
        p.probes_out = 1
        return "probe:process"

    def _take_pair_locked(self, p: Profile, lane: str) -> tuple | None:
        """The second call of a pair probe, from the backlog; without one, the pair test
        is skipped (calls submitted one at a time cannot run two at once)."""
        if lane != "probe:pair":
            return None
        if p.backlog:
            return p.backlog.popleft()
        p.probes_out, p.no_pair = 1, True
        return None

    # ---------------------------------------------------------------- running

    def _send(self, p: Profile, lane: str, future: LaneFuture, fn: Any, args: tuple,
              kwargs: dict) -> None:
        probe = lane[6:] if lane.startswith("probe:") else None
        if probe is not None:
            lane = "process" if probe == "process" else "thread"
            if probe == "process" and not self._ex._lane_ready("process"):
                probe = "cold"  # this round trip includes starting the workers: not a measure
        if lane == "inline":
            if future.set_running_or_notify_cancel():
                try:
                    result, wall, cpu, start = timed_call(fn, args, kwargs)
                except Exception as exc:
                    future.set_exception(exc)
                    return
                self._settle(p, lane, future, result, wall, cpu, start, None, probe)
            return
        timed = (timed_coroutine if lane == "async" else
                 timed_probe if probe is not None else timed_call)
        if not future.set_running_or_notify_cancel():
            if probe is not None:
                self._settle_probe_missing(p)
            return
        sent = time.perf_counter()
        try:
            inner = self._ex._lane_submit(lane, timed, (fn, args, kwargs))
        except BaseException as exc:  # the lane is shut down
            _set(future, error=exc)
            return

        def done(inner_future: Any) -> None:
            error = inner_future.exception()
            if error is not None:
                _set(future, error=error)
                if probe is not None:
                    self._settle_probe_missing(p)  # a failed call teaches nothing
                return
            if probe is None:
                (result, wall, cpu, start), stolen = inner_future.result(), False
            else:
                result, wall, cpu, start, stolen = inner_future.result()
            self._settle(p, lane, future, result, wall, cpu, start, time.perf_counter() - sent,
                         probe, stolen)

        inner.add_done_callback(done)

    def _settle(self, p: Profile, lane: str, future: LaneFuture, result: Any, wall: float,
                cpu: float, start: float, round_trip: float | None, probe: str | None,
                stolen: bool = False) -> None:
        _set(future, result=result)
        release: list = []
        if stolen and probe != "pair":
            wall = cpu  # the work, as it would run on a core of its own
        with self._lock:
            p.record(lane, wall, cpu)
            if probe == "solo":
                p.solo_runs += 1
                if p.solo is None or wall < p.solo[0]:
                    p.solo = (wall, cpu)
            elif probe == "pair":
                p.pair.append((wall, cpu, start))
                p.pair_stolen |= stolen
                if _overlapped(p.pair):
                    # A call that lost its core to another process makes a function that
                    # releases the GIL look held, never the reverse: such a pair is only
                    # evidence of release.
                    p.pairs_judged += not p.pair_stolen
                    p.parallel_seen = max(p.parallel_seen, _cores_used(p.pair))
                    if p.solo is not None:
                        p.speedup_seen = max(p.speedup_seen, 2 * p.solo[0] / _span(p.pair))
            elif probe == "process":
                p.round_trip, p.process_work = round_trip, wall
            elif probe == "cold":
                p.process_work = wall  # the work is real; the round trip is not
            if probe is not None:
                p.probes_out -= 1
                if not p.probes_out:
                    release = self._after_probes_locked(p)
            elif not p.exploring and p.basis and (
                    p.recent > p.basis * DRIFT or p.recent < p.basis / DRIFT):
                # The work per call drifted: explore again while calls keep flowing.
                p.verdict = (f"exploring again: work per call moved from {_us(p.basis)} "
                             f"to {_us(p.recent)}")
                p.exploring, p.solo, p.pair, p.round_trip, p.no_pair = True, None, [], None, False
                p.solo_runs = p.pair_tries = p.pairs_judged = 0
                p.parallel_seen = p.speedup_seen = 0.0
        self._send_all(p, release)

    def _settle_probe_missing(self, p: Profile) -> None:
        with self._lock:
            p.probes_out -= 1
            if p.probes_out:
                return
            if p.pair and not _overlapped(p.pair):
                p.pair.clear()
            release = self._next_probe_from_backlog_locked(p)
        self._send_all(p, release)

    def _send_all(self, p: Profile, calls: list) -> None:
        for lane, *call in calls:
            if lane == "batch":
                self._ex._lane_submit("thread", _run_batch, (self, p, call[0]))
            elif lane == "chunks":
                self._send_chunks(call[0])
            else:
                self._send(p, lane, *call)

    def _send_chunks(self, calls: list) -> None:
        """Small calls of one function, a backlog too big for one core: sent to the
        process lane in about four chunks per core, each run in a worker one call after
        another; the results come back together and settle their own futures."""
        size = max(1, -(-len(calls) // (self._cores * 4)))
        for start in range(0, len(calls), size):
            chunk = calls[start:start + size]
            futures = [future for future, _, _, _ in chunk if future.set_running_or_notify_cancel()]
            if len(futures) != len(chunk):  # some were cancelled meanwhile: keep the rest
                chunk = [c for c in chunk if c[0].running()]
            if not chunk:
                continue
            fn = chunk[0][1]
            work = [(args, kwargs) for _, _, args, kwargs in chunk]
            try:
                inner = self._ex._lane_submit("process", run_chunk, (fn, work))
            except BaseException as exc:
                for future in futures:
                    _set(future, error=exc)
                continue
            inner.add_done_callback(functools.partial(_settle_chunk, futures))

    def _next_probe_from_backlog_locked(self, p: Profile) -> list:
        if not p.backlog or self._closed:
            return []  # the next submit explores
        lane = self._next_probe_locked(p)
        first = p.backlog.popleft()
        second = self._take_pair_locked(p, lane)
        return [(lane, *first)] + ([(lane, *second)] if second is not None else [])

    # ---------------------------------------------------------------- deciding

    def _after_probes_locked(self, p: Profile) -> list:
        """A probe round ended: decide if the evidence suffices and release the backlog,
        else send the next probe. Returns the calls to send now."""
        if self._verdict_locked(p) is None:
            return self._next_probe_from_backlog_locked(p)
        calls, p.backlog = list(p.backlog), deque()
        if not calls:
            return []
        if p.lane == "inline":
            if self._cores > 1 and len(calls) * p.basis >= CHUNKS_MIN_S:
                return [("chunks", calls)]  # many small calls: in chunks, on every core
            return [("batch", calls)]  # one batch on a thread: the caller is not blocked
        return [(p.lane, *call) for call in calls]

    def _verdict_locked(self, p: Profile) -> tuple | None:
        if p.solo is None:
            return None
        wall, cpu = p.solo
        # A long call that barely used the CPU is waiting: no need for a second look.
        clearly_waiting = wall >= CLEARLY_WAITING_S and cpu < 0.2 * wall
        if p.solo_runs < SOLO_RUNS and not clearly_waiting:
            return None
        if wall < TINY_S:
            return self._decide_locked(p, "inline", "tiny: shipping it costs more", wall)
        if cpu < WAITING * wall:
            return self._decide_locked(p, "thread", "mostly waiting", wall)
        if self._free_threaded:
            return self._decide_locked(p, "thread", "computing on a free-threaded CPython", wall)
        if p.parallel_seen >= PARALLEL_CORES and p.speedup_seen >= THREAD_SPEEDUP:
            return self._decide_locked(p, "thread", "computing without holding the GIL", wall)
        if p.pairs_judged < PAIRS and not p.no_pair and p.pair_tries < PAIRS + 2:
            return None
        if p.round_trip is None:
            return None
        work = p.process_work or wall
        if self._cores > 1 and work / self._cores + (p.transport or 0.0) < work:
            held = "computing with the GIL held" if p.pair else "computing"
            return self._decide_locked(p, "process", held, work)
        return self._decide_locked(
            p, "inline", "computing, too little to outweigh the transport to a process", work)

    def _decide_locked(self, p: Profile, lane: str, verdict: str, basis: float) -> tuple:
        p.lane, p.verdict, p.basis, p.recent = lane, verdict, basis, basis
        p.exploring = False
        return (lane, verdict)

    def close(self) -> None:
        """The executor is shutting down: calls still waiting for a decision go now, to
        the lane decided or, without one, to a thread (no call is lost or left hanging)."""
        with self._lock:
            self._closed = True
            waiting = [(p, p.lane or "thread", list(p.backlog)) for p in self._profiles.values()
                       if p.backlog]
            for p, _, _ in waiting:
                p.backlog.clear()
        for p, lane, calls in waiting:
            self._send_all(p, [("batch", calls)] if lane == "inline" else
                           [(lane, *call) for call in calls])

    # ---------------------------------------------------------------- reporting

    def explain(self, fn: Any) -> Explanation:
        key = _function_key(fn)
        with self._lock:
            found = [p for (k, _), p in self._profiles.items() if k == key]
            return Explanation(describe(fn), tuple(self._evidence(p) for p in found))

    def _evidence(self, p: Profile) -> dict[str, Any]:
        work = p.solo[0] if p.solo else None
        estimates: dict[str, float] = {}
        if work is not None:
            estimates["inline"] = work
            parallel = p.parallel_seen >= PARALLEL_CORES and p.speedup_seen >= THREAD_SPEEDUP
            estimates["thread"] = work / self._cores if parallel else work
            if p.transport is not None:
                estimates["process"] = (p.process_work or work) / self._cores + p.transport
        return {
            "argument_bytes": 1 << (p.bucket << _BUCKET_BITS) if p.bucket else 0,
            "calls": p.calls, "lane": p.lane, "verdict": p.verdict,
            "solo_wall_s": p.solo[0] if p.solo else None,
            "solo_cpu_s": p.solo[1] if p.solo else None,
            "transport_s": p.transport,
            "lanes": {lane: (t.calls, t.mean_wall, t.mean_cpu) for lane, t in p.lanes.items()},
            "estimated_s": estimates,
        }

    def report(self) -> str:
        """Per function: calls, lanes used and time spent (a Markdown table)."""
        rows: dict[str, dict[str, LaneTime]] = {}
        with self._lock:
            for p in self._profiles.values():
                lanes = rows.setdefault(p.name, {})
                for lane, t in p.lanes.items():
                    into = lanes.setdefault(lane, LaneTime())
                    into.calls += t.calls
                    into.wall += t.wall
                    into.cpu += t.cpu
        lines = ["| function | calls | lanes (calls) | time spent |", "| --- | --- | --- | --- |"]
        for name, lanes in sorted(rows.items()):
            calls = sum(t.calls for t in lanes.values())
            used = ", ".join(f"{lane} ({t.calls})" for lane, t in lanes.items())
            spent = sum(t.wall for t in lanes.values())
            lines.append(f"| {name} | {calls} | {used} | {spent:.3f} s |")
        return "\n".join(lines)


def _overlapped(pair: list[tuple[float, float, float]]) -> bool:
    """True if the two calls of a pair probe ran together for most of the shorter one:
    only then does their CPU time say anything about the GIL."""
    if len(pair) != 2:
        return False
    (w1, _, s1), (w2, _, s2) = pair
    overlap = min(s1 + w1, s2 + w2) - max(s1, s2)
    return overlap >= 0.8 * min(w1, w2)


def _span(pair: list[tuple[float, float, float]]) -> float:
    (w1, _, s1), (w2, _, s2) = pair
    return max(max(s1 + w1, s2 + w2) - min(s1, s2), 1e-9)


def _cores_used(pair: list[tuple[float, float, float]]) -> float:
    """CPU time of the two calls over the span they ran in: at most ~1 with the GIL held."""
    return (pair[0][1] + pair[1][1]) / _span(pair)


def _set(future: LaneFuture, result: Any = None, error: BaseException | None = None) -> None:
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except InvalidStateError:  # cancelled meanwhile
        pass


def run_chunk(fn: Any, calls: list) -> list:
    """In a worker: the calls of a chunk, one after another; (True, result) or (False,
    exception) for each."""
    out = []
    for args, kwargs in calls:
        try:
            out.append((True, fn(*args, **kwargs)))
        except Exception as exc:
            out.append((False, exc))
    return out


def _settle_chunk(futures: list, inner: Any) -> None:
    error = inner.exception()
    if error is not None:
        for future in futures:
            _set(future, error=error)
        return
    for future, (ok, value) in zip(futures, inner.result(), strict=True):
        if ok:
            _set(future, result=value)
        else:
            _set(future, error=value)


def _run_batch(auto: AutoLane, p: Profile, calls: list) -> None:
    """Runs a backlog inline, one call after another, on one thread."""
    for future, fn, args, kwargs in calls:
        auto._send(p, "inline", future, fn, args, kwargs)
