"""countdown x 4 on a warm multilane pool of 2 workers."""
from _harness import timed
from _work import countdown

import multilane


def run(n: int, runs: int) -> float:
    with multilane.ProcessPoolExecutor(2) as ex:
        list(ex.map(countdown, [1000] * 4))
        return min(timed(lambda: list(ex.map(countdown, [n] * 4))) for _ in range(runs))
