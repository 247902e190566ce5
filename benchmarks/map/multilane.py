"""map(identity, range(n)) on multilane with its automatic chunking."""
from _harness import timed
from _work import identity

import multilane


def run(n: int, runs: int) -> float:
    with multilane.ProcessPoolExecutor(2) as ex:
        list(ex.map(identity, range(n)))  # warm: one full round, discarded
        return min(timed(lambda: list(ex.map(identity, range(n)))) for _ in range(runs))
