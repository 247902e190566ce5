"""concurrent.futures map with its default chunksize=1, measured on n/50 items and scaled."""
from concurrent.futures import ProcessPoolExecutor

from _harness import timed
from _work import identity


def run(n: int, runs: int) -> float:
    m = max(1, n // 50)
    with ProcessPoolExecutor(2) as ex:
        list(ex.map(identity, range(100)))
        return min(timed(lambda: list(ex.map(identity, range(m)))) for _ in range(runs)) * n / m
