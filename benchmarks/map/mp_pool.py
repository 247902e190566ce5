"""multiprocessing.Pool.map with its default chunking."""
import multiprocessing

from _harness import timed
from _work import identity


def run(n: int, runs: int) -> float:
    with multiprocessing.Pool(2) as pool:
        pool.map(identity, range(n))  # warm: one full round, discarded
        return min(timed(lambda: pool.map(identity, range(n))) for _ in range(runs))
