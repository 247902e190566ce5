"""The auto lane's decision: one cost model, a pure function of a profile's evidence (the
function's side: ``Profile``) and the machine's parameters (``Machine``).

For each lane the model estimates what a call costs when the function's calls keep
coming (the lane's time per call at full throughput), from what the probes measured of a
call alone (``wall`` and ``cpu``), of a pair of calls at once, and of a call in a worker:

- **inline**: ``wall``.
- **thread**: ``max(wall / MAX_THREADS, busy / s) + thread_call_s``. Calls at once overlap
  their waits; ``busy``, the CPU time of a call that mostly waits (else its wall time: a
  computing call's gap is mostly the probe's own), runs ``s`` at once: 1 while the GIL
  is held or not known to be released, what a pair gained over two in a row when it
  showed the GIL released (``speedup_seen``), every core on a free-threaded CPython or
  when the GIL-wait probes found it released and no pair could run on two free cores.
- **process**: ``(work + transport - sending) / cores + sending`` (``process_estimate``):
  a worker runs a call at a time; this process sends them one after another. One core
  only, if the call alone kept every core busy (its own threads).

- **cluster** (only once the executor has joined a cluster): ``(work + trip) / slots +
  sending``: a cluster runs ``slots`` calls at once, each taking its work (as a cluster
  worker ran it, else as a process did, else here) and a round trip (the cheapest a
  cluster probe saw, less the call's work); sending its bytes costs CLUSTER_BYTE_S each.

An estimate is known or only bounded: before a lane's probe the model takes its most
optimistic value (thread: ``s`` = every core; process: no round trip at all, each call's
bytes still shipped at ``ship_byte_s``; and where the GIL is no limit, no better than
threads, which run the same work at once without shipping it). A second look at a worker
that ran a call PROCESS_OUTLIER times slower than here takes its time as here's, and one
whose round trip took TRANSPORT_OUTLIER times the machine's for its bytes takes the
machine's, optimistically.

The choice: inline, unless the thread estimate is MIN_GAIN lower; then process, if it is
MIN_GAIN lower than that. Exploration: the pair probe (thread), then the process probe,
then the cluster probe (a call there),
each only while its lane's bound beats the choice by MIN_GAIN, and a process probe only if
its cost (a round trip, the call's bytes, and the workers' first load of the function
while not loaded: SETUP_S) is within EXPLORE_BUDGET of the time the profile's calls are
estimated to take (its calls so far, and as many to come), and, while the workers are not
up, only if the most processes could gain over those calls pays for starting them
(PROCESS_START_S); if not, the decision says after how many calls the probe would fit
(``Decision.revisit``).

Two gates come first: a call alone is timed (twice, unless the first settles it:
``Profile.solo_wanted``), and a call under TINY_S runs inline, as no hand-off costs less.
Tested table-driven from recorded evidence, without timing (tests/test_auto_verdict.py).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from ._explain import nbytes, us
from ._machine import Machine
from ._params import (
    CLUSTER_BYTE_S,
    CLUSTER_TRIP_S,
    EXPLORE_BUDGET,
    KNOWN_TRIPS,
    MAX_THREADS,
    MIN_GAIN,
    PARALLEL_CORES,
    PROCESS_OUTLIER,
    PROCESS_PROBES,
    PROCESS_START_S,
    SETUP_S,
    TINY_S,
    TRANSPORT_OUTLIER,
    WAITING,
)
from ._profile import Profile

__all__ = ["Decision", "Estimate", "best_known", "chunk_gain", "choose", "chunks_pay", "estimates",
           "shipping",
           "spread_gain", "verdict", "waiting_concurrency"]


class Decision(NamedTuple):
    lane: str
    reason: str  # what ``explain()`` shows
    basis: float  # the work per call it is based on, in seconds (drift is measured from it)
    # A process probe did not fit the exploration budget: explore again once the profile
    # has had this many calls (0: no such wait).
    revisit: int = 0


class Estimate(NamedTuple):
    """A lane's time per call: ``seconds`` as measured (inf: not yet), ``bound`` the least
    it could be (its probe would tell); ``why``: what it rests on."""

    seconds: float
    bound: float
    why: str = ""


def estimates(p: Profile, m: Machine,
              alone: tuple[float, float] | None = None) -> dict[str, Estimate]:
    """Per lane, what a call of ``p`` costs there (see the module's text); no "process"
    for a function no process can take. ``alone``: the wall and CPU time of a call here,
    if not its solo's (a run of calls timed together, say)."""
    measured = alone or p.solo
    assert measured is not None, "estimates need a call timed alone"
    wall, cpu = measured
    s, s_bound, why, gil_free = _at_once(p, m, wall, cpu)

    # What of a call holds a thread's share of the GIL (or a core): its CPU time if it
    # mostly waits; else its wall time, gaps included. A computing call's gap between
    # wall and CPU time is mostly the probe's own (the GIL-wait probe's forced switches,
    # the probe thread waking): a 315 µs call read 364 µs, and was sent to threads to
    # "overlap" 49 µs that were no wait of its own.
    busy = cpu if cpu < WAITING * wall else wall

    def on_threads(at_once: float) -> float:
        return max(wall / MAX_THREADS, busy / at_once) + m.thread_call_s

    if p.solo_crowded and cpu >= WAITING * wall:
        # Its own threads (a multithreaded BLAS, say) kept every core busy while the call
        # waited for them: calls at once would only share those cores, not overlap.
        thread = Estimate(wall + m.thread_call_s, wall + m.thread_call_s)
    else:
        thread = Estimate(on_threads(s), on_threads(s_bound), why)
    found = {"inline": Estimate(wall, wall), "thread": thread}
    if p.unpicklable is None:
        cores = 1 if p.solo_crowded else m.cores
        floor = thread.seconds if gil_free else 0.0  # processes run it no better at once
        if p.transport_seen is None:
            bound = max(wall / cores, shipping(p, m), floor)
            trip = m.process_trip_s + shipping(p, m)
            # A long call, its function loaded by the workers: known well enough without
            # a probe (KNOWN_TRIPS).
            known = p.warmed and p.unpicklable is None and wall >= KNOWN_TRIPS * trip
            found["process"] = Estimate(max((wall + trip) / cores, shipping(p, m), floor)
                                        if known else math.inf, bound)
        else:
            work = p.process_work or wall
            seconds = max(_process_estimate(p, cores, wall), floor)
            bound = seconds
            trip = m.process_trip_s + shipping(p, m)
            slow_work = work > PROCESS_OUTLIER * wall
            slow_trip = p.transport_seen > TRANSPORT_OUTLIER * trip
            if (slow_work or slow_trip) and p.process_probes < PROCESS_PROBES:
                # One slow call in a worker, or one slow round trip (its reply waiting for
                # this process's GIL, say), can be an outlier: at best, the call is as
                # fast there as here, and the trip is the machine's for its bytes.
                bound = max(_process_estimate(p, cores, wall, wall if slow_work else None,
                                              trip if slow_trip else None), floor)
            found["process"] = Estimate(seconds, bound)
        if m.cluster_slots:
            found["cluster"] = on_cluster(p, m, wall)
    return found


def on_cluster(p: Profile, m: Machine, wall: float) -> Estimate:
    """A call of ``p`` on the joined cluster (see the module's text): measured once a
    cluster probe timed a round trip there; until then bounded by its work on every slot
    and a trip no cheaper than to a process of this machine (shared memory is the fastest
    way its bytes can travel)."""
    work = p.cluster_work or p.process_work or wall
    sending = p.shipped_bytes * CLUSTER_BYTE_S
    bound = (work + (p.transport_seen or m.process_trip_s)) / m.cluster_slots + sending
    if m.cluster_trip_s is None or p.cluster_work is None:
        return Estimate(math.inf, bound)
    return Estimate((work + m.cluster_trip_s) / m.cluster_slots + sending, bound)


def _process_estimate(p: Profile, cores: int, wall: float, work: float | None = None,
                      transport: float | None = None) -> float:
    estimate = p.process_estimate(cores, wall, work, transport)
    return math.inf if estimate is None else estimate


def _at_once(p: Profile, m: Machine, wall: float, cpu: float) -> tuple[float, float, str, bool]:
    """How many calls compute at once on threads: (as measured, at best, why, whether the
    GIL was found to be no limit)."""
    if m.free_threaded:
        return m.cores, m.cores, "computing on a free-threaded CPython", True
    if p.parallel:
        return min(p.speedup_seen, m.cores), min(p.speedup_seen, m.cores), \
            "computing without holding the GIL", True
    released = p.gil == "released"
    if released and p.parallel_seen >= PARALLEL_CORES:
        # A pair used more than one core: the GIL is released, and what two at once
        # gained is what threads gain (little, for memory-bound work).
        return p.speedup_seen, p.speedup_seen, \
            f"computing without holding the GIL {p.gil_wait}", True
    if released and p.gil_released >= 2 and not p.pairs_judged and p.pair_tries:
        # Every pair lost a core to another task of the machine: the GIL-wait probes
        # stand if two or more found it released (one can be misread).
        return m.cores, m.cores, (f"computing without holding the GIL {p.gil_wait}; no pair "
                                  "could run on two free cores here"), True
    waiting = cpu < WAITING * wall
    why = "mostly waiting"
    # A pair probe tells only of calls that compute (a mostly waiting call's CPU time is
    # too short for two to be seen at once).
    return 1.0, (m.cores if not waiting and p.pair_wanted() else 1.0), why, False


def choose(p: Profile, m: Machine, calls: int | None = None,
           started: bool = True) -> Decision | str:
    """Where the calls of ``p`` go, or the probe to run first: "solo", "pair" or "process".
    ``calls``: how many calls the profile has had (the exploration budget counts as many
    to come); None: no budget. ``started``: whether the process lane's workers are up
    (if not, a process probe must also be worth starting them: PROCESS_START_S)."""
    if p.solo is None:
        return "solo"
    wall, cpu = p.solo
    # A slow first call can be an outlier (a cold cache, an import); a tiny one cannot.
    if p.solo_wanted() and wall >= TINY_S:
        return "solo"
    if wall < TINY_S:
        return Decision("inline", "tiny: shipping it costs more", wall)
    found = estimates(p, m)
    best = _best(found)
    target = found[best].seconds * (1 - MIN_GAIN)
    thread, process = found["thread"], found.get("process")
    if thread.bound < min(target, thread.seconds):
        return "pair"
    revisit = 0
    if (process is not None and best != "process"
            and process.bound < min(target, process.seconds)):
        # The probe's cost: a round trip, the call's bytes, and, if the workers have not
        # loaded the function yet, their load (SETUP_S: not yet measured).
        cost = m.process_trip_s + shipping(p, m) + (0.0 if p.warmed else SETUP_S)
        # Workers not up yet must first start: worth it only if processes could gain that
        # much over the calls (as many again to come), at best.
        start = 0.0 if started else PROCESS_START_S
        gain = found[best].seconds - process.bound
        if calls is None or (cost <= EXPLORE_BUDGET * 2 * calls * found[best].seconds
                             and start <= calls * gain):
            return "process"
        revisit = max(math.ceil(cost / (EXPLORE_BUDGET * 2 * found[best].seconds)),
                      math.ceil(start / gain))
    cluster = found.get("cluster")
    if (not revisit and cluster is not None and best != "cluster"
            and cluster.bound < min(target, cluster.seconds)):
        # Its cost: a round trip there and the call's bytes (the call's own work is done
        # there instead of here: not lost).
        trip = CLUSTER_TRIP_S if m.cluster_trip_s is None else m.cluster_trip_s
        cost = trip + p.shipped_bytes * CLUSTER_BYTE_S
        if calls is None or cost <= EXPLORE_BUDGET * 2 * calls * found[best].seconds:
            return "cluster"
        revisit = math.ceil(cost / (EXPLORE_BUDGET * 2 * found[best].seconds))
    basis = {"process": p.process_work or wall,
             "cluster": p.cluster_work or wall}.get(best, wall)
    return Decision(best, _reason(p, m, found, best, revisit), basis, revisit)


def _best(found: dict[str, Estimate]) -> str:
    """The lane of the lowest measured estimate: inline, unless the thread estimate is
    MIN_GAIN lower; then process, if it is MIN_GAIN lower than that; then the cluster,
    likewise."""
    best = "inline"
    for lane in ("thread", "process", "cluster"):
        if lane in found and found[lane].seconds < found[best].seconds * (1 - MIN_GAIN):
            best = lane
    return best


def best_known(p: Profile, m: Machine) -> str:
    """The lane ``choose`` would pick for ``p`` from what is measured so far, its probes
    still to come (needs a call timed alone): where calls go while a long probe is out."""
    return _best(estimates(p, m))


def _reason(p: Profile, m: Machine, found: dict[str, Estimate], best: str,
            revisit: int) -> str:
    """Why ``best``, in words, for ``explain()``."""
    assert p.solo is not None
    wall = p.solo[0]
    if best == "thread":
        return found["thread"].why
    if best == "cluster":
        here = min(e.seconds for lane, e in found.items() if lane != "cluster")
        return (f"computing, faster on the cluster's {m.cluster_slots} slots "
                f"({us(found['cluster'].seconds)} a call) than here ({us(here)})")
    if best == "process":
        if p.gil == "held":
            return f"computing with the GIL held {p.gil_wait}"
        if p.pair and p.gil != "released":  # a pair that used one core between them
            return "computing with the GIL held"
        return "computing"
    process = found.get("process")
    cores = 1 if p.solo_crowded else m.cores
    if process is None:
        # No process can take it, whatever else the probes saw (a crowded machine, say):
        # that is the reason that stands.
        return f"computing; {p.unpicklable}"
    if p.solo_crowded:
        # Its own threads (a multithreaded BLAS, say) kept every core busy: no lane has a
        # core to add, and a worker would get only a share of them.
        return "computing on every core already"
    if p.gil == "released" and p.parallel_seen >= PARALLEL_CORES:
        # Two at once ran on two cores, free of the GIL, and gained nothing: they wait for
        # something both share (memory bandwidth), which processes would share too.
        gained = "gained too little on" if p.speedup_seen >= 1 else "were no faster than"
        return (f"computing without holding the GIL, but two at once {gained} two in a row "
                f"({p.speedup_seen:.2f}x) on {p.parallel_seen:.1f} cores: they share some "
                "other limit (memory, say)")
    if revisit:
        return (f"computing; {p.calls} calls are too few to pay for a process probe "
                f"or for starting the workers (explored again at {revisit})")
    work = p.process_work or wall
    if math.isinf(process.seconds) and shipping(p, m) >= work / cores:
        return (f"computing, no faster on {cores} processes: shipping its "
                f"{nbytes(p.shipped_bytes)} costs more than the call")
    if work / cores >= wall:
        return f"computing, no faster on {cores} processes: {us(work)} a call in one"
    return "computing, too little to outweigh the transport to a process"


def verdict(p: Profile, cores: int, free_threaded: bool = False,
            calls: int | None = None) -> Decision | None:
    """``choose`` on a machine of ``cores`` cores with the default parameters: the
    decision, or None while a probe is wanted."""
    found = choose(p, Machine(cores, free_threaded), calls)
    return found if isinstance(found, Decision) else None


_REFERENCE = Machine(1)  # the defaults, for callers that give no machine


def waiting_concurrency(wall: float, cpu: float, calls: int, floor: int, ceiling: int,
                        m: Machine = _REFERENCE) -> int:
    """How many of ``calls`` calls to run at once on threads, each ``wall`` seconds long
    of which ``cpu`` compute (holding the GIL): as many as overlap their waits until the
    GIL is busy all the time (``wall / cpu``), and no more than pay for their own start
    (``k`` threads take ``calls * wall / k + k * thread_start_s``, least at the square
    root); never fewer than ``floor`` (the threads allowed already), never more than
    ``ceiling`` or ``calls``."""
    by_gil = wall / max(cpu, m.thread_call_s)
    by_start = math.sqrt(calls * wall / m.thread_start_s)
    return max(floor, min(ceiling, calls, int(min(by_gil, by_start, ceiling))))


def shipping(p: Profile, m: Machine) -> float:
    """Seconds this process spends shipping a call of ``p`` to a process and back: its
    bytes at ``ship_byte_s``, or, if more, what pickling its arguments and result took
    here (a small NumPy array costs its pickling's fixed part, not its bytes)."""
    return max(p.shipped_bytes * m.ship_byte_s, p.pickle_s)


def chunk_gain(work: float, shipped_s: float, cores: int) -> float:
    """Seconds a call gains in process chunks over running here: its work shared by
    ``cores`` processes, against ``shipped_s``, what shipping it there and back costs this
    process, one call after another (``shipping``; a chunk shares its round trip between
    its calls, not the bytes). Chunks replace a loop here only if this is MIN_GAIN of the
    work or more (``chunks_pay``)."""
    return work - max(work / cores, shipped_s)


def chunks_pay(work: float, shipped_s: float, cores: int) -> bool:
    """Whether calls decided inline go to process chunks: ``chunk_gain``, by the margin
    any lane needs to replace a simpler one (MIN_GAIN). Without it, 12 calls of 70 ms
    with 70 MiB arguments, whose shipping was estimated 1 ms under their work, went to
    processes and took 3.2 s against 0.6 s here."""
    return chunk_gain(work, shipped_s, cores) > MIN_GAIN * work


def spread_gain(wall: float, cpu: float, calls: int, threads: int, cores: int,
                shipped_s: float = 0.0, m: Machine = _REFERENCE) -> float:
    """Seconds that ``calls`` waiting calls gain spread over ``cores`` worker processes,
    ``threads`` at once in each, over ``threads`` at once on this process's threads. On
    threads, a call holds this process's GIL for its CPU time (and ``thread_call_s`` of the
    lane's own): past ``wall / cpu`` calls at once the GIL is the limit, and each worker
    has a GIL of its own. Spread, each call also costs this process ``spread_call_s`` and
    ``shipped_s`` (its bytes, see ``shipping``) to send, one after another."""
    held = cpu + m.thread_call_s
    rounds = math.ceil(calls / max(threads, 1))
    here = max(rounds * wall, calls * held)
    spread_rounds = math.ceil(calls / max(threads * cores, 1))
    spread = (max(spread_rounds * wall, calls * held / cores)
              + calls * (m.spread_call_s + shipped_s))
    return here - spread
