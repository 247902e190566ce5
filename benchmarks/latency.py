"""How a synchronous round trip's time is spread, not only its mean (issue 18): p50, p99
and p99.9 of ``CALLS`` round trips of a no-op, one after another, for multilane's process
pool and its peers on this machine.

Each call is timed alone (``submit(fn, i).result()``, or ``Pool.apply``), after a warm-up
of ``WARM`` calls that is not counted. Averages hide a tail: a call that waits past its
spin and falls back to a sleep costs many times the median, and one in a hundred such
calls is invisible in a mean. Percentiles are nearest rank.

The busy neighbour: multilane's round trip again while another process keeps one core
busy, with its callers choosing to spin or sleep as they do (``lanes/process/_spin.py``),
always spinning, and never spinning. The target: the choice is no worse than never
spinning, the best a caller can do when a spin takes a core someone needs.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from _harness import busy_core, have
from _work import identity

import multilane

CALLS = 100_000
QUICK_CALLS = 2_000
WARM = 2_000
PERCENTILES = (50.0, 99.0, 99.9)
PEERS = ("multilane", "stdlib", "loky", "mp_pool_apply")
GOAL_P50_US = 8.0  # the goals for multilane's round trip
GOAL_P99_OVER_P50 = 3.0
GOAL_CPU_PER_WALL = 2.0  # CPU of every process per round trip, over its wall time
BUSY_CALLS = 20_000
QUICK_BUSY_CALLS = 1_000
BUSY_WAYS = {"as chosen": None, "always spinning": True, "never spinning": False}
BUSY_TARGET = 1.1  # the chosen way's mean within this of never spinning's

Call = Callable[[int], Any]


@contextmanager
def executor(name: str) -> Iterator[Any]:
    """``name``'s executor of two workers (multilane, stdlib or loky); None if not
    installed."""
    if name == "multilane":
        with multilane.ProcessPoolExecutor(2) as ex:
            yield ex
    elif name == "stdlib":
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(2) as ex:
            yield ex
    elif name == "loky":
        if not have("loky"):
            yield None
            return
        from loky import get_reusable_executor

        ex = get_reusable_executor(max_workers=2)
        try:
            yield ex
        finally:
            ex.shutdown(wait=True)
    else:
        raise ValueError(f"no such executor: {name!r}")


@contextmanager
def peer(name: str) -> Iterator[Call | None]:
    """One synchronous round trip on ``name``'s pool of two workers; None if not
    installed."""
    if name == "mp_pool_apply":
        import multiprocessing

        with multiprocessing.Pool(2) as pool:
            yield lambda i: pool.apply(identity, (i,))
        return
    with executor(name) as ex:
        yield None if ex is None else (lambda i: ex.submit(identity, i).result())


def percentile(sorted_us: list[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile of ascending ``sorted_us``."""
    rank = max(1, math.ceil(p * len(sorted_us) / 100 - 1e-9))  # 99.9% of 1,000: 999
    return sorted_us[rank - 1]


def tree_cpu_s(exclude: frozenset[int] = frozenset()) -> float:
    """CPU seconds (user and system, every thread) used so far by this process and its
    living descendants, from /proc (clock ticks: 10 ms here); those in ``exclude`` and
    their descendants are left out. NaN where there is no /proc."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return math.nan
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        parents[int(name)] = int(fields[1])
        used[int(name)] = (int(fields[11]) + int(fields[12])) / tick
    return sum(used.get(pid, 0.0) for pid in family(parents, os.getpid(), exclude))


def family(parents: dict[int, int], root: int, exclude: frozenset[int]) -> set[int]:
    """``root`` and its descendants by ``parents`` (pid -> parent pid), less those in
    ``exclude`` and theirs."""
    mine = {root}
    grew = True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in mine and pid not in mine and pid not in exclude:
                mine.add(pid)
                grew = True
    return mine


def spread(call: Call, calls: int, warm: int,
           exclude: frozenset[int] = frozenset()) -> dict[str, float]:
    """Times ``calls`` round trips one by one after ``warm`` untimed ones: the
    percentiles and the mean, in µs, and the CPU time per call of this process and its
    workers (``tree_cpu_s``)."""
    for i in range(warm):
        call(i)
    clock = time.perf_counter
    times = [0.0] * calls
    cpu_before, wall_before = tree_cpu_s(exclude), clock()
    for i in range(calls):
        start = clock()
        call(i)
        times[i] = clock() - start
    wall, cpu = clock() - wall_before, tree_cpu_s(exclude) - cpu_before
    times_us = sorted(t * 1e6 for t in times)
    out = {f"p{p:g}": percentile(times_us, p) for p in PERCENTILES}
    out["mean"] = sum(times_us) / calls
    out["cpu"] = cpu / calls * 1e6
    out["cpu_per_wall"] = cpu / wall
    return out


# {"calls": n, "warm": n, "peers": {name: spread or None},
#  "busy_calls": n, "busy": {way: spread}}
Figures = dict[str, Any]


def busy_neighbour(calls: int, warm: int) -> dict[str, dict[str, float]]:
    """multilane's spread with one core kept busy by another process, per way of
    waiting (``BUSY_WAYS``), each on a pool of its own."""
    from multilane.lanes.process._spin import HelpSpin

    out = {}
    with busy_core() as spinner:
        for way, fixed in BUSY_WAYS.items():
            with multilane.ProcessPoolExecutor(2) as ex:
                ex._spin = HelpSpin(fixed)  # noqa: SLF001 (the way its callers wait)
                out[way] = spread(lambda i, ex=ex: ex.submit(identity, i).result(),
                                  calls, warm, frozenset({spinner}))
    return out


def measure(quick: bool = False) -> Figures:
    """Every peer's spread (None: not installed), and multilane's beside a busy core."""
    calls = QUICK_CALLS if quick else CALLS
    warm = min(WARM, calls)
    peers: dict[str, dict[str, float] | None] = {}
    for name in PEERS:
        with peer(name) as call:
            peers[name] = None if call is None else spread(call, calls, warm)
    busy_calls = QUICK_BUSY_CALLS if quick else BUSY_CALLS
    return {"calls": calls, "warm": warm, "peers": peers, "busy_calls": busy_calls,
            "busy": busy_neighbour(busy_calls, min(WARM, busy_calls))}


def targets(figures: Figures) -> list[tuple[str, str, bool]]:
    ours = figures["peers"].get("multilane")
    if not ours:
        return []
    p50, p99 = ours["p50"], ours["p99"]
    out = [(f"round trip p50 <= {GOAL_P50_US:g} µs (goal)", f"{p50:.1f} µs",
            p50 <= GOAL_P50_US),
           (f"round trip p99 <= {GOAL_P99_OVER_P50:g}x its p50 (goal)",
            f"{p99 / p50:.1f}x ({p99:.1f} against {p50:.1f} µs)",
            p99 <= GOAL_P99_OVER_P50 * p50),
           (f"CPU per round trip <= {GOAL_CPU_PER_WALL:g}x its wall time (goal)",
            f"{ours['cpu_per_wall']:.2f}x ({ours['cpu']:.1f} µs of CPU a call)",
            ours["cpu_per_wall"] <= GOAL_CPU_PER_WALL)]
    busy = figures.get("busy")
    if busy:
        chosen, never = busy["as chosen"]["mean"], busy["never spinning"]["mean"]
        out.append((f"round trip beside a busy core within {BUSY_TARGET:g}x of never "
                    "spinning", f"{chosen / never:.2f}x ({chosen:.1f} against {never:.1f} µs)",
                    chosen <= BUSY_TARGET * never))
    return out


def render(figures: Figures) -> list[str]:
    lines = ["## latency", "",
             f"µs per synchronous round trip of a no-op, over {figures['calls']:,} calls "
             f"timed one by one after {figures['warm']:,} untimed (nearest-rank "
             "percentiles), on a pool of two workers; CPU: µs of CPU time per call of "
             "this process and its workers together (from their clocks in /proc), and "
             "that over the wall time.", "",
             "| competitor | p50 | p99 | p99.9 | mean | p99 / p50 | CPU a call | CPU / wall |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, row in figures["peers"].items():
        if row is None:
            lines.append(f"| {name} | not installed | | | | | | |")
            continue
        lines.append(_row(name, row))
    busy = figures.get("busy")
    if busy:
        lines += ["", f"multilane with one core kept busy by another process, over "
                  f"{figures['busy_calls']:,} calls, by how its callers wait for a reply:", "",
                  "| waiting | p50 | p99 | p99.9 | mean | p99 / p50 | CPU a call | CPU / wall |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        lines += [_row(way, row) for way, row in busy.items()]
    return lines + [""]


def _row(name: str, row: dict[str, float]) -> str:
    return (f"| {name} | {row['p50']:.1f} | {row['p99']:.1f} | {row['p99.9']:.1f} "
            f"| {row['mean']:.1f} | {row['p99'] / row['p50']:.1f}x | {row['cpu']:.1f} "
            f"| {row['cpu_per_wall']:.2f}x |")
