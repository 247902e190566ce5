"""Submit n tiny tasks, then wait for all of them: tasks per second (shared by competitors)."""
from _harness import timed
from _work import identity


def tasks_per_second(ex, n: int, runs: int) -> float:
    ex.submit(identity, 0).result()

    def once() -> None:
        futures = [ex.submit(identity, i) for i in range(n)]
        for f in futures:
            f.result()
    return n / min(timed(once) for _ in range(runs))
