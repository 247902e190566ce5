"""map(identity, range(n), buffersize=10_000) on multilane: the input read as results are
taken, at most 10,000 items in flight or waiting (issue 16's target: within 1.5x of the
unbounded map in the same run)."""
from _harness import timed
from _work import identity

import multilane

BUFFERSIZE = 10_000


def run(n: int, runs: int) -> float:
    with multilane.ProcessPoolExecutor(2) as ex:
        list(ex.map(identity, range(n), buffersize=BUFFERSIZE))  # warm, discarded
        return min(timed(lambda: list(ex.map(identity, range(n), buffersize=BUFFERSIZE)))
                   for _ in range(runs))
