"""Timing an exploring call: its wall and CPU time, whether it lost its core, whether the
process's other threads kept the other cores busy, and how long the native watcher waited
for the GIL while it ran (``GilSamples``). The measuring never decides anything."""

from __future__ import annotations

import functools
import resource
import sys
import threading
import time
from typing import Any

from .._cores import usable_cores
from ._params import (
    CONTENDED,
    CROWDED,
    EARLY_CPU,
    EARLY_PROCESS_CPU,
    EARLY_S,
    GIL_HELD,
    GIL_RELEASED,
    GIL_SAMPLES,
    PAIR_WAIT_S,
    STOLEN,
)

__all__ = [
    "CallerProbe", "GilSamples", "PairGate", "cpu_pressure_us",
    "lost_its_core", "thread_rusage", "timed_call", "timed_coroutine", "timed_pair_probe",
    "timed_probe", "wait_watch", "watch_probe", "watched_probe",
]


_CORES = usable_cores()
thread_rusage = (functools.partial(resource.getrusage, resource.RUSAGE_THREAD)
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
    read through /proc for some microseconds. The process clock costs under a microsecond,
    but counts the other threads' time only at scheduler ticks, so over a call shorter than
    a tick it mostly reads nothing of what they computed.
    """
    rusage = thread_rusage
    if rusage is None:
        result, wall, cpu, start = timed_call(fn, args, kwargs)
        return result, wall, cpu, start, False, False
    # The thread's CPU time comes from its clock: getrusage's can move only by whole
    # scheduler ticks (milliseconds), too coarse for a short call, though getrusage still
    # counts the thread's voluntary switches. Each read is a system call, under a microsecond.
    others = _others_cpu() if others_exactly else None
    before = rusage()
    start, cpu = time.monotonic(), time.thread_time()
    result = fn(*args, **kwargs)
    wall, cpu = time.monotonic() - start, time.thread_time() - cpu
    after = rusage()
    if others is not None:
        others = (_others_cpu() or 0.0) - others
    forced = 0 if gil is None else gil.forced
    stolen = lost_its_core(after.ru_nvcsw - before.ru_nvcsw, wall, cpu, forced)
    crowded = others is not None and _CORES > 1 and others >= CROWDED * (_CORES - 1) * wall
    return result, wall, cpu, start, stolen, crowded


def lost_its_core(switches: int, wall: float, cpu: float, forced: int = 0) -> bool:
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


def watched_probe(fn: Any, args: tuple, kwargs: dict, others_exactly: bool = False,
                  on_waiting: Any = None) -> tuple[Any, float, float, float, bool, bool, tuple]:
    """``timed_probe`` for a solo probe on a thread, GIL-wait probes included (their
    counts last); ``on_waiting()`` runs if the watcher sees the call waiting."""
    gil = GilSamples()
    ticket = watch_probe(gil, on_waiting)
    try:
        result = timed_probe(fn, args, kwargs, gil, others_exactly)
    finally:
        gil.ended = True
        if ticket:
            wait_watch().unwatch(ticket)
    return (*result, gil.counts())


class CallerProbe:
    """A probe running in a map's calling thread, watched by the native watcher; and the
    rest of the map's futures, if the watcher took them over (the AutoLane's lock guards
    ``closed`` and ``rest``). Being watched costs the caller about a microsecond: a few
    stores under the watcher's lock, no thread woken (waking a Python thread for it would
    cost tens of microseconds)."""

    __slots__ = ("ticket", "closed", "rest")

    def __init__(self) -> None:
        self.ticket = 0  # the watch, 0 if there is none
        self.closed = False  # the caller goes on with the map itself: too late to take over
        self.rest: list | None = None


_watcher: Any = None
_watcher_lock = threading.Lock()


def wait_watch() -> Any:
    """The process's WaitWatch, made on first use and closed at exit."""
    global _watcher
    if _watcher is None:
        with _watcher_lock:
            if _watcher is None:
                import atexit

                from .._core import WaitWatch

                _watcher = WaitWatch()
                atexit.register(_close_wait_watch)  # after the executors shut down
    return _watcher


def end_wait_watch_if_idle() -> None:
    """Ends the watcher's thread now if nothing is watched, rather than a moment later:
    an executor that shuts down leaves no thread behind (the next watch starts one)."""
    if _watcher is not None:
        _watcher.end_if_idle()


def _others_cpu() -> float | None:
    from .._core import other_threads_cpu

    return other_threads_cpu()


def watch_probe(gil: GilSamples, on_waiting: Any = None) -> int:
    """Has the watcher look at this thread's exploring call: GIL-wait probes into ``gil``,
    and ``on_waiting()`` if it is seen waiting. The watch's ticket (0: none)."""
    return wait_watch().watch(EARLY_S, EARLY_CPU, EARLY_PROCESS_CPU, on_waiting, gil)


def _close_wait_watch() -> None:
    """Stops the watcher's thread, and lets the object go before the module does."""
    global _watcher
    watcher, _watcher = _watcher, None
    if watcher is not None:
        watcher.close()


class PairGate:
    """Starts the two calls of a pair probe together, and times both from then.

    Holding the GIL, the second call cannot start before the first lets go of it, one
    switch interval (5 ms by default) later: timed from their own starts, two calls only a
    few intervals long overlap too little to count, and the pair is tried again for
    nothing. Timed from the moment both were ready, the wait for the GIL is in the span,
    as it should be: two calls that hold it use one core between them over it. The first
    to arrive waits up to PAIR_WAIT_S for the second (a thread still starting, say); if it
    does not come, each call is timed from its own start and the pair may not count.
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
        GIL looks held. On a machine of few cores, one busy process elsewhere is enough
        to make this common."""
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
    "some" total of /proc/pressure/cpu, a file read of some microseconds), or None where
    Linux has no PSI."""
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
