"""Pipelined submit on concurrent.futures.ProcessPoolExecutor."""
from concurrent.futures import ProcessPoolExecutor

from pipelined_submit._common import tasks_per_second


def run(n: int, runs: int) -> float:
    with ProcessPoolExecutor(2) as ex:
        return tasks_per_second(ex, max(1, n // 5), runs)
