"""The auto lane: measure each function, route its calls to the fastest lane, explain why.

A policy over the other lanes, not a pool. Calls are grouped into **profiles**: one per
function (module, qualified name and code object) and argument size (one bucket below
64 KiB, then one per 16x of the bytes its arguments hold), so a function that is cheap
on small inputs and costly on large ones is judged for each.

A profile starts by **exploring** with a few real calls while the calls behind them wait
in its backlog (a ``map`` submits everything at once; sending it all somewhere before
knowing would be a guess):

1. a call alone on a thread, twice (the faster counts; once if it clearly waits, or
   clearly computes holding the GIL, see below): wall and CPU time. Tiny (< 30 µs) ->
   inline: shipping it anywhere costs more. Mostly waiting (CPU < half the wall time) ->
   thread. A blocking map runs these in its caller, and a watcher sends the rest of the
   map to threads as soon as the first is seen waiting.
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
3. one call in a process (two if the worker took 1.5x the time here: the faster counts):
   the round trip minus the work is the transport cost for calls of this size, and the
   part spent sending is serial. Process if the work outweighs it on this machine's
   cores, else inline. A call that alone kept every core busy needs no such probe: no
   lane has a core to add, so it runs inline.

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
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from ._calls import call_retrying
from ._cores import usable_cores
from ._future import LaneFuture, gather, run_items, settle_quietly
from ._options import TaskOptions
from ._serialize import describe, is_coroutine_function
from .errors import TaskTimeout
from .lanes import LaneBase, Lanes

__all__ = ["AutoLane", "AutoStatistics", "Explanation", "timed_call"]

TINY_S = 30e-6  # below this a call runs inline
SOLO_RUNS = 2  # calls timed alone on a thread before judging
SAMPLE = 8  # once decided, one call in this many is timed
# Pairs of calls run together, none of them robbed of its core, before concluding that
# the GIL is held (one showing it released is enough).
PAIRS = 1
PAIR_TRIES = 3
PAIR_WAIT_S = 0.02  # the first call of a pair waits this long for the second to be ready
# A pair over which tasks of the machine waited for a core this much of its span is taken
# as robbed of a core (only evidence that the GIL is released, never that it is held).
CONTENDED = 0.3
THREAD_SPEEDUP = 1.2  # two at once on threads must beat two in a row by this much
CHUNKS_MIN_S = 0.005  # an inline backlog with this much work goes to processes in chunks
# A tiny call timed alone is mostly the timer's cost and a cold call's: add_one took 2.4 µs
# alone and 0.03 µs in a run. Before a map's calls go to processes in chunks on such a
# figure, a head of the map runs in its caller, this much work by that figure (and this
# many calls at least), and the decision takes its time per call from there.
MEASURED_RUN_S = 0.00025
MEASURED_CALLS = 32
WAITING = 0.5  # CPU / wall below this: the call mostly waits
# Two calls at once used at least this many cores between them: the GIL was released (with
# the GIL held they cannot exceed one core, however idle the machine).
PARALLEL_CORES = 1.1
HEAD = 12  # a map's first calls go one by one: enough for every probe; the rest in segments
SEGMENTS_PER_CORE = 4
DRIFT = 4.0  # re-explore when the work per call moves this far from the decision's basis
# Argument-size buckets: one below 64 KiB (there the transport is mostly a fixed cost),
# then a new profile per 16x more bytes.
_SMALL_ARGUMENTS = 1 << 16
# One exploring call that barely used the CPU for this many GIL switch intervals (5 ms
# each) is waiting: no second look. A shorter gap can be a wait for the GIL held by
# another thread, which is asked to let go after one interval. (Nor for one this long
# that computed holding the GIL: see ``Profile.solo_wanted``.)
CLEARLY_WAITING_INTERVALS = 2
# Two calls at once on threads that take this much of the time of two in a row (or less)
# settle the pair question in one go: threads lose (NumPy's BLAS: 0.2 here).
SLOWER_TOGETHER = 0.75
# A worker this much slower than a call here is looked at again, up to this many times.
PROCESS_OUTLIER = 1.5
PROCESS_PROBES = 2
STOLEN = 0.2  # a probe that never blocked yet ran this much less than its wall time
CROWDED = 0.8  # other threads of the process used this much of every other core
EXACT_OTHERS_S = 0.0005  # a second solo after one this long reads other threads' CPU exactly
# While a blocking map's first call runs in its caller, a native watcher (WaitWatch, in
# the C++ core) looks at it every EARLY_S: once it has used under EARLY_CPU of a core over
# the last look's span, it waits, and the rest of the map goes to threads at once instead
# of after it (a 10 ms wait cost a 120-call map one more 10 ms round). A call the scheduler
# keeps from a core is not waiting (the watcher asks the kernel; a first look EARLY_S / 8
# in only takes its counts, so a wait is seen EARLY_S * 9 / 8 in). The call's full
# measurement then confirms that or not.
EARLY_S = 0.002
EARLY_CPU = 0.1
# ...and the whole process under this many cores: a call whose own threads compute (NumPy's
# BLAS, whose first matrix product waited 2 ms for its threads here) is not waiting.
EARLY_PROCESS_CPU = 0.5
# The GIL-wait probe: while a solo probe computes, the watcher's thread asks for the GIL
# and times the wait (the binding does, on the native thread). A call holding the GIL is
# asked to let go only after a switch interval, so the wait is about one; a call that
# released it (hashlib, zlib, NumPy) lets the watcher in at once. Waiting this many
# intervals or more: held; this few or less: released; in between says nothing. Held, no
# pair of threads need show it (two calls on one core, for 2x a call's time); released,
# a pair must still show that two at once gain (see ``_verdict_locked``).
GIL_HELD = 0.5
GIL_RELEASED = 0.1
GIL_SAMPLES = 2  # per watched call: each held one makes the call switch threads once
COMPUTED_ALL_ALONG = 0.8  # CPU / wall of a solo probe that never waited
# What a pair of a function found releasing the GIL must gain on two in a row (THREAD_SPEEDUP
# without the probe): memory-bound work gains little from two calls, more from many.
RELEASED_SPEEDUP = 1.0
_CORES = usable_cores()
_thread_rusage = (functools.partial(resource.getrusage, resource.RUSAGE_THREAD)
                  if hasattr(resource, "RUSAGE_THREAD") else None)


def timed_call(fn: Any, args: tuple, kwargs: dict) -> tuple[Any, float, float, float]:
    """(result, wall seconds, CPU seconds of this thread, start): how every auto call runs.
    The start is CLOCK_MONOTONIC, comparable across the threads of a process."""
    start, cpu = time.monotonic(), time.thread_time()
    result = fn(*args, **kwargs)
    return result, time.monotonic() - start, time.thread_time() - cpu, start


def timed_probe(fn: Any, args: tuple, kwargs: dict, gil: GilSamples | None = None,
                others_exactly: bool = False) -> tuple[Any, float, float, float, bool, bool]:
    """``timed_call`` for an exploring call, plus two flags.

    Stolen: its wall time is well above its CPU time, yet the thread never blocked (no
    I/O, sleep, lock or GIL wait, but once for each GIL-wait probe of ``gil`` that made it
    let go of the GIL), so another thread or process held the core. On a loaded machine
    that gap says nothing about the function.

    Crowded: meanwhile this process's other threads kept its other cores busy (NumPy's
    BLAS threads do, for a matrix product): a second call at once could not gain. Only
    looked for with ``others_exactly`` (see ``Profile.others_exactly``): their own clocks,
    read for 5-15 µs. The process clock costs 0.7 µs, but counts the other threads' time
    only at scheduler ticks: for a 1.5 ms matrix product their 1.5 ms read 0 in most calls.
    """
    rusage = _thread_rusage
    if rusage is None:
        result, wall, cpu, start = timed_call(fn, args, kwargs)
        return result, wall, cpu, start, False, False
    # The thread's CPU time from its clock: getrusage's, on Linux 6.18, moved by whole
    # scheduler ticks (0 or 4 ms for a 0.5 ms call), though it still counts the thread's
    # voluntary switches. Each read is a system call of ~0.5 µs here.
    others = _others_cpu() if others_exactly else None
    before = rusage()
    start, cpu = time.monotonic(), time.thread_time()
    result = fn(*args, **kwargs)
    wall, cpu = time.monotonic() - start, time.thread_time() - cpu
    after = rusage()
    if others is not None:
        others = (_others_cpu() or 0.0) - others
    forced = 0 if gil is None else gil.forced
    stolen = _lost_its_core(after.ru_nvcsw - before.ru_nvcsw, wall, cpu, forced)
    crowded = others is not None and _CORES > 1 and others >= CROWDED * (_CORES - 1) * wall
    return result, wall, cpu, start, stolen, crowded


def _lost_its_core(switches: int, wall: float, cpu: float, forced: int = 0) -> bool:
    """Whether a timed thread that switched voluntarily ``switches`` times (``forced`` of
    them made to by GIL-wait probes) ran well under its wall time: it never blocked, so
    another thread or process held its core."""
    return switches <= forced and wall - cpu > STOLEN * wall


class GilSamples:
    """The GIL-wait probes of one exploring call: the watcher calls this, holding the GIL,
    with how long it waited for it, at each look that finds the call computing."""

    __slots__ = ("held", "released", "forced", "longest", "ended")

    def __init__(self) -> None:
        self.held = self.released = 0
        # Waits of a whole switch interval: the call was made to let go of the GIL, and
        # its thread switched once for it (or twice; only once is allowed for, so that a
        # call that then waits is still seen waiting).
        self.forced = 0
        self.longest = 0.0  # seconds, the longest wait
        self.ended = False  # the call returned: a wait now says nothing of it

    def __call__(self, waited: float) -> bool:
        if self.ended:
            return False
        interval = sys.getswitchinterval()
        if waited >= GIL_HELD * interval:
            self.held += 1
            self.forced += waited >= 0.95 * interval
        elif waited <= GIL_RELEASED * interval:
            self.released += 1
        self.longest = max(self.longest, waited)
        return self.held + self.released < GIL_SAMPLES

    def counts(self) -> tuple[int, int, float]:
        return self.held, self.released, self.longest


def watched_probe(fn: Any, args: tuple, kwargs: dict, others_exactly: bool = False
                  ) -> tuple[Any, float, float, float, bool, bool, tuple]:
    """``timed_probe`` for a solo probe on a thread, GIL-wait probes included (their
    counts last)."""
    gil = GilSamples()
    ticket = _watch_probe(gil)
    try:
        result = timed_probe(fn, args, kwargs, gil, others_exactly)
    finally:
        gil.ended = True
        if ticket:
            _wait_watch().unwatch(ticket)
    return (*result, gil.counts())


class CallerProbe:
    """A probe running in a map's calling thread, watched by the native watcher; and the
    rest of the map's futures, if the watcher took them over (the AutoLane's lock guards
    ``closed`` and ``rest``). Being watched costs the caller ~1 µs: a few stores under the
    watcher's lock, no thread woken (waking a Python thread for it cost 13-20 µs here)."""

    __slots__ = ("ticket", "closed", "rest")

    def __init__(self) -> None:
        self.ticket = 0  # the watch, 0 if there is none
        self.closed = False  # the caller goes on with the map itself: too late to take over
        self.rest: list | None = None


_watcher: Any = None
_watcher_lock = threading.Lock()


def _wait_watch() -> Any:
    """The process's WaitWatch, made on first use and closed at exit."""
    global _watcher
    if _watcher is None:
        with _watcher_lock:
            if _watcher is None:
                import atexit

                from ._core import WaitWatch

                _watcher = WaitWatch()
                atexit.register(_close_wait_watch)  # after the executors shut down
    return _watcher


def _others_cpu() -> float | None:
    from ._core import other_threads_cpu

    return other_threads_cpu()


def _watch_probe(gil: GilSamples, on_waiting: Any = None) -> int:
    """Has the watcher look at this thread's exploring call: GIL-wait probes into ``gil``,
    and ``on_waiting()`` if it is seen waiting. The watch's ticket (0: none)."""
    return _wait_watch().watch(EARLY_S, EARLY_CPU, EARLY_PROCESS_CPU, on_waiting, gil)


def _close_wait_watch() -> None:
    """Stops the watcher's thread, and lets the object go before the module does."""
    global _watcher
    watcher, _watcher = _watcher, None
    if watcher is not None:
        watcher.close()


class PairGate:
    """Starts the two calls of a pair probe together, and times both from then.

    Holding the GIL, the second call cannot start before the first lets go of it, one
    switch interval (5 ms) later: timed from their own starts, two 10 ms calls overlapped
    too little to count, and a pair was tried three times for nothing. Timed from the
    moment both were ready, the wait for the GIL is in the span, as it should be: two
    calls that hold it use one core between them over it. The first to arrive waits up to
    PAIR_WAIT_S for the second (a thread still starting, say); if it does not come, each
    call is timed from its own start and the pair may not count.
    """

    __slots__ = ("start", "pressure", "_barrier")

    def __init__(self) -> None:
        self.start = 0.0
        self.pressure: int | None = None
        self._barrier = threading.Barrier(2, action=self._open, timeout=PAIR_WAIT_S)

    def _open(self) -> None:
        self.pressure = cpu_pressure_us()
        self.start = time.monotonic()

    def contended(self, span: float) -> bool:
        """Whether, over the pair's ``span`` seconds, some task of the machine waited for a
        core for a good part of it (Linux's pressure stall information): then the pair
        may have had one core between its two calls, and a function that releases the
        GIL looks held. With one core busy elsewhere this happened in 13 pairs of 20."""
        if self.pressure is None:
            return False
        now = cpu_pressure_us()
        return now is not None and now - self.pressure >= CONTENDED * span * 1e6

    def wait(self) -> float | None:
        """When both calls were ready, or None if the other did not come in time."""
        try:
            self._barrier.wait()
        except threading.BrokenBarrierError:
            return None
        return self.start


def cpu_pressure_us() -> int | None:
    """Microseconds some task of this machine has spent waiting for a CPU since boot (the
    "some" total of /proc/pressure/cpu, ~14 µs to read), or None where Linux has no PSI."""
    try:
        with open("/proc/pressure/cpu", "rb") as f:
            return int(f.readline().rsplit(b"total=", 1)[1])
    except (OSError, ValueError, IndexError):
        return None


def timed_pair_probe(gate: PairGate, fn: Any, args: tuple,
                     kwargs: dict) -> tuple[Any, float, float, float, bool, bool]:
    """``timed_probe`` for a call of a pair, its wall time counted from the gate's opening."""
    opened = gate.wait()
    result, wall, cpu, start, stolen, crowded = timed_probe(fn, args, kwargs)
    if opened is not None:
        wall, start = wall + start - opened, opened
    return result, wall, cpu, start, stolen, crowded


async def timed_coroutine(fn: Any, args: tuple, kwargs: dict) -> tuple[Any, float, float, float]:
    start = time.monotonic()
    result = await fn(*args, **kwargs)
    return result, time.monotonic() - start, 0.0, start


_SIZED = (bytes, bytearray, str, list, tuple, dict, set)
_UNSIZED = {int, float, bool, type(None), complex}  # the common arguments, at once


def _size_of(value: Any) -> int:
    kind = type(value)
    if kind in _UNSIZED:
        return 0
    if kind in _SIZED:
        return len(value)
    nbytes = getattr(value, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes
    if isinstance(value, _SIZED):
        return len(value)
    return 0


def _bucket(args: tuple, kwargs: dict) -> int:
    size = 0
    for a in args:
        size += _size_of(a)
    if kwargs:
        size += sum(_size_of(v) for v in kwargs.values())
    return 0 if size < _SMALL_ARGUMENTS else ((size.bit_length() - 17) >> 2) + 1


def _bucket_bytes(bucket: int) -> int:
    """The fewest argument bytes of a bucket."""
    return 0 if bucket == 0 else _SMALL_ARGUMENTS << (4 * (bucket - 1))


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

    @property
    def mean_wall(self) -> float:
        return self.wall / self.calls if self.calls else math.nan

    @property
    def mean_cpu(self) -> float:
        return self.cpu / self.calls if self.calls else math.nan


@dataclass(slots=True)
class Segment:
    """Calls ``items[start:stop]`` of one map, with one future for their results (a list):
    a map of many calls costs a future per segment, not per call."""

    piece: LaneFuture
    fn: Any
    items: Sequence[Any]
    start: int
    stop: int
    single: bool  # items are single arguments, not argument tuples

    def __len__(self) -> int:
        return self.stop - self.start

    def calls(self) -> Any:
        return _calls(self.items, self.start, self.stop, self.single)

    def run(self) -> tuple[list, float, float]:
        """Runs here, one call after another: (results, wall, CPU seconds)."""
        start, cpu = time.monotonic(), time.thread_time()
        results = run_items(self.fn, self.items[self.start:self.stop], self.single)
        return results, time.monotonic() - start, time.thread_time() - cpu


@dataclass
class Profile:
    name: str
    bucket: int
    coroutine: bool
    lanes: dict[str, LaneTime] = field(default_factory=dict)
    solo: tuple[float, float] | None = None  # (wall, cpu) of a call alone on a thread
    solo_runs: int = 0  # two are taken, the faster kept: a first call is often an outlier
    solo_crowded: bool = False  # the other cores were busy with this process meanwhile
    pair: list[tuple[float, float, float]] = field(default_factory=list)  # (wall, cpu, start)
    pair_stolen: bool = False  # a call of the pair lost its core to another thread
    pair_gate: Any = None  # the PairGate of the pair out now
    pair_tries: int = 0
    pairs_judged: int = 0  # pairs that really ran together
    pairs_contended: int = 0  # pairs over which the machine had no core to spare
    parallel_seen: float = 0.0  # the most cores any of them used between its two calls
    # GIL-wait probes of its solo probes that found the GIL held, and released; the
    # longest wait (see GilSamples).
    gil_held: int = 0
    gil_released: int = 0
    gil_longest: float = 0.0
    # The most throughput two calls at once gave over two in a row: a function that
    # releases the GIL but already uses every core (multithreaded BLAS) gains nothing.
    speedup_seen: float = 0.0
    # Of the process probes since exploring began, the fastest: a single call in a worker
    # can take twice its usual time (its allocator faulting in fresh pages, say).
    transport_seen: float | None = None  # a round trip less the worker's time for it
    sending_seen: float | None = None  # the part of it spent here, pickling and sending
    process_work: float | None = None  # the worker's time for a call
    process_probes: int = 0  # those that measured a transport
    verdict: str = "exploring"
    lane: str | None = None
    basis: float = 0.0  # work per call the decision was based on
    recent: float = 0.0  # moving mean of work per call since
    basis_cpu: float = 0.0  # CPU time per call the decision was based on
    basis_calls: int = 0  # how many calls were timed together for it (a solo: 1)
    recent_cpu: float = 0.0  # moving mean of CPU time per call since
    computing: bool = False  # decided on a solo call that computed (see ``record``)
    exploring: bool = True
    probes_out: int = 0
    no_pair: bool = False  # calls come one at a time: two cannot be run at once
    # (future, fn, args, kwargs, options) per call
    backlog: deque = field(default_factory=deque)
    bulk: deque[Segment] = field(default_factory=deque)  # the rest of maps, undecided
    calls: int = 0
    early: bool = False  # sent to threads while its first call was still waiting

    def record(self, lane: str, wall: float, cpu: float, calls: int = 1) -> None:
        """``calls`` calls took ``wall`` and ``cpu`` seconds between them."""
        t = self.lanes.setdefault(lane, LaneTime())
        t.calls += calls
        t.wall += wall
        t.cpu += cpu
        # On threads, a computing call's wall time is mostly its wait for the GIL or a
        # core while the others run (sha256 calls, 19 at once on 2 cores: 0.5 s each,
        # 42 ms alone), and says nothing of its work: its CPU time does.
        work = (cpu if lane == "thread" and self.computing else wall) / calls
        self.recent = work if not self.recent else self.recent + 0.05 * (work - self.recent)
        cpu /= calls
        self.recent_cpu = (cpu if not self.recent_cpu
                           else self.recent_cpu + 0.05 * (cpu - self.recent_cpu))

    def rebase(self, wall: float, cpu: float, calls: int) -> None:
        """The decision's time per call, from ``calls`` calls timed together."""
        self.basis = self.recent = wall / calls
        self.basis_cpu = self.recent_cpu = cpu / calls
        self.basis_calls = calls

    def drifted(self) -> bool:
        """The work per call moved from the decision's basis: if so, explore again (the
        calls keep flowing to the lane decided meanwhile)."""
        if self.exploring or not self.basis:
            return False
        by_cpu = False
        if self.lane == "thread" and not self.computing:
            # Waiting, on threads: its wall time there also holds its waits for the GIL
            # and for a core while the others run (a call that sleeps 2 ms, then computes
            # 2 ms, took 25 ms among 32 threads), so only a fall counts in wall time; a
            # rise counts in CPU time, once the call computes for half its old wall time.
            by_cpu = (self.recent_cpu > DRIFT * self.basis_cpu
                      and self.recent_cpu >= WAITING * self.basis)
            if not by_cpu and self.recent >= self.basis / DRIFT:
                return False
        elif self.basis / DRIFT <= self.recent <= self.basis * DRIFT:
            return False
        self.verdict = ("exploring again: " + (
            f"CPU time per call moved from {_us(self.basis_cpu)} to {_us(self.recent_cpu)}"
            if by_cpu else f"work per call moved from {_us(self.basis)} to {_us(self.recent)}"))
        self.exploring, self.solo, self.pair, self.no_pair = True, None, [], False
        self.transport_seen = self.sending_seen = self.process_work = None
        self.process_probes = 0
        self.solo_runs = self.pair_tries = self.pairs_judged = self.pairs_contended = 0
        self.parallel_seen = self.speedup_seen = self.gil_longest = 0.0
        self.gil_held = self.gil_released = 0
        return True

    @property
    def gil(self) -> str | None:
        """"held" or "released", as the GIL-wait probes found it; None if none was taken
        (a call shorter than the watcher's first look) or more found it released than
        held. A short wait can be another thread's doing (it made the call let go of the
        GIL just as the watcher asked: the collector settling a worker's reply does), a
        long one only a holder's: held wins a tie."""
        if self.gil_held and self.gil_held >= self.gil_released:
            return "held"
        if self.gil_released and not self.gil_held:
            return "released"
        return None

    @property
    def gil_wait(self) -> str:
        """The GIL-wait probes' evidence, for a verdict."""
        return f"(the watcher waited {_us(self.gil_longest)} for it)"

    @property
    def parallel(self) -> bool:
        """A pair showed the GIL released, and two at once gaining on two in a row."""
        return self.parallel_seen >= PARALLEL_CORES and self.speedup_seen >= THREAD_SPEEDUP

    def solo_wanted(self) -> bool:
        """Whether to time (another) call alone: two are (the faster counts, a first call
        can be an outlier), but one is enough for a long call that barely used the CPU
        (waiting), or that computed all along and held the GIL for a whole switch
        interval (the process probe is next: a JSON parse of 15-33 ms in a map of 40
        spent 5-8% of the map's time on its second solo)."""
        if self.solo_runs >= SOLO_RUNS:
            return False
        if not self.solo_runs or self.solo is None:
            return True
        wall, cpu = self.solo
        interval = sys.getswitchinterval()
        if wall < CLEARLY_WAITING_INTERVALS * interval:
            return True
        clearly_waiting = cpu < 0.2 * wall
        clearly_holding = (self.gil == "held" and self.gil_longest >= interval
                           and cpu >= COMPUTED_ALL_ALONG * wall)
        return not (clearly_waiting or clearly_holding)

    def others_exactly(self) -> bool:
        """Whether the next solo probe reads the other threads' CPU time exactly (see
        ``timed_probe``): a second one, after a first that computed for half a
        millisecond or more with the GIL not found held, and not seen crowded (the
        reading costs 5-15 µs, once per function)."""
        if self.solo is None or self.solo_crowded or self.gil == "held":
            return False
        wall, cpu = self.solo
        return wall >= EXACT_OTHERS_S and cpu >= WAITING * wall

    def pair_wanted(self) -> bool:
        """Whether to run (another) pair probe. Not when the GIL-wait probes found the GIL
        held: two threads would share one core, two calls' time for nothing. (Found
        released, pairs still show whether two at once gain.)"""
        if (self.no_pair or self.solo_crowded or self.parallel or self.pairs_judged >= PAIRS
                or self.gil == "held"):
            return False
        return self.pair_tries < PAIR_TRIES

    @property
    def transport(self) -> float | None:
        return self.transport_seen

    def saw_process(self, trip: tuple[float, float] | None, work: float) -> None:
        """A process probe took ``work`` seconds in its worker; ``trip`` is its round trip
        and the part of it spent sending (None if the call started the workers, which
        says nothing of the transport)."""
        if self.process_work is None or work < self.process_work:
            self.process_work = work
        if trip is not None:
            self.process_probes += 1
            round_trip, sending = trip
            seen = max(0.0, round_trip - work)
            if self.transport_seen is None or seen < self.transport_seen:
                self.transport_seen, self.sending_seen = seen, min(sending, seen)

    def process_estimate(self, cores: int, wall: float) -> float | None:
        """Seconds per call on ``cores`` busy processes. Sending is serial, here; the rest
        of the transport (the worker unpickling, the reply) overlaps like the work does."""
        if self.transport_seen is None:
            return None
        sending = self.sending_seen or 0.0
        work = self.process_work or wall
        return (work + self.transport_seen - sending) / cores + sending


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
            if p["run"]:
                lines.append(f"    in a run of {p['run'][0]} calls: {_us(p['run'][1])} a call")
            held, released, longest = p["gil_probes"]
            if held or released:
                lines.append(f"    GIL-wait probes: {held} found the GIL held, {released} "
                             f"released (longest wait {_us(longest)}); pairs of threads: "
                             f"{p['pairs'][0]} tried")
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
    if seconds < 1e-5:  # add_one: 0.03 µs a call in a run
        return f"{seconds * 1e6:.2g} µs"
    return f"{seconds * 1e6:,.0f} µs" if seconds < 0.1 else f"{seconds:.2f} s"


@dataclass(frozen=True)
class AutoStatistics:
    """A snapshot of the auto lane, from ``statistics()``."""

    profiles: int  # (function, argument size) pairs seen
    exploring: int  # of those, still measuring
    decided: dict[str, int]  # lane -> profiles sent there


class AutoLane(LaneBase):
    """Routes calls to the other lanes of a registry (which run them).

    It is a lane itself (the protocol's submit, map, shutdown...), and reaches the others
    only through ``router``: ``router.lane(name, internal=True)`` starts one on first use,
    even while the executor shuts down (calls it accepted before still go somewhere).
    """

    def __init__(self, router: Lanes, process_count: int) -> None:
        self._router = router
        self._cores = max(1, process_count)
        self._lock = threading.Lock()
        self._profiles: dict[tuple, Profile] = {}
        self._free_threaded = not getattr(sys, "_is_gil_enabled", lambda: True)()
        self._closed = False

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
        with self._lock:
            if not counted:
                p.calls += 1
            if p.exploring and not p.probes_out:
                lane = self._next_probe_locked(p)
            elif p.lane is None:
                p.backlog.append((future, fn, args, kwargs, options))  # waits for a decision
                return future
            else:
                lane = p.lane
            call = self._take_pair_locked(p, lane)
        self._send(p, lane, future, fn, args, kwargs, options)
        if call is not None:
            self._send(p, lane, *call)
        return future

    def map_calls(self, fn: Any, items: Sequence[Any], single: bool, chunksize: int | None,
                  options: TaskOptions | None, caller_waits: bool) -> tuple[list, bool]:
        """A map's calls: (futures in order, whether each future's result is a list).

        ``items`` are single arguments or argument tuples. A decided function's calls run
        in segments (inline, here, or in process chunks) or, on a thread or a loop, one
        by one. An undecided one explores with the first calls while the rest wait as a
        few segments, released once it is decided. With ``caller_waits`` (a blocking
        ``map``, not ``map_async``) the first probes run here, in the calling thread, as
        long as they are tiny: a map of tiny calls then costs what a loop would.

        ``chunksize``, if given, is the size of the chunks a decided map sends to the
        processes. With ``options`` every call is placed as a ``submit`` of its own.
        """
        n = len(items)
        if n == 0:
            return [], False
        if options is not None:
            return [self.submit(fn, args, {}, options)
                    for args in _calls(items, 0, n, single)], False
        key = _function_key(fn)
        first_args = _args(items, 0, single)
        p = self._profile(fn, first_args, {}, key)
        last_args = _args(items, n - 1, single)
        if n < 3 or (last_args is not first_args and  # sizes vary: one by one
                     p is not self._profile(fn, last_args, {}, key)):
            return [self.submit(fn, args, {}) for args in _calls(items, 0, n, single)], False
        done, rest = self._probe_here(p, fn, items, single) if caller_waits else ([], None)
        if rest is not None:  # the watcher sent the rest to threads while the probe waited
            return done + rest, False
        k = len(done)
        with self._lock:
            if p.coroutine and p.exploring and not p.probes_out:
                # Decided without a probe: the calls go straight to the loop, with no
                # segment gathering them (which cost a 200-call map 1.5 ms, 10% of it).
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
            return done + self._submit_each(p, lane, fn, _calls(items, k, n, single)), False
        # The first calls wait one by one, the rest in segments; the next probes (a pair
        # takes two at once) come from them.
        head_end = min(n, k + HEAD)
        waiting: list[tuple] = [(LaneFuture(), fn, args, {}, None)
                                for args in _calls(items, k, head_end, single)]
        bulk = [Segment(LaneFuture(), fn, items, a, b, single)
                for a, b in _bounds(head_end, n, self._cores * SEGMENTS_PER_CORE)]
        release: list = []
        with self._lock:
            queued = p.lane is None or p.exploring
            if queued:
                p.calls += n - k
                p.backlog.extend(waiting)
                p.bulk.extend(bulk)
                if not p.probes_out:
                    release = self._next_probe_from_backlog_locked(p)
        if not queued:  # decided meanwhile
            return done + [self.submit(fn, args, {}) for args in _calls(items, k, n, single)], False
        self._send_all(p, release)
        return [gather(done + [call[0] for call in waiting])] + [
            segment.piece for segment in bulk], True

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
                self._next_probe_locked(p)  # a solo probe: probes_out = 1
                p.calls += 1
            args = _args(items, len(done), single)
            future = LaneFuture()
            future.set_running_or_notify_cancel()
            done.append(future)
            # Watched for the GIL-wait probes; the first call also because it may wait
            # for long (the watcher then sends the rest of the map to threads).
            watched, gil = CallerProbe(), GilSamples()
            take_over = (None if done[:-1] else
                         functools.partial(self._take_over, p, watched, fn, items, single))
            watched.ticket = _watch_probe(gil, take_over)
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

    def _probe_ended(self, watched: CallerProbe) -> list | None:
        """The caller's probe is over: the futures the watcher made, if it did."""
        if watched.ticket:
            _wait_watch().unwatch(watched.ticket)  # if it is taking over, once it is done
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
            self._decide_locked(p, "thread", "waiting (seen while its first call ran)",
                                EARLY_S)
            p.early = True
            queued = self._release_locked(p, "thread")  # other callers' calls, if any
            p.calls += len(items) - 1
        self._send_all(p, queued)
        # Taken over: the caller, once its probe ends, returns these. It cannot miss
        # them: its unwatch() waits for this callback to end. Sent as decided calls go,
        # most with no timing (all 399 timed cost a 400-call map of HTTP GETs ~4 ms).
        rest = self._submit_each(p, "thread", fn, _calls(items, 1, len(items), single))
        with self._lock:
            watched.rest = rest

    def _confirm_early_locked(self, p: Profile, wall: float, cpu: float) -> None:
        """The early-judged call ended: one that mostly waited confirms the thread lane;
        one that computed after all is explored again (what went to threads stays)."""
        p.early = False
        if cpu < WAITING * wall:
            p.verdict, p.basis, p.recent = "mostly waiting", wall, wall
            p.basis_cpu = p.recent_cpu = cpu
            return
        p.exploring, p.lane, p.verdict = True, None, "exploring: its first call computed"

    def _map_decided(self, p: Profile, lane: str, fn: Any, items: Sequence[Any], start: int,
                     single: bool, chunksize: int | None = None) -> list:
        """Segments for ``items[start:]`` of a decided map. Process, or inline with work
        enough for every core: process chunks. Else inline, here and now, as one segment."""
        n = len(items)
        head: list = []
        if (lane == "inline" and p.basis < TINY_S and p.basis_calls < MEASURED_CALLS
                and self._worth_chunks(p, n - start)):
            # A tiny call's time alone says little (see MEASURED_RUN_S): time a run first.
            # 20,000 calls of add_one went to processes for 2 ms; the caller takes 1 ms.
            stop = min(n, start + max(MEASURED_CALLS, int(MEASURED_RUN_S / max(p.basis, 1e-9))))
            segment = Segment(LaneFuture(), fn, items, start, stop, single)
            self._run_segment(p, segment, rebase=True)
            head, start = [segment.piece], stop
        if lane == "process" or self._worth_chunks(p, n - start):
            pool = self._router.lane("process", internal=True)
            bounds = (_bounds(start, n, self._cores * SEGMENTS_PER_CORE) if chunksize is None
                      else [(a, min(a + chunksize, n)) for a in range(start, n, chunksize)])
            return head + [pool.submit_chunk(fn, items, a, b, single) for a, b in bounds]
        segment = Segment(LaneFuture(), fn, items, start, n, single)
        self._run_segment(p, segment)
        return head + [segment.piece]

    def _profile(self, fn: Any, args: tuple, kwargs: dict, fkey: tuple | None = None) -> Profile:
        key = (fkey or _function_key(fn), _bucket(args, kwargs))
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
        if p.solo_wanted():
            p.probes_out = 1
            return "probe:solo"
        # A pair that ran together with no call robbed of its core, unless one already
        # showed the GIL released: another process stealing a core can make a releasing
        # function look held, never the reverse (held, two threads use one core at most).
        # Nor when the call alone kept every core busy (its own native threads): two at
        # once would only fight over them (NumPy's BLAS ran each 10x slower so). Nor when
        # the GIL-wait probes settled it (``pair_wanted``).
        if p.pair_wanted():
            p.pair_tries += 1
            p.probes_out = 2
            p.pair.clear()
            p.pair_stolen = False
            p.pair_gate = PairGate()
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
              kwargs: dict, options: TaskOptions | None = None) -> None:
        probe = lane[6:] if lane.startswith("probe:") else None
        if probe is not None:
            lane = "process" if probe == "process" else "thread"
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
            timed_args += (p.others_exactly(),)
        elif probe == "pair":
            timed, timed_args = timed_pair_probe, (p.pair_gate, fn, args, kwargs)
        if not future.set_running_or_notify_cancel():
            if probe is not None:
                self._settle_probe_missing(p)
            return
        sent = time.perf_counter()
        try:
            inner = self._router.lane(lane, internal=True).submit(timed, timed_args, {}, options)
        except BaseException as exc:  # the lane is shut down
            settle_quietly(future, error=exc)
            return
        sending = time.perf_counter() - sent  # pickling the call, here, before it goes

        def done(inner_future: Any) -> None:
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
            if probe is None:
                (result, wall, cpu, start), stolen, crowded = inner_future.result(), False, False
            elif probe == "solo":
                result, wall, cpu, start, stolen, crowded, gil = inner_future.result()
            else:
                result, wall, cpu, start, stolen, crowded = inner_future.result()
            self._settle(p, lane, future, result, wall, cpu, start,
                         (time.perf_counter() - sent, sending), probe, stolen, crowded, gil)

        inner.add_done_callback(done)

    def _settle(self, p: Profile, lane: str, future: LaneFuture, result: Any, wall: float,
                cpu: float, start: float, trip: tuple[float, float] | None, probe: str | None,
                stolen: bool = False, crowded: bool = False,
                gil: tuple[int, int, float] | None = None) -> None:
        """Records a call that ran (``trip``: its round trip and the time spent sending it,
        for a call to another lane; ``stolen`` and ``crowded``: see ``timed_probe``;
        ``gil``: a solo probe's GIL-wait probes, see ``GilSamples``) and settles its
        future."""
        settle_quietly(future, result)
        release: list = []
        if stolen and probe != "pair":
            wall = cpu  # the work, as it would run on a core of its own
        with self._lock:
            p.record(lane, wall, cpu)
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
                        and p.pair_gate.contended(_span(p.pair))):
                    p.pair_stolen = True
                    p.pairs_contended += 1
                if _overlapped(p.pair):
                    # A call that lost its core to another process makes a function that
                    # releases the GIL look held, never the reverse: such a pair is only
                    # evidence of release.
                    p.pairs_judged += not p.pair_stolen
                    p.parallel_seen = max(p.parallel_seen, _cores_used(p.pair))
                    if p.solo is not None:
                        speedup = 2 * p.solo[0] / _span(p.pair)
                        p.speedup_seen = max(p.speedup_seen, speedup)
                        if speedup < SLOWER_TOGETHER:  # threads lose, whatever the reason
                            p.pairs_judged = PAIRS
            elif probe in ("process", "cold"):
                p.saw_process(trip if probe == "process" else None, wall)
            if probe is not None:
                p.probes_out -= 1
                if not p.probes_out:
                    release = self._after_probes_locked(p)
            else:
                p.drifted()
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

    def _outlived(self, p: Profile, timeout: float) -> None:
        """A probe ran past its timeout on a thread, which cannot stop it (it runs on
        there, as on the thread lane): only a process can stop such a call, so the
        function's calls go to processes from now on."""
        with self._lock:
            p.probes_out = max(0, p.probes_out - 1)
            if not p.exploring:
                return
            self._decide_locked(p, "process", "ran past its timeout on a thread, which "
                                "cannot stop it: a process can", timeout)
            release = self._release_locked(p, "process")
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
            else:
                self._send(p, lane, *call)

    def _send_segments(self, p: Profile, lane: str, segments: list[Segment]) -> None:
        """Released segments to processes (one chunk each) or to a thread or loop lane
        (inline ones run in ``_run_batch``)."""
        for segment in segments:
            piece = segment.piece
            if lane == "process":
                if not piece.set_running_or_notify_cancel():
                    continue
                try:
                    inner = self._router.lane("process", internal=True).submit_chunk(
                        segment.fn, segment.items, segment.start, segment.stop, segment.single)
                except BaseException as exc:  # the lane is shut down
                    settle_quietly(piece, error=exc)
                    continue
                inner.add_done_callback(functools.partial(_copy_outcome, piece))
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
            futures.append(_failed(exc))
            futures.extend(_failed(exc) for _ in calls)
        return futures

    def _run_segment(self, p: Profile, segment: Segment, rebase: bool = False) -> None:
        """Runs a segment inline, in this thread, and times it (with ``rebase``, the
        decision's time per call is then its own)."""
        if not segment.piece.set_running_or_notify_cancel():
            return
        rusage = _thread_rusage if rebase else None
        before = rusage() if rusage is not None else None
        try:
            results, wall, cpu = segment.run()
        except Exception as exc:
            segment.piece.set_exception(exc)
            return
        segment.piece.set_result(results)
        # A run that lost its core (to another process) did work for its CPU time only.
        # (With a process spinning on one core, a map of 2,000 tiny calls went to
        # processes in 1 test run of 14 without this, in 0 of 14 with it.)
        work = wall
        if (rusage is not None and before is not None
                and _lost_its_core(rusage().ru_nvcsw - before.ru_nvcsw, wall, cpu)):
            work = cpu
        with self._lock:
            p.record("inline", wall, cpu, len(segment))
            if rebase and not p.exploring:
                p.rebase(work, cpu, len(segment))
            p.drifted()

    def _run_batch(self, p: Profile, calls: list, segments: list[Segment]) -> None:
        """Runs a backlog inline, one call after another, on one thread."""
        for call in calls:
            self._send(p, "inline", *call)
        for segment in segments:
            self._run_segment(p, segment)

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
            inner.add_done_callback(functools.partial(_settle_chunk, futures))

    def _next_probe_from_backlog_locked(self, p: Profile) -> list:
        while not p.backlog and p.bulk and not self._closed:
            # More probes than a map's first calls: the next segment's calls go one by one.
            segment = p.bulk.popleft()
            if segment.piece.done():
                continue  # cancelled
            futures = [LaneFuture() for _ in range(len(segment))]
            gather(futures, segment.piece)
            p.backlog.extend((future, segment.fn, args, {}, None)
                             for future, args in zip(futures, segment.calls(), strict=True))
        if not p.backlog or self._closed:
            return []  # the next submit explores
        lane = self._next_probe_locked(p)
        if not p.exploring:  # decided without a probe (a coroutine function): all go
            return self._release_locked(p, lane)
        first = p.backlog.popleft()
        second = self._take_pair_locked(p, lane)
        return [(lane, *first)] + ([(lane, *second)] if second is not None else [])

    # ---------------------------------------------------------------- deciding

    def _after_probes_locked(self, p: Profile) -> list:
        """A probe round ended: decide if the evidence suffices and release the backlog,
        else send the next probe. Returns the calls to send now."""
        verdict = self._verdict_locked(p)
        if verdict is None:
            return self._next_probe_from_backlog_locked(p)
        return self._release_locked(p, verdict[0])

    def _worth_chunks(self, p: Profile, calls: int) -> bool:
        """Whether ``calls`` calls decided inline go to processes in chunks: with work
        enough for more than one core, and small arguments (a chunk shares the fixed
        cost of a round trip between its calls, not the cost of copying their bytes)."""
        return self._cores > 1 and p.bucket == 0 and calls * p.basis >= CHUNKS_MIN_S

    def _release_locked(self, p: Profile, lane: str) -> list:
        """Empties the backlog and the bulk: what to send to ``lane`` (see _send_all)."""
        calls, p.backlog = list(p.backlog), deque()
        segments, p.bulk = list(p.bulk), deque()
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
        return [(lane, *call) for call in calls] + (
            [("segments", lane, segments)] if segments else [])

    def _verdict_locked(self, p: Profile) -> tuple | None:
        if p.solo is None:
            return None
        wall, cpu = p.solo
        # A slow first call can be an outlier (a cold cache, an import); a tiny one cannot.
        if p.solo_wanted() and wall >= TINY_S:
            return None
        if wall < TINY_S:
            return self._decide_locked(p, "inline", "tiny: shipping it costs more", wall)
        if cpu < WAITING * wall:
            return self._decide_locked(p, "thread", "mostly waiting", wall)
        if self._free_threaded:
            return self._decide_locked(p, "thread", "computing on a free-threaded CPython", wall)
        if p.parallel:
            return self._decide_locked(p, "thread", "computing without holding the GIL", wall)
        if p.solo_crowded:
            # Alone, it kept every core busy with threads of its own (NumPy's BLAS does):
            # no lane has a core to add, and a worker would get a share of them. A probe
            # in a process cost a 40-call map of matrix products 7 ms here, 12%.
            return self._decide_locked(p, "inline", "computing on every core already", wall)
        if (p.gil == "released" and p.parallel_seen >= PARALLEL_CORES
                and p.speedup_seen >= RELEASED_SPEEDUP):
            # A pair used more than one core (robbed of a core or not: holding the GIL,
            # two calls cannot, so a probe misread is caught) and was no slower than two
            # in a row: threads, with no transport and no more pairs. (Two 64 MB NumPy
            # sums at once gained 0.85-1.5x here, memory-bound, and 1.3x on 32 threads.)
            # Threads that lose (NumPy's BLAS threads rob their own pair) go to the
            # process probe as before.
            return self._decide_locked(
                p, "thread", f"computing without holding the GIL {p.gil_wait}", wall)
        if p.pair_wanted():
            return None
        if p.gil == "released" and p.parallel_seen >= PARALLEL_CORES:
            # Two at once ran on two cores, free of the GIL, and gained nothing: what they
            # wait for is something both share (memory bandwidth: two 64 MB NumPy sums),
            # and processes would share it too, after copying the arguments. A process
            # probe cost that 20-call map 14 ms, 15-50% of it, to learn so.
            return self._decide_locked(
                p, "inline", f"computing without holding the GIL, but two at once were no "
                f"faster than two in a row ({p.speedup_seen:.2f}x) on "
                f"{p.parallel_seen:.1f} cores: they share some other limit (memory, say)",
                wall)
        if p.gil == "released" and p.gil_released >= 2 and not p.pairs_judged and p.pair_tries:
            # Every pair lost a core to another task of the machine (or never ran
            # together): they cannot tell, and the GIL-wait probes stand, as the decision
            # matrix has it, if two or more found it released (one can be misread: a GIL
            # handed over just as the watcher asked). A clean pair that used one core
            # between them tells: the GIL is held part of the time after all, and the
            # process probe is next.
            return self._decide_locked(
                p, "thread", f"computing without holding the GIL {p.gil_wait}; no pair could "
                "run on two free cores here", wall)
        if p.transport_seen is None:
            return None
        # Against the call here: in a worker it can be slower (NumPy's BLAS gets one core
        # per worker there, all of them here). Much slower, it may be an outlier: a JSON
        # parse took 7.5 ms here and 15.9 ms in a worker, then 8 ms there. One more look.
        work = p.process_work or wall
        if work > PROCESS_OUTLIER * wall and p.process_probes < PROCESS_PROBES:
            return None
        if self._cores > 1 and (p.process_estimate(self._cores, wall) or wall) < wall:
            if p.gil == "held":
                verdict = f"computing with the GIL held {p.gil_wait}"
            elif p.pair and p.gil != "released":  # a pair that used one core between them
                verdict = "computing with the GIL held"
            else:
                verdict = "computing"
            return self._decide_locked(p, "process", verdict, work)
        if work / self._cores >= wall:
            return self._decide_locked(p, "inline", f"computing, no faster on {self._cores} "
                                       f"processes: {_us(work)} a call in one", wall)
        return self._decide_locked(
            p, "inline", "computing, too little to outweigh the transport to a process", wall)

    def _decide_locked(self, p: Profile, lane: str, verdict: str, basis: float) -> tuple:
        p.lane, p.verdict, p.basis, p.recent = lane, verdict, basis, basis
        p.basis_cpu = p.recent_cpu = p.solo[1] if p.solo is not None else 0.0
        p.basis_calls = 1
        p.computing = p.solo is not None and p.solo[1] >= WAITING * p.solo[0]
        p.exploring = False
        return (lane, verdict)

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        """The executor is shutting down: calls still waiting for a decision go now, to
        the lane decided or, without one, to a thread (no call is lost or left hanging);
        the executor then waits for those lanes. With ``cancel_futures`` they are
        cancelled instead."""
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
        key = _function_key(fn)
        with self._lock:
            found = [p for (k, _), p in self._profiles.items() if k == key]
            return Explanation(describe(fn), tuple(self._evidence(p) for p in found))

    def forget(self, fn: Any = None) -> None:
        """Drops the profiles of ``fn`` (None: all) that have no call waiting in them."""
        key = None if fn is None else _function_key(fn)
        with self._lock:
            for k, p in list(self._profiles.items()):
                if (key is None or k[0] == key) and not (p.backlog or p.bulk or p.probes_out):
                    del self._profiles[k]

    def _evidence(self, p: Profile) -> dict[str, Any]:
        # A run of calls timed together, when there is one (see MEASURED_RUN_S), else a
        # call alone.
        work = p.basis if p.basis_calls > 1 else p.solo[0] if p.solo else None
        estimates: dict[str, float] = {}
        if work is not None:
            estimates["inline"] = work
            parallel = p.parallel or (p.gil == "released" and p.lane == "thread")
            estimates["thread"] = work / self._cores if parallel else work
            process = p.process_estimate(self._cores, work)
            if process is not None:
                estimates["process"] = process
        return {
            "argument_bytes": _bucket_bytes(p.bucket),
            "calls": p.calls, "lane": p.lane, "verdict": p.verdict,
            "solo_wall_s": p.solo[0] if p.solo else None,
            "solo_cpu_s": p.solo[1] if p.solo else None,
            "run": (p.basis_calls, p.basis) if p.basis_calls > 1 else None,  # calls, s each
            "transport_s": p.transport,
            "pairs": (p.pair_tries, p.pairs_judged, p.pairs_contended),  # tried, counted, robbed
            "gil": p.gil,  # as the GIL-wait probes found it: "held", "released" or None
            "gil_probes": (p.gil_held, p.gil_released, p.gil_longest),  # held, released, longest
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


def _able(lane: str, options: TaskOptions) -> str:
    """The lane that can honour ``options`` in place of ``lane``: only a process can stop
    a call that runs past its timeout, so a timed call decided inline goes there."""
    return "process" if lane == "inline" and options.timeout is not None else lane


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
            settle_quietly(future, error=error)
        return
    for future, (ok, value) in zip(futures, inner.result(), strict=True):
        if ok:
            settle_quietly(future, value)
        else:
            settle_quietly(future, error=value)


def _args(items: Sequence[Any], index: int, single: bool) -> tuple:
    """The argument tuple of ``items[index]``."""
    return (items[index],) if single else items[index]


def _calls(items: Sequence[Any], start: int, stop: int, single: bool) -> Any:
    """The argument tuples of ``items[start:stop]``."""
    part = items[start:stop]
    return ((item,) for item in part) if single else part


def _bounds(start: int, stop: int, count: int) -> list[tuple[int, int]]:
    """[start, stop) cut into at most ``count`` ranges of nearly equal length."""
    size = max(1, -(-(stop - start) // count))
    return [(a, min(a + size, stop)) for a in range(start, stop, size)]


def _failed(exc: BaseException) -> LaneFuture:
    future = LaneFuture()
    future.set_exception(exc)
    return future


def _copy_outcome(piece: LaneFuture, inner: Any) -> None:
    error = inner.exception()
    settle_quietly(piece, *((None, error) if error is not None else (inner.result(), None)))
