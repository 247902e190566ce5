"""Items per second through a 3-stage multilane.Pipeline of tiny functions, every stage on
the default (auto) lane: issue 16's target is 100,000 items/s on 2 cores."""
from _harness import timed
from _work import add_one, double, minus_three

import multilane


def run(n: int, runs: int) -> float:
    with multilane.Executor() as ex:
        pipe = multilane.Pipeline(ex).map(add_one).map(double).map(minus_three)
        for _ in pipe.run(range(min(n, 10_000))):  # warm: the auto lane decides
            pass
        return n / min(timed(lambda: sum(1 for _ in pipe.run(range(n)))) for _ in range(runs))
