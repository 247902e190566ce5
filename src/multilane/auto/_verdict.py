"""The auto lane's decision: a pure function of a profile's evidence and the machine.

The measuring code (``_probes``, ``_lane``) fills the profile and never decides; this
module decides and never measures, so its rules are tested table-driven from recorded
evidence, without timing (tests/test_auto_verdict.py). In order, the rules:

1. no solo call timed yet, or a second one wanted: wait for it;
2. tiny -> inline (shipping it anywhere costs more than running it);
3. mostly waiting -> thread; on a free-threaded CPython, computing -> thread too;
4. a pair of calls on threads used more than one core and gained -> thread;
5. alone it kept every core busy with its own threads -> inline (no lane adds a core);
6. the GIL-wait probes found the GIL released, and a pair gained nothing or could not run
   on two free cores -> inline or thread, as the pair says;
7. a function (or arguments) that cannot be pickled -> inline;
8. otherwise the process probe decides: process if the work outweighs the transport on
   this machine's cores, else inline. The transport is the steady round trip: a
   worker's one-time set-up (loading the function) is measured apart and never in it.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from ._explain import nbytes, us
from ._params import (
    PARALLEL_CORES,
    PROCESS_OUTLIER,
    PROCESS_PROBES,
    RELEASED_SPEEDUP,
    SHIP_BYTE_S,
    SPREAD_CALL_S,
    THREAD_CALL_S,
    THREAD_START_S,
    TINY_S,
    WAITING,
)
from ._profile import Profile

__all__ = ["Decision", "chunk_gain", "spread_gain", "verdict", "waiting_concurrency"]


class Decision(NamedTuple):
    lane: str
    reason: str  # what ``explain()`` shows
    basis: float  # the work per call it is based on, in seconds (drift is measured from it)


def verdict(p: Profile, cores: int, free_threaded: bool = False) -> Decision | None:
    """Where the calls of ``p`` go, why, and the work per call that is based on; None
    while the evidence does not suffice (the next probe then comes from
    ``Profile.solo_wanted`` and ``Profile.pair_wanted``). ``cores``: the cores usable
    here; ``free_threaded``: this CPython runs without a GIL."""
    if p.solo is None:
        return None
    wall, cpu = p.solo
    # A slow first call can be an outlier (a cold cache, an import); a tiny one cannot.
    if p.solo_wanted() and wall >= TINY_S:
        return None
    if wall < TINY_S:
        return Decision("inline", "tiny: shipping it costs more", wall)
    if cpu < WAITING * wall:
        return Decision("thread", "mostly waiting", wall)
    if free_threaded:
        return Decision("thread", "computing on a free-threaded CPython", wall)
    if p.parallel:
        return Decision("thread", "computing without holding the GIL", wall)
    if p.solo_crowded:
        # Its own threads (a multithreaded BLAS, say) kept every core busy: no lane has a
        # core to add, and a worker would get only a share of them.
        return Decision("inline", "computing on every core already", wall)
    if (p.gil == "released" and p.parallel_seen >= PARALLEL_CORES
            and p.speedup_seen >= RELEASED_SPEEDUP):
        # A pair used more than one core (holding the GIL, two calls cannot, so a misread
        # GIL-wait probe is caught) and was no slower than two in a row: threads, with no
        # transport. Threads that lose (a BLAS whose threads rob their own pair) go on to
        # the process probe.
        return Decision("thread", f"computing without holding the GIL {p.gil_wait}", wall)
    if p.pair_wanted():
        return None
    if p.gil == "released" and p.parallel_seen >= PARALLEL_CORES:
        # Two at once ran on two cores, free of the GIL, and gained nothing: they wait for
        # something both share (memory bandwidth), which processes would share too, after
        # copying the arguments.
        return Decision(
            "inline", f"computing without holding the GIL, but two at once were no faster "
            f"than two in a row ({p.speedup_seen:.2f}x) on {p.parallel_seen:.1f} cores: "
            "they share some other limit (memory, say)", wall)
    if p.gil == "released" and p.gil_released >= 2 and not p.pairs_judged and p.pair_tries:
        # Every pair lost a core to another task of the machine (or never ran together):
        # they cannot tell, and the GIL-wait probes stand if two or more found it released
        # (one can be misread: a GIL handed over just as the watcher asked). A clean pair
        # that used one core between them says the GIL is held part of the time after
        # all, and the process probe is next.
        return Decision("thread", f"computing without holding the GIL {p.gil_wait}; no "
                        "pair could run on two free cores here", wall)
    if p.unpicklable is not None:
        return Decision("inline", f"computing; {p.unpicklable}", wall)
    if p.transport_seen is None and chunk_gain(wall, p.shipped_bytes, cores) <= 0:
        # Even at best for processes (no round trip, its work shared by every core), this
        # process would spend longer shipping its bytes than running it: no probe.
        return Decision("inline", f"computing, no faster on {cores} processes: shipping its "
                        f"{nbytes(p.shipped_bytes)} costs more than the call", wall)
    if p.transport_seen is None:
        return None
    # Against the call here: in a worker it can be slower (a BLAS gets one core per worker
    # there, every core here), and a single call there can be an outlier: one more look.
    work = p.process_work or wall
    if work > PROCESS_OUTLIER * wall and p.process_probes < PROCESS_PROBES:
        return None
    if cores > 1 and (p.process_estimate(cores, wall) or wall) < wall:
        if p.gil == "held":
            reason = f"computing with the GIL held {p.gil_wait}"
        elif p.pair and p.gil != "released":  # a pair that used one core between them
            reason = "computing with the GIL held"
        else:
            reason = "computing"
        return Decision("process", reason, work)
    if work / cores >= wall:
        return Decision("inline", f"computing, no faster on {cores} processes: {us(work)} a "
                        "call in one", wall)
    return Decision("inline", "computing, too little to outweigh the transport to a process",
                    wall)


def waiting_concurrency(wall: float, cpu: float, calls: int, floor: int, ceiling: int) -> int:
    """How many of ``calls`` calls to run at once on threads, each ``wall`` seconds long
    of which ``cpu`` compute (holding the GIL): as many as overlap their waits until the
    GIL is busy all the time (``wall / cpu``), and no more than pay for their own start
    (``k`` threads take ``calls * wall / k + k * THREAD_START_S``, least at the square
    root); never fewer than ``floor`` (the threads allowed already), never more than
    ``ceiling`` or ``calls``."""
    by_gil = wall / max(cpu, THREAD_CALL_S)
    by_start = math.sqrt(calls * wall / THREAD_START_S)
    return max(floor, min(ceiling, calls, int(min(by_gil, by_start, ceiling))))


def chunk_gain(work: float, shipped: int, cores: int) -> float:
    """Seconds a call gains in process chunks over running here: its work shared by
    ``cores`` processes, against shipping its ``shipped`` bytes there and back, which
    this process does one call after another (pickling and copying, SHIP_BYTE_S a byte;
    a chunk shares its round trip between its calls, not the bytes). Positive: chunks."""
    return work - max(work / cores, shipped * SHIP_BYTE_S)


def spread_gain(wall: float, cpu: float, calls: int, threads: int, cores: int,
                shipped: int = 0) -> float:
    """Seconds that ``calls`` waiting calls gain spread over ``cores`` worker processes,
    ``threads`` at once in each, over ``threads`` at once on this process's threads. On
    threads, a call holds this process's GIL for its CPU time (and THREAD_CALL_S of the
    lane's own): past ``wall / cpu`` calls at once the GIL is the limit, and each worker
    has a GIL of its own. Spread, each call also costs this process SPREAD_CALL_S and
    its bytes (SHIP_BYTE_S each) to send, one after another."""
    held = cpu + THREAD_CALL_S
    rounds = math.ceil(calls / max(threads, 1))
    here = max(rounds * wall, calls * held)
    spread_rounds = math.ceil(calls / max(threads * cores, 1))
    spread = (max(spread_rounds * wall, calls * held / cores)
              + calls * (SPREAD_CALL_S + shipped * SHIP_BYTE_S))
    return here - spread
