"""Tiny calls on concurrent.futures.ThreadPoolExecutor(64)."""
from concurrent.futures import ThreadPoolExecutor

from thread_overhead._common import us_per_call


def run(n: int, runs: int) -> float:
    with ThreadPoolExecutor(64) as ex:
        return us_per_call(ex.submit, n, runs)
