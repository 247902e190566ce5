"""Round trip on multiprocessing.Pool.apply."""
import multiprocessing

from _harness import timed
from _work import identity


def run(n: int, runs: int) -> float:
    n = max(1, n // 5)
    with multiprocessing.Pool(2) as pool:
        for i in range(n):  # warm: one full round, discarded, as for every competitor
            pool.apply(identity, (i,))
        return min(timed(lambda: [pool.apply(identity, (i,)) for i in range(n)])
                   for _ in range(runs)) / n * 1e6
