"""countdown x 4 on a warm multilane pool of 2 workers."""
from _harness import timed
from _work import countdown

import multilane


def run(n: int, runs: int) -> float:
    with multilane.ProcessPoolExecutor(2) as ex:
        # Warm: one full round, discarded. A new pool runs slower for about a second while
        # the OS settles its fresh processes (placement, caches); the target is warm pools.
        list(ex.map(countdown, [n] * 4))
        return min(timed(lambda: list(ex.map(countdown, [n] * 4))) for _ in range(runs))
