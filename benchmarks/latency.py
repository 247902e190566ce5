"""How a synchronous round trip's time is spread, not only its mean (issue 18): p50, p99
and p99.9 of ``CALLS`` round trips of a no-op, one after another, for multilane's process
pool and its peers on this machine.

Each call is timed alone (``submit(fn, i).result()``, or ``Pool.apply``), after a warm-up
of ``WARM`` calls that is not counted. Averages hide a tail: a call that waits past its
spin and falls back to a sleep costs many times the median, and one in a hundred such
calls is invisible in a mean. Percentiles are nearest rank.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from _harness import have
from _work import identity

import multilane

CALLS = 100_000
QUICK_CALLS = 2_000
WARM = 2_000
PERCENTILES = (50.0, 99.0, 99.9)
PEERS = ("multilane", "stdlib", "loky", "mp_pool_apply")
GOAL_P50_US = 8.0  # the goals for multilane's round trip
GOAL_P99_OVER_P50 = 3.0

Call = Callable[[int], Any]


@contextmanager
def peer(name: str) -> Iterator[Call | None]:
    """One synchronous round trip on ``name``'s pool of two workers; None if not
    installed."""
    if name == "multilane":
        with multilane.ProcessPoolExecutor(2) as ex:
            yield lambda i: ex.submit(identity, i).result()
    elif name == "stdlib":
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(2) as stdlib:
            yield lambda i: stdlib.submit(identity, i).result()
    elif name == "loky":
        if not have("loky"):
            yield None
            return
        from loky import get_reusable_executor

        loky = get_reusable_executor(max_workers=2)
        try:
            yield lambda i: loky.submit(identity, i).result()
        finally:
            loky.shutdown(wait=True)
    elif name == "mp_pool_apply":
        import multiprocessing

        with multiprocessing.Pool(2) as pool:
            yield lambda i: pool.apply(identity, (i,))
    else:
        raise ValueError(f"no such peer: {name!r}")


def percentile(sorted_us: list[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile of ascending ``sorted_us``."""
    rank = max(1, math.ceil(p * len(sorted_us) / 100 - 1e-9))  # 99.9% of 1,000: 999
    return sorted_us[rank - 1]


def spread(call: Call, calls: int, warm: int) -> dict[str, float]:
    """Times ``calls`` round trips one by one after ``warm`` untimed ones: the
    percentiles and the mean, in µs."""
    for i in range(warm):
        call(i)
    clock = time.perf_counter
    times = [0.0] * calls
    for i in range(calls):
        start = clock()
        call(i)
        times[i] = clock() - start
    times_us = sorted(t * 1e6 for t in times)
    out = {f"p{p:g}": percentile(times_us, p) for p in PERCENTILES}
    out["mean"] = sum(times_us) / calls
    return out


Figures = dict[str, Any]  # {"calls": n, "warm": n, "peers": {name: spread or None}}


def measure(quick: bool = False) -> Figures:
    """Every peer's spread (None: not installed)."""
    calls = QUICK_CALLS if quick else CALLS
    warm = min(WARM, calls)
    peers: dict[str, dict[str, float] | None] = {}
    for name in PEERS:
        with peer(name) as call:
            peers[name] = None if call is None else spread(call, calls, warm)
    return {"calls": calls, "warm": warm, "peers": peers}


def targets(figures: Figures) -> list[tuple[str, str, bool]]:
    ours = figures["peers"].get("multilane")
    if not ours:
        return []
    p50, p99 = ours["p50"], ours["p99"]
    return [(f"round trip p50 <= {GOAL_P50_US:g} µs (goal)", f"{p50:.1f} µs",
             p50 <= GOAL_P50_US),
            (f"round trip p99 <= {GOAL_P99_OVER_P50:g}x its p50 (goal)",
             f"{p99 / p50:.1f}x ({p99:.1f} against {p50:.1f} µs)",
             p99 <= GOAL_P99_OVER_P50 * p50)]


def render(figures: Figures) -> list[str]:
    lines = ["## latency", "",
             f"µs per synchronous round trip of a no-op, over {figures['calls']:,} calls "
             f"timed one by one after {figures['warm']:,} untimed (nearest-rank "
             "percentiles), on a pool of two workers.", "",
             "| competitor | p50 | p99 | p99.9 | mean | p99 / p50 |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name, row in figures["peers"].items():
        if row is None:
            lines.append(f"| {name} | not installed | | | | |")
            continue
        lines.append(f"| {name} | {row['p50']:.1f} | {row['p99']:.1f} | {row['p99.9']:.1f} "
                     f"| {row['mean']:.1f} | {row['p99'] / row['p50']:.1f}x |")
    return lines + [""]
