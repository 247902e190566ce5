"""Round trip on multilane.ProcessPoolExecutor."""
from _harness import timed
from _work import identity

import multilane


def run(n: int, runs: int) -> float:
    with multilane.ProcessPoolExecutor(2) as ex:
        for i in range(n):  # warm: one full round, discarded (see cpu_scaling/multilane.py)
            ex.submit(identity, i).result()
        return min(timed(lambda: [ex.submit(identity, i).result() for i in range(n)])
                   for _ in range(runs)) / n * 1e6
