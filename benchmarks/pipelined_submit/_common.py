"""Submit n tiny tasks, then wait for all of them: tasks per second (shared by competitors)."""
from _harness import timed
from _work import identity


def tasks_per_second(ex, n: int, runs: int) -> float:
    def once() -> None:
        futures = [ex.submit(identity, i) for i in range(n)]
        for f in futures:
            f.result()
    once()  # warm: one full round, discarded, as for every competitor
    return n / min(timed(once) for _ in range(runs))
