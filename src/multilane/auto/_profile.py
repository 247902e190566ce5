"""A profile: the evidence the auto lane holds about one function at one argument size,
and the routing state its calls share (the backlog waiting for a decision).

Calls are grouped by function (module, qualified name and code object) and argument size
(one bucket below 64 KiB, then one per 16x of the bytes its arguments hold), so a
function that is cheap on small inputs and costly on large ones is judged for each."""

from __future__ import annotations

import math
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ._explain import us
from ._params import (
    CLEARLY_WAITING_INTERVALS,
    COMPUTED_ALL_ALONG,
    DRIFT,
    EXACT_OTHERS_S,
    PAIR_TRIES,
    PAIRS,
    PARALLEL_CORES,
    PICKLE_TIMED_BYTES,
    SMALL_ARGUMENTS,
    SOLO_RUNS,
    THREAD_SPEEDUP,
    TINY_S,
    WAITING,
)
from ._segments import Segment

__all__ = [
    "LaneTime", "Profile", "arguments_size", "bucket_bytes", "bucket_of", "cores_used",
    "function_key", "overlapped", "pickling_time", "size_of", "span",
]


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


def pickling_time(*values: Any) -> float:
    """Seconds pickling ``values`` takes here, as a call to a process pickles them (the
    faster of two tries, unless the first took over a millisecond); 0 for numbers only,
    for more than PICKLE_TIMED_BYTES, and for what cannot be pickled (it never goes to a
    process)."""
    if all(type(v) in _UNSIZED for v in values):
        return 0.0
    if sum(_size_of(v) for v in values) > PICKLE_TIMED_BYTES:
        return 0.0
    from ..buffers._serialize import dumps  # (the auto lane's import stays light)

    best = math.inf
    try:
        for _ in range(2):
            start = time.perf_counter()
            dumps(values)
            best = min(best, time.perf_counter() - start)
            if best > 1e-3:  # an object graph of unknown size: once is enough, and exact
                break
    except Exception:  # noqa: BLE001 -- unpicklable: the process probe will say so
        return 0.0
    return best


def arguments_size(args: tuple, kwargs: dict) -> int:
    """The bytes a call's arguments hold, roughly: lengths of sized values, ``nbytes`` of
    arrays, 0 for numbers."""
    size = 0
    for a in args:
        size += _size_of(a)
    if kwargs:
        size += sum(_size_of(v) for v in kwargs.values())
    return size


def size_of(value: Any) -> int:
    """The bytes ``value`` holds, as ``arguments_size`` counts them (a result, say)."""
    return _size_of(value)


def bucket_of(args: tuple, kwargs: dict) -> int:
    size = arguments_size(args, kwargs)
    return 0 if size < SMALL_ARGUMENTS else ((size.bit_length() - 17) >> 2) + 1


def bucket_bytes(bucket: int) -> int:
    """The fewest argument bytes of a bucket."""
    return 0 if bucket == 0 else SMALL_ARGUMENTS << (4 * (bucket - 1))


def function_key(fn: Any) -> tuple:
    code = getattr(fn, "__code__", None)
    if code is None:
        code = getattr(getattr(fn, "__wrapped__", None), "__code__", None)
    name = getattr(fn, "__qualname__", None)  # (on every call: no repr unless needed)
    return (getattr(fn, "__module__", None), name if name is not None else repr(type(fn)),
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
    cluster_work: float | None = None  # a cluster worker's time for a call, at best
    # The longest a worker took to load the function (importing its module, or rebuilding
    # it by value): paid once per worker, never counted as transport.
    setup_seen: float = 0.0
    unpicklable: str | None = None  # why it cannot go to a process, if it cannot
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
    # Bytes a call ships to a process: its arguments (the first call's) and its result (the
    # largest a probe returned).
    arg_bytes: int = 0
    result_bytes: int = 0
    # Seconds pickling a call's arguments, and its result, took here (``pickling_time``,
    # once each): what shipping them costs this process when that is more than their bytes.
    args_pickle_s: float = 0.0
    result_pickle_s: float | None = None  # None: no result timed yet
    fingerprint: str | None = None  # its key in the profile store (None: not stored)
    learned: bool = False  # decided by a record of an earlier run
    concurrency: int = 0  # decided "thread": how many of its calls may run at once
    spread: int = 0  # worker processes its waiting calls were spread over (``_spread``)
    warmed: bool = False  # the workers were sent the function to load
    warming: bool = False  # the probe out is the warm-up probe (``AutoLane._warm``)
    # Where calls submitted while the warm-up probe is out go: the lane the model picks
    # from what it has measured so far (``best_known``); None: they wait in the backlog.
    guess: str | None = None
    draining: bool = False  # a thread (or a map's caller) runs the backlog meanwhile
    no_pair: bool = False  # calls come one at a time: two cannot be run at once
    # A pair probe's first call went out with no second waiting: the next submit joins
    # it (the first waits up to PAIR_WAIT_S for it at the gate).
    pair_open: bool = False
    # (future, fn, args, kwargs, options) per call
    backlog: deque = field(default_factory=deque)
    bulk: deque[Segment] = field(default_factory=deque)  # the rest of maps, undecided
    calls: int = 0
    coming: int = 0  # calls of maps probed in their caller, not counted in ``calls`` yet
    early: bool = False  # sent to threads while its first call was still waiting
    # Decided before a process probe fit the exploration budget: explore again once it
    # has had this many calls (0: never, see ``Decision.revisit``).
    revisit: int = 0

    def record(self, lane: str, wall: float, cpu: float, calls: int = 1) -> None:
        """``calls`` calls took ``wall`` and ``cpu`` seconds between them."""
        t = self.lanes.setdefault(lane, LaneTime())
        t.calls += calls
        t.wall += wall
        t.cpu += cpu
        # On threads, a computing call's wall time is mostly its wait for the GIL or a
        # core while the others run (with many calls at once on few cores, many times its
        # time alone), and says nothing of its work: its CPU time does.
        work = (cpu if lane == "thread" and self.computing else wall) / calls
        self.recent = work if not self.recent else self.recent + 0.05 * (work - self.recent)
        cpu /= calls
        self.recent_cpu = (cpu if not self.recent_cpu
                           else self.recent_cpu + 0.05 * (cpu - self.recent_cpu))

    def ran_alone(self, wall: float, cpu: float, calls: int = 1) -> None:
        """``calls`` calls run one after another here while the workers warmed up (see
        ``AutoLane._warm``): their time per call, if under the solo probes', is the better
        figure of the work. A solo probe on a thread shares the GIL with a caller still
        submitting, and a first call is often cold: a 14 µs file round trip read 50-160
        µs there, looked too long to be tiny, and paid for a process probe."""
        if self.solo is not None and wall < calls * self.solo[0]:
            self.solo = (wall / calls, cpu / calls)

    def decide(self, lane: str, verdict: str, basis: float, revisit: int = 0) -> None:
        """Ends exploring: calls go to ``lane``, for ``verdict``, based on ``basis`` seconds
        of work per call (a drift is measured from it), until it has had ``revisit`` calls
        (if not 0: see ``Decision.revisit``)."""
        self.lane, self.verdict, self.basis, self.recent = lane, verdict, basis, basis
        self.revisit = revisit
        self.basis_cpu = self.recent_cpu = self.solo[1] if self.solo is not None else 0.0
        self.basis_calls = 1
        self.computing = self.solo is not None and self.solo[1] >= WAITING * self.solo[0]
        self.exploring = False

    def to_record(self) -> dict[str, Any]:
        """What a later run needs to start decided (see ``restore``): plain JSON values."""
        return {"lane": self.lane, "verdict": self.verdict, "basis": self.basis,
                "basis_cpu": self.basis_cpu, "basis_calls": self.basis_calls,
                "computing": self.computing, "concurrency": self.concurrency,
                "setup": self.setup_seen, "transport": self.transport_seen,
                "sending": self.sending_seen, "process_work": self.process_work,
                "result_bytes": self.result_bytes, "pickle_s": self.pickle_s,
                "solo": list(self.solo) if self.solo is not None else None,
                # What the GIL-wait probes and the pairs found: whether the GIL holds its
                # calls back, which the threads' estimate and spreading rest on.
                "gil": [self.gil_held, self.gil_released, self.gil_longest],
                "pairs": [self.pair_tries, self.pairs_judged, self.pairs_contended,
                          self.parallel_seen, self.speedup_seen]}

    def restore(self, record: dict[str, Any], lanes: tuple[str, ...]) -> bool:
        """Decides as ``record`` says (an earlier run's ``to_record``), if it holds a lane of
        ``lanes`` and sound figures; False (and nothing changed) if not. Calls are still
        timed as decided ones are: a drift explores again."""
        try:
            lane, verdict = record["lane"], str(record["verdict"])
            basis, basis_cpu = float(record["basis"]), float(record["basis_cpu"])
            calls, concurrency = int(record["basis_calls"]), int(record["concurrency"])
            setup = float(record["setup"])
            transport, sending, work, solo = (record["transport"], record["sending"],
                                              record["process_work"], record["solo"])
            solo = None if solo is None else (float(solo[0]), float(solo[1]))
            held, released, longest = record.get("gil") or (0, 0, 0.0)
            tries, judged, contended, parallel, speedup = record.get("pairs") or (0, 0, 0, 0, 0)
            counts = [int(x) for x in (held, released, tries, judged, contended)]
            gil_pairs = [float(x) for x in (longest, parallel, speedup)]
            figures = [basis, basis_cpu, setup] + [float(x) for x in (transport, sending, work)
                                                   if x is not None]
        except (KeyError, TypeError, ValueError, IndexError):
            return False
        if lane not in lanes or calls < 1 or not all(math.isfinite(x) and x >= 0
                                                      for x in figures + gil_pairs + counts):
            return False
        self.lane, self.verdict, self.exploring, self.learned = lane, verdict, False, True
        self.basis = self.recent = basis
        self.basis_cpu = self.recent_cpu = basis_cpu
        self.basis_calls, self.concurrency, self.setup_seen = calls, concurrency, setup
        self.computing, self.solo = bool(record.get("computing")), solo
        self.transport_seen = None if transport is None else float(transport)
        self.sending_seen = None if sending is None else float(sending)
        self.process_work = None if work is None else float(work)
        self.warmed = lane == "process"  # its workers load it with their first calls
        self.result_bytes = max(0, int(record.get("result_bytes") or 0))
        try:
            pickled = float(record.get("pickle_s") or 0.0)
        except (TypeError, ValueError):
            pickled = math.nan
        self.args_pickle_s, self.result_pickle_s = (pickled, 0.0) if (
            math.isfinite(pickled) and pickled >= 0) else (0.0, None)
        self.gil_held, self.gil_released, self.pair_tries, self.pairs_judged, \
            self.pairs_contended = counts
        self.gil_longest, self.parallel_seen, self.speedup_seen = gil_pairs
        return True

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
        if self.revisit and self._revisit_due():
            return self._probe_again()
        by_cpu = False
        if self.lane == "thread" and not self.computing:
            # Waiting, on threads: its wall time there also holds its waits for the GIL
            # and for a core while the others run (among many threads, a call that waits
            # and then computes can take several times its time alone), so only a fall
            # counts in wall time; a rise counts in CPU time, once the call computes for
            # half its old wall time.
            by_cpu = (self.recent_cpu > DRIFT * self.basis_cpu
                      and self.recent_cpu >= WAITING * self.basis)
            if not by_cpu and self.recent >= self.basis / DRIFT:
                return False
        elif (self.lane == "inline" and self.computing and self.recent >= TINY_S
              and self.recent_cpu < WAITING * self.recent):
            # Decided here for computing, its calls now mostly wait, long enough for
            # threads to overlap: the premise of the decision is gone (a first run can
            # misjudge a call, and a stored decision lasts).
            return self._explore_again(
                f"exploring again: its calls now mostly wait ({us(self.recent_cpu)} CPU of "
                f"{us(self.recent)})")
        elif self.lane == "inline" and self.recent <= self.basis * DRIFT:
            # Run here, a call that got cheaper is only more at home here; the time per
            # call it is judged by follows it down (a first call timed cold, a solo probe
            # that shared the GIL with a caller still submitting, read several times it).
            if self.recent < self.basis / DRIFT:
                self.basis = self.recent
            return False
        elif self.basis / DRIFT <= self.recent <= self.basis * DRIFT:
            return False
        return self._explore_again("exploring again: " + (
            f"CPU time per call moved from {us(self.basis_cpu)} to {us(self.recent_cpu)}"
            if by_cpu else f"work per call moved from {us(self.basis)} to {us(self.recent)}"))

    def _revisit_due(self) -> bool:
        """Whether the process probe the decision could not pay for fits now: the calls
        had ``revisit`` of them, or, run here, took as long as that many at the basis
        would (their mean as timed here: a function whose cost varies can average 20
        times its two solo probes, and pays for the probe that much sooner)."""
        if self.calls >= self.revisit:
            return True
        here = self.lanes.get("inline") if self.lane == "inline" else None
        return (here is not None and here.calls > 0
                and self.calls * here.mean_wall >= self.revisit * self.basis)

    def _probe_again(self) -> bool:
        """Enough calls now to pay for the process probe the decision could not: explore
        again for it, keeping what the other probes found (forgotten, the solo probes
        would run again on a thread beside a caller still submitting, and read a 22 µs
        call as 150 µs, mostly waiting). Decided here, the mean time per call timed here
        replaces the solo's: it is the same calls run as they will be, not two of them on
        a thread, and holds a varying cost's long calls."""
        here = self.lanes.get("inline") if self.lane == "inline" else None
        if here is not None and here.calls > 0 and self.solo is not None:
            self.solo = (here.mean_wall, min(here.mean_cpu, here.mean_wall))
        self.verdict = (f"exploring again: {self.calls} calls now, enough to pay for a "
                        "process probe")
        self.revisit, self.exploring = 0, True
        return True

    def _explore_again(self, why: str) -> bool:
        """Forgets the evidence, to explore anew (calls keep flowing to the lane meanwhile)."""
        self.verdict, self.revisit, self.spread = why, 0, 0
        self.exploring, self.solo, self.pair, self.no_pair = True, None, [], False
        self.learned = False
        self.transport_seen = self.sending_seen = self.process_work = None
        self.cluster_work = None
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
        return f"(the watcher waited {us(self.gil_longest)} for it)"

    @property
    def parallel(self) -> bool:
        """A pair showed the GIL released, and two at once gaining on two in a row."""
        return self.parallel_seen >= PARALLEL_CORES and self.speedup_seen >= THREAD_SPEEDUP

    def solo_wanted(self) -> bool:
        """Whether to time (another) call alone: two are (the faster counts, a first call
        can be an outlier), but one is enough for a long call that barely used the CPU
        (waiting), or that computed all along and held the GIL for a whole switch
        interval (the process probe is next: a second solo of so long a call, run alone,
        would cost a short map a noticeable share of its time and tell nothing new)."""
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
        reading costs some microseconds, a clock per thread, so it is taken once per
        function)."""
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
    def argument_bytes(self) -> int:
        """The fewest argument bytes of its size bucket."""
        return bucket_bytes(self.bucket)

    @property
    def transport(self) -> float | None:
        return self.transport_seen

    def saw_process(self, trip: tuple[float, float] | None, work: float,
                    setup: float = 0.0) -> None:
        """A process probe took ``work`` seconds in its worker, after ``setup`` seconds
        loading the function there; ``trip`` is its round trip less that set-up, and the
        part of it spent sending (None if the call started the workers, which says nothing
        of the transport)."""
        self.setup_seen = max(self.setup_seen, setup)
        if self.process_work is None or work < self.process_work:
            self.process_work = work
        if trip is not None:
            self.process_probes += 1
            round_trip, sending = trip
            seen = max(0.0, round_trip - work)
            if self.transport_seen is None or seen < self.transport_seen:
                self.transport_seen, self.sending_seen = seen, min(sending, seen)

    @property
    def shipped_bytes(self) -> int:
        """Bytes a call of it ships to a process and back."""
        return self.arg_bytes + self.result_bytes

    @property
    def pickle_s(self) -> float:
        """Seconds pickling a call's arguments and result takes here, as timed."""
        return self.args_pickle_s + (self.result_pickle_s or 0.0)

    def process_estimate(self, cores: int, wall: float, work: float | None = None,
                         transport: float | None = None) -> float | None:
        """Seconds per call on ``cores`` busy processes, each call ``work`` seconds there
        (by default the worker's time, else ``wall``) and ``transport`` seconds of round
        trip (by default the one seen). Sending is serial, here; the rest of the transport
        (the worker unpickling, the reply) overlaps like the work does."""
        if self.transport_seen is None:
            return None
        transport = self.transport_seen if transport is None else transport
        sending = min(self.sending_seen or 0.0, transport)
        work = work or self.process_work or wall
        return (work + transport - sending) / cores + sending




def overlapped(pair: list[tuple[float, float, float]]) -> bool:
    """True if the two calls of a pair probe ran together for most of the shorter one:
    only then does their CPU time say anything about the GIL."""
    if len(pair) != 2:
        return False
    (w1, _, s1), (w2, _, s2) = pair
    overlap = min(s1 + w1, s2 + w2) - max(s1, s2)
    return overlap >= 0.8 * min(w1, w2)


def span(pair: list[tuple[float, float, float]]) -> float:
    (w1, _, s1), (w2, _, s2) = pair
    return max(max(s1 + w1, s2 + w2) - min(s1, s2), 1e-9)


def cores_used(pair: list[tuple[float, float, float]]) -> float:
    """CPU time of the two calls over the span they ran in: at most ~1 with the GIL held."""
    return (pair[0][1] + pair[1][1]) / span(pair)
