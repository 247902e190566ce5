"""countdown x 4, one after another in this process."""
from _harness import timed
from _work import countdown


def run(n: int, runs: int) -> float:
    return min(timed(lambda: [countdown(n) for _ in range(4)]) for _ in range(runs))
