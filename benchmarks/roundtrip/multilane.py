"""Round trip on multilane.ProcessPoolExecutor."""
from _harness import timed
from _work import identity

import multilane


def run(n: int, runs: int) -> float:
    with multilane.ProcessPoolExecutor(2) as ex:
        ex.submit(identity, 0).result()
        return min(timed(lambda: [ex.submit(identity, i).result() for i in range(n)])
                   for _ in range(runs)) / n * 1e6
