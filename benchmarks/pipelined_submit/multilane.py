"""Pipelined submit on multilane.ProcessPoolExecutor."""
from pipelined_submit._common import tasks_per_second

import multilane


def run(n: int, runs: int) -> float:
    with multilane.ProcessPoolExecutor(2) as ex:
        return tasks_per_second(ex, n, runs)
