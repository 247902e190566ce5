"""A map of tiny calls (``Executor.map``: the auto lane, which runs them here, in chunks),
with and without a progress bar: issue 16's
target is that the bar adds under 2% to a 10^5-item map. The two are timed in turns on
one executor (a drifting machine then moves both alike), the best of each counts. The
bar is forced on (``progress="always"``: tqdm when installed, as a user would have it)
and drawn to /dev/null, which costs the writes a terminal would."""
import contextlib
import functools
import os

from _harness import timed
from _work import identity

import multilane

PAIRS = 150  # at least: a map takes ~10 ms, and the target is a 2% difference


@functools.cache
def measure(n: int, runs: int) -> tuple[float, float]:
    """(best seconds without a bar, best seconds with one)."""
    best = {False: float("inf"), "always": float("inf")}
    with multilane.Executor(processes=2) as ex, open(os.devnull, "w") as sink, \
            contextlib.redirect_stderr(sink):
        view = ex.options()
        list(view.map(identity, range(n)))  # warm (and decided), discarded
        for _ in range(max(runs, PAIRS)):
            for progress in best:
                seconds = timed(lambda p=progress: list(view.map(identity, range(n),
                                                                  progress=p)))
                best[progress] = min(best[progress], seconds)
    return best[False], best["always"]
