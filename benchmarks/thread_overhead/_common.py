"""Submit n tiny calls to a thread pool, then wait for all: µs per call (shared)."""
from _harness import timed
from _work import identity


def us_per_call(submit, n: int, runs: int) -> float:
    def once() -> None:
        futures = [submit(identity, i) for i in range(n)]
        for f in futures:
            f.result()
    once()  # warm: one full round, discarded, as for every competitor
    return min(timed(once) for _ in range(runs)) / n * 1e6
